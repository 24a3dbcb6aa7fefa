"""Whether a file is whole, from its container's record: the frames an index lists past those
held, the size an AVI or Matroska file declares past its own, and what such a file misses.
Files cut short end to end (MP4, MKV, WebM, AVI) are in tests/data/test_decoding.py."""

from __future__ import annotations

import types

import pytest

from octvideo.data.truncation import (
    ShortOfLength,
    ShortOfSize,
    Truncation,
    recorded_length,
    short_of,
    size_past_end,
    truncation_of,
)


def test_an_index_listing_more_frames_than_held_is_a_truncation():
    assert truncation_of((60, 6.0), 40) == Truncation(listed=60, seconds=6.0, missing=20)
    assert str(truncation_of((60, 6.0), 40)) == (
        "the file's index lists 60 frames (6.0 s), 20 of them missing"
    )
    assert truncation_of((60, 6.0), 60) is None
    assert truncation_of(None, 40) is None


def _riff(*chunks: tuple[bytes, int, int]) -> bytes:
    """RIFF chunks, each (form, size declared, bytes held after the 12 of its header and form)."""
    return b"".join(
        b"RIFF" + size.to_bytes(4, "little") + form + bytes(held) for form, size, held in chunks
    )


@pytest.mark.parametrize(
    ("data", "short"),
    [
        (_riff((b"AVI ", 1000, 996)), None),  # whole: size + 8 is the file's size
        (_riff((b"AVI ", 1000, 996)) + b"junk", None),  # bytes after it are not the AVI's
        (_riff((b"AVI ", 1001, 997)), None),  # only the pad byte after an odd size missing
        (_riff((b"AVI ", 1000, 896)), (1008, 908)),  # cut
        # OpenDML: RIFF 'AVI ' then RIFF 'AVIX' chunks, whole and cut inside the second
        (_riff((b"AVI ", 1000, 996), (b"AVIX", 500, 496)), None),
        (_riff((b"AVI ", 1000, 996), (b"AVIX", 500, 296)), (1516, 1316)),
        (_riff((b"AVI ", 0xFFFFFFFF, 96)), None),  # never closed: its size unknown
    ],
)
def test_an_avi_is_short_of_the_size_its_riff_chunks_declare(tmp_path, data, short):
    path = tmp_path / "a.avi"
    path.write_bytes(data)
    assert size_past_end(str(path), {"avi"}) == short


def _ebml(element: int, size: bytes, held: int) -> bytes:
    return element.to_bytes(4, "big") + size + bytes(held)


_HEADER = _ebml(0x1A45DFA3, b"\x84", 4)  # the EBML header: a 1-byte size, 4 bytes


@pytest.mark.parametrize(
    ("size", "held", "short"),
    [
        (b"\x01" + (1000).to_bytes(7, "big"), 1000, None),  # FFmpeg's 8-byte size, whole
        (b"\x01" + (1000).to_bytes(7, "big"), 600, (1021, 621)),  # cut
        (b"\x43\xe8", 600, (1015, 615)),  # a 2-byte size: 1000
        (b"\x01" + b"\xff" * 7, 600, None),  # "unknown": written to a pipe
        (b"\xff", 600, None),  # "unknown" in one byte
    ],
)
def test_a_matroska_file_is_short_of_the_size_its_segment_declares(tmp_path, size, held, short):
    path = tmp_path / "a.webm"
    path.write_bytes(_HEADER + _ebml(0x18538067, size, held))
    assert size_past_end(str(path), {"matroska", "webm"}) == short
    assert size_past_end(str(path), {"mpegts"}) is None  # declares no size


def test_a_short_file_names_the_seconds_its_header_lists_or_else_the_bytes():
    assert short_of((1000, 900), 10.0, (9.5, 1 / 30)) == ShortOfLength(10.0, 0.5)
    assert str(short_of((1000, 900), 10.0, (9.5, 1 / 30))) == (
        "the file's header lists 10.0 s, 0.5 s of it missing"
    )
    # its frames all held (a cut in the index written last), no length, or frames without times
    for recorded, held in [(10.0, (9.99, 1 / 30)), (None, (9.5, 1 / 30)), (10.0, None)]:
        assert short_of((1000, 900), recorded, held) == ShortOfSize(1000, 100)
    assert str(ShortOfSize(203996, 10200)) == (
        "the file's header lists 203996 bytes, 10200 of them missing"
    )


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
