"""The bad-input matrix of the reliability tests: how each input is made, and its outcome.

Each entry is a path and the outcome octvideo defines for it: ``ok`` (it is a usable video) or
``bad`` (reported as failed, never a crash and never a substitute).
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

GOOD_FRAMES = 12


def write_video(
    path: Path,
    n: int = GOOD_FRAMES,
    *,
    height: int = 48,
    width: int = 64,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    in_format: str = "rgb24",
    metadata: dict[str, str] | None = None,
    quarter_turns: int = 0,
) -> Path:
    """``n`` random frames, stored ``width`` x ``height``; ``quarter_turns`` (1 to 3) writes a
    display matrix that turns them that many times 90 degrees counter-clockwise, as a phone writes
    one for a video shot upright (a ``rotate`` tag in the stream metadata writes none: PyAV 18
    takes only the matrix)."""
    rng = np.random.default_rng(n + width)
    with av.open(str(path), "w") as container:
        if metadata:
            container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if quarter_turns:
            # FFmpeg's (a, b, c, d) of a counter-clockwise quarter turn, in 16.16 fixed point
            a, b, c, d = [(0, -1, 1, 0), (-1, 0, 0, -1), (0, 1, -1, 0)][quarter_turns - 1]
            stream.set_display_matrix([a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30])
        channels = 1 if in_format == "gray" else 3
        for _ in range(n):
            array = rng.integers(0, 255, (height, width, channels), dtype=np.uint8)
            if channels == 1:
                array = array[..., 0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format=in_format)))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
        for start in range(0, samples.size - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="fltp", layout="mono"
            )
            frame.sample_rate = 16000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


# paths that are no regular file, by what ``paths.why_not_a_file`` says each is
NO_FILES = ["pipe", "link to a pipe", "link to a device", "broken symlink", "symlink loop"]

# entries of a class folder named like videos that are no video file, by kind
ODD_ENTRIES = {
    "dangling.mp4": "broken symlink",
    "loop.mp4": "symlink loop",
    "fifo.mp4": "pipe",
    "device.mp4": "link to a device",
}


def make_no_file(path: Path, kind: str) -> str:
    """Makes ``path`` a ``kind`` of ``NO_FILES`` (a link's target beside it) and returns what
    a refusal says it is ("is a pipe", "is a broken symlink (to gone)", ...)."""
    if kind == "pipe":
        os.mkfifo(path)
        return "is a pipe"
    if kind == "link to a pipe":
        os.mkfifo(path.with_name(f"{path.name}.fifo"))
        path.symlink_to(f"{path.name}.fifo")
        return "links to a pipe"
    if kind == "link to a device":
        path.symlink_to(os.devnull)
        return "links to a device"
    if kind == "broken symlink":
        path.symlink_to("gone")
        return "is a broken symlink (to gone)"
    assert kind == "symlink loop", kind
    path.symlink_to(path.name)
    return "is a symlink loop"


# name -> expected outcome ("ok": decodes and gets a prediction; "bad": reported as failed)
EXPECTED = {
    "zero_byte.mp4": "bad",
    "truncated.mp4": "bad",
    "not_video.mp4": "bad",
    "audio_only.mp4": "bad",
    "one_frame.mp4": "ok",
    "wide_10000x10.mp4": "bad",
    "grayscale.mkv": "ok",
    "rotated.mp4": "ok",
    "broken_utf8_meta.mp4": "ok",
    "dir_named.mp4": "bad",
    "symlink_loop.mp4": "bad",
    "fifo.mp4": "bad",  # a named pipe: opening it waits for a writer
    "broken_link.mp4": "bad",  # a dataset moved, its links left behind
    "device_link.mp4": "bad",  # reading it could take for ever (/dev/zero)
    "spaces and ünïcødé 東京.mp4": "ok",
}
