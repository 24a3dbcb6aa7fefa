"""The zoo recipe knowledge import and train share: head pools equal PyTorchVideo's own zoo
models', a SlowFast's speed ratio from its stride, and a zoo SlowFast file's lateral kernel named
with the recipe it shows."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

from octvideo.engine.zoo_recipes import (
    lateral_kernel_problem,
    speed_ratio,
    warn_other_speed,
    zoo_head_pool,
)
from octvideo.models import create_model

# a PyTorchVideo SlowFast file's first lateral connection, at the 4x16 recipe's kernel of 5
LATERAL_4X16 = {
    "blocks.0.multipathway_fusion.conv_fast_to_slow.weight": torch.zeros(16, 8, 5, 1, 1)
}


@pytest.mark.parametrize(
    ("name", "hub_name", "clip"),
    [
        ("slow_r50", "slow_r50", (8, 8)),
        ("c2d_r50", "c2d_r50", (8, 8)),
        ("i3d_r50", "i3d_r50", (8, 8)),
        ("slowfast_r50", "slowfast_r50", (8, 8)),
        ("slowfast_r101", "slowfast_r101", (8, 8)),
    ],
)
def test_zoo_head_pool_is_the_head_kernels_of_pytorchvideos_own_zoo_models(
    name: str, hub_name: str, clip: tuple[int, int]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub

    with torch.device("meta"):  # shapes only: no weights are made
        net = getattr(hub, hub_name)(pretrained=False)
    kernels = [list(m.kernel_size) for m in net.modules() if isinstance(m, nn.AvgPool3d)]
    want = zoo_head_pool(name, *clip)
    assert kernels == (want if name.startswith("slowfast") else [want])


@pytest.mark.parametrize(("tau", "alpha"), [(8, 4), (16, 8), (4, 2), (2, 1), (1, 1)])
def test_speed_ratio_is_half_the_stride_and_at_least_one(tau: int, alpha: int) -> None:
    assert speed_ratio(tau) == alpha


def _slowfast(**extra: int) -> nn.Module:
    with torch.device("meta"):  # shapes only
        return create_model("slowfast_r50", **extra)


def test_a_lateral_kernel_of_another_recipe_names_that_recipes_settings() -> None:
    # the default slowfast_r50 is the 8x8 recipe's: a lateral kernel of 7
    assert lateral_kernel_problem("slowfast_r50", LATERAL_4X16, _slowfast()) == (
        "its weights' lateral kernel of 5 frames is the zoo's SlowFast R50 4x16's: set "
        "model.extra.fusion_kernel=5 model.extra.slowfast_alpha=8 with its clip, "
        "data.num_frames=32 data.sampling_rate=2 data.slowfast_alpha=8, or import it "
        "('octvideo import', docs/zoo.md), whose run config sets them"
    )
    assert lateral_kernel_problem("slowfast_r50", LATERAL_4X16, _slowfast(fusion_kernel=5)) is None
    assert lateral_kernel_problem("slow_r50", LATERAL_4X16, _slowfast()) is None  # no SlowFast


@pytest.mark.parametrize(("speed", "warned"), [(4, True), (8, False)])
def test_a_speed_ratio_other_than_the_recipes_is_a_warning(speed: int, warned: bool, caplog):
    model = _slowfast(fusion_kernel=5, slowfast_alpha=speed)
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.zoo_recipes"):
        warn_other_speed("sf.pyth", "slowfast_r50", LATERAL_4X16, model)
    assert caplog.messages == (
        [
            "model.extra.slowfast_alpha=4: the lateral kernel of sf.pyth, 5 frames, is the zoo's "
            "SlowFast R50 4x16's, trained at slowfast_alpha 8; training at 4 as asked"
        ]
        if warned
        else []
    )
