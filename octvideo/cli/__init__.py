"""Command-line entry point: a thin dispatcher over subcommands.

Each command group is a module of this package, which exposes ``register(subparsers)``;
``register`` adds its parsers and sets ``func`` to a plain function taking the parsed namespace.
Tests call those functions in-process, and ``main`` is only argument parsing plus error reporting.
The package sits on top of octvideo: nothing else in ``octvideo/`` imports it.

    data.py       octvideo data synth | check | prepare
    run.py        octvideo train, octvideo test
    sweep.py      octvideo sweep
    zoo.py        octvideo import
    inference.py  octvideo predict, octvideo export
    models.py     octvideo models
    args.py       the argparse types they share

A command whose stdout's reader goes away (``octvideo predict ... | head -1``) ends quietly with
status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from octvideo.allocator import keep_freed_memory
from octvideo.errors import RunStopped, UsageError

# Modules that contribute subcommands, in the order ``octvideo --help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "octvideo.cli.data",
    "octvideo.cli.run",
    "octvideo.cli.sweep",
    "octvideo.cli.zoo",
    "octvideo.cli.inference",
    "octvideo.cli.models",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="octvideo",
        description="Video action recognition with 3D Octave Convolution.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    keep_freed_memory()  # no page faults for tensors freed and allocated again each step
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:  # stdout's reader went away (``| head``): nobody reads the rest
        _stdout_to_devnull()
        return 1
    except (UsageError, FileNotFoundError) as err:
        print(f"octvideo {args.command}: error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    except RunStopped as err:
        print(f"octvideo {args.command}: stopped: {err}", file=sys.stderr)  # noqa: T201
        return 1


def _stdout_to_devnull() -> None:
    """Points stdout at /dev/null, so that the interpreter's own flush at exit finds no closed
    pipe to complain about in a traceback (the recipe of Python's ``signal`` documentation)."""
    with contextlib.suppress(OSError, ValueError):  # a stdout without a file descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
