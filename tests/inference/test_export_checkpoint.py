"""``octvideo export``: the exported file reproduces the checkpoint's logits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.inference import Predictor
from octvideo.inference.export import example_clip, logit_gap, run_exported


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_checkpoint(checkpoint, tmp_path, fmt, capsys):
    out = tmp_path / f"model.{fmt}"
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    predictor = Predictor.from_checkpoint(checkpoint)
    clip = example_clip(predictor.protocol, 3, seed=7)  # a batch size the export never saw
    with torch.no_grad():
        expected = predictor.model(clip).numpy()
    got = run_exported(out, fmt, (clip,))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    notes = json.loads(out.with_suffix(out.suffix + ".json").read_text())
    assert notes["classes"] == predictor.classes
    assert notes["protocol"]["num_frames"] == 4 and notes["protocol"]["test_crop_size"] == 32


def test_export_rejects_unknown_format(checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--ckpt", str(checkpoint), "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_the_export_check_scales_with_the_logits():
    small = np.array([[0.5, -0.25]], dtype=np.float32)
    assert logit_gap(small + 5e-5, small, 1e-4)[1] == 1e-4  # logits below 1: absolute 1e-4
    diff, allowed = logit_gap(small + 2e-4, small, 1e-4)
    assert diff > allowed
    large = np.array([[2800.0, -1600.0]], dtype=np.float32)  # an untrained SlowFast's logits
    diff, allowed = logit_gap(large + 9.8e-4, large, 1e-4)  # float32 rounding at this size
    assert diff <= allowed == pytest.approx(0.28)
