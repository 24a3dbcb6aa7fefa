"""Data-loader throughput: training clips per second, decord vs PyAV, 0/1/2 workers.

Two datasets, both written to a temporary folder by this script:
    synth   ``octvideo data synth`` clips (64x64, 16 frames), clips of 8 frames at stride 2,
            scale 64-80, crop 56;
    320p    H.264 clips at 428x320 (5 s at 30 fps, moving noise texture, like a prepared
            Kinetics video), clips of 8 frames at stride 8, scale 256-320, crop 224 (the paper's).

    .venv/bin/python tools/bench_data_loader.py [--batches 6] [--videos-320 16]

Prints one Markdown table row per setting. Timing starts after the first batch (worker start-up
excluded) and covers ``--batches`` further batches of 8.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

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


def clips_per_second(cfg: DataConfig, batches: int) -> float:
    loader = VideoDataModule(cfg).train_dataloader()

    def forever():
        for epoch in range(10**6):  # persistent workers: a new epoch does not restart them
            loader.sampler.set_epoch(epoch)
            yield from loader

    iterator = forever()
    next(iterator)  # start-up (workers, first files) excluded
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(iterator)["label"])
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--videos-320", type=int, default=16)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        synth = generate_synthetic(Path(tmp) / "synth", 120, 0, progress=False)
        (Path(tmp) / "k320").mkdir()
        k320 = make_320(Path(tmp) / "k320", args.videos_320)
        settings = {
            "synth 64px, 8x2, crop 56": DataConfig(
                train_list=str(synth / "train.txt"),
                num_frames=8,
                sampling_rate=2,
                train_jitter_scales=(64, 80),
                train_crop_size=56,
                val_crop_size=56,
                test_short_side=64,
                test_crop_size=56,
            ),
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


if __name__ == "__main__":
    main()
