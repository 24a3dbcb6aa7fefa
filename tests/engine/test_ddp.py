"""Two-process CPU DDP (gloo) through the real command line: the run completes, ranks agree, and
precise BN combines the two ranks' batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from octvideo.checkpoint_meta import CheckpointMeta, build_network
from octvideo.config import load_config
from octvideo.data import VideoDataModule
from octvideo.data.datamodule import EpochSampler
from octvideo.engine.callbacks import read_metrics
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict
from octvideo.engine.run import run_test
from tests.engine.conftest import bn_population_moments, tiny_overrides


def _octvideo(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "octvideo.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_process_cpu_ddp(tiny_synth, tmp_path):
    run = tmp_path / "ddp"
    # Validation: 2 good videos on rank 0, a broken one alone on rank 1 (shares of different
    # sizes, one with no video that decodes: the ranks' collectives used to mismatch).
    good = [line.split() for line in (tiny_synth / "val.txt").read_text().splitlines()[:2]]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    val = tmp_path / "val.txt"
    lines = [f"{tiny_synth / good[0][0]} {good[0][1]}", f"{broken} 0"]
    val.write_text("\n".join([*lines, f"{tiny_synth / good[1][0]} {good[1][1]}", ""]))
    train = tmp_path / "train.txt"
    train.write_text(
        (tiny_synth / "train.txt").read_text().replace("train/", f"{tiny_synth}/train/")
    )
    overrides = tiny_overrides(
        tiny_synth,
        **{
            "trainer.devices": 2,
            "trainer.strategy": "ddp",
            "trainer.max_epochs": 1,
            "trainer.precise_bn_batches": 1,
            "data.batch_size": 2,
            "data.root": "/",
        },
    )
    overrides += [f"data.train_list={train}", f"data.val_list={val}"]
    proc = _octvideo("train", "--cfg", "oct_i3d_synth", "--out", str(run), *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    assert len(set(replicas["param_sha256"])) == 1  # identical parameters on both ranks
    # 12 clips over 2 ranks x 2 per rank = 3 steps.
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3 == replicas["global_step"]
    # Per-rank batch 2 x 2 ranks = lr_reference_batch 4: the full 0.05 (one rank alone: 0.025).
    assert ckpt["lr_schedulers"][0]["base_lrs"][0] == pytest.approx(0.05)

    # Precise BN: each rank took the first batch of its share of epoch 0; the stored statistics
    # are the moments of both batches together (rank 0's alone would differ).
    state = model_state_dict(ckpt)
    model = build_network(CheckpointMeta.from_checkpoint(ckpt).model)
    model.load_state_dict(state)
    data = load_config("oct_i3d_synth", overrides).data
    dataset = VideoDataModule(data).train_dataloader().dataset
    clips = []
    for rank in (0, 1):
        sampler = EpochSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=data.seed)
        sampler.set_epoch(0)
        first = list(sampler)[: data.batch_size]
        clips.append(torch.stack([dataset[key]["video"] for key in first]))
    both = bn_population_moments(model, clips)  # two batches, each normalised by its own
    alone = bn_population_moments(model, clips[:1])
    norms = [k.removesuffix(".running_mean") for k in state if k.endswith(".running_mean")]
    assert len(norms) == len(both)
    for key, (mean, var) in zip(norms, both, strict=True):
        torch.testing.assert_close(
            state[f"{key}.running_mean"].double(), mean, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(state[f"{key}.running_var"].double(), var, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(state[f"{norms[0]}.running_mean"].double(), alone[0][0], atol=1e-3)

    # Validation metrics are over both ranks' videos, each video once: the mean loss of the 2
    # good videos (the mean of the ranks' means was 7/6 of it with shares of 4 and 3).
    model.eval()
    dataset = VideoDataModule(data).val_dataloader().dataset
    with torch.no_grad():
        logits = torch.cat([model(dataset[i]["video"][None]) for i in (0, 2)])
    labels = torch.tensor([int(good[0][1]), int(good[1][1])])
    logged = read_metrics(run / "logs" / "version_0" / "metrics.csv")
    assert logged["val/loss"][-1][1] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-4
    )
    assert logged["val/top1"][-1][1] == float((logits.argmax(1) == labels).float().mean())
    assert logged["val/failed"][-1][1] == 1.0

    # Multi-view test on 2 processes (contiguous shares, gathered on rank 0): the report of one
    # process, byte for byte.
    test_overrides = [o for o in overrides if not o.startswith("data.val_list=")]
    test_overrides += [f"data.test_list={tiny_synth / 'val.txt'}", "data.root="]
    last = run / "checkpoints" / "last.ckpt"
    proc = _octvideo(
        "test", "--cfg", "oct_i3d_synth", "--ckpt", str(last), "--out", str(run), *test_overrides
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = run_test(
        "oct_i3d_synth",
        [*test_overrides, "trainer.devices=1", "trainer.strategy=auto"],
        ckpt=last,
        out=str(tmp_path / "one"),
    )
    for name in ("predictions.csv", "failed_videos.txt"):
        assert (run / "test" / name).read_text() == (one.out_dir / name).read_text()
    assert one.metrics["num_views"] == 6 * 2
