"""Whether a file is whole, from its container's record: the frames an index lists past those
held, the length a header records past the last frame's end, and the tolerance of a whole file.
Files cut short end to end (MP4, MKV, WebM, AVI) are in tests/data/test_decoding.py."""

from __future__ import annotations

import types

import pytest

from octvideo.data.truncation import (
    MISSING_FRAMES,
    MISSING_SECONDS,
    ShortOfLength,
    Truncation,
    recorded_length,
    short_of_length,
    truncation_of,
)


def test_an_index_listing_more_frames_than_held_is_a_truncation():
    assert truncation_of((60, 6.0), 40) == Truncation(listed=60, seconds=6.0, missing=20)
    assert str(truncation_of((60, 6.0), 40)) == (
        "the file's index lists 60 frames (6.0 s), 20 of them missing"
    )
    assert truncation_of((60, 6.0), 60) is None
    assert truncation_of(None, 40) is None


@pytest.mark.parametrize(
    ("end", "step", "short"),
    [
        (30.0 - MISSING_SECONDS, 0.04, False),  # a second missing: within a whole file's slack
        (30.0 - MISSING_SECONDS - 0.01, 0.04, True),
        (25.0, 5.0 / MISSING_FRAMES, False),  # 5 s missing, but no more than four frames
        (25.0, 0.04, True),
    ],
)
def test_a_recorded_length_is_cut_short_past_a_second_and_four_frames(end, step, short):
    found = short_of_length(30.0, (end, step))
    assert (found is not None) == short
    if short:
        assert found == ShortOfLength(30.0, pytest.approx(30.0 - end))


def test_frames_without_times_are_not_short_of_any_length():
    assert short_of_length(30.0, None) is None


def _container(name: str, streams: int = 2, duration: int | None = None) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        format=types.SimpleNamespace(name=name), streams=[None] * streams, duration=duration
    )


def _stream(metadata: dict[str, str] | None = None, frames: int = 0) -> types.SimpleNamespace:
    return types.SimpleNamespace(metadata=metadata or {}, frames=frames, time_base=0.04)


def test_the_length_a_header_records_is_read_where_a_cut_keeps_it():
    mkv = _container("matroska,webm")
    assert recorded_length(mkv, _stream({"DURATION": "00:01:30.500000000"})) == 90.5
    assert recorded_length(mkv, _stream()) is None  # Segment Duration may be the audio's
    alone = _container("matroska,webm", streams=1, duration=30_000_000)
    assert recorded_length(alone, _stream()) == 30.0
    assert recorded_length(_container("avi"), _stream(frames=240)) == pytest.approx(9.6)
    assert recorded_length(_container("mpegts"), _stream(frames=240)) is None
