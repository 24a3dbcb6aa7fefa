"""tools/bench_models.py: what it counts as activation memory, and one tiny run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn


def test_saved_bytes_leave_out_parameters(load_tool) -> None:
    tool = load_tool("bench_models")
    layer = nn.Linear(64, 32)
    x = torch.randn(8, 64, requires_grad=True)  # a grad for x makes autograd keep the weight

    def step() -> torch.Tensor:
        return layer(x).square().sum()

    activations = tool.saved_bytes(step, layer)
    everything = tool.saved_bytes(step)
    # square() saves its input (8 x 32) as well
    assert activations == 4 * (8 * 64 + 8 * 32)
    assert everything == activations + 4 * 64 * 32


@pytest.mark.heavy
def test_tiny_run_with_pytorchvideo_baseline(tmp_path: Path, load_tool) -> None:
    tool = load_tool("bench_models")
    out = tmp_path / "bench.md"
    argv = "--model i3d_r50 --alpha 0.5 --frames 4 --size 64 --repeats 1 --warmup 0 --threads 2"
    assert tool.main([*argv.split(), "--baseline", "pytorchvideo", "--append", str(out)]) == 0
    text = out.read_text()
    assert "| inference ms |" in text and "PyTorchVideo hub.i3d_r50" in text
    assert "activations saved for backward" in text
    assert text.count("| minor page faults per training step |") == 2  # octave pair, baseline
    assert "malloc: freed memory kept" in text or "malloc: the environment's own" in text
