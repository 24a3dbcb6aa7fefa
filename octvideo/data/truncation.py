"""Whether a video file is whole: what its container says it held, against what it still holds.

A partial download (yt-dlp's ``.part``, a copy stopped half-way) opens, and both decoders read
the frames before the cut as a whole shorter video; only the container's own record says how much
there was. Two kinds of record survive a cut at the end of the file:

- an MP4 written with its index first (``faststart``, as the web serves it): entries of the index
  whose bytes lie past the file's end (``index_past_end``), read as a ``Truncation`` of frames
  (``truncation_of``). A header's frame count is no proof: an MP4 trimmed at an intra frame lists
  the frames its edit list cuts;
- a container whose index is written last (Matroska, WebM, AVI): the length its header records
  (``recorded_length``: Matroska's track tag DURATION, or Segment Duration for a file of one
  stream; AVI's stream header frame count), against the end of the last packet it holds
  (``held_end``), read as a ``ShortOfLength`` in seconds (``short_of_length``).

A recorded length is taken as cut short only when more than ``MISSING_SECONDS`` and more than
``MISSING_FRAMES`` frames of it are missing: a whole file's header and its last frame's end differ
by up to a frame. Where nothing is recorded (a Matroska written to a pipe, MPEG-TS, MPEG-PS)
nothing is said. ``octvideo.data.decoding`` reads these facts in its header look, keeps them on
its readers (``truncation``, ``Video.check_whole``) and adds them to its decode errors. Nothing
is opened here: each function reads a container PyAV has opened (and the file's size).
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

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
    holds: a partial download of a container whose index is written last (Matroska, WebM, AVI:
    ``recorded_length``)."""

    seconds: float  # the video's length, as the header records it
    missing: float  # of ``seconds``, those past the end of the last frame the file holds

    def __str__(self) -> str:
        return f"the file's header lists {self.seconds:.1f} s, {self.missing:.1f} s of it missing"


# A recorded length is taken as cut short only when more than a second and more than a few frames
# of it are missing: a whole file's header and its last frame's end differ by up to a frame (AVI
# counts one frame more than an encoder's flush writes; Matroska rounds to its timestamp unit).
MISSING_SECONDS = 1.0
MISSING_FRAMES = 4


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


def short_of_length(recorded: float, held: tuple[float, float] | None) -> ShortOfLength | None:
    """The ``ShortOfLength`` of a file whose header records ``recorded`` seconds and whose frames
    end as ``held`` says (``held_end``); None when they reach that length (``MISSING_SECONDS``,
    ``MISSING_FRAMES``) or carry no times."""
    if held is None:
        return None
    end, step = held
    missing = recorded - end
    if missing <= MISSING_SECONDS or missing <= MISSING_FRAMES * step:
        return None
    return ShortOfLength(recorded, missing)


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
