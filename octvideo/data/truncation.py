"""Whether a video file is whole: what its container says it held, against what it still holds.

A partial download (yt-dlp's ``.part``, a copy stopped half-way) opens, and both decoders read
the frames before the cut as a whole shorter video; only the container's own record says how much
there was. Three kinds of record survive a cut at the end of the file:

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
  ``ShortOfLength`` in seconds, or else by a ``ShortOfSize`` in bytes (``short_of``);
- a container written as a stream of packets that each declare their length: the end of the last
  one past the file's own (``size_past_end`` too, a ``ShortOfSize``). A fragmented MP4 (a DASH
  part: ``moov`` without sample tables, then ``moof`` + ``mdat`` fragments) by its top-level
  boxes' sizes and its last ``moof``'s track runs; an FLV file by its tags' sizes; an MPEG-PS
  file by its packs' and PES packets' lengths; an MPEG-TS file by its packets' fixed 188 bytes
  (192 in M2TS, 204). No tolerance either: a whole file is never found short, and a cut inside
  a packet is, save where too little is left to tell (a box header's first 3 bytes, a file of
  fewer than 8 TS packets, the ``moov``); a cut exactly between two (fragments, tags, packs, TS
  packets) leaves a whole file of fewer that nothing tells apart, save in a fragmented MP4
  whose ``sidx`` (as DASH servers write) indexes all its fragments.

Where nothing is declared (a Matroska written to a pipe: its size is "unknown"; an elementary
stream) nothing is said. ``octvideo.data.decoding`` reads these facts in its header look, keeps
them on its readers (``truncation``, ``Video.check_whole``) and adds them to its decode errors.
Each function reads a container PyAV has opened, or a few bytes of the file (the start, each
box or tag header, or the last 16 KiB: tens of microseconds for a file of a few fragments).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
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

    declared: int  # the file's size, as its container declares it or its last packet ends
    missing: int  # of ``declared``, those past the file's end

    def __str__(self) -> str:
        return f"the file's container runs to {self.declared} bytes, {self.missing} of them missing"


def short_of(
    size: tuple[int, int], recorded: float | None, held: tuple[float, float] | None
) -> ShortOfLength | ShortOfSize:
    """What a file shorter than its container declares (``size``: ``size_past_end``) misses: the
    seconds of its ``recorded`` length past the end of its frames (``held``: ``held_end``) where
    they are a tenth of a second or more, else the bytes."""
    if recorded is not None and held is not None and round(recorded - held[0], 1) > 0:
        return ShortOfLength(recorded, recorded - held[0])
    return ShortOfSize(size[0], size[0] - size[1])


# RIFF chunk sizes that mean "unknown": a file written to a pipe or never closed holds its
# muxer's placeholder, 0 or 0xFFFFFFFF (Matroska's "unknown" is ``_vint``'s -1)
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


class _Read:
    """The bytes of an open file, read where sliced: a walk reads a few bytes of each of many
    boxes or tags, far apart (a slice, as of ``bytes``: the checks below take either)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file, self._size = file, size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(self._size)
        self._file.seek(start)
        return self._file.read(max(0, stop - start))


_Bytes = bytes | _Read

# An MP4 box's header: its size and type; a type is four printable characters (QuickTime's own
# begin with the copyright sign)
_BOX = struct.Struct(">I4s")
_BOX_TYPE = re.compile(rb"[\x20-\x7e\xa9]{4}")


def _fragments_end(data: _Bytes) -> int | None:
    """Where the fragments of a fragmented MP4 (a DASH part as yt-dlp downloads it: ``moov``
    without sample tables, then ``moof`` + ``mdat`` pairs) declare it ends: the top-level boxes
    walked by their sizes, the end of the data the last ``moof``'s runs list (``_runs_end``: a
    cut between a ``moof`` and its ``mdat``), and the end of what a ``sidx`` indexes
    (``_sidx_end``: a cut between two fragments, where the file has one). None for an MP4 that
    is not fragmented (``index_past_end`` reads its index instead)."""
    size, at, moof, declared = len(data), 0, None, 0
    while at < size:
        head = data[at : at + 16]
        if len(head) < 8:  # a cut box header: its size, where it is held
            length = int.from_bytes(head[:4], "big") if len(head) >= 4 else 0
            at += length if length >= 8 else 0
            break
        length, kind = _BOX.unpack_from(head)
        if not _BOX_TYPE.fullmatch(kind):  # bytes after the last box: not the container's
            break
        header = 8
        if length == 1:  # a 64-bit size follows the type
            if len(head) < 16:
                at += 16
                break
            length, header = int.from_bytes(head[8:16], "big"), 16
        elif length == 0:  # the box runs to the end of the file
            length = size - at
        if length < header:
            return None
        if kind == b"moof":
            moof = (at, length)
        elif kind == b"sidx":
            declared = max(declared, _sidx_end(data[at + header : at + length], at + length))
        at += length
    if moof is None and not declared:
        return None
    if at > size:
        return at
    if moof is None:
        return declared
    return max(declared, _runs_end(data[moof[0] : moof[0] + moof[1]], moof[0]))


def _sidx_end(body: bytes, end: int) -> int:
    """Where what a ``sidx`` box (``body``, the box ending at ``end``) indexes ends: the box's
    end, plus its first offset, plus its references' sizes (a reference to another ``sidx``
    spans that box and what it indexes); 0 where the box is not whole."""
    wide = 8 if body[:1] == b"\x01" else 4  # version 1: 64-bit time and offset
    at = 12 + wide  # version and flags, reference ID, timescale, earliest presentation time
    if len(body) < at + wide + 4:
        return 0
    offset = int.from_bytes(body[at : at + wide], "big")
    count = int.from_bytes(body[at + wide + 2 : at + wide + 4], "big")
    if len(body) < at + wide + 4 + 12 * count:
        return 0
    references = struct.unpack_from(f">{3 * count}I", body, at + wide + 4)
    return end + offset + sum(reference & 0x7FFFFFFF for reference in references[::3])


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    """The boxes of ``data[start:end]``, each (type, body); stops at one that is not whole."""
    while start + 8 <= end:
        length, kind = _BOX.unpack_from(data, start)
        if length < 8 or start + length > end:
            return
        yield kind, data[start + 8 : start + length]
        start += length


def _runs_end(moof: bytes, at: int) -> int:
    """Where the samples that the track runs (``trun``) of a ``moof`` (at ``at``) list end, at
    least: each run's data offset from its base (the ``tfhd``'s own, the ``moof``'s start, or
    the end of the track fragment before's data; ISO/IEC 14496-12, 8.8.7-8), plus its samples'
    sizes (each its own or the ``tfhd``'s default; one set only in ``moov`` counts 0, so a
    whole file is never found short)."""
    end = last = at
    for kind, traf in _boxes(moof, 8, len(moof)):
        if kind != b"traf":
            continue
        base = start = last  # a later track fragment's data follows the one before's
        default = 0
        for inner, body in _boxes(traf, 0, len(traf)):
            if inner == b"tfhd":
                base, default = _tfhd_base(body, at, base)
                start = base
            elif inner == b"trun" and len(body) >= 8:
                start = _trun_end(body, base, start, default)
                end, last = max(end, start), start
    return end


def _tfhd_base(body: bytes, moof: int, base: int) -> tuple[int, int]:
    """The data base a track fragment header (``body``) sets (its own, or the start ``moof`` of
    its ``moof``; else ``base``, where the track fragment before's data ends) and its default
    sample size (0 where it sets none)."""
    flags = int.from_bytes(body[1:4], "big")
    if flags & 0x01:  # base-data-offset-present
        base = int.from_bytes(body[8:16], "big")
    elif flags & 0x020000:  # default-base-is-moof
        base = moof
    field = 8 + 8 * (flags & 0x01) + 4 * bool(flags & 0x02) + 4 * bool(flags & 0x08)
    default = int.from_bytes(body[field : field + 4], "big") if flags & 0x10 else 0
    return base, default


def _trun_end(body: bytes, base: int, start: int, default: int) -> int:
    """Where the samples of a track run (``body``) end: from its data offset past ``base``, or
    from ``start`` (right after the run before) where it has none, plus its samples' sizes
    (each its own, or ``default``; none added where the run's table is cut)."""
    flags = int.from_bytes(body[1:4], "big")
    if flags & 0x01:  # data-offset-present
        start = base + int.from_bytes(body[8:12], "big", signed=True)
    count = int.from_bytes(body[4:8], "big")
    first = 8 + 4 * (flags & 0x01) + 4 * bool(flags & 0x04)
    fields = bin(flags & 0xF00).count("1")  # a sample's duration, size, flags, offset
    if not flags & 0x200:  # sample-size-present
        return start + default * count
    if len(body) < first + 4 * fields * count:
        return start
    records = struct.unpack_from(f">{fields * count}I", body, first)
    return start + sum(records[bool(flags & 0x100) :: fields])


# MPEG-TS packets: (length, where the sync byte 0x47 lies): 188 bytes; 192 with a 4-byte
# timecode first (M2TS, Blu-ray); 204 with 16 bytes of Reed-Solomon parity after
_TS_PACKETS = ((188, 0), (192, 4), (204, 0))
_TS_RUN = 8  # sync bytes in a row that show packets: a chance match is 2^-64


def _packets_end(data: _Bytes) -> int | None:
    """Where the last packet of an MPEG-TS file ends: a cut leaves a partial packet after
    ``_TS_RUN`` whole ones, found by the sync byte each begins with (the tail alone is read).
    None for a file that ends on a packet's end: whole, or cut exactly there (nothing in the
    file tells these apart), or for a tail that is not a run of packets."""
    size = len(data)
    begin = max(0, size - (_TS_RUN + 1) * 204)
    tail = data[begin:]

    def run(start: int, length: int) -> bool:  # sync bytes at start and _TS_RUN - 1 before
        return start - (_TS_RUN - 1) * length >= begin and all(
            tail[start - k * length - begin] == 0x47 for k in range(_TS_RUN)
        )

    if any(run(size - length + sync, length) for length, sync in _TS_PACKETS):
        return None
    for length, sync in _TS_PACKETS:
        for held in range(sync + 1, length):  # a cut in an M2TS timecode shows no sync byte
            if run(size - held + sync, length):
                return size - held + length
    return None


# MPEG-PS (ISO/IEC 13818-1 2.5.3): start codes 00 00 01 xx with xx from 0xB9 (the end code),
# 0xBA (a pack header), 0xBB (the system header) and the PES packets' stream IDs above; zero
# bytes may pad a pack before the next (FFmpeg's VCD packs end in 20)
_PS_CODE = re.compile(rb"\x00*(\x00\x00\x01[\xb9-\xff])")
_PS_ZEROS = re.compile(rb"\x00*\Z")
_PS_WINDOW = 2 * (21 + 6 + 0xFFFF)  # the tail read: two of the largest packs (one PES packet)


def _ps_length(data: bytes, at: int) -> int | None:
    """The length of the pack or packet whose start code is at ``data[at]`` (at least, where
    the bytes that tell it are cut), or None where its marker bits show none there."""
    code = data[at + 3]
    if code == 0xB9:
        return 4
    head = data[at + 4 : at + 14]
    if code != 0xBA:
        return 6 + int.from_bytes(head[:2], "big") if len(head) >= 2 else 6
    if len(head) < 10:
        return 14 if head[:1] and head[0] & 0xC0 == 0x40 else 12
    if head[0] & 0xC4 == 0x44 and head[2] & 4 and head[4] & 4 and head[5] & 1 and head[8] & 3 == 3:
        return 14 + (head[9] & 7)  # MPEG-2, its stuffing bytes after
    if head[0] & 0xF1 == 0x21 and head[2] & 1 and head[4] & 1 and head[5] & 0x80 and head[7] & 1:
        return 12  # MPEG-1
    return None


def _pack_end(data: _Bytes) -> int | None:
    """Where the last pack or packet of an MPEG-PS file ends (``_pack_chain``): in the last 16
    KiB, else, where no chain of start codes lies there (a large packet), in ``_PS_WINDOW``."""
    for window in (1 << 14, _PS_WINDOW):
        begin = max(0, len(data) - window)
        chained, end = _pack_chain(data[begin:], begin == 0)
        if chained or begin == 0:
            return None if end is None else begin + end
    return None


def _pack_chain(data: bytes, first: bool) -> tuple[bool, int | None]:
    """Whether a chain of start codes lies in ``data``, the tail of a file (all of it where
    ``first``), and where its last pack or packet ends: its start codes walked by the lengths
    they declare, from the first that leads to another (a chance 00 00 01 xx in the payload
    leads nowhere); past the file's end in a cut one. None for a file that ends on a packet's
    end (whole, or cut exactly there: nothing tells these apart), or in the end code, or a chain
    that breaks before the file's end."""
    size = len(data)
    for found in _PS_CODE.finditer(data):
        at, steps = found.start(1), 0
        while code := _PS_CODE.match(data, at):
            at = code.start(1)
            length = _ps_length(data, at)
            if length is None:
                break
            if at + length > size:
                # a length read at the first start code alone may be chance: one more must agree
                if steps or (first and at == 0):
                    return True, at + length
                break
            if data[at + 3] == 0xB9 or _PS_ZEROS.match(data, at + length):
                return True, None  # the end code, or a packet's end (and padding) at the file's
            at, steps = at + length, steps + 1
        if steps:
            return True, None
    return False, None


_FLV_TAGS = (8, 9, 18)  # audio, video, script data; the 0x20 bit marks a filtered tag


def _tags_end(data: _Bytes) -> int | None:
    """Where the tags of an FLV file declare it ends: each tag's 11-byte header declares its
    data's size, and the tag is followed by a PreviousTagSize of 11 plus it. A whole file ends
    on one that points back at a tag of that size (the common case: two reads); else the tags
    are walked from the first. The end of the first tag whose data runs past the file's end (a
    cut), else None: a file that ends on a tag (whole, or cut exactly there), or bytes that are
    not tags."""
    size = len(data)
    if size < 9 or data[:3] != b"FLV":
        return None
    at = int.from_bytes(data[5:9], "big") + 4  # the header, then PreviousTagSize 0
    if size >= at + 15:
        back = int.from_bytes(data[size - 4 : size], "big")
        tag = size - 4 - back
        head = data[tag : tag + 4] if back >= 11 and at <= tag else b"\x00"
        if head[0] & 0x1F in _FLV_TAGS and int.from_bytes(head[1:4], "big") + 11 == back:
            return None
    while at < size:
        head = data[at : at + 4]
        if head[0] & 0x1F not in _FLV_TAGS:
            return None  # bytes after the last tag: not the container's
        if len(head) < 4:
            return at + 15  # a cut tag header: at least the header and PreviousTagSize
        end = at + 11 + int.from_bytes(head[1:4], "big") + 4  # its PreviousTagSize last
        if end > size:  # a file that ends on a tag's data may leave out its last one
            return end if end - 4 != size else None
        at = end
    return None


def formats_of(container: Any) -> set[str]:
    """The names of the format FFmpeg opened the PyAV ``container`` as: one demuxer reads
    several (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``), so a test names one of them."""
    return set(container.format.name.split(","))


def size_past_end(path: str, formats: set[str]) -> tuple[int, int] | None:
    """The size an AVI's RIFF chunks, a Matroska (WebM) file's Segment, or the last box, tag or
    packet of a fragmented MP4, FLV, MPEG-PS or MPEG-TS file declare, and the size of ``path``,
    when the file is shorter than declared; None when it holds all of it (bytes after the
    declared end are not the container's), the size is unknown, or the container (``formats``:
    ``formats_of``) declares none (an MP4 that is not fragmented: ``index_past_end``).

    A cut at the end always breaks an AVI's or Matroska file's, and a whole file always keeps
    it: the muxer writes the size when the file is closed. Exact, with no tolerance, it sees
    what no packet shows: an AVI's null frames (zero-size chunks its frame count holds, which
    PyAV does not demux). A packet's is broken by a cut inside it, not by one between two."""
    size = os.path.getsize(path)
    with open(path, "rb", buffering=0) as file:  # each read where it is asked for
        if "avi" in formats:
            end = _riff_end(file, size)
        elif "matroska" in formats:  # FFmpeg's "matroska,webm" reads both
            end = _segment_end(file)
        elif "mov" in formats:  # FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2"
            end = _fragments_end(_Read(file, size))
        elif "mpegts" in formats:
            end = _packets_end(_Read(file, size))
        elif "mpeg" in formats:
            end = _pack_end(_Read(file, size))
        elif formats & {"flv", "live_flv"}:
            end = _tags_end(_Read(file, size))
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
    formats = formats_of(container)
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
