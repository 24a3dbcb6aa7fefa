"""Helpers of the inference tests: encoding test videos with PyAV (moving squares, audio, variable
frame rates, a first frame at a time other than 0, an index-first MP4), and a checkpoint whose
model overflows."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np


def encode(
    path: Path,
    n: int,
    *,
    rate: int = 10,
    height: int = 48,
    width: int = 64,
    codec: str = "libx264",
    audio: bool = False,
    pts_ms: list[int] | None = None,
) -> Path:
    """A square moving right over a noisy background; optional audio and frame timestamps."""
    rng = np.random.default_rng(n + height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i in range(n):
            array = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
            x = (i * 3) % max(width - 8, 1)
            array[height // 3 : height // 3 + 8, x : x + 8] = 230
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound is not None:
            samples = (0.1 * np.sin(np.arange(16000 * n // rate) / 10)).astype(np.float32)
            for start in range(0, samples.size, 1024):
                chunk = samples[None, start : start + 1024]
                if chunk.shape[1] < 1024:
                    break
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate = 16000
                container.mux(sound.encode(af))
            container.mux(sound.encode())
    return path


def encode_timed(path: Path, pts_ms: list[int]) -> Path:
    """Noise frames (H.264, 10 fps nominal) at the given millisecond timestamps: a variable frame
    rate, or a first frame at a time other than 0."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for pts in pts_ms:
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), np.uint8))
            frame.pts, frame.time_base = pts, fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def faststart(path: Path, n: int = 60) -> Path:
    """An MP4 with its index first, so that a truncated copy still opens and predicts."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(n):
            array = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


def overflowing_checkpoint(checkpoint: Path, out: Path) -> Path:
    """``checkpoint`` with its stem's weights times 1e37: all finite, so it loads, but its
    activations overflow float32 and every logit is NaN (a diverged run's checkpoint)."""
    import torch

    from octvideo.engine.checkpoint import atomic_save

    saved = torch.load(checkpoint, weights_only=True)
    saved["state_dict"]["model.stem.conv.conv_hh.weight"].mul_(1e37)
    atomic_save(saved, out)
    return out
