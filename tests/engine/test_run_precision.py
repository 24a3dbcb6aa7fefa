"""Reduced precision through the commands on a CPU: bfloat16 training is refused where this
PyTorch's bfloat16 3D-convolution weight gradients are wrong; bfloat16 testing works, and so do
the run's own checks (parameter digests, the FLOPs count) on a bfloat16 model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from octvideo import cli
from octvideo.engine import build
from octvideo.engine.callbacks import parameter_digest
from octvideo.engine.run import run_train
from octvideo.errors import UsageError
from tests.engine.conftest import tiny_overrides


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true", "16-mixed"])
def test_bf16_training_on_cpu_is_refused_before_anything_is_written(
    tiny_synth, tmp_path, monkeypatch, precision
) -> None:
    monkeypatch.setattr(build, "_cpu_bf16_weight_grads_ok", lambda: False)
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_synth, **{"trainer.precision": precision})
    refusal = rf"trainer.precision={precision} on a CPU[^:]*: .*32-true"
    with pytest.raises(UsageError, match=refusal):
        run_train(None, overrides, out=str(run))
    assert not run.exists()


def test_bf16_training_check_lets_good_setups_through(monkeypatch) -> None:
    monkeypatch.setattr(build, "_cpu_bf16_weight_grads_ok", lambda: False)
    for precision in ("32-true", "16-true", "auto", "64-true"):
        build.check_training_precision(precision, "cpu")  # no bfloat16: nothing to check
    for precision in ("16-mixed", "bf16-mixed"):  # on a GPU these are what they say
        build.check_training_precision(precision, "gpu")
    monkeypatch.setattr(build, "_cpu_bf16_weight_grads_ok", lambda: True)
    build.check_training_precision("bf16-mixed", "cpu")  # a PyTorch without the fault


def test_bf16_weight_grad_check_agrees_with_float64() -> None:
    """The check (bfloat16 against float32) says what a float64 reference says of its cases."""
    right = []
    for g, x, w in build._bf16_probes():
        want = build._conv3d_weight_grad(g, x, w, torch.float64)
        got = build._conv3d_weight_grad(g, x, w, torch.bfloat16)
        right.append(
            bool(torch.isfinite(got).all()) and float((got - want).norm() / want.norm()) < 0.05
        )
    assert build._cpu_bf16_weight_grads_ok() is all(right)


def test_parameter_digest_of_a_bfloat16_model() -> None:
    """numpy has no bfloat16: the digest hashes raw bytes, the same bytes as before for float32."""
    layer = nn.Linear(3, 2)
    digest = parameter_digest(layer)
    assert parameter_digest(layer) == digest
    half = parameter_digest(layer.to(torch.bfloat16))
    assert len(half) == 64 and half != digest


def test_bf16_test_command_on_a_float32_checkpoint(tiny_synth, tmp_path_factory) -> None:
    """Testing (inference only) runs in bfloat16 on a CPU, FLOPs counted on the bfloat16 model."""
    run = tmp_path_factory.mktemp("bf16test")
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    assert cli.main(["train", "--cfg", "oct_i3d_synth", "--out", str(run), *overrides]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    results = {}
    for precision in ("32-true", "bf16-true", "bf16-mixed"):
        out = run / precision
        extra = {"trainer.precision": precision, "test.count_flops": True}
        args = ["test", "--cfg", str(run / "config.yaml"), "--ckpt", str(ckpt), "--out", str(out)]
        assert cli.main([*args, *tiny_overrides(tiny_synth, **extra)]) == 0
        results[precision] = json.loads((out / "test" / "summary.json").read_text())
    counts = {p: r["protocol"]["gflops_per_view"] for p, r in results.items()}
    assert counts["bf16-true"] == counts["bf16-mixed"] == counts["32-true"] > 0
    for r in results.values():
        assert r["metrics"]["num_videos"] == 6 and r["metrics"]["num_failed"] == 0
