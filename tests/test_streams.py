"""stdout and stderr as views of a command's progress: a full one stops the view where the
command is named, and stops the command where it is not (``tools/bench.py``)."""

from __future__ import annotations

import sys

import pytest

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


def test_without_a_command_name_a_full_stream_stops_the_command(monkeypatch):
    # tools/bench.py: its caller stops there (``stream_stopped``); a closed pipe stops the view
    monkeypatch.setattr("sys.stdout", FullStream())
    with pytest.raises(OSError, match="No space left"), progress_streams():
        print("a line of the view")  # noqa: T201
