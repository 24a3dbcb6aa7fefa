"""Where a benchmark's table goes: appended to a Markdown file under the command that made it, the
date and the machine, so that every figure in BENCHMARKS.md can be traced and run again.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the savings whose
measurements these records keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from octvideo.errors import UsageError
from octvideo.measure.machine import machine
from octvideo.paths import check_folder, refuse_special_file

ENTRY_POINT = "python tools/bench.py"
MAX_RECORD_BYTES = 2**24  # a Markdown record such as BENCHMARKS.md (16 kB) is far below it


def command_line(argv: Sequence[str]) -> str:
    """The shell line that runs the entry point with ``argv`` (its subcommand first)."""
    return " ".join([ENTRY_POINT, *argv])


def check_append(path: Path) -> None:
    """Refuses an ``--append`` file that a table would spoil or that cannot take one, before the
    benchmark runs: a symbolic link, a folder or pipe, a file that is not UTF-8 text of at most
    ``MAX_RECORD_BYTES`` (a checkpoint, a video), or a path where no file can be written.

    Raises:
        UsageError: naming ``--append``, the path and why.
    """
    refuse_special_file(path, "--append")
    if not path.exists():
        check_folder("--append", path.parent, path)
        return
    if path.is_dir():  # pipes and devices were refused above (a pipe read waits for a writer)
        raise UsageError(f"--append {path} is a folder; give a Markdown file")
    try:
        with path.open("rb") as f:
            head = f.read(MAX_RECORD_BYTES + 1)
    except OSError as err:
        raise UsageError(f"--append {path} cannot be read ({err.strerror or err})") from err
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if len(head) > MAX_RECORD_BYTES or "\0" in text:
        raise UsageError(
            f"--append {path} is not a Markdown record (UTF-8 text of at most "
            f"{MAX_RECORD_BYTES >> 20} MiB); a table appended would spoil it"
        )


def append_table(path: Path, command: str, table: str) -> None:
    """Appends ``table`` to ``path`` under ``command`` (``command_line``), the date and the
    machine."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\n`{command}`\n\n{stamp}, {machine()}\n\n{table}\n")


def file_and_print(args: argparse.Namespace, table: str, *notes: str) -> None:
    """Appends ``table`` to the ``--append`` file where one is given (``append_table``), then
    prints it and ``notes``, one after another: the record first, so that a stdout that fails
    (``| true``, ``> /dev/full``) loses only the lines printed, never the record."""
    if args.append:
        append_table(args.append, args.command_line, table)
    print(table, *notes, sep="\n")  # noqa: T201
