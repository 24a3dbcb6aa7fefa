"""Measured cost (octvideo.measure.steps): the activations a training step saves, and the calls
that the study and the benchmarks time, run as the commands run them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import octvideo.measure.steps as steps
from octvideo.measure.steps import StepTimer, saved_activation_bytes
from octvideo.models import create_model
from octvideo.ops import is_channels_last


def test_saved_bytes_leave_out_parameters() -> None:
    layer = nn.Linear(64, 32)
    x = torch.randn(8, 64, requires_grad=True)  # a grad for x makes autograd keep the weight

    def step() -> torch.Tensor:
        return layer(x).square().sum()

    activations = saved_activation_bytes(step, layer)
    assert all(p.grad is None for p in layer.parameters())  # the step's gradients are dropped
    everything = saved_activation_bytes(step)
    # square() saves its input (8 x 32) as well
    assert activations == 4 * (8 * 64 + 8 * 32)
    assert everything == activations + 4 * 64 * 32


def test_octave_model_saves_fewer_activation_bytes_than_vanilla():
    saved = []
    for alpha in (0.0, 0.5):
        torch.manual_seed(0)
        model = create_model("c2d_r18", alpha=alpha, num_classes=3, width=8)
        clip = torch.randn(2, 3, 2, 32, 32)
        timer = StepTimer(model, clip[:1], clip, memory_format=torch.channels_last_3d)
        saved.append(timer.saved_bytes())
        assert all(p.grad is None for p in model.parameters())  # the step's gradients are dropped
    assert 0 < saved[1] < saved[0]


def test_inference_is_timed_on_the_model_fused_from_the_current_weights(monkeypatch):
    """As the commands run it: fused for inference (``fuse_for_inference``), once per set of
    weights, and fused again after a training step."""
    fused = []
    fuse = steps.fuse_for_inference
    monkeypatch.setattr(steps, "fuse_for_inference", lambda m: fused.append(m) or fuse(m))
    torch.manual_seed(0)
    model = create_model("c2d_r18", alpha=0.5, num_classes=3, width=8)
    clip = torch.randn(2, 3, 2, 32, 32)
    timer = StepTimer(model, clip[:1], clip, memory_format=torch.channels_last_3d)
    timer.infer()
    timer.infer()
    assert fused == [timer.model]
    timer.train_step()
    timer.infer()
    assert fused == [timer.model, timer.model]


def test_dtype_and_layout_reach_the_model_and_both_clips():
    model = create_model("c2d_r18", alpha=0.5, num_classes=3, width=8)
    clip = torch.randn(2, 3, 2, 32, 32)
    timer = StepTimer(
        model, clip[:1], clip, memory_format=torch.channels_last_3d, dtype=torch.float64
    )
    stem = next(p for p in timer.model.parameters() if p.dim() == 5)
    assert stem.dtype == torch.float64 and is_channels_last(stem)
    for x in (timer.infer_clip, timer.train_clip):
        assert x.dtype == torch.float64 and is_channels_last(x)
    assert timer.labels.shape == (2,)
    timer.infer()
    timer.train_step()  # both calls run in that dtype


def test_unknown_compile_mode_is_refused():
    model = create_model("c2d_r18", alpha=0.5, num_classes=3, width=8)
    clip = torch.randn(2, 3, 2, 32, 32)
    with pytest.raises(ValueError, match="compile 'fast' is not one of none, default"):
        StepTimer(model, clip[:1], clip, compile="fast")
