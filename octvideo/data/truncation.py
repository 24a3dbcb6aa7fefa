"""Whether a video file is whole: what its container says it held, against what it still holds.

A partial download (yt-dlp's ``.part``, a copy stopped half-way) opens, and both decoders read
the frames before the cut as a whole shorter video; only the container's own record says how much
there was. Two kinds of record survive a cut at the end of the file:

- an MP4 written with its index first (``faststart``, as the web serves it): entries of the index
  whose bytes lie past the file's end (``index_past_end``), read as a ``Truncation`` of frames
  (``truncation_of``). A header's frame count is no proof: an MP4 trimmed at an intra frame lists
  the frames its edit list cuts;
- a container whose index is written last (Matroska, WebM, AVI): the size it declares, written
  when the file is closed (an AVI's RIFF chunk sizes, a Matroska Segment's size), past the file's
  own (``size_past_end``). Exact: a cut always breaks it, a whole file always keeps it, so there
  is no tolerance to set and nothing that no packet shows (an AVI's null frames) can pass for a
  cut. A file short of it is named by the length its header records (``recorded_length``:
  Matroska's track tag DURATION, or Segment Duration for a file of one stream; AVI's stream
  header frame count) past the end of the last packet it holds (``held_end``), a
  ``ShortOfLength`` in seconds, or else by a ``ShortOfSize`` in bytes (``short_of``).

Where nothing is declared (a Matroska written to a pipe: its size is "unknown"; MPEG-TS, MPEG-PS)
nothing is said. ``octvideo.data.decoding`` reads these facts in its header look, keeps them on
its readers (``truncation``, ``Video.check_whole``) and adds them to its decode errors. Each
function reads a container PyAV has opened, or a few bytes of the file's start (and its size).
"""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO, NamedTuple

from octvideo.data.open_files import out_of_open_files


class Truncation(NamedTuple):
    """Frames the container's index lists that the file does not hold: a partial download, an
    MP4 whose index, written first, lists frames cut off its end (``index_past_end``)."""

    listed: int  # frames the index lists
    seconds: float  # the stream's length, as the index gives it
    missing: int  # of ``listed``, the frames past those the decoder finds

    def __str__(self) -> str:
        return (
            f"the file's index lists {self.listed} frames ({self.seconds:.1f} s), {self.missing} "
            f"of them missing"
        )


def truncation_of(listed: tuple[int, float] | None, held: int) -> Truncation | None:
    """The ``Truncation`` of a file whose index lists ``listed`` (frames, seconds) and whose
    decoder finds ``held`` frames; None when the index lists no more than that."""
    if listed is None or listed[0] <= held:
        return None
    return Truncation(listed[0], listed[1], listed[0] - held)


class ShortOfLength(NamedTuple):
    """Seconds the container's header records for the video past the end of the frames the file
    holds, in a file shorter than its container declares (``size_past_end``): a partial download
    of a container whose index is written last (Matroska, WebM, AVI: ``recorded_length``)."""

    seconds: float  # the video's length, as the header records it
    missing: float  # of ``seconds``, those past the end of the last frame the file holds

    def __str__(self) -> str:
        return f"the file's header lists {self.seconds:.1f} s, {self.missing:.1f} s of it missing"


class ShortOfSize(NamedTuple):
    """Bytes the container declares past the end of the file (``size_past_end``), where it
    records no length, or the frames held reach it (a cut inside the index written last)."""

    declared: int  # the file's size, as its container declares it
    missing: int  # of ``declared``, those past the file's end

    def __str__(self) -> str:
        return f"the file's header lists {self.declared} bytes, {self.missing} of them missing"


def short_of(
    size: tuple[int, int], recorded: float | None, held: tuple[float, float] | None
) -> ShortOfLength | ShortOfSize:
    """What a file shorter than its container declares (``size``: ``size_past_end``) misses: the
    seconds of its ``recorded`` length past the end of its frames (``held``: ``held_end``) where
    they are a tenth of a second or more, else the bytes."""
    if recorded is not None and held is not None and round(recorded - held[0], 1) > 0:
        return ShortOfLength(recorded, recorded - held[0])
    return ShortOfSize(size[0], size[0] - size[1])


# A declared size of all ones: "unknown", a file written to a pipe or never closed (RIFF's
# placeholder is 0xFFFFFFFF; an EBML size of 1 to 8 bytes has all its value bits set)
_RIFF_UNKNOWN = (0, 0xFFFFFFFF)


def _riff_end(file: BinaryIO, size: int) -> int | None:
    """Where the RIFF chunks of an AVI declare it ends: an OpenDML file over 1 GB chains a
    RIFF 'AVI ' chunk and RIFF 'AVIX' ones, each 8 bytes of header and its size, padded to even.
    The end of the first chunk the file does not hold whole, else of the last; None where a
    size is unknown."""
    end = 0
    while end + 8 <= size:
        file.seek(end)
        head = file.read(8)
        if head[:4] != b"RIFF":  # bytes after the last chunk: not the container's
            break
        length = int.from_bytes(head[4:], "little")
        if length in _RIFF_UNKNOWN:
            return None
        if end + 8 + length > size:
            return end + 8 + length
        end = min(end + 8 + length + (length & 1), size)  # a missing pad byte loses nothing
    return end


def _vint(file: BinaryIO, marker: bool) -> tuple[int, int] | None:
    """An EBML variable-size integer at the file's position: (value, bytes); ``marker`` keeps
    its length marker (an element ID); a size of all ones is -1 ("unknown"); None at the end."""
    first = file.read(1)
    if not first or first[0] == 0:
        return None
    length = 9 - first[0].bit_length()
    rest = file.read(length - 1)
    if len(rest) < length - 1:
        return None
    value = int.from_bytes(first + rest, "big")
    if marker:
        return value, length
    ones = (1 << (7 * length)) - 1
    return (-1 if value & ones == ones else value & ones), length


_EBML, _SEGMENT = 0x1A45DFA3, 0x18538067


def _segment_end(file: BinaryIO) -> int | None:
    """Where the Segment of a Matroska file (WebM's too) declares it ends: its offset past its
    ID and size, plus its size, written when the file is closed; None where it is "unknown" (a
    file written to a pipe, a live recording) or the file is not EBML."""
    file.seek(0)
    element = _vint(file, marker=True)
    if element is None or element[0] != _EBML:
        return None
    while element is not None:  # the EBML header, then the Segment (a Void may lie between)
        size = _vint(file, marker=False)
        if size is None or size[0] < 0:
            return None
        if element[0] == _SEGMENT:
            return file.tell() + size[0]
        file.seek(size[0], os.SEEK_CUR)
        element = _vint(file, marker=True)
    return None


def size_past_end(path: str, formats: set[str]) -> tuple[int, int] | None:
    """The size an AVI's RIFF chunks, or a Matroska (WebM) file's Segment, declare, and the
    size of ``path``, when the file is shorter than declared; None when it holds all of it (bytes
    after the declared end are not the container's), the size is unknown, or the container (of
    FFmpeg's ``formats`` names) declares none.

    A cut at the end always breaks this, and a whole file always keeps it: the muxer writes the
    size when the file is closed. Exact, with no tolerance, it sees what no packet shows: an
    AVI's null frames (zero-size chunks its frame count holds, which PyAV does not demux)."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        if "avi" in formats:
            end = _riff_end(file, size)
        elif "matroska" in formats:  # FFmpeg's "matroska,webm" reads both
            end = _segment_end(file)
        else:
            return None
    return None if end is None or end <= size else (end, size)


def held_end(container: Any, stream: Any) -> tuple[float, float] | None:
    """When the frames of the video ``stream`` of ``container`` end (the latest packet's time
    plus its duration, one frame where it has none; from time 0, as a header's length counts),
    and one frame's seconds; None when its packets carry no times. Packets only: nothing is
    decoded."""
    rate, time_base = stream.average_rate or stream.guessed_rate, stream.time_base
    step = 1 / float(rate) if rate else 0.0
    end = None
    try:
        for packet in container.demux(stream):
            time = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or time is None or time_base is None:
                continue
            length = float(packet.duration * time_base) if packet.duration else step
            end = max(end or 0.0, float(time * time_base) + length)
    except Exception as err:  # a cut packet at the end: the ones before it count
        if out_of_open_files(err):
            raise
    return None if end is None else (end, step)


def index_past_end(stream: Any, path: str) -> tuple[int, float] | None:
    """The frames (those shown: an edit list's cut ones aside) and seconds the index of
    ``stream`` lists, when the bytes of some of them lie past the end of ``path``; None when the
    file holds every frame it lists, or PyAV gives no index.

    An MP4 written with its index first (``faststart``, as the web serves it) and cut short (a
    partial download) opens, and its last frames are missing: the decoders find only the frames
    left, so the index is the one place that says how much there was. Only an entry's own bytes
    are trusted (its position and size against the file's size): a header's frame count is no
    proof (an MP4 trimmed at an intra frame lists the frames its edit list cuts)."""
    entries = getattr(stream, "index_entries", None)
    if not entries:
        return None
    end = os.path.getsize(path)
    shown = [entry for entry in entries if not entry.is_discard]
    if not any(entry.pos + entry.size > end for entry in shown):
        return None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        rate = stream.average_rate or stream.guessed_rate
        seconds = len(shown) / float(rate) if rate else 0.0
    return len(shown), seconds


# Matroska's per-track DURATION tag, as FFmpeg writes it: "00:00:30.000000000"
_MATROSKA_DURATION = re.compile(r"(\d+):(\d\d):(\d\d(?:\.\d*)?)")


def recorded_length(container: Any, stream: Any) -> float | None:
    """The length in seconds the header of ``container`` records for its video ``stream``, in a
    place a cut at the file's end keeps, where that is the video's own; None where it records
    none (a recording never closed, a file written to a pipe) or only one that may be another
    stream's.

    A container whose index is written last (Matroska, WebM, AVI) cut short opens, and its
    decoders find the frames before the cut as a whole shorter video. Its header, written first
    and filled in when the file is closed, keeps the length: Matroska's track tag DURATION
    (FFmpeg, yt-dlp), or, for a file of one stream alone, its Segment Info Duration (the longest
    stream's: a longer audio track would pass for missing video); AVI's stream header frame
    count. Lengths count from time 0, as ``held_end`` does. An MP4's header counts the frames an
    edit list cuts (``index_past_end`` reads its index instead); other containers (MPEG-TS,
    MPEG-PS) record none."""
    formats = set(container.format.name.split(","))
    if "matroska" in formats:
        tags = {key.lower(): value for key, value in stream.metadata.items()}
        match = _MATROSKA_DURATION.fullmatch(tags.get("duration", "").strip())
        if match is not None:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        if len(container.streams) == 1 and container.duration:
            return container.duration / 1_000_000  # AV_TIME_BASE
        return None
    if "avi" in formats and stream.frames and stream.time_base:
        return float(stream.frames * stream.time_base)
    return None
