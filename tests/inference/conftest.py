"""Fixtures of the inference tests: encoded test videos (the checkpoint is in tests/conftest.py)."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest


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


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_videos")
    gaps = [50 if i % 4 else 200 for i in range(39)]
    files = {
        "short": encode(root / "short.mp4", 6),
        "long": encode(root / "long.mp4", 95),  # 9.5 s at 10 fps
        "odd": encode(root / "odd size.mp4", 20, height=37, width=53, codec="mpeg4"),
        "audio": encode(root / "with_audio.mp4", 30, audio=True),
        "vfr": encode(root / "vfr.mp4", 40, pts_ms=np.cumsum([0, *gaps]).tolist()),
    }
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    files["corrupt"] = corrupt
    return files


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
