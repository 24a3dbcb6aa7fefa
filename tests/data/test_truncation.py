"""Whether a file is whole, from its container's record: the frames an index lists past those
held, the size an AVI, Matroska, fragmented MP4, MPEG-TS/PS or FLV file declares past its own,
and what such a file misses. Files cut short end to end (MP4, MKV, WebM, AVI) are in
tests/data/test_decoding.py."""

from __future__ import annotations

import types
from pathlib import Path

import av
import numpy as np
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
from tests.data.media_helpers import NUM_FRAMES, make_frames


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
        "the file's container runs to 203996 bytes, 10200 of them missing"
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


def _write(path: Path, fmt: str, codec: str, audio: str | None, options: dict[str, str]) -> bytes:
    """A whole file of ``NUM_FRAMES`` frames (a keyframe every 6: a fragment each, where
    fragmented), with a second of noise in ``audio`` where given, from FFmpeg's ``fmt`` muxer."""
    with av.open(str(path), "w", format=fmt, options=options) as container:
        video = container.add_stream(codec, rate=24 if codec == "mpeg1video" else 12)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.codec_context.gop_size = 6
        streams = [video]
        if audio is not None:
            streams.append(container.add_stream(audio, rate=48000))
            noise = np.random.default_rng(0).uniform(-0.1, 0.1, (1, 48000))
            frame = av.AudioFrame.from_ndarray(noise.astype(np.float32), format="flt")
            frame.sample_rate, frame.pts = 48000, 0
            container.mux(streams[1].encode(frame))
        for i, array in enumerate(make_frames(NUM_FRAMES, 64, 96)):
            array[8:40, 8:40] = np.random.default_rng(i).integers(0, 255, (32, 32, 3))
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        for stream in streams:
            container.mux(stream.encode())
    return path.read_bytes()


def _formats(path: Path) -> set[str]:
    with av.open(str(path)) as container:
        return set(container.format.name.split(","))


_FRAGMENTED = "frag_keyframe+empty_moov"
_KINDS = {
    "fMP4": ("mp4", "libx264", None, {"movflags": _FRAGMENTED}),
    "fMP4, base is moof": (
        "mp4",
        "libx264",
        "aac",
        {"movflags": _FRAGMENTED + "+default_base_moof"},
    ),
    "fMP4, no base": ("mp4", "mpeg4", "aac", {"movflags": _FRAGMENTED + "+omit_tfhd_offset"}),
    "fMP4, a moof each": ("mp4", "libx264", "aac", {"movflags": _FRAGMENTED + "+separate_moof"}),
    "fMP4, sidx (DASH)": ("mp4", "libx264", "aac", {"movflags": _FRAGMENTED + "+global_sidx"}),
    "fMP4, HEVC, a frame each": ("mp4", "hevc", None, {"movflags": "frag_every_frame+empty_moov"}),
    "MPEG-TS": ("mpegts", "libx264", "aac", {}),
    "M2TS": ("mpegts", "mpeg2video", "ac3", {"mpegts_m2ts_mode": "1"}),
    "MPEG-PS": ("mpeg", "mpeg2video", "mp2", {}),
    "VOB": ("vob", "mpeg2video", "ac3", {}),
    "VCD (zero-padded packs)": ("vcd", "mpeg1video", "mp2", {}),
    "FLV": ("flv", "libx264", "aac", {}),
    "FLV, Sorenson": ("flv", "flv", "libmp3lame", {"flvflags": "no_duration_filesize"}),
}


@pytest.mark.parametrize("kind", list(_KINDS))
def test_a_cut_file_is_short_of_where_its_packets_end_and_a_whole_one_is_not(tmp_path, kind):
    whole = _write(tmp_path / "whole", *_KINDS[kind])
    formats = _formats(tmp_path / "whole")
    assert size_past_end(str(tmp_path / "whole"), formats) is None

    def cut(at: int) -> tuple[int, int] | None:
        (tmp_path / "cut").write_bytes(whole[:at])
        return size_past_end(str(tmp_path / "cut"), formats)

    cuts = range(len(whole) // 4, len(whole), len(whole) // 40)  # past the header
    shorts = [short for short in map(cut, cuts) if short is not None]
    assert len(shorts) >= 0.9 * len(cuts)
    for declared, size in shorts:
        assert size < declared <= len(whole)
        # where a cut file declares it ends lies a packet's end (a TS packet, a PS pack, an FLV
        # tag, an MP4 box): cut there, it is whole as far as can be told, or declares more (the
        # next MP4 box; where the cut lay in a header, its least length)
        again = cut(declared)
        assert again is None or again[0] > declared


@pytest.mark.parametrize(("kind", "packet"), [("MPEG-TS", 188), ("M2TS", 192)])
def test_a_ts_file_cut_inside_a_packet_is_short_and_one_cut_between_two_is_not(
    tmp_path, kind, packet
):
    whole = _write(tmp_path / "whole.ts", *_KINDS[kind])
    assert len(whole) % packet == 0
    for packets in (20, len(whole) // packet // 2, len(whole) // packet - 1):
        for held in (0, 5, packet // 2, packet - 1):
            (tmp_path / "cut.ts").write_bytes(whole[: packets * packet + held])
            short = size_past_end(str(tmp_path / "cut.ts"), {"mpegts"})
            # a cut between two packets leaves a whole file of fewer: nothing tells them apart
            assert short == (
                None if held == 0 else ((packets + 1) * packet, packets * packet + held)
            )


@pytest.mark.parametrize(
    ("kind", "indexed"),
    [("fMP4", False), ("fMP4, base is moof", False), ("fMP4, no base", False)]
    + [("fMP4, a moof each", False), ("fMP4, sidx (DASH)", True)],
)
def test_a_fragmented_mp4_cut_after_a_moof_is_short_and_between_two_where_a_sidx_says(
    tmp_path, kind, indexed
):
    whole = _write(tmp_path / "whole.mp4", *_KINDS[kind])
    moof = whole.rfind(b"moof") - 4  # the last fragment's
    runs = moof + int.from_bytes(whole[moof : moof + 4], "big")  # its data (mdat) after it
    for at, short in [(moof, indexed), (moof + 4, True), (runs, True), (runs + 3, True)]:
        (tmp_path / "cut.mp4").write_bytes(whole[:at])
        assert (size_past_end(str(tmp_path / "cut.mp4"), {"mov", "mp4"}) is not None) == short


def test_an_mp4_that_is_not_fragmented_is_left_to_its_index(tmp_path):
    whole = _write(tmp_path / "whole.mp4", "mp4", "libx264", "aac", {"movflags": "faststart"})
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) * 3 // 4])
    assert size_past_end(str(tmp_path / "cut.mp4"), {"mov", "mp4"}) is None  # index_past_end's


def _flv_tag(data: bytes, previous: int | None = None) -> bytes:
    """A video tag of ``data``, then its PreviousTagSize (``previous`` where given)."""
    size = 11 + len(data) if previous is None else previous
    return b"\x09" + len(data).to_bytes(3, "big") + bytes(7) + data + size.to_bytes(4, "big")


_FLV_HEADER = b"FLV\x01\x01" + (9).to_bytes(4, "big") + bytes(4)  # then PreviousTagSize 0


@pytest.mark.parametrize(
    ("data", "short"),
    [
        (_FLV_HEADER + _flv_tag(bytes(100)) * 3, None),
        (_FLV_HEADER + _flv_tag(bytes(100)) * 3 + b"\x00", None),  # bytes that are no tag
        (_FLV_HEADER + _flv_tag(bytes(100)) * 3 + b"\x09\x00", (373, 360)),  # a tag's 2 bytes
        (_FLV_HEADER + (_flv_tag(bytes(100)) * 3)[:-4], None),  # its last PreviousTagSize left out
        (_FLV_HEADER + (_flv_tag(bytes(100)) * 3)[:-2], (358, 356)),  # ... or cut
        (_FLV_HEADER + (_flv_tag(bytes(100)) * 3)[:-50], (358, 308)),  # a tag's data cut
        # a writer's PreviousTagSize of the data alone: the tags walked, whole
        (_FLV_HEADER + _flv_tag(bytes(100), previous=100) * 3, None),
        (_FLV_HEADER + (_flv_tag(bytes(100), previous=100) * 3)[:-50], (358, 308)),
    ],
)
def test_an_flv_file_is_short_of_where_its_last_tag_declares_it_ends(tmp_path, data, short):
    path = tmp_path / "a.flv"
    path.write_bytes(data)
    assert size_past_end(str(path), {"flv"}) == short


def test_bytes_after_the_last_ts_packet_are_not_a_cut_packet(tmp_path):
    whole = _write(tmp_path / "whole.ts", *_KINDS["MPEG-TS"])
    (tmp_path / "padded.ts").write_bytes(whole + bytes(100))
    assert size_past_end(str(tmp_path / "padded.ts"), {"mpegts"}) is None
