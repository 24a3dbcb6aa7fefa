"""Measured cost: saved activations of a training step, interleaved timing and its ratios
(an injected clock: no real time is asserted)."""

from __future__ import annotations

import pytest
import torch

from octvideo.models import create_model
from octvideo.models.measure import StepTimer, ratio_stats, time_interleaved


def test_interleaved_timing_alternates_order_and_takes_per_round_ratios():
    order = []
    clock_values = {"a": 1.0, "b": 3.0}
    now = [0.0]

    def timer() -> float:
        return now[0]

    def call(name):
        def run():
            order.append(name)
            now[0] += clock_values[name]

        return run

    times = time_interleaved([call("a"), call("b")], repeats=3, warmup=1, timer=timer)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then a b / b a / a b
    assert times == [[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]]
    base, other = ratio_stats(times, 0)
    assert base.ratio == 1.0
    assert (other.ratio, other.ratio_min, other.ratio_max, other.median_s) == (3.0, 3.0, 3.0, 3.0)


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


def test_zero_repeats_is_refused():
    with pytest.raises(ValueError, match="repeats must be 1 or more"):
        time_interleaved([lambda: None], repeats=0)


def test_inference_is_timed_on_the_model_fused_from_the_current_weights(monkeypatch):
    """As the commands run it: fused for inference (``fuse_for_inference``), once per set of
    weights, and fused again after a training step."""
    import octvideo.models.measure as measure

    fused = []
    fuse = measure.fuse_for_inference
    monkeypatch.setattr(measure, "fuse_for_inference", lambda m: fused.append(m) or fuse(m))
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
