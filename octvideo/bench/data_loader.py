"""``data-loader``: data-loader throughput, training clips per second, decord vs PyAV, 0/1/2
workers.

Two datasets, both written to a temporary folder by this benchmark:
    synth   ``octvideo data synth`` clips (64x64, 16 frames), clips of 8 frames at stride 2,
            scale 64-80, crop 56;
    320p    H.264 clips at 428x320 (5 s at 30 fps, moving noise texture, like a prepared
            Kinetics video), clips of 8 frames at stride 8, scale 256-320, crop 224 (the paper's).

    python tools/bench.py data-loader [--batches 6] [--videos-320 16]

Prints one Markdown table row per setting. Timing starts after the first batch (worker start-up
excluded) and covers ``--batches`` further batches of 8.

Reference: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019: the
training clips (scale jitter 256-320, crop 224) whose loading this measures.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from octvideo.argtypes import bounded_int
from octvideo.data import DataConfig, VideoDataModule
from octvideo.data.synth import generate_synthetic, write_video


def make_320(root: Path, count: int, frames: int = 150) -> Path:
    """``count`` 428x320 H.264 videos of a drifting noise texture and a lines list."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        coarse = rng.integers(0, 256, (40, (428 + frames) // 8 + 1, 3), dtype=np.uint8)
        texture = coarse.repeat(8, axis=0).repeat(8, axis=1)  # smooth enough to encode like video
        clip = np.stack([texture[:, t : t + 428] for t in range(frames)])  # (T, 320, 428, 3)
        write_video(root / f"v{i:03d}.mp4", clip, fps=30)
        lines.append(f"v{i:03d}.mp4 {i % 4}\n")
    (root / "train.txt").write_text("".join(lines))
    return root / "train.txt"


def synth_config(train_list: Path, size: int = 64) -> DataConfig:
    """Clips of 8 frames at stride 2 from synthetic videos of ``size`` pixels, the short side
    jittered over size-1.25 size and cropped to 7/8 of it (64: scale 64-80, crop 56)."""
    crop = size * 7 // 8
    return DataConfig(
        train_list=str(train_list),
        num_frames=8,
        sampling_rate=2,
        train_jitter_scales=(size, size * 5 // 4),
        train_crop_size=crop,
        val_crop_size=crop,
        test_short_side=size,
        test_crop_size=crop,
    )


def clips_per_second(
    cfg: DataConfig, batches: int, timer: Callable[[], float] = time.perf_counter
) -> float:
    """Training clips per second of ``cfg``'s loader over ``batches`` batches after the first."""
    loader = VideoDataModule(cfg).train_dataloader()

    def forever():
        for epoch in range(10**6):  # persistent workers: a new epoch does not restart them
            loader.sampler.set_epoch(epoch)
            yield from loader

    iterator = forever()
    next(iterator)  # start-up (workers, first files) excluded
    start, seen = timer(), 0
    for _ in range(batches):
        seen += len(next(iterator)["label"])
    return seen / (timer() - start)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py data-loader``."""
    parser.add_argument("--batches", type=bounded_int(1000), default=6)
    parser.add_argument("--videos-320", type=bounded_int(1000), default=16)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        synth = generate_synthetic(Path(tmp) / "synth", 120, 0, progress=False)
        (Path(tmp) / "k320").mkdir()
        k320 = make_320(Path(tmp) / "k320", args.videos_320)
        settings = {
            "synth 64px, 8x2, crop 56": synth_config(synth / "train.txt"),
            "320p H.264, 8x8, crop 224": DataConfig(train_list=str(k320)),
        }
        print("| data | decoder | workers | clips/s |")  # noqa: T201
        print("| --- | --- | --- | --- |")  # noqa: T201
        for name, base in settings.items():
            for decoder in ("decord", "pyav"):
                for workers in (0, 1, 2):
                    cfg = DataConfig(
                        **{
                            **base.__dict__,
                            "decoder": decoder,
                            "num_workers": workers,
                            "batch_size": 8,
                            "persistent_workers": False,
                        }
                    )
                    rate = clips_per_second(cfg, args.batches)
                    print(f"| {name} | {decoder} | {workers} | {rate:.1f} |")  # noqa: T201

    return 0
