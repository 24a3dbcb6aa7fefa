"""Writes a video back with its predictions drawn on every frame.

Each frame shows the top classes of the window whose centre is nearest to the frame's time (the
earlier of two as near; the video-level prediction when there are no windows), found by bisection in
the windows' centres sorted once, so a frame costs log(windows), not windows (up to
``MAX_WINDOWS``). Times count from the first frame, as the windows do: a clip cut from a longer
recording keeps its start time in MKV and MP4 (its first frame at 10 s, say), which is not part of
the windows' times. Each output frame keeps its source time (from 0, in the source's time base, no
B-frames), so a variable-frame-rate video keeps its length and its labels play when their frames
do; and frames are turned by the source's display matrix before drawing, as decoding turns them
(``octvideo.data.orientation``), so a phone video shot upright is written upright,
labels included, with no matrix. The input is decoded and the output encoded one frame at a time
with PyAV, so long videos need no more memory than short ones. The output is written to a temporary
file beside it and renamed when complete (``octvideo.paths.AtomicOutput``): a render that fails
half-way leaves no half file and an earlier file of that name as it was, a symbolic link at the
output is refused, and a full disk is one line (``OutputWriteError``). Every render carries
``RENDER_TAG`` in its container's comment, so that ``render`` and ``predict`` know an earlier
render by its content (``is_tagged_render``), whatever its name, and replace it where they refuse
a user's video (``check_replaceable``).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from octvideo.data.decoding import reformatted, video_stream
from octvideo.data.orientation import UPRIGHT, display_matrix, orientation_of
from octvideo.data.synth import video_comment
from octvideo.inference.inputs import RENDER_EXTENSIONS, is_render_name
from octvideo.inference.predictor import Prediction, VideoResult, check_result
from octvideo.paths import atomic_output, check_output_file, keep_unless_earlier, same_file

# the container comment every render carries, whatever its name: ``is_tagged_render`` knows an
# earlier render by it, which ``predict --render`` may replace
RENDER_TAG = "octvideo predict render"


def _encoder_name() -> str:
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        return name
    raise RuntimeError("PyAV has neither libx264 nor mpeg4 encoders; cannot render")


class _Centres:
    """The windows' centres in increasing order (stable: of equal centres, the earlier window
    first), and the window of each."""

    def __init__(self, windows: Sequence[Prediction]) -> None:
        centres = [(w.start + w.end) / 2 for w in windows]
        order = sorted(range(len(centres)), key=centres.__getitem__)
        self.times = [centres[k] for k in order]
        self.windows = [windows[k] for k in order]


def _label_for(result: VideoResult, t: float, centres: _Centres | None = None) -> Prediction:
    """The window whose centre is nearest to ``t`` (of two as near, the earlier), or the video's
    prediction without windows. ``centres``: ``_Centres(result.windows)``, made once a video."""
    if not result.windows:
        return result.video
    if centres is None:
        centres = _Centres(result.windows)
    i = bisect.bisect_left(centres.times, t)  # times[i - 1] < t <= times[i]
    if i == 0:
        return centres.windows[0]
    if i == len(centres.times) or t - centres.times[i - 1] <= centres.times[i] - t:
        return centres.windows[i - 1]
    return centres.windows[i]


def render(
    result: VideoResult, classes: Sequence[str], out: str | os.PathLike[str], *, k: int = 3
) -> Path:
    """Draws ``result``'s top ``k`` classes onto the frames of ``result.path`` and writes ``out``.

    Raises:
        TypeError: ``result`` is no ``VideoResult``.
        ValueError: the result is a failure or has no source file (it was predicted from frames
            given: ``VideoResult.from_frames``), ``out`` is not a video name or is the source.
        UsageError: ``out`` is a symbolic link, a folder, in a folder that cannot be written,
            or a file that is no earlier render or is read-only (``check_replaceable``).
        OutputWriteError: ``out`` cannot be written (full disk, quota, read-only file system).
        DecodeError: the source has no video stream PyAV can decode (``video_stream``: a cover
            picture is none).
        av.FFmpegError, OSError: the source cannot be decoded to its end, or the encoder fails.
    """
    check_result(result, "render")
    if not result.ok or result.video is None:
        raise ValueError(f"cannot render {result.path}: it has no prediction ({result.error})")
    source = result.source_file("render it")  # never a file named as frames given are
    out = Path(out)
    if out.suffix.lower() not in RENDER_EXTENSIONS:
        raise ValueError(f"cannot render to {out}: use a {', '.join(RENDER_EXTENSIONS)} file name")
    if same_file(out, source):
        raise ValueError(f"cannot render {source} onto itself; choose another output file")
    # a folder, a link, a pipe or a device, a folder it cannot write in (a read-only mount)
    check_output_file("--render", out)
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out, "--render") as tmp:
        _draw(result, source, classes, tmp, k)
    return out


def is_render(path: Path) -> bool:
    """Whether the file ``path`` is an earlier render: one ``render`` wrote, whatever its name
    (``is_tagged_render``: the container's comment); one named as renders are,
    ``<name>.pred.<ext>`` (``is_render_name``: a folder's renders, and those written before the
    tag); or an empty file, which holds nothing to lose.

    Raises:
        OSError: the file cannot be read.
    """
    return is_render_name(path.name) or path.stat().st_size == 0 or is_tagged_render(path)


def check_replaceable(out: Path) -> None:
    """Refuses an existing file at ``out`` that is no earlier render (``is_render``), or is
    read-only (``paths.keep_unless_earlier``): ``render`` and ``predict --render`` replace only
    their own videos, never a user's.

    Raises:
        UsageError: one line naming ``--render`` and the file.
    """
    what = f"a render of predict (a video it wrote, or one named <name>.pred{out.suffix})"
    keep_unless_earlier("--render", out, is_render, what)


def is_tagged_render(path: str | os.PathLike[str]) -> bool:
    """Whether the file ``path`` is a video ``render`` wrote: its container's comment is
    ``RENDER_TAG`` (MP4, MOV, M4V, AVI and MKV all keep it; MKV reads it back as ``COMMENT``).
    Only the container's header is read; a file that is no video is no render.

    Raises:
        OSError: the file cannot be opened.
    """
    return video_comment(path) == RENDER_TAG


def _draw(result: VideoResult, source: str, classes: Sequence[str], out: Path, k: int) -> None:
    font = ImageFont.load_default()
    with av.open(source) as src, av.open(str(out), "w") as dst:
        dst.metadata["comment"] = RENDER_TAG
        in_stream = video_stream(src, source)  # the one decoding reads, not a cover
        rate = in_stream.average_rate or Fraction(round(result.fps or 30))
        time_base = in_stream.time_base or Fraction(1, 90_000)
        stream = None
        turn = UPRIGHT
        width = height = 0
        origin = None  # time of the first frame: window times count from it
        first_pts = last_pts = None
        centres = _Centres(result.windows)
        for index, frame in enumerate(src.decode(in_stream)):
            if stream is None:  # the first frame's display matrix turns them all, as decoding does
                turn = orientation_of(display_matrix(frame))
                width, height = turn.size(frame.width, frame.height)
                width, height = width // 2 * 2, height // 2 * 2  # yuv420p needs even sizes
                stream = _add_stream(dst, rate, time_base, width, height)
            if frame.time is None:
                t = index / float(rate)
            else:
                if origin is None:
                    origin = float(frame.time) - index / float(rate)
                t = float(frame.time) - origin
            rgb = reformatted(frame, format="rgb24").to_ndarray()
            array = turn.apply(rgb)[:height, :width]  # (H, W, 3)
            image = Image.fromarray(array)
            draw = ImageDraw.Draw(image)
            pred = _label_for(result, t, centres)
            lines = [f"{label} {100 * prob:.0f}%" for label, prob in pred.top(classes, k)]
            box_h = 12 * len(lines) + 6
            draw.rectangle((0, 0, width, box_h), fill=(0, 0, 0))
            for i, line in enumerate(lines):
                draw.text((4, 3 + 12 * i), line, fill=(255, 255, 255), font=font)
            new = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            # the source's own times (a variable frame rate kept), from 0, strictly increasing
            if frame.pts is not None and first_pts is None:
                first_pts = frame.pts
            if frame.pts is not None and first_pts is not None:
                pts = frame.pts - first_pts
            else:
                pts = round(t / time_base)
            pts = pts if last_pts is None else max(pts, last_pts + 1)
            new.pts, new.time_base, last_pts = pts, time_base, pts
            if frame.duration:
                new.duration = frame.duration
            for packet in stream.encode(new):
                dst.mux(packet)
        if stream is None:  # no frame decoded: an empty video of the stream's size
            width = in_stream.codec_context.width // 2 * 2
            height = in_stream.codec_context.height // 2 * 2
            stream = _add_stream(dst, rate, time_base, width, height)
        for packet in stream.encode():
            dst.mux(packet)


def _add_stream(
    dst: av.container.OutputContainer, rate: Fraction, time_base: Fraction, width: int, height: int
) -> av.video.stream.VideoStream:
    """The output's video stream, counting time in the source's time base, so that each frame
    keeps its source time. No B-frames: with them the encoder makes decode times from earlier
    frames' times, which at a change of frame rate shortens the MP4's length (10.5 s as 9.65 s),
    and AVI, which stores decode times only, would play frames out of order."""
    stream = dst.add_stream(_encoder_name(), rate=rate, options={"bf": "0"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = stream.codec_context.time_base = time_base
    return stream
