"""``octvideo data synth | check | prepare``: the data subcommands.

Each subcommand parses into a namespace and calls a plain function (``run_synth``, ``run_check``,
``run_prepare``), which the tests call in-process. User errors raise ``UsageError`` (an input
that is not there, ``InputPathError``) naming the thing and what to do.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from octvideo.argtypes import (
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    check_timeout,
    number,
    shown,
    shown_path,
    whole,
)
from octvideo.cli import print_last
from octvideo.data.limits import MAX_WORKERS
from octvideo.data.workers import WORKERS_PER_CORE
from octvideo.errors import InputPathError, UsageError, usage_errors


def _timeout(seconds: float) -> float:
    """``--timeout`` within the bounds that every command's timeout shares
    (``argtypes.check_timeout``)."""
    with usage_errors(ValueError):
        return check_timeout("--timeout", f"{seconds:g}", seconds)


def check_input_folder(option: str, folder: str, advice: str) -> None:
    """Refuses a folder to read from that is not one, or cannot be listed and read, in one line
    naming ``option`` and ending with ``advice``: before any work, so that no video is reported
    bad for a slip in the folder's name.

    Raises:
        InputPathError: ``folder`` does not exist (or is a broken link).
        UsageError: it is something other than a folder, or cannot be read.
    """
    if not os.path.exists(folder):
        raise InputPathError(f"{option} {shown(folder)} does not exist; {advice}")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {shown(folder)} is not a folder; {advice}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UsageError(f"{option} {shown(folder)} cannot be read (no permission); {advice}")


def run_synth(args: argparse.Namespace) -> int:
    """Write the synthetic action dataset."""
    from octvideo.data.synth import generate_synthetic

    with usage_errors(ValueError):
        out = generate_synthetic(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            size=args.size,
            frames=args.frames,
            seed=args.seed,
            progress=not args.quiet,
            preset=args.preset,
        )
    folder = shown_path(out)
    print_last(f"wrote {folder}/train.txt, {folder}/val.txt, {folder}/classes.txt")
    return 0


def default_bad_list(annotations: str) -> str:
    """Where ``data check`` lists the bad files by default: beside the annotations, named after
    them, as JSON lines. A list file's extension is dropped (``val.txt`` -> ``val.bad.jsonl``); a
    folder's name is kept whole (``sets/a.v2`` -> ``sets/a.v2.bad.jsonl``, so ``sets/a.v1`` does
    not share it)."""
    path = Path(annotations)
    if path.is_dir():
        if path.name in ("", ".", ".."):  # "." or "..": name the report after the real folder
            path = path.resolve()
        return f"{path}.bad.jsonl"
    return f"{path.with_suffix('')}.bad.jsonl"


def run_check(args: argparse.Namespace) -> int:
    """Decode every listed video; exit status 1 when some are bad."""
    from octvideo.data.check import check_videos

    timeout = _timeout(args.timeout)
    if args.root is not None:
        check_input_folder("--root", args.root, "give the folder the listed paths are relative to")
    if not os.path.lexists(args.annotations):  # a link, pipe or device: the reader names it
        raise InputPathError(
            f"annotations {shown_path(args.annotations)} do not exist: pass a path/label list, "
            "a Kinetics CSV or a class-folder root"
        )
    out = args.out or default_bad_list(args.annotations)
    # a malformed list, a bad --timeout or --out: refused before any decoding
    with usage_errors(ValueError):
        report = check_videos(
            args.annotations,
            root=args.root,
            fmt=args.format,
            out=out,
            default_out=not args.out,
            workers=args.workers,
            decoder=args.decoder,
            timeout=timeout,
            progress=not args.quiet,
        )
    print_last(
        f"{report.ok} of {report.total} videos decode, {len(report.bad)} bad "
        f"(listed in {shown_path(out)})"
        + (f", {report.missing_rows} CSV rows without a file" if report.missing_rows else "")
    )
    return 1 if report.bad else 0


def run_prepare(args: argparse.Namespace) -> int:
    """Re-encode a raw Kinetics tree; exit status 1 when some videos failed."""
    from octvideo.data.prepare import ERRORS_FILE, prepare_dataset, redone_note

    timeout = _timeout(args.timeout)
    counts = prepare_dataset(
        args.src,
        args.dst,
        short_side=args.short_side,
        workers=args.workers,
        csvs=args.csv,
        progress=not args.quiet,
        timeout=timeout,
    )
    again = redone_note(counts["redone"], args.short_side, counts["changed"])
    print_last(
        f"{counts['encoded']} encoded{again}, "
        f"{counts['skipped']} already done, {counts['failed']} failed"
        f" (see {shown_path(Path(args.dst) / ERRORS_FILE)})"
    )
    return 1 if counts["failed"] else 0


_TIMEOUTS = f"{MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}, a day"
# the bound of data check's and prepare's --workers (``check_worker_count``)
_WORKERS = f"1 to {WORKERS_PER_CORE} per CPU core, at most {MAX_WORKERS}"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands."""
    data = subparsers.add_parser("data", help="make, check and prepare video datasets")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    commands.required = True

    synth = commands.add_parser("synth", help="write the synthetic action dataset")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument(
        "--preset",
        default="demo",
        choices=("demo", "yardstick"),
        help="demo: 6 motion classes, the demo's set; yardstick: 12 classes under nuisances, "
        "calibrated for comparing models (octvideo sweep)",
    )
    synth.add_argument(
        "--num-train",
        type=whole,
        default=None,
        help="training clips (1 to 100000) (default: demo 360, yardstick 600)",
    )
    synth.add_argument(
        "--num-val",
        type=whole,
        default=None,
        help="validation clips (0 to 100000) (default: demo 120, yardstick 240)",
    )
    synth.add_argument(
        "--size", type=whole, default=64, help="frame side in pixels (even, 16 to 1024)"
    )
    synth.add_argument("--frames", type=whole, default=16, help="frames per clip (2 to 1024)")
    synth.add_argument("--seed", type=whole, default=0, help="random seed")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=run_synth)

    check = commands.add_parser("check", help="decode every listed video, list the bad ones")
    check.add_argument(
        "annotations",
        help="path/label list or one of paths alone, Kinetics CSV or class-folder root",
    )
    check.add_argument(
        "--root",
        default=None,
        help="folder the listed paths are relative to, not used for a class-folder root "
        "(default: the list's folder)",
    )
    check.add_argument(
        "--format",
        default="auto",
        choices=("auto", "lines", "kinetics_csv", "folders"),
        help="path/label lines, a Kinetics CSV or a class-folder root; auto tells them apart",
    )
    check.add_argument(
        "--out",
        default=None,
        help="bad-file report, JSON lines {path, error}; an existing file is replaced only if "
        "it is an earlier report (default: LIST.txt -> LIST.bad.jsonl, FOLDER -> "
        "FOLDER.bad.jsonl)",
    )
    check.add_argument("--workers", type=whole, default=2, help=f"decoding processes ({_WORKERS})")
    check.add_argument(
        "--decoder",
        default="auto",
        choices=("auto", "decord", "pyav"),
        help="auto: decord, then PyAV for a file decord cannot read",
    )
    check.add_argument(
        "--timeout", type=number, default="300", help=f"seconds per video ({_TIMEOUTS})"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=run_check)

    prepare = commands.add_parser("prepare", help="re-encode a raw Kinetics tree at short side S")
    prepare.add_argument("src", help="raw video tree")
    prepare.add_argument("dst", help="output tree")
    prepare.add_argument(
        "--short-side",
        type=whole,
        default=320,
        help="short side of the videos written, in pixels: 256 or 320 (16 to 1080)",
    )
    prepare.add_argument(
        "--workers", type=whole, default=2, help=f"encoding processes ({_WORKERS})"
    )
    prepare.add_argument(
        "--csv",
        action="append",
        default=None,
        help="official Kinetics CSV to write DST/<name>.txt from, repeatable (default: a "
        "DST/<split>.txt for each SRC/<split> folder)",
    )
    prepare.add_argument(
        "--timeout",
        type=number,
        default="3600",
        help=f"seconds one video may take to encode; past it the video fails ({_TIMEOUTS})",
    )
    prepare.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(func=run_prepare)


if __name__ == "__main__":
    from octvideo.cli import main

    sys.exit(main(["data", *sys.argv[1:]]))
