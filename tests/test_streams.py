"""stdout and stderr as views of a command's progress: a full one stops the view, not the
command."""

from __future__ import annotations

import io
import sys

from octvideo.streams import progress_streams
from tests.cli.test_main import FullStream


def test_a_full_stderr_stops_its_view_and_leaves_nothing_to_say(monkeypatch, capsys):
    # ``2> /dev/full`` (and ``> /dev/full 2>&1``): the view on both stops, the work goes on, and
    # the line naming the dropped lines has nowhere to go
    full = FullStream()
    monkeypatch.setattr("sys.stdout", full)
    monkeypatch.setattr("sys.stderr", full)
    with progress_streams("octvideo data synth"):
        print("a line of the view")  # noqa: T201
        print("another", file=sys.stderr)  # noqa: T201
    assert (sys.stdout, sys.stderr) == (full, full)
    assert not [text for text in full.tried if "dropped" in text]


def test_a_full_stdout_stops_its_view_and_says_once_what_was_dropped(monkeypatch):
    # ``> /dev/full``: the command goes on past the first line that could not be written, and
    # stderr, which can be written, names the program and the stream's error once at the end
    full, err = FullStream(), io.StringIO()
    monkeypatch.setattr("sys.stdout", full)
    monkeypatch.setattr("sys.stderr", err)
    done = []
    with progress_streams("tools/bench.py long-video"):
        for line in ("one", "two"):
            print(line)  # noqa: T201
            done.append(line)
    assert done == ["one", "two"] and (sys.stdout, sys.stderr) == (full, err)
    assert err.getvalue() == (
        "tools/bench.py long-video: the lines to stdout from the first that could not be "
        "written on were dropped (No space left on device)\n"
    )
