"""``tools/bench.py data-loader`` (octvideo.bench.data_loader): the 320p videos it writes, and its
rate on an injected clock (no real time is asserted)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from octvideo.bench.cli import parse_args
from octvideo.bench.data_loader import clips_per_second, make_320, synth_config
from octvideo.data.decoding import probe
from octvideo.data.synth import generate_synthetic


def test_320p_videos_are_listed_with_four_labels_in_turn(tmp_path: Path) -> None:
    listed = make_320(tmp_path, 5, frames=4)
    lines = listed.read_text().splitlines()
    assert lines == [f"v{i:03d}.mp4 {i % 4}" for i in range(5)]
    info = probe(tmp_path / "v004.mp4")
    assert (info.width, info.height, info.num_frames, info.fps) == (428, 320, 4, 30.0)


def test_synth_setting_scales_with_the_frame_size() -> None:
    cfg = synth_config(Path("train.txt"))  # the table's "synth 64px, 8x2, crop 56"
    assert (cfg.num_frames, cfg.sampling_rate, cfg.train_jitter_scales) == (8, 2, (64, 80))
    assert (cfg.train_crop_size, cfg.val_crop_size, cfg.test_crop_size) == (56, 56, 56)
    assert synth_config(Path("train.txt"), size=32).train_jitter_scales == (32, 40)


def test_rate_counts_the_clips_after_the_first_batch(tmp_path: Path) -> None:
    synth = generate_synthetic(tmp_path / "synth", 3, 0, size=32, frames=16, progress=False)
    cfg = dataclasses.replace(
        synth_config(synth / "train.txt", size=32), batch_size=2, num_workers=0, decoder="pyav"
    )
    readings = iter([10.0, 14.0])  # start, end: 4 s for 3 batches of 2 (epochs run on)
    assert clips_per_second(cfg, 3, timer=lambda: next(readings)) == pytest.approx(1.5)


def test_options_keep_their_names() -> None:
    args = parse_args(["data-loader", "--batches", "2", "--videos-320", "3"])
    assert (args.batches, args.videos_320) == (2, 3)
    with pytest.raises(SystemExit):
        parse_args(["data-loader", "--batches", "0"])
