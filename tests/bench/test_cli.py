"""The benchmarks' parser and dispatcher (octvideo.bench.cli): subcommands in order, one-line
refusals with exit status 2, a stop with exit status 1, and the command line a table is filed
under."""

from __future__ import annotations

import argparse
import errno
import os
import sys

import pytest

import octvideo.bench.cli as cli
from octvideo.errors import RunStopped, UsageError


def test_subcommands_in_the_order_help_lists_them() -> None:
    assert cli.subcommands() == [
        "models",
        "layouts",
        "conv-views",
        "data-loader",
        "predict",
        "long-video",
    ]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        ([], "tools/bench.py: error: the following arguments are required: SUBCOMMAND"),
        (["models", "--repeats", "0"], "tools/bench.py models: error: argument --repeats: "),
        (["layouts", "--model", "i3d_r05"], "tools/bench.py layouts: error: argument --model: "),
        (["predict", "--rounds", "0"], "tools/bench.py predict: error: argument --rounds: "),
        (["predict", "--clips", "10001"], "tools/bench.py predict: error: argument --clips: "),
        (["models", "--frames", "257"], "tools/bench.py models: error: argument --frames: "),
        (["layouts", "--size", "1025"], "tools/bench.py layouts: error: argument --size: "),
        (["data-loader", "--batches", "1001"], "tools/bench.py data-loader: error: argument "),
        (["conv-views", "--repeats", "1001"], "tools/bench.py conv-views: error: argument "),
    ],
)
def test_a_refusal_is_one_line_and_exit_status_2(argv, line, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(line)


def test_unknown_model_names_the_close_ones() -> None:
    assert cli.model_name("i3d_r50") == "i3d_r50"
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean i3d_r50"):
        cli.model_name("i3d_r05")


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (UsageError("no such input"), 2, "tools/bench.py conv-views: error: no such input"),
        (RunStopped("disk full"), 1, "tools/bench.py conv-views: stopped: disk full"),
    ],
)
def test_what_a_run_raises_is_one_line(monkeypatch, capsys, error, status, line) -> None:
    seen = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args.command_line)
        raise error

    monkeypatch.setattr("octvideo.bench.conv_views.run", run)
    assert cli.main(["conv-views", "--repeats", "2"]) == status
    assert capsys.readouterr().err == line + "\n"
    # the line a table is filed under runs the same benchmark again
    assert seen == ["python tools/bench.py conv-views --repeats 2"]


@pytest.mark.parametrize(
    ("error", "status", "err"),
    [
        # the reader of its table went away (``| head -1``): it has all it wants, as ``head`` ends
        (BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)), 1, ""),
        (
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),  # ``> /dev/full``
            1,
            "tools/bench.py conv-views: stopped: cannot write to stdout or stderr (No space left "
            "on device); the files written are kept\n",
        ),
    ],
)
def test_a_stdout_that_fails_ends_every_subcommand_as_octvideos_commands(
    monkeypatch, capsys, error, status, err
) -> None:
    # it was a traceback: main caught only UsageError and RunStopped
    def run(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr("octvideo.bench.conv_views.run", run)
    assert cli.main(["conv-views", "--repeats", "2"]) == status
    assert capsys.readouterr().err == err


def test_an_error_of_a_file_is_not_taken_for_a_stream_one(monkeypatch) -> None:
    def run(args: argparse.Namespace) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "BENCHMARKS.md")

    monkeypatch.setattr("octvideo.bench.conv_views.run", run)
    with pytest.raises(OSError, match="BENCHMARKS.md"):
        cli.main(["conv-views", "--repeats", "2"])


def test_a_table_appended_to_a_record_is_kept_when_stdout_goes_away(
    tmp_path, monkeypatch, capsys
) -> None:
    # --append makes the record the output: a reader of stdout that goes away stops the view
    record = tmp_path / "BENCHMARKS.md"

    class GoneReader:
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

        def flush(self) -> None:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def run(args: argparse.Namespace) -> int:
        print("| table |")  # noqa: T201
        record.write_text("| table |\n")  # as ``append_table`` after the print
        return 0

    monkeypatch.setattr("octvideo.bench.layouts.run", run)
    monkeypatch.setattr("sys.stdout", GoneReader())
    assert cli.main(["layouts", "--append", str(record)]) == 0
    assert record.read_text() == "| table |\n"


class FullStream:
    """A stream on a full disk (``> /dev/full``): each write fails, and so a flush, which
    finds nothing held to write, does not (as one before a worker process starts)."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass


def run_into_a_full_stdout(monkeypatch, capsys, argv: list[str]) -> None:
    """Runs ``tools/bench.py ARGV > /dev/full`` in-process, ARGV a subcommand whose output is a
    file: the run goes on to its own status, 0, and its last line on stderr names the lines
    dropped."""
    monkeypatch.setattr("sys.stdout", FullStream())
    assert cli.main(argv) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tools/bench.py {argv[0]}: the lines to stdout from the first that could not be written "
        "on were dropped (No space left on device)"
    )


@pytest.mark.parametrize("status", [0, 3])
def test_a_full_stdout_stops_the_view_of_a_table_appended_not_the_run(
    tmp_path, monkeypatch, capsys, status
) -> None:
    # ``layouts --append F > /dev/full``: it stopped at its first print, status 1, before the
    # lines after it ran; now the run goes on to its end and its own status, and one line says
    # what was dropped
    record = tmp_path / "BENCHMARKS.md"

    def run(args: argparse.Namespace) -> int:
        print("| table |")  # noqa: T201
        record.write_text("| table |\n")
        print("a note after the record")  # noqa: T201
        return status

    monkeypatch.setattr("octvideo.bench.layouts.run", run)
    monkeypatch.setattr("sys.stdout", FullStream())
    assert cli.main(["layouts", "--append", str(record)]) == status
    assert record.read_text() == "| table |\n"
    assert capsys.readouterr().err == (
        "tools/bench.py layouts: the lines to stdout from the first that could not be written on "
        "were dropped (No space left on device)\n"
    )


def test_a_full_stderr_stops_only_its_view_of_a_file_output(tmp_path, monkeypatch, capsys):
    # ``long-video ... 2> /dev/full``: a warning on stderr stopped the run before its video
    out = tmp_path / "long.mp4"

    def run(args: argparse.Namespace) -> int:
        print("a warning", file=sys.stderr)  # noqa: T201
        out.write_bytes(b"video")
        print(f"wrote {out}")  # noqa: T201
        return 0

    monkeypatch.setattr("octvideo.bench.long_video.run", run)
    monkeypatch.setattr("sys.stderr", FullStream())
    assert cli.main(["long-video", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_bytes() == b"video"
    assert capsys.readouterr().out == f"wrote {out}\n"


def test_a_full_stdout_still_stops_a_table_that_is_the_output(monkeypatch, capsys) -> None:
    # conv-views prints its table and writes no file: the table is lost, so the run stops there
    ran = []

    def run(args: argparse.Namespace) -> int:
        print("| table |", flush=True)  # noqa: T201
        ran.append("after the table")
        return 0

    monkeypatch.setattr("octvideo.bench.conv_views.run", run)
    monkeypatch.setattr("sys.stdout", FullStream())
    assert cli.main(["conv-views", "--repeats", "2"]) == 1
    assert ran == []
    assert capsys.readouterr().err == (
        "tools/bench.py conv-views: stopped: cannot write to stdout or stderr (No space left on "
        "device); the files written are kept\n"
    )
