"""Analytic cost: layer counts against fvcore, and the closed-form ratios of the design notes."""

from __future__ import annotations

import logging

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from octvideo.ops import OctConv3d, OctPair, flops_ratio, low_channels, memory_ratio


class _PairInput(nn.Module):
    """fvcore traces positional tensors, so the pair is rebuilt inside."""

    def __init__(self, layer: OctConv3d) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, high: torch.Tensor, low: torch.Tensor):
        y = self.layer(OctPair(high, low))
        return tuple(y) if isinstance(y, OctPair) else y


def fvcore_macs(layer: OctConv3d, size) -> int:
    n_low = layer.in_low
    high = torch.zeros(1, layer.in_high, *size)
    if n_low == 0:
        analysis = FlopCountAnalysis(layer, (high,))
    else:
        low_size = [-(-s // o) for s, o in zip(size, layer.octave, strict=True)]
        analysis = FlopCountAnalysis(_PairInput(layer), (high, torch.zeros(1, n_low, *low_size)))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    # fvcore's warnings quieted for this count only: a level left on its logger would hide its
    # lines from the tests that read them (the precise-BN update's, in the same worker)
    fvcore_logger = logging.getLogger("fvcore")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        return int(analysis.total())
    finally:
        fvcore_logger.setLevel(level)


@pytest.mark.parametrize(
    ("alpha_in", "alpha_out", "kernel", "stride", "octave", "size"),
    [
        (0.0, 0.0, (3, 3, 3), 1, (1, 2, 2), (4, 14, 14)),
        (0.0, 0.0, (1, 3, 3), (1, 2, 2), (1, 2, 2), (4, 15, 15)),
        (0.0, 0.5, (1, 7, 7), 1, (1, 2, 2), (2, 14, 14)),
        (0.5, 0.5, (3, 1, 1), 1, (1, 2, 2), (8, 28, 28)),
        (0.5, 0.5, (1, 3, 3), 2, (2, 2, 2), (8, 28, 28)),
        (0.1, 0.1, (3, 3, 3), 1, (1, 2, 2), (3, 7, 7)),
        (0.25, 0.0, (1, 1, 1), (1, 2, 2), (1, 2, 2), (4, 15, 15)),
    ],
)
def test_flops_match_fvcore(alpha_in, alpha_out, kernel, stride, octave, size):
    layer = OctConv3d(
        32, 64, kernel, stride=stride, alpha_in=alpha_in, alpha_out=alpha_out, octave=octave
    )
    assert layer.flops(size) == fvcore_macs(layer, size)


@pytest.mark.parametrize(
    ("alpha", "octave", "flops", "memory"),
    [
        (0.5, (1, 2, 2), 0.4375, 0.625),
        (0.5, (2, 2, 2), 0.34375, 0.5625),
        (0.0, (1, 2, 2), 1.0, 1.0),
        (0.25, (1, 2, 2), 1 - 0.75 * 0.25 * 1.75, 1 - 0.75 * 0.25),
    ],
)
def test_closed_form_ratios(alpha, octave, flops, memory):
    assert flops_ratio(alpha, octave) == pytest.approx(flops, abs=1e-12)
    assert memory_ratio(alpha, octave) == pytest.approx(memory, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.25, 0.5])
@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
def test_layer_counts_reproduce_closed_form(alpha, octave):
    """On sizes and channels that split exactly, a layer's own counts give the closed-form ratio."""
    size, c = (8, 16, 16), 64
    assert low_channels(c, alpha) == alpha * c
    oct_layer = OctConv3d(c, c, 3, alpha_in=alpha, alpha_out=alpha, octave=octave)
    vanilla = OctConv3d(c, c, 3)
    assert oct_layer.flops(size) / vanilla.flops(size) == pytest.approx(flops_ratio(alpha, octave))
    assert oct_layer.activation_memory(size) / vanilla.activation_memory(size) == pytest.approx(
        memory_ratio(alpha, octave)
    )


@pytest.mark.parametrize("alpha", [2.0, -1, 1.0, True, "0.5", float("nan")])
@pytest.mark.parametrize("ratio", [flops_ratio, memory_ratio])
def test_ratios_refuse_an_alpha_outside_0_to_1(ratio, alpha):
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\)"):
        ratio(alpha)
