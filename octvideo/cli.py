"""Command-line entry point: a thin dispatcher over subcommands.

Each subcommand lives in its own module, which exposes ``register(subparsers)``; ``register`` adds
its parser and sets ``func`` to a plain function taking the parsed namespace. Tests call those
functions in-process, and ``main`` is only argument parsing plus error reporting. A command
whose stdout's reader goes away (``octvideo predict ... | head -1``) ends quietly with status 1.
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

# Modules that contribute subcommands, in the order ``octvideo --help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "octvideo.data.cli",
    "octvideo.engine.cli",
    "octvideo.engine.sweep_cli",
    "octvideo.engine.zoo_cli",
    "octvideo.inference.cli",
    "octvideo.models.cli",
)


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class RunStopped(Exception):
    """A run that stopped on a fault outside the code (a full disk, a non-finite loss, a
    data-loader worker that died): one line without a traceback, saying what was kept."""


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (``--workers``, ``--topk``, ``--frames``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


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


if __name__ == "__main__":
    sys.exit(main())
