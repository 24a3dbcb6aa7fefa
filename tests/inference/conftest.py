"""Fixtures of the inference tests: encoded test videos and a small checkpoint in the format
``octvideo train`` writes (weights under ``model.``, metadata under ``hyper_parameters.meta``)."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from octvideo.engine.checkpoint import atomic_save
from octvideo.inference.predictor import model_from_meta

CLASSES = ["left", "right", "still"]
META = {
    "name": "tiny",
    "model": {
        "name": "c2d_r18",
        "num_classes": 3,
        "alpha": 0.25,
        "octave": [1, 2, 2],
        "dropout": 0.0,
        "extra": {"width": 8},
    },
    "classes": CLASSES,
    "normalization": {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]},
    "clip": {
        "num_frames": 4,
        "sampling_rate": 2,
        "slowfast_alpha": None,
        "test_short_side": 32,
        "test_crop_size": 32,
        "test_num_clips": 3,
        "test_num_crops": 3,
    },
}


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


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = model_from_meta(META["model"])
    with torch.no_grad():  # non-trivial BN statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": META}}, path)
    return path
