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
"""

from __future__ import annotations

import argparse
import importlib
import logging
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
        return int(args.func(args) or 0)
    except (UsageError, FileNotFoundError) as err:
        print(f"octvideo {args.command}: error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    except RunStopped as err:
        print(f"octvideo {args.command}: stopped: {err}", file=sys.stderr)  # noqa: T201
        return 1
