"""Shared fixtures: a tiny synthetic video set and the overrides of a tiny, fast run."""

from __future__ import annotations

from pathlib import Path

import pytest

from octvideo.data.synth import generate_synthetic

NUM_CLASSES = 6  # the synthetic set's classes


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 training and 6 validation clips of 8 frames at 32x32, real H.264 files."""
    out = tmp_path_factory.mktemp("synth")
    return generate_synthetic(out, num_train=12, num_val=6, size=32, frames=8, progress=False)


def tiny_overrides(data: Path, **extra: object) -> list[str]:
    """A run small enough for a unit test: a width-4 Oct-I3D-18 on 4 x 32 x 32 clips."""
    settings: dict[str, object] = {
        "model.name": "i3d_r18",
        "model.num_classes": NUM_CLASSES,
        "model.alpha": 0.25,
        "model.dropout": 0.0,
        "model.extra": "{width: 4}",
        "data.train_list": data / "train.txt",
        "data.val_list": data / "val.txt",
        "data.classes_file": data / "classes.txt",
        "data.decoder": "pyav",
        "data.num_frames": 4,
        "data.sampling_rate": 2,
        "data.train_jitter_scales": "[32, 32]",
        "data.train_crop_size": 32,
        "data.val_crop_size": 32,
        "data.test_short_side": 32,
        "data.test_crop_size": 32,
        "data.test_num_clips": 2,
        "data.test_num_crops": 1,
        "data.batch_size": 4,
        "data.num_workers": 0,
        "optim.lr": 0.05,
        "optim.lr_reference_batch": 4,
        "optim.weight_decay": 0.0,
        "trainer.max_epochs": 2,
        "trainer.accelerator": "cpu",
        "trainer.log_every_n_steps": 1,
        "trainer.progress_bar": False,
        "output.tensorboard": False,
        "test.count_flops": False,
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]
