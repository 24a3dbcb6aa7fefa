"""Two-process CPU DDP (gloo) through the real command line: the run completes and ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from octvideo.engine.checkpoint import load_checkpoint
from tests.engine.conftest import tiny_overrides


def test_two_process_cpu_ddp(tiny_synth, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "octvideo.cli",
        "train",
        "--cfg",
        "oct_i3d_synth",
        "--out",
        str(run),
        *tiny_overrides(
            tiny_synth,
            **{
                "trainer.devices": 2,
                "trainer.strategy": "ddp",
                "trainer.max_epochs": 1,
                "data.batch_size": 2,
            },
        ),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    assert len(set(replicas["param_sha256"])) == 1  # identical parameters on both ranks
    # 12 clips over 2 ranks x 2 per rank = 3 steps.
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3 == replicas["global_step"]
    # Per-rank batch 2 x 2 ranks = lr_reference_batch 4: the full 0.05 (one rank alone: 0.025).
    assert ckpt["lr_schedulers"][0]["base_lrs"][0] == pytest.approx(0.05)
