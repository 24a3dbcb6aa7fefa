"""``tools/bench.py``: one entry point for the benchmarks, a subcommand each.

Each benchmark module exposes ``add_arguments(parser)``, which adds its options and sets ``run``
(takes the parsed namespace, returns the exit status) and, where some option combinations cannot
be measured, ``check`` (refuses them, raising ``UsageError``); the first paragraph of its
docstring is the subcommand's description. Only the module of the subcommand being run is
imported: ``models`` needs torch and octvideo.models, not the data and inference stack that
``predict`` and ``data-loader`` import (a GPU machine may lack their decoders). ``main`` is
parsing plus error reporting: a bad option or value is one line, ``tools/bench.py SUBCOMMAND:
error: ...``, and exit status 2, as the octvideo commands do; a stdout or stderr that is closed,
goes away or is full is met as the octvideo commands meet it (``main``), with their helpers.

    python tools/bench.py --help
    python tools/bench.py models --model i3d_r50 --alpha 0.5 --threads 2

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the cost savings these
benchmarks measure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from octvideo.bench.record import check_append, command_line
from octvideo.errors import RunStopped, UsageError
from octvideo.models import list_models, unknown_model_hint
from octvideo.streams import open_closed_streams, progress_streams, stream_stopped, to_devnull

PROG = "tools/bench.py"

# Subcommand: (module, one-line help), in the order ``--help`` lists them.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "models": (
        "octvideo.bench.models",
        "an octave model against its alpha-0 twin: time, memory, FLOPs",
    ),
    "layouts": (
        "octvideo.bench.layouts",
        "the same weights in NCDHW and channels-last memory, interleaved",
    ),
    "conv-views": (
        "octvideo.bench.conv_views",
        "one convolution as 3D or on a 2D view of channels-last memory",
    ),
    "data-loader": (
        "octvideo.bench.data_loader",
        "training clips per second of the data loader, decord vs PyAV, 0/1/2 workers",
    ),
    "predict": (
        "octvideo.bench.predict",
        "octvideo predict over a folder of videos against the model's own time",
    ),
    "long-video": (
        "octvideo.bench.long_video",
        "join one clip of each synthetic class into one long video (make demo's input)",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose refusal is one line on stderr (``PROG SUB: error: ...``), exit
    status 2; ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def model_name(text: str) -> str:
    """argparse type: a registered model name (``octvideo models`` lists them)."""
    known = list_models()
    if text not in known:
        hint = unknown_model_hint(text) or " (octvideo models lists them)"
        raise argparse.ArgumentTypeError(f"unknown model {text!r}{hint}")
    return text


def build_parser(subcommand: str | None = None) -> OneLineParser:
    """The parser of every subcommand's name and help, with the options of ``subcommand`` (of
    every subcommand where None, importing each benchmark module)."""
    parser = OneLineParser(
        prog=PROG,
        description="The benchmarks of octvideo, a subcommand each: each times what it "
        "compares in one run and prints a Markdown table (long-video writes the demo's long "
        "video).",
    )
    subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    subparsers.required = True
    for name, (module_name, help_line) in _SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_line)
        if subcommand is None or name == subcommand:
            module = importlib.import_module(module_name)
            sub.description = (module.__doc__ or "").split("\n\n")[0].split(": ", 1)[-1]
            module.add_arguments(sub)
    return parser


def subcommands() -> list[str]:
    """The subcommand names, in the order ``--help`` lists them."""
    return list(_SUBCOMMANDS)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parses ``argv`` (the subcommand first) and checks it; a refusal exits with status 2 and
    one line on stderr."""
    argv = list(argv)
    # the subcommand is the first word (the entry point's only option is --help): its module
    # alone is imported; any other first word is refused by the parser before any import
    args = build_parser(argv[0] if argv else "").parse_args(argv)
    check = getattr(args, "check", None)  # a subcommand without one takes any combination
    try:
        if check is not None:
            check(args)
        if getattr(args, "append", None) is not None:
            check_append(args.append)
    except UsageError as err:
        raise SystemExit(_say(args.subcommand, "error", err, 2)) from None
    return args


def _say(subcommand: str, kind: str, err: Exception, status: int) -> int:
    """Prints why a run was refused (``error``) or stopped (``stopped``); returns ``status``."""
    print(f"{PROG} {subcommand}: {kind}: {err}", file=sys.stderr)  # noqa: T201
    return status


def _writes_files(args: argparse.Namespace) -> bool:
    """Whether the subcommand's output is a file (long-video's ``--out``, a table's
    ``--append``), what it prints only a view of it; else its output is the table it prints."""
    return args.subcommand == "long-video" or getattr(args, "append", None) is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark ``argv`` names; its streams as the octvideo commands have them
    (``octvideo.cli``): one started with stdout or stderr closed (``>&-``) prints to /dev/null.
    Where its output is a file (``_writes_files``), what it prints is a view of the work: a
    stdout or stderr that goes away (``| head -1``, ``| true``) or is full (``> /dev/full``)
    stops the view, not the work, which writes its file whole and ends with its own status; a
    full stdout is named at the end in one line on stderr (``progress_streams``). Where its
    output is the table, a reader gone ends the benchmark there, quietly, status 1, and a full
    stdout or stderr in one line, status 1 (``stream_stopped``)."""
    open_closed_streams()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.command_line = command_line(argv)
    prog = f"{PROG} {args.subcommand}"
    try:
        with progress_streams(prog) if _writes_files(args) else contextlib.nullcontext():
            code = int(args.run(args) or 0)
            sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:  # the reader of its table went away: it has all it wants
        to_devnull(sys.stdout)
        return 1
    except UsageError as err:
        return _say(args.subcommand, "error", err, 2)
    except RunStopped as err:
        return _say(args.subcommand, "stopped", err, 1)
    except OSError as err:
        stopped = stream_stopped(prog, err)
        if stopped is None:  # a file's error, or another of the stream's
            raise
        return stopped
