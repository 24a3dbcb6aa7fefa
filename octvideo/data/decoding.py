"""Video decoding: decord by default, PyAV as the per-file fallback, video stream only.

Reading: ``probe`` (frame count, fps, size: a ``VideoInfo``), ``decode`` (frames by index),
``decode_clip`` (one open: probe, choose indices, decode) and ``Video`` (one open, many reads,
frame timestamps). Frames are uint8 RGB tensors (T, H, W, 3).

Decoders (``decoder=``):
    ``"decord"``  decord only; frame indices come from its packet index. A file decord would read
                  wrongly is refused, naming ``"pyav"`` (``_read_header``).
    ``"pyav"``    PyAV only; frame ``i`` is the ``i``-th frame shown (``_PyAVReader``).
    ``"auto"``    decord, and PyAV for a file decord cannot open or decode, or would read wrongly
                  (``_with_fallback``).

Before decord opens a file, PyAV reads its header (``_read_header``): a stream decord returns out
of order (``DECORD_REORDERS``), an MP4 trimmed by an edit list (``_edit_list_cuts``) and a file of
several video streams (``_video_streams``) are for PyAV. Both decoders then give the same frames:
    - of the first video stream that is no cover picture (``video_stream``; a file of covers only
      is refused, ``COVER_ONLY``); audio is never opened;
    - as displayed, by the display matrix (``octvideo.data.orientation``; decord's own turn is
      undone in ``_DecordReader``);
    - scaled down in the decoder beyond ``MAX_DECODE_SHORT_SIDE`` (``decoded_size``,
      ``_decode_sizes``); ``short_side`` then resizes both alike (``resize_short_side``).

Arguments are checked before the file is opened (``check_decoder``, ``check_short_side``,
``frame_indices``, ``check_video_path``), each refused in one line naming it. A missing file is a
``FileNotFoundError``; anything a decoder rejects is a ``DecodeError`` (``octvideo.errors``) in
octvideo's words for both decoders (``_PyAVReader._undecodable``, ``_decord_cause``,
``_decord_open_error``, which keeps decord's C++ line off stderr), which add the frames the
file's index or header lists past those it holds (a partial download, ``Video.check_whole``:
``octvideo.data.truncation``); FFmpeg's own log is silenced (``_quiet_decord``). A decoder out
of open files raises its ``OSError`` (``open_files.OUT_OF_FILES_ERRNOS``), never a
``DecodeError``: the file may be fine, so ``"auto"`` does not try PyAV on it and a caller stops
instead of counting a bad video.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import logging
import os
import re
import reprlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from octvideo.argtypes import is_whole
from octvideo.data.config import DECODERS, MAX_RESIZE_SHORT_SIDE
from octvideo.data.open_files import OUT_OF_FILES_ERRNOS, out_of_open_files
from octvideo.data.orientation import (
    Orientation,
    decord_turn,
    display_matrix,
    orientation_of,
    rotate_tag_matrix,
)
from octvideo.data.truncation import (
    ShortOfLength,
    ShortOfSize,
    Truncation,
    formats_of,
    held_end,
    index_past_end,
    recorded_length,
    short_of,
    size_past_end,
    truncation_of,
)
from octvideo.errors import DecodeError
from octvideo.paths import is_missing, why_not_a_file

logger = logging.getLogger(__name__)

# FFmpeg probes arbitrary bytes as exotic formats (a text file as "tty" ANSI art, junk as "cdg"
# karaoke graphics); PyAV only accepts demuxers that hold real video.
VIDEO_CONTAINERS = frozenset(
    [
        "mov",
        "mp4",
        "m4a",
        "3gp",
        "3g2",
        "mj2",
        "matroska",
        "webm",
        "avi",
        "mpeg",
        "mpegts",
        "mpegvideo",
        "flv",
        "ogg",
        "asf",
        "h264",
        "hevc",
        "m4v",
        "mjpeg",
        "ivf",
        "nut",
        "mxf",
        "gif",
    ]
)
# Frames longer than this many times their height (or the reverse) are refused: resizing their
# short side to a crop size would make a frame of gigabytes, and no action model sees them.
MAX_ASPECT_RATIO = 10.0
# Short side, in pixels, beyond which frames are scaled down while decoding (``decoded_size``).
MAX_DECODE_SHORT_SIDE = 1080
# FFmpeg threads of a PyAV decode: 0 lets FFmpeg choose (one per core); a process that decodes
# beside others (predict's decoding workers) sets 1, as decord's readers always use.
PYAV_THREADS = 0


def _out_of_files_error(code: int, path: str | None = None) -> OSError | None:
    """The ``OSError`` of FFmpeg's error ``code`` (a negative AVERROR) met reading ``path``, when
    it is out of open files (``open_files.OUT_OF_FILES_ERRNOS``); None for a file's fault."""
    if -code not in OUT_OF_FILES_ERRNOS:
        return None
    if path is None:
        return OSError(-code, os.strerror(-code))
    return OSError(-code, os.strerror(-code), path)


def decoded_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) frames of a ``width`` x ``height`` stream are decoded at: the same, or
    scaled to short side ``MAX_DECODE_SHORT_SIDE`` (aspect kept) when it is beyond that.

    An 8K (7680x4320) frame is 100 MB decoded (3.2 GB for a clip of 32 frames), 6 MB at
    1920x1080; anything at or below 1080p (short side <= 1080, portrait included) decodes
    unchanged, and training and test resize far below that. The decoder itself scales (decord's
    ``VideoReader(width=, height=)``, PyAV's ``reformat``: ``_decode_sizes``)."""
    bound = MAX_DECODE_SHORT_SIDE
    if min(width, height) <= bound:
        return width, height
    if width <= height:
        return bound, max(1, round(height * bound / width))
    return max(1, round(width * bound / height)), bound


def check_frame_size(path: str, width: int, height: int, decoder: str) -> None:
    """Refuse frames of ``width`` x ``height`` that are no video's (a header without a size
    gives 0x0) or beyond ``MAX_ASPECT_RATIO``, as ``decoder``'s DecodeError."""
    if min(width, height) < 2:
        raise DecodeError(
            path, f"frame size {width}x{height} is too small to be a video", decoder=decoder
        )
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise DecodeError(
            path,
            f"frame size {width}x{height} (aspect ratio {ratio:.0f}:1) is beyond the "
            f"{MAX_ASPECT_RATIO:.0f}:1 octvideo decodes; crop or re-encode the video",
            decoder=decoder,
        )


def _decode_sizes(
    path: str, turn: Orientation, raw_w: int, raw_h: int, decoder: str
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """The sizes of a stream that ``decoder`` returns ``raw_w`` x ``raw_h`` and octvideo then
    turns by ``turn``: ``shown``, the displayed (width, height) of its decoded frames
    (``decoded_size``), and ``request``, the (width, height) to ask the decoder for, in its own
    orientation, to get them; None when the frames decode at their own size.

    Raises:
        DecodeError: ``check_frame_size`` refuses the displayed size, as ``decoder``'s.
    """
    full_w, full_h = turn.size(raw_w, raw_h)  # displayed, before any scaling
    check_frame_size(path, full_w, full_h, decoder)
    shown = decoded_size(full_w, full_h)
    return shown, None if shown == (full_w, full_h) else turn.size(*shown)


class _Header(NamedTuple):
    """What PyAV reads of a file before a decoder opens it."""

    error: DecodeError | None  # PyAV cannot open it, or it has no (decodable) video stream
    # why decord would read it wrongly, a clause ("decord returns the frames of ... in the wrong
    # order"): ``auto`` gives such a file to PyAV and ``decord`` refuses it
    for_pyav: str | None
    matrix: np.ndarray | None  # the first frame's display matrix
    size: tuple[int, int] | None  # stored (width, height) of the first frame
    # why decord must not open it, though it has a video stream of some kind (``video_stream``:
    # ``NO_CODEC``, which decord would call "no video stream", or ``COVER_ONLY``, on which decord
    # fails in its C++ words)
    not_for_decord: str | None = None
    # the frames and seconds the container's index lists, where some lie past the file's end
    # (``truncation.index_past_end``); None where the file holds all it lists
    listed: tuple[int, float] | None = None
    # the size a Matroska or AVI file declares and its own, where it is shorter (a cut:
    # ``truncation.size_past_end``); None where it is whole or declares none
    short: tuple[int, int] | None = None
    # the video's length in seconds as the container records it where a cut keeps it (Matroska's
    # and AVI's header, ``truncation.recorded_length``): what a file ``short`` misses
    recorded: float | None = None


class VideoInfo(NamedTuple):
    """What a decoder reports about a video stream."""

    num_frames: int
    fps: float  # average frame rate; 0.0 when the container does not say
    width: int  # of the decoded frames, as displayed (see ``_decode_sizes``)
    height: int
    decoder: str  # "decord" or "pyav": which decoder produced these numbers


class _Reader:
    """What both readers share: ``truncation``, worked out the first time a decode error or
    ``Video.check_whole`` asks for it, as a file shorter than it declares has its packets read
    once more (``truncation.held_end``)."""

    _path: str
    _header: _Header
    info: VideoInfo

    @functools.cached_property
    def truncation(self) -> Truncation | ShortOfLength | ShortOfSize | None:
        """What the file's index or header lists past the frames the decoder finds."""
        listed = truncation_of(self._header.listed, self.info.num_frames)
        if listed is not None or self._header.short is None:
            return listed
        held = None
        if self._header.recorded is not None:
            with open_container(self._path) as container:
                held = held_end(container, video_stream(container, self._path))
        return short_of(self._header.short, self._header.recorded, held)


# Codecs whose B-frames decord puts in presentation order (measured: H.264 and HEVC in MP4, MKV and
# MOV). decord returns the frames of MPEG-1, MPEG-2 and MPEG-4 Part 2 (Xvid, DivX) streams with
# B-frames out of order, in every container (AVI, MKV, MP4, MOV, MPEG-PS: frames 0, 6, 12, 18 come
# back as 0, 6, 2, 8), silently, and now and then H.264 with B-frames in AVI (after a backward
# seek). So any other codec that reorders frames, and any that does in AVI, is decoded by PyAV
# (``_read_header``: ``"auto"`` gives it to PyAV, ``"decord"`` refuses it).
DECORD_REORDERS = frozenset(["h264", "hevc"])
CODEC_LABELS = {
    "mpeg4": "MPEG-4 Part 2",
    "mpeg2video": "MPEG-2",
    "mpeg1video": "MPEG-1",
    "h264": "H.264",
    "hevc": "HEVC",
}


def _cannot_open(path: str, decoder: str, reason: str) -> DecodeError:
    """``decoder``'s failure to open ``path`` for ``reason``, an empty file called empty (FFmpeg
    calls it invalid data)."""
    if os.path.getsize(path) == 0:
        reason = "the file is empty (0 bytes)"
    return DecodeError(path, f"{decoder} cannot open it: {reason}", decoder=decoder)


def _pyav_open_error(path: str, err: Exception) -> DecodeError:
    """PyAV's failure to open ``path``, in words: FFmpeg's reason without its errno and the
    path again, and an empty file called empty."""
    import av

    if isinstance(err, av.FFmpegError) and err.strerror:
        return _cannot_open(path, "pyav", err.strerror)
    return _cannot_open(path, "pyav", f"{type(err).__name__}: {err}")


# A video stream PyAV finds no decoder for: an MP4 cut inside its index (the moov box, a
# recording stopped before it was written in full), or a codec FFmpeg does not decode.
NO_CODEC = (
    "no decodable video stream (the file is truncated or corrupt, or its codec is not one FFmpeg "
    "decodes)"
)
# A file whose video streams are all attached pictures: a music file (M4A, MP3, FLAC) with artwork.
COVER_ONLY = "no video stream, only a cover picture (an attached picture, as music files carry)"


def open_container(path: str) -> Any:
    """``path`` opened by PyAV for reading (close it, or use it in a ``with``).

    Raises:
        DecodeError: PyAV cannot open it, in FFmpeg's reason ("the file is empty" for 0 bytes).
        OSError: out of open files (``open_files.out_of_open_files``).
    """
    import av

    try:
        return av.open(path, metadata_errors="ignore")
    except Exception as err:  # av.FFmpegError, OSError, ...: not readable by PyAV
        if out_of_open_files(err):
            raise  # out of open files: the file may be fine
        raise _pyav_open_error(path, err) from None


def reformatted(
    frame: Any, *, format: str, width: int | None = None, height: int | None = None
) -> Any:
    """The PyAV video ``frame`` in pixel ``format``, scaled to ``width`` x ``height`` (None: as
    it is): the one place octvideo converts or scales a decoded frame (``to_ndarray()`` of the
    result, without arguments, converts nothing).

    The scaler is this call's own, freed on return, and starts no thread. PyAV 18.1.1 has
    ``VideoFrame.reformat`` and ``to_ndarray(format=...)`` share one scaler per thread for the
    thread's whole life, with a slice thread per core: a process forked after it (a DataLoader
    worker) inherits the scaler but not its threads, and its first frame of another size waits
    forever in ``sws_frame_setup`` to join them. A scaler of one thread is what PyAV before 17
    used; it gives the same pixels and is no slower at the sizes decoded here.
    """
    from av.video.reformatter import VideoReformatter

    size = {"width": width, "height": height}
    return VideoReformatter().reformat(frame, format=format, **size, **_one_scaler_thread())


@functools.cache
def _one_scaler_thread() -> dict[str, int]:
    """``reformat``'s argument for a scaler of one thread."""
    import av

    # PyAV before 17 scales on the calling thread only and has no ``threads`` argument
    return {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}


def _moving(streams: Sequence[Any]) -> list[Any]:
    """The PyAV video ``streams`` that are not attached pictures (cover art, one still frame)."""
    import av

    return [s for s in streams if not s.disposition & av.stream.Disposition.attached_pic]


def video_stream(container: Any, path: str) -> Any:
    """The first video stream of the PyAV ``container`` opened from ``path`` that is not an
    attached picture (a cover, which a file may hold before the movie), with a codec
    context: the one place octvideo takes a stream whose codec, size and rate it reads.

    Raises:
        DecodeError: the container has no video stream, or only cover pictures (``COVER_ONLY``),
            or the one found has no codec context (``NO_CODEC``; PyAV then has no size, rate or
            codec name for it, only ``None``).
    """
    if not container.streams.video:
        raise DecodeError(path, "no video stream", decoder="pyav")
    moving = _moving(container.streams.video)
    if not moving:
        raise DecodeError(path, COVER_ONLY, decoder="pyav")
    stream = moving[0]
    if stream.codec_context is None:
        raise DecodeError(path, NO_CODEC, decoder="pyav")
    return stream


def _read_header(path: str) -> _Header:
    """PyAV's look at ``path`` before decord opens it (a fraction of a millisecond): whether
    PyAV can open it and finds a video stream (``video_stream``), why decord would read it
    wrongly (``_for_pyav``), and its first frame's display matrix and stored size
    (``_first_frame``). A frame PyAV cannot decode leaves those None: decord then decides for
    itself."""
    try:
        container = open_container(path)
    except DecodeError as err:
        return _Header(err, None, None, None)
    with container:
        try:
            stream = video_stream(container, path)
        except DecodeError as err:
            # a stream without a codec, or covers only: decord would fail in other words
            not_for_decord = err.reason if container.streams.video else None
            return _Header(err, None, None, None, not_for_decord=not_for_decord)
        formats = formats_of(container)
        name, reorders = stream.codec_context.name, bool(stream.codec_context.has_b_frames)
        matrix, size, discarded = _first_frame(container, stream)
        if matrix is None:
            tags = {key.lower(): value for key, value in stream.metadata.items()}
            matrix = rotate_tag_matrix(tags.get("rotate"))  # FFmpeg matches keys in any case
        cuts = discarded or _edit_list_cuts(container, stream)
        for_pyav = _for_pyav(_video_streams(container), name, reorders, "avi" in formats, cuts)
        listed = index_past_end(stream, path)
        short = size_past_end(path, formats)
        recorded = recorded_length(container, stream) if short else None
    return _Header(None, for_pyav, matrix, size, listed=listed, short=short, recorded=recorded)


def _first_frame(
    container: Any, stream: Any
) -> tuple[np.ndarray | None, tuple[int, int] | None, bool]:
    """The display matrix and stored (width, height) of the first frame PyAV decodes of
    ``stream`` (None, None where none decodes: a broken stream, which the decoder reports), and
    whether a packet before it is discarded (left out by an edit list)."""
    discarded = False
    stream.codec_context.thread_count = 1  # frame threads would decode several frames first
    try:
        for packet in container.demux(stream):
            discarded = discarded or packet.is_discard
            frames = packet.decode()
            if frames:
                return display_matrix(frames[0]), (frames[0].width, frames[0].height), discarded
    except Exception as err:  # a broken stream: the decoder reports it
        if out_of_open_files(err):
            raise
    return None, None, discarded


def _for_pyav(streams: int, codec: str, reorders: bool, avi: bool, cuts: bool) -> str | None:
    """Why decord would read a file wrongly, a clause for ``_Header.for_pyav``; None when it
    reads it right. The file has ``streams`` video streams (``_video_streams``); the first is of
    ``codec``, which ``reorders`` frames (B-frames: ``DECORD_REORDERS``), in an ``avi`` or
    not, and has an edit list that ``cuts`` frames (``_edit_list_cuts``)."""
    if streams > 1:
        return (
            f"it has {streams} video streams and decord reads the one FFmpeg ranks best (the "
            f"higher bit rate), not the first"
        )
    if reorders and (codec not in DECORD_REORDERS or avi):
        label = CODEC_LABELS.get(codec, codec)
        return (
            f"decord returns the frames of {label} video with B-frames{' in AVI' if avi else ''} "
            f"in the wrong order"
        )
    if cuts:
        return (
            "its edit list leaves frames out (a video trimmed without re-encoding), which decord "
            "counts and returns as frames"
        )
    return None


def _video_streams(container: Any) -> int:
    """How many video streams of ``container`` decord could choose from: its cover pictures
    (attached pictures), before the movie or after it, are none (FFmpeg ranks a one-frame stream
    last, and ``video_stream`` passes them by). decord 0.6 opens the stream FFmpeg ranks best (of
    several moving ones, in MP4 and MOV, the one of higher bit rate) and cannot be told which, so
    a file with more than one goes to PyAV under ``"auto"`` and is refused under ``"decord"``."""
    return len(_moving(container.streams.video))


def _edit_list_cuts(container: Any, stream: Any) -> bool:
    """Whether FFmpeg's index of ``stream`` marks a packet discarded: one its MP4/MOV edit list
    leaves out, which decord would count and return as a frame.

    An MP4 or MOV trimmed without re-encoding (``ffmpeg -ss .. -c copy``, a phone's trim) keeps
    the frames it cut and an edit list that leaves them out (at the start, the end or between two
    edits): FFmpeg marks their packets discarded and its decoder drops them, so PyAV counts and
    returns the frames shown (frame 0 is the first one displayed), while decord counts the cut
    frames too and returns others than asked. A trim whose cut frames FFmpeg leaves out of the
    index (an end cut at a keyframe, with no B-frames) marks none, and decord reads it right.
    Only MP4/MOV have edit lists. PyAV with ``Stream.index_entries`` reads the index the demuxer
    built when it opened the file (no read; 0.22 us an entry, 0.07 ms for a 10 s clip, 8 ms for
    20 minutes at 30 fps), where a cut can lie anywhere (between two edits); an older PyAV looks
    by ``_tail_discards``. A trim of the start alone also shows as the packets ``_read_header``
    meets marked discarded."""
    if "mov" not in formats_of(container):
        return False
    entries = getattr(stream, "index_entries", None)
    if entries is None:
        return _tail_discards(container, stream)
    return any(entry.is_discard for entry in entries)


def _tail_discards(container: Any, stream: Any) -> bool:
    """Whether an MP4/MOV ``stream`` has discarded packets at its end (an edit that ends before
    the media does): seeks to the last keyframe a second or more before the edit's end (the MP4
    index makes the seek cheap) and demuxes, without decoding, to the end of the file (0.2 ms for
    a 10 s 320p H.264 clip). A cut frame shows at or after the edit's end; one decoded before
    that keyframe shows before it, so the keyframe is cut too and seen (the second covers
    reordering in a file that marks every frame a keyframe). A file PyAV cannot seek is left to
    decord."""
    if "mov" not in formats_of(container) or not stream.duration:
        return False
    start = stream.start_time or 0
    try:
        container.seek(
            max(start, start + stream.duration - int(1 / stream.time_base)), stream=stream
        )
        return any(packet.is_discard for packet in container.demux(stream))
    except Exception as err:  # a broken index or stream: decord then decides for itself
        if out_of_open_files(err):
            raise
        return False


@functools.cache
def _quiet_decord() -> None:
    """Set decord's FFmpeg to log nothing (``[mov,mp4,...] moov atom not found`` and the like):
    octvideo reports each error itself (PyAV's FFmpeg logs nothing by default). Once a
    process."""
    import decord.logging

    decord.logging.set_level(decord.logging.QUIET)


@functools.cache
def _decord_avformat() -> tuple[Any, Any, Any]:
    """``avformat_open_input``, ``avformat_close_input`` and ``av_strerror`` of the FFmpeg decord
    is linked to (its own FFmpeg 4, not PyAV's): looked up through libdecord, whose dependencies
    ``dlsym`` searches. decord's only private name octvideo uses (``_ffi.base._LIB``, the
    library decord loaded); decord is pinned. That FFmpeg is set to quiet first."""
    from decord._ffi.base import _LIB

    _quiet_decord()
    open_input, close_input, strerror = (
        _LIB.avformat_open_input,
        _LIB.avformat_close_input,
        _LIB.av_strerror,
    )
    open_input.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),  # AVFormatContext **
        ctypes.c_char_p,  # url
        ctypes.c_void_p,  # const AVInputFormat * (NULL: probe)
        ctypes.c_void_p,  # AVDictionary ** (NULL: no options)
    ]
    open_input.restype = ctypes.c_int
    close_input.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    close_input.restype = None
    strerror.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    strerror.restype = ctypes.c_int
    return open_input, close_input, strerror


def _decord_open_error(path: str) -> str | None:
    """Why decord's FFmpeg cannot open ``path``, in FFmpeg's words; None when it can.

    decord's ``VideoReader`` calls ``avformat_open_input(&ctx, path, NULL, NULL)`` first and, when
    that fails, writes ``[hh:mm:ss] .../video_reader.cc:83: ERROR opening: PATH, REASON`` to the
    process's stderr (dmlc's ``LOG(WARNING)``, which ``decord.logging`` does not reach) before it
    raises ``RuntimeError("Error reading PATH...")``. This is the same call, on the same library
    with the same arguments and path bytes (decord passes ``str.encode("utf-8")``), so it fails
    exactly when decord's would (a file rewritten between the two aside), and such a file is
    refused before decord sees it. It costs one more read of the file's header. Nothing is
    redirected: whatever else writes to stderr is left as it is.

    Raises:
        OSError: the open failed out of open files (``open_files.OUT_OF_FILES_ERRNOS``), not for
            the file's fault.
    """
    open_input, close_input, _ = _decord_avformat()
    context = ctypes.c_void_p()
    code = open_input(ctypes.byref(context), path.encode("utf-8"), None, None)
    if code == 0:
        close_input(ctypes.byref(context))
        return None
    out_of_files = _out_of_files_error(code, path)
    if out_of_files is not None:
        raise out_of_files
    return _ffmpeg_reason(code).text


class _Reason(NamedTuple):
    text: str  # FFmpeg's words; "Error number N occurred" for a code it does not know
    known: bool


def _ffmpeg_reason(code: int) -> _Reason:
    """FFmpeg's words for its error ``code`` (a negative AVERROR), from decord's FFmpeg."""
    _, _, strerror = _decord_avformat()
    buffer = ctypes.create_string_buffer(200)  # decord's size
    known = strerror(code, buffer, len(buffer)) >= 0
    return _Reason(buffer.value.decode("utf-8", "replace"), known)


# decord's C++ errors (dmlc's ``LOG(FATAL)`` and ``CHECK``) read ``[hh:mm:ss] SOURCE.cc:LINE:
# [Check failed: CONDITION] TEXT``; what each TEXT means, in the PyAV path's words.
_DMLC_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ")
_DECORD_CAUSES = (
    ("cannot find video stream", "no video stream"),
    ("getting stream info", "its streams cannot be read: the file is truncated or corrupt"),
    ("Decoder not found", "decord has no decoder for its video codec"),
    ("avcodec_open2", "its video decoder cannot be opened"),
    ("av_read_frame failed", "the file is truncated or corrupt"),
    ("Fail to get packet", "the file is truncated or corrupt"),
    ("Fail to send packet", "the file is truncated or corrupt"),
    ("Fail to receive frame", "the file is truncated or corrupt"),
)
_AV_READ_FAILED = re.compile(r"av_read_frame failed with (\d+)")


def _decord_cause(err: Exception) -> str:
    """What decord's error ``err`` means, in octvideo's words: its C++ text (a timestamp, decord's
    source path, "Check failed: ...") goes to the DEBUG log, for whoever needs it.

    Raises:
        OSError: reading packets failed out of open files (``open_files.OUT_OF_FILES_ERRNOS``).
    """
    text = str(err).strip()
    logger.debug("decord: %s: %s", type(err).__name__, text)
    if not _DMLC_PREFIX.match(text):
        return f"{type(err).__name__}: {text}"  # Python's own words (decord's Python side)
    cause = next((cause for clue, cause in _DECORD_CAUSES if clue in text), None)
    if cause is None:
        return "decord failed inside its C++ code (its message is logged at DEBUG level)"
    code = _AV_READ_FAILED.search(text)
    if code is None:
        return cause
    # decord prints AVERROR(ret), FFmpeg's code negated: FFmpeg names it
    out_of_files = _out_of_files_error(-int(code.group(1)))
    if out_of_files is not None:
        raise out_of_files  # the process's, not the file's
    reason = _ffmpeg_reason(-int(code.group(1)))
    if not reason.known:
        return f"reading its packets failed: {cause}"
    return f"reading its packets failed ({reason.text}): {cause}"


def _refuse_for_decord(path: str, header: _Header) -> None:
    """Refuse, before decord opens ``path``, a file PyAV's look (``header``) finds decord would
    fail on in its own words or read wrongly, or one decord's FFmpeg cannot open
    (``_decord_open_error``).

    Raises:
        DecodeError: as decord's, in octvideo's words.
        OSError: out of open files (``_decord_open_error``).
    """
    if header.not_for_decord is not None:  # decord would fail in its own words
        raise _cannot_open(path, "decord", header.not_for_decord)
    if header.for_pyav is not None:
        raise DecodeError(
            path,
            f"{header.for_pyav}; decode it with decoder 'pyav' (or 'auto', which does so)",
            decoder="decord",
        )
    reason = _decord_open_error(path)
    if reason is not None:  # decord would print its own line, then raise "Error reading"
        raise _cannot_open(path, "decord", reason)


class _DecordReader(_Reader):
    """decord's reader, of a file PyAV's look (``_read_header``) lets it open
    (``_refuse_for_decord``). decord turns frames by their display matrix in its own way
    (``decord_turn``), which is undone, and the frames turned as displayed; frames beyond
    ``MAX_DECODE_SHORT_SIDE`` are scaled by decord itself, opened again at the size asked."""

    def __init__(self, path: str, header: _Header | None = None) -> None:
        import decord

        _quiet_decord()
        header = _read_header(path) if header is None else header
        self._header = header
        _refuse_for_decord(path, header)
        self._path = path
        self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        num = len(self._vr)
        if num == 0:
            raise DecodeError(path, "decord found no video frames", decoder="decord")
        raw_h, raw_w = (int(n) for n in self._vr[0].shape[:2])  # as decord turned them
        turn = decord_turn(header.matrix)
        if header.size is not None and turn.size(*header.size) != (raw_w, raw_h):
            raise DecodeError(
                path,
                f"decord turns its {header.size[0]}x{header.size[1]} frames to "
                f"{raw_w}x{raw_h}, not as their display matrix says; decode it with "
                f"decoder 'pyav' (or 'auto', which does so)",
                decoder="decord",
            )
        # what is left to do after decord's turn: undo it, then turn as displayed
        self._turn = turn.inverse().then(orientation_of(header.matrix))
        (shown_w, shown_h), request = _decode_sizes(path, self._turn, raw_w, raw_h, "decord")
        if request is not None:  # a second index pass, for big frames only
            request_w, request_h = request
            self._vr = decord.VideoReader(
                path, ctx=decord.cpu(0), num_threads=1, width=request_w, height=request_h
            )
            if self._vr[0].shape != (request_h, request_w, 3):  # decord 0.6 pads some small widths
                full_w, full_h = self._turn.size(raw_w, raw_h)
                raise DecodeError(
                    path,
                    f"decord cannot scale {full_w}x{full_h} to {shown_w}x{shown_h}",
                    decoder="decord",
                )
        self._vr.seek(0)
        self.info = VideoInfo(num, float(self._vr.get_avg_fps()), shown_w, shown_h, "decord")

    def get(self, indices: np.ndarray) -> np.ndarray:
        try:
            frames = self._vr.get_batch(indices.tolist()).asnumpy()  # (T, H, W, 3)
        except Exception as err:  # decord's C++ text: in octvideo's words, at the first bad frame
            raise self._undecodable(indices, err) from None
        return self._turn.apply(frames)

    def _undecodable(self, indices: np.ndarray, err: Exception) -> DecodeError:
        """The error for ``indices`` decord failed to read: the first of them that fails alone
        (decoded one by one, on this failure only), in the PyAV reader's words."""
        first, cause = int(indices.min()), _decord_cause(err)
        for index in sorted(set(indices.tolist())):
            try:
                self._vr.get_batch([index])
            except Exception as one:
                first, cause = index, _decord_cause(one)
                break
        total = self.info.num_frames
        seconds = first / self.info.fps if self.info.fps > 0 else 0.0
        where = f"frame {first} of {total} (from {seconds:.1f} s) cannot be decoded"
        return DecodeError(
            self._path,
            _undecodable_reason(where, cause, self.truncation),
            decoder="decord",
            frame=first,
        )

    def times(self) -> np.ndarray | None:
        """Start time of every frame in seconds, as decord's index gives them."""
        return self._vr.get_frame_timestamp(list(range(self.info.num_frames)))[:, 0]


def _undecodable_reason(
    where: str, cause: str, truncation: Truncation | ShortOfLength | ShortOfSize | None
) -> str:
    """The reason of frames that cannot be decoded: ``where`` they are and their ``cause``, or,
    where the file's index or header lists frames it does not hold, those: the file is
    truncated."""
    if truncation is None:
        return f"{where}: {cause}"
    return f"{where} and {truncation}: the file is truncated"


def _frame_times(pts: list[int | None], reorders: bool) -> list[int] | None:
    """The packets' times ``pts`` (file order) sorted, frame ``i``'s at ``i``; None, for frames
    counted in decode order (as decord returns them), when a time is missing or repeats (a screen
    recorder's or a broken muxer's), or goes back in a stream that does not reorder frames (whose
    frames are shown in file order): seeking by such times would return a neighbour's frame."""
    times = [p for p in pts if p is not None]
    if len(times) != len(pts) or len(set(times)) != len(times):
        return None
    ordered = sorted(times)
    return None if not reorders and times != ordered else ordered


class _Cursor:
    """A decode of a file's video stream in decode order, kept open between reads: ``next`` is
    the index of the frame ``frames`` gives next."""

    def __init__(self, container: Any, frames: Iterator[Any]) -> None:
        self.container = container
        self.frames = frames
        self.next = 0


class _PyAVReader(_Reader):
    """PyAV's reader. The frame count is the number of non-empty video packets shown: container
    metadata is not trusted (WebM and MKV carry none, broken files carry wrong ones), and an edit
    list's cut packets are not shown. Frame ``i`` is the ``i``-th presentation timestamp, reached
    by a keyframe seek, with a decode-from-start fallback when timestamps are missing or
    inconsistent. Frames whose timestamps repeat or go back without B-frames (``_frame_times``),
    and those of an AVI with B-frames (AVI stores no presentation times: its packet times count
    in decode order), are counted in decode order from the start, as decord returns them; a read
    of later frames than the last such read goes on from where it stopped (``_Cursor``)."""

    def __init__(self, path: str, header: _Header | None = None) -> None:
        self._path = path
        header = _read_header(path) if header is None else header
        if header.error is not None:
            raise header.error
        self._turn = orientation_of(header.matrix)
        with open_container(path) as container:
            formats = formats_of(container)
            if not formats & VIDEO_CONTAINERS:
                raise DecodeError(
                    path,
                    f"PyAV reads it as {container.format.name!r}, not a video container format "
                    f"(the file is probably not a video)",
                    decoder="pyav",
                )
            stream = video_stream(container, path)
            # packets the edit list leaves out (a trimmed MP4) decode to no frame
            pts = [p.pts for p in container.demux(stream) if p.size > 0 and not p.is_discard]
            rate = stream.average_rate or stream.guessed_rate
            raw_w, raw_h = stream.codec_context.width, stream.codec_context.height  # stored
            reorders = bool(stream.codec_context.has_b_frames)
            self._time_base = stream.time_base
        if not pts:
            raise DecodeError(path, "PyAV found no video packets", decoder="pyav")
        (shown_w, shown_h), request = _decode_sizes(
            path, self._turn, int(raw_w), int(raw_h), "pyav"
        )
        # empty keeps the stream's size: the frames at or below the bound are as they were
        self._size = {} if request is None else {"width": request[0], "height": request[1]}
        self._pts = _frame_times(pts, reorders)
        if self._pts is not None and reorders and "avi" in formats and pts == self._pts:
            # AVI packet times count in decode order: with B-frames they are not the frames'
            # presentation times, and a decoded frame does not carry its own index
            self._pts = None
        fps = float(rate) if rate else 0.0
        self.info = VideoInfo(len(pts), fps, shown_w, shown_h, "pyav")
        self._header = header
        self._cursor: _Cursor | None = None  # where the last decode in frame order stopped

    def get(self, indices: np.ndarray) -> np.ndarray:
        frames = self._get_by_seek(indices) if self._pts is not None else None
        if frames is None:
            frames = self._get_sequential(indices)
        return self._turn.apply(np.stack([frames[i] for i in indices.tolist()]))  # (T, H, W, 3)

    def times(self) -> np.ndarray | None:
        """Presentation time of every frame in seconds; None when the file has none."""
        if self._pts is None or self._time_base is None:
            return None
        return np.asarray(self._pts, dtype=np.float64) * float(self._time_base)

    @contextlib.contextmanager
    def _stream(self) -> Iterator[tuple[Any, Any]]:
        """The file opened again, and its video stream set to decode on ``PYAV_THREADS``."""
        with open_container(self._path) as container:
            yield container, self._threaded(container)

    def _threaded(self, container: Any) -> Any:
        """The video stream of ``container``, set to decode on ``PYAV_THREADS``."""
        stream = video_stream(container, self._path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = PYAV_THREADS
        return stream

    def _rgb(self, frame: Any) -> np.ndarray:
        """The decoded PyAV ``frame`` in RGB at the size decoding asks for."""
        return reformatted(frame, format="rgb24", **self._size).to_ndarray()  # (H, W, 3)

    def _from_start(self) -> _Cursor:
        """A cursor at frame 0 of the file opened again (the one it replaces closed)."""
        self._close_cursor()
        container = open_container(self._path)
        try:
            stream = self._threaded(container)
        except BaseException:
            container.close()
            raise
        self._cursor = _Cursor(container, container.decode(stream))
        return self._cursor

    def _close_cursor(self) -> None:
        if self._cursor is not None:
            self._cursor.container.close()
            self._cursor = None

    def _get_by_seek(self, indices: np.ndarray) -> dict[int, np.ndarray] | None:
        """The frames of ``indices``, decoded from the keyframe before the first; None when
        the frames' times do not match the packets' (``_get_sequential`` then counts frames).

        Raises:
            DecodeError: the decoder stops, or fails, before the last frame wanted, every frame
                wanted before that point decoded: the file cannot be decoded from there on.
        """
        import av

        assert self._pts is not None
        wanted = {self._pts[i]: i for i in set(indices.tolist())}
        last = max(wanted)
        frames: dict[int, np.ndarray] = {}
        reached: int | None = None  # the latest frame time decoded
        with self._stream() as (container, stream):
            container.seek(min(wanted), stream=stream, backward=True, any_frame=False)
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:
                        return None
                    if frame.pts in wanted:
                        frames[wanted[frame.pts]] = self._rgb(frame)
                    reached = frame.pts if reached is None else max(reached, frame.pts)
                    if frame.pts >= last:
                        break
            except av.FFmpegError as err:  # a packet cut short or damaged: nothing decodes past it
                if out_of_open_files(err):
                    raise
        if len(frames) == len(wanted):
            return frames
        missing = [pts for pts, i in wanted.items() if i not in frames]
        if reached is None or min(missing) <= reached:
            return None  # frames whose times are not the packets': count them instead
        raise self._undecodable(bisect.bisect_right(self._pts, reached))

    def _get_sequential(self, indices: np.ndarray) -> dict[int, np.ndarray]:
        """The frames of ``indices``, counted in decode order: from where the last such read
        stopped when none is before it (``Video.read`` of consecutive chunks, as ``data check``
        and ``predict --window`` read, decodes each frame once), else from frame 0.

        Raises:
            DecodeError: the decoder stops, or fails, before the last frame wanted.
        """
        import av

        wanted = set(indices.tolist())
        last = max(wanted)
        cursor = self._cursor
        if cursor is None or min(wanted) < cursor.next:
            cursor = self._from_start()
        frames: dict[int, np.ndarray] = {}
        try:
            while cursor.next <= last:
                frame = next(cursor.frames, None)
                if frame is None:  # the stream ends before the last frame wanted
                    break
                if cursor.next in wanted:
                    frames[cursor.next] = self._rgb(frame)
                cursor.next += 1
        except av.FFmpegError as err:  # a packet cut short or damaged: nothing decodes past it
            if out_of_open_files(err):
                self._close_cursor()
                raise
        except BaseException:  # Ctrl-C, MemoryError: a frame taken may not be counted
            self._close_cursor()
            raise
        if len(frames) != len(wanted):
            self._close_cursor()  # a later read from here would fail the same way
            raise self._undecodable(cursor.next)
        return frames

    def _undecodable(self, first: int) -> DecodeError:
        """The error for a file whose frames from ``first`` on cannot be decoded (the decoder
        stops or fails there: a recording cut short, a partial download), in the same words
        wherever it is found (``octvideo predict``, ``octvideo data check``)."""
        total = self.info.num_frames
        frames = f"frame {first}" if first >= total - 1 else f"frames {first} to {total - 1}"
        where = f"{frames} of {total} (from {self._seconds(first):.1f} s) cannot be decoded"
        return DecodeError(
            self._path,
            _undecodable_reason(where, "the file is truncated or corrupt", self.truncation),
            decoder="pyav",
            frame=first,
        )

    def _seconds(self, index: int) -> float:
        """Time of frame ``index`` from the first frame: by its timestamp where the file has
        them, else ``index / fps``."""
        if self._pts is not None and self._time_base is not None and index < len(self._pts):
            return float((self._pts[index] - self._pts[0]) * self._time_base)
        return index / self.info.fps if self.info.fps > 0 else 0.0


_READERS = {"decord": _DecordReader, "pyav": _PyAVReader}


def _open(path: str, decoder: str, header: _Header | None = None) -> _DecordReader | _PyAVReader:
    try:
        return _READERS[decoder](path, header)
    except DecodeError:
        raise
    except Exception as err:  # decoders raise RuntimeError, av.FFmpegError, IndexError, ...
        if out_of_open_files(err):
            raise  # out of open files: not the file's fault, and no fallback to PyAV
        if decoder == "decord":
            reason = f"decord cannot open it: {_decord_cause(err)}"
            raise DecodeError(path, reason, decoder=decoder) from None  # C++ text: DEBUG log
        raise DecodeError(
            path, f"{decoder} cannot open it: {type(err).__name__}: {err}", decoder=decoder
        ) from err


_T = TypeVar("_T")


def _with_fallback(
    path: str, decoder: str, work: Callable[[_DecordReader | _PyAVReader], _T]
) -> _T:
    """``work`` done with a reader of ``decoder``. Under ``"auto"``: with decord's, then with
    PyAV's when decord's fails (decord's error logged at DEBUG: PyAV's, raised when it fails too,
    says what is wrong with the file), or with PyAV's straight away when PyAV's look at the file
    finds that decord would fail (no video stream, not openable) or misorder it."""
    if decoder != "auto":
        return work(_open(path, decoder))
    header = _read_header(path)
    if header.error is None and header.for_pyav is None:
        try:
            return work(_open(path, "decord", header))
        except DecodeError as err:
            logger.debug("decord failed, trying PyAV: %s", err)
    return work(_open(path, "pyav", header))


def _outside(num: int, indices: np.ndarray) -> str | None:
    """Why ``indices`` cannot be read from a video of ``num`` frames; None when they can."""
    if indices.size == 0 or indices.min() < 0 or indices.max() >= num:
        return f"frame indices must be in [0, {num}), got {indices.tolist()}"
    return None


def _read(reader: _DecordReader | _PyAVReader, path: str, indices: np.ndarray) -> np.ndarray:
    outside = _outside(reader.info.num_frames, indices)
    if outside is not None:
        raise IndexError(f"{path}: {outside}")
    try:
        return reader.get(indices)
    except DecodeError:
        raise
    except Exception as err:  # see _open
        if out_of_open_files(err):
            raise
        decoder = reader.info.decoder
        raise DecodeError(
            path, f"{decoder} failed to decode frames: {type(err).__name__}: {err}", decoder=decoder
        ) from err


def resize_short_side(frames: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """Resize uint8 frames (T, H, W, 3) so that min(H, W) == short_side (antialiased bilinear,
    the one function for both decoders, so they agree); None returns ``frames`` as they are.

    Raises:
        ValueError: ``short_side`` is not None or a whole number from 1 to
            ``MAX_RESIZE_SHORT_SIDE``.
    """
    size = check_short_side(short_side)
    if size is None:
        return frames
    video = frames.permute(0, 3, 1, 2)  # (T, 3, H, W)
    video = TF.resize(video, [size], antialias=True)
    return video.permute(0, 2, 3, 1).contiguous()  # (T, H', W', 3)


def check_decoder(decoder: object) -> str:
    """``decoder`` when it is one of ``DECODERS``.

    Raises:
        ValueError: anything else, named in one line with the decoders taken.
    """
    if not isinstance(decoder, str) or decoder not in DECODERS:
        names = ", ".join(repr(name) for name in DECODERS[:-1])
        raise ValueError(f"decoder must be {names} or {DECODERS[-1]!r}, got {decoder!r}")
    return decoder


def check_short_side(short_side: object) -> int | None:
    """``short_side`` when it is None (keep the size) or a whole number from 1 to
    ``MAX_RESIZE_SHORT_SIDE``.

    Raises:
        ValueError: anything else, in one line naming ``short_side`` and what it takes.
    """
    if short_side is not None and (
        not is_whole(short_side) or not 1 <= short_side <= MAX_RESIZE_SHORT_SIDE
    ):
        raise ValueError(
            f"short_side must be a whole number from 1 to {MAX_RESIZE_SHORT_SIDE} (pixels) or "
            f"None (keep the size), got {short_side!r}"
        )
    return None if short_side is None else int(short_side)  # type: ignore[call-overload]


def frame_indices(indices: object, name: str = "indices") -> np.ndarray:
    """``indices`` as a 1-D int64 array: a flat sequence or 1-D array of whole numbers.

    Raises:
        ValueError: anything else (a float, a bool, a nested list, a single number), in one line
            naming ``name``.
        IndexError: a whole number beyond any video's frames (past int64).
    """
    try:
        array = np.asarray(indices)
    except (ValueError, TypeError):  # a ragged nested list
        array = None
    if array is not None and array.ndim == 1 and array.size == 0:
        return np.zeros(0, dtype=np.int64)  # refused as outside the video, with its frame count
    if array is not None and array.ndim == 1 and array.dtype.kind in "iuO":
        values = array.tolist() if array.dtype.kind == "O" else [array.min(), array.max()]
        if all(is_whole(v) for v in values):
            if not all(-(2**63) <= v < 2**63 for v in values):
                raise IndexError(f"{name}: {reprlib.repr(indices)} is past any video's frames")
            return array.astype(np.int64)
    raise ValueError(
        f"{name} must be a flat sequence of whole frame numbers (0-based), got "
        f"{reprlib.repr(indices)}"
    )


def _check_args(path: str | os.PathLike[str], decoder: str) -> str:
    check_decoder(decoder)
    return check_video_path(path)


def check_video_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string when it is a regular file (through links), without opening it.

    Raises:
        IsADirectoryError: it is a folder (or links to one).
        FileNotFoundError: it does not exist, or is a broken link, a loop of links, a pipe, a
            socket or a device (reading one could wait for ever), named as what it is
            (``paths.why_not_a_file``).
    """
    path = os.fspath(path)
    problem = why_not_a_file(path)
    if problem is None:
        return path
    if problem.endswith("a directory"):
        raise IsADirectoryError(f"{path} {problem}, not a video file")
    if is_missing(problem):
        raise FileNotFoundError(f"video {path} {problem}")
    raise FileNotFoundError(f"{path} {problem}, not a video file")


def decode_clip(
    path: str | os.PathLike[str],
    choose: Callable[[VideoInfo], Sequence[int] | np.ndarray],
    *,
    decoder: str = "auto",
    short_side: int | None = None,
) -> tuple[torch.Tensor, np.ndarray, VideoInfo]:
    """Open a video once, choose frame indices from its info, and decode them.

    Args:
        path: the video file.
        choose: maps the video's ``VideoInfo`` to the frame indices to decode (may repeat).
            With ``decoder="auto"`` it is called again if PyAV takes over, so it must be a pure
            function of the info.
        decoder: ``"decord"``, ``"pyav"`` or ``"auto"``.
        short_side: resize so that the shorter side has this many pixels; None keeps the size.

    Returns:
        The frames, uint8 (T, H, W, 3) RGB; the indices decoded; the info of the decoder used.

    Raises:
        FileNotFoundError: the file does not exist.
        DecodeError: the decoder(s) failed.
        IndexError: an index ``choose`` gives is outside the video.
        ValueError: ``decoder`` or ``short_side`` is not one the docstring names (before the file
            is opened), or ``choose`` gives something other than whole numbers.
    """
    check_short_side(short_side)
    path = _check_args(path, decoder)

    def work(
        reader: _DecordReader | _PyAVReader,
    ) -> tuple[_DecordReader | _PyAVReader, np.ndarray, np.ndarray]:
        indices = frame_indices(choose(reader.info), "the indices choose gives")
        return reader, indices, _read(reader, path, indices)

    reader, indices, array = _with_fallback(path, decoder, work)
    frames = torch.from_numpy(array)  # (T, H, W, 3)
    return resize_short_side(frames, short_side), indices, reader.info


class Video:
    """A video opened (and indexed) once, for many reads: a long video read in pieces.

    Args:
        path: the video file.
        decoder: ``"decord"``, ``"pyav"`` or ``"auto"``. Under ``"auto"`` a read that decord fails
            is retried with PyAV, which then serves the later reads too.

    Attributes:
        path: the file, as a string.
        info: the ``VideoInfo`` of the decoder that opened it.

    Raises:
        FileNotFoundError: the file does not exist.
        DecodeError: the decoder(s) cannot open it.
    """

    def __init__(self, path: str | os.PathLike[str], *, decoder: str = "auto") -> None:
        self.path = _check_args(path, decoder)
        self._decoder = decoder
        self._reader = _with_fallback(self.path, decoder, lambda reader: reader)
        self.info = self._reader.info

    @property
    def truncation(self) -> Truncation | ShortOfLength | ShortOfSize | None:
        """What the file's index (an MP4's, ``Truncation``) lists past the frames the decoder
        finds, or what a Matroska, WebM or AVI file shorter than its declared size misses (the
        seconds of its header's length, ``ShortOfLength``, or bytes, ``ShortOfSize``): a partial
        download; None when it holds all it lists, or its container declares nothing to trust
        (``octvideo.data.truncation``)."""
        return self._reader.truncation

    def check_whole(self) -> None:
        """Refuse a file whose index or header lists frames it does not hold, though those it
        holds may all decode (a partial download cut between two frames, or of a container
        whose index is written last).

        Raises:
            DecodeError: ``truncation`` is not None, naming the first frame missing.
        """
        truncation, info = self.truncation, self._reader.info
        if truncation is not None:
            raise DecodeError(
                self.path,
                f"{truncation}: the file is truncated",
                decoder=info.decoder,
                frame=info.num_frames,
            )

    def times(self) -> np.ndarray | None:
        """Time of every frame in seconds from the first frame (index order); None when the file
        has no usable timestamps (missing, not increasing, or not one per frame)."""
        try:
            times = self._reader.times()
        except Exception:  # decord raises on files without an index of times
            return None
        if times is None or len(times) != self.info.num_frames:
            return None
        times = np.asarray(times, dtype=np.float64)
        if not np.isfinite(times).all() or (np.diff(times) <= 0).any():
            return None  # decord gives -3e17 for every frame of an AVI with B-frames
        return times - times[0]

    def read(
        self, indices: Sequence[int] | np.ndarray, *, short_side: int | None = None
    ) -> torch.Tensor:
        """Decode frames (0-based, may repeat, any order) -> uint8 Tensor (T, H, W, 3), RGB.

        Raises:
            DecodeError: the decoder(s) failed, or PyAV (taking over from decord) finds fewer
                frames than ``indices`` need.
            IndexError: an index is outside the video.
            ValueError: ``indices`` are not whole numbers, or ``short_side`` is not None or a
                whole number from 1 to ``MAX_RESIZE_SHORT_SIDE`` (before any decoding).
        """
        indices = frame_indices(indices)
        check_short_side(short_side)
        try:
            frames = _read(self._reader, self.path, indices)
        except DecodeError as err:
            if self._decoder != "auto" or self._reader.info.decoder != "decord":
                raise
            logger.debug("decord failed, trying PyAV: %s", err)
            try:
                self._reader = _open(self.path, "pyav")
                outside = _outside(self._reader.info.num_frames, indices)
                if outside is not None:  # PyAV counts fewer frames than decord did
                    raise DecodeError(self.path, outside, decoder="pyav", frame=int(indices.max()))
                frames = _read(self._reader, self.path, indices)
            except DecodeError as second:  # PyAV's words; decord's went to the DEBUG log
                raise second from None
        return resize_short_side(torch.from_numpy(frames), short_side)  # (T, H, W, 3)


def decode(
    path: str | os.PathLike[str],
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    decoder: str = "auto",
    short_side: int | None = None,
) -> torch.Tensor:
    """Decode frames of a video.

    Args:
        path: the video file.
        indices: frame indices (whole numbers, 0-based, may repeat, any order), a flat sequence
            or 1-D array; None decodes every frame.
        decoder: ``"decord"``, ``"pyav"`` or ``"auto"``.
        short_side: resize so that the shorter side has this many pixels (1 to
            ``MAX_RESIZE_SHORT_SIDE``); None keeps the size.

    Returns:
        uint8 Tensor (T, H, W, 3), RGB, frames in the order of ``indices``.

    Raises:
        FileNotFoundError: the file does not exist.
        DecodeError: the decoder(s) failed.
        IndexError: an index is outside the video.
        ValueError: ``indices`` are not whole numbers, or ``decoder`` or ``short_side`` is not
            one the docstring names (before the file is opened).
    """
    chosen = None if indices is None else frame_indices(indices)

    def choose(info: VideoInfo) -> np.ndarray:
        return np.arange(info.num_frames) if chosen is None else chosen

    return decode_clip(path, choose, decoder=decoder, short_side=short_side)[0]


def probe(path: str | os.PathLike[str], *, decoder: str = "auto") -> VideoInfo:
    """Frame count, fps and size of a video, as the given decoder sees them.

    Raises:
        FileNotFoundError: the file does not exist.
        DecodeError: the decoder(s) cannot open it.
    """
    path = _check_args(path, decoder)
    return _with_fallback(path, decoder, lambda reader: reader.info)
