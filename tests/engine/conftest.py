"""Shared fixtures: a tiny synthetic video set, the overrides of a tiny, fast run, and the
reference batch-norm statistics precise BN is checked against."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch

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


def bn_population_moments(
    model: torch.nn.Module, clips: Iterable[torch.Tensor | list[torch.Tensor]]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per batch norm (``modules()`` order): the mean and the biased variance of its input over
    every clip of every batch, the model run in float64 in training mode (batch statistics) on
    a copy: what precise BN should store."""
    model = copy.deepcopy(model).double().train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    seen: dict[torch.nn.Module, list[torch.Tensor]] = {m: [] for m in norms}

    def keep(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach()
        seen[module].append(x.transpose(0, 1).reshape(x.shape[1], -1))  # (C, N*T*H*W)

    hooks = [m.register_forward_pre_hook(keep) for m in norms]
    with torch.no_grad():
        for clip in clips:
            model(clip.double() if isinstance(clip, torch.Tensor) else [c.double() for c in clip])
    for hook in hooks:
        hook.remove()
    moments = []
    for m in norms:
        x = torch.cat(seen[m], dim=1)
        moments.append((x.mean(dim=1), x.var(dim=1, unbiased=False)))
    return moments
