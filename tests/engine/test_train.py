"""``octvideo train`` / ``octvideo test`` in-process on a tiny model and tiny real video files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import lightning as L
import pytest
import torch

from octvideo import cli
from octvideo.config import load_config
from octvideo.engine.build import build_model
from octvideo.engine.checkpoint import atomic_save, load_checkpoint
from octvideo.engine.run import resolve_resume, run_test, run_train
from octvideo.errors import UsageError
from octvideo.models.cost import total_gflops
from octvideo.ops import is_channels_last
from tests.engine.conftest import tiny_overrides


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def test_training_steps_reduce_the_loss(tiny_synth, tmp_path):
    # Same 4 clips every step (one batch per epoch, no augmentation): the loss must go down.
    train4 = tmp_path / "train4.txt"
    lines = (tiny_synth / "train.txt").read_text().splitlines()[:4]
    train4.write_text("".join(f"{tiny_synth / line}\n" for line in lines))
    recorder = LossRecorder()
    result = run_train(
        None,
        tiny_overrides(
            tiny_synth,
            **{
                "data.train_list": train4,
                "data.random_flip": False,
                "trainer.max_epochs": 8,
                "optim.schedule": "step",
            },
        ),
        out=str(tmp_path / "run"),
        callbacks=[recorder],
    )
    assert len(recorder.losses) == 8
    assert recorder.losses[-1] < 0.5 * recorder.losses[0]
    assert result.global_step == 8
    run = tmp_path / "run"
    for name in ("config.yaml", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


class LayoutProbe(L.Callback):
    """Records the memory format of the clips the network sees and of its weights."""

    def __init__(self) -> None:
        self.inputs: list[bool] = []
        self.weights: list[bool] = []

    def on_train_start(self, trainer, pl_module) -> None:
        def see(module, args) -> None:
            self.inputs.append(is_channels_last(args[0]))

        pl_module.model.register_forward_pre_hook(see)
        self.weights = [is_channels_last(p) for p in pl_module.model.parameters() if p.dim() == 5]


@pytest.mark.parametrize(("setting", "channels_last"), [("auto", True), ("contiguous", False)])
def test_memory_format_reaches_weights_and_clips(tiny_synth, tmp_path, setting, channels_last):
    # "auto" on CPU: channels-last, where OctConv3d takes its fast path (a training step 0.69-0.89
    # of the contiguous time in BENCHMARKS.md)
    probe = LayoutProbe()
    overrides = {"trainer.max_epochs": 1, "trainer.memory_format": setting}
    run_train(
        None, tiny_overrides(tiny_synth, **overrides), out=str(tmp_path / "run"), callbacks=[probe]
    )
    assert probe.inputs and set(probe.inputs) == {channels_last}
    # the stem's 5x7x7 weight (1x1x1 kernels are both layouts at once)
    assert probe.weights[0] is channels_last


def test_unknown_memory_format_is_a_config_error(tiny_synth, tmp_path):
    with pytest.raises(UsageError, match=r"trainer.memory_format: 'nhwc' is not one of auto"):
        run_train(
            None,
            tiny_overrides(tiny_synth, **{"trainer.memory_format": "nhwc"}),
            out=str(tmp_path / "run"),
        )


@pytest.fixture(scope="module")
def trained(tiny_synth, tmp_path_factory) -> Path:
    """A 2-epoch tiny run through the CLI entry point; returns its run dir."""
    run = tmp_path_factory.mktemp("trained")
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *tiny_overrides(tiny_synth)]
    assert cli.main(args) == 0
    return run


def test_checkpoint_is_self_describing_and_weights_only(trained):
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    meta = ckpt["hyper_parameters"]["meta"]
    assert meta["classes"][:2] == ["move_left", "move_right"]
    assert meta["model"]["name"] == "i3d_r18" and meta["model"]["extra"] == {"width": 4}
    assert meta["clip"]["num_frames"] == 4 and meta["normalization"]["mean"] == [0.45] * 3
    assert ckpt["global_step"] == 6  # 12 clips / batch 4 x 2 epochs
    assert {"optimizer_states", "lr_schedulers", "loops"} <= set(ckpt)
    assert (trained / "logs" / "version_0" / "metrics.csv").is_file()


def test_test_command_writes_the_report(trained, capsys):
    ckpt = trained / "checkpoints" / "best.ckpt"
    overrides = tiny_overrides(
        Path(
            load_checkpoint(ckpt)["hyper_parameters"]["meta"]["config"]["data"]["train_list"]
        ).parent
    )
    code = cli.main(
        [
            "test",
            "--cfg",
            str(trained / "config.yaml"),
            "--ckpt",
            str(ckpt),
            "--out",
            str(trained),
            *overrides,
            "test.count_flops=true",
        ]
    )
    assert code == 0
    assert "video top-1" in capsys.readouterr().out
    report = trained / "test"
    summary = json.loads((report / "summary.json").read_text())
    m, protocol = summary["metrics"], summary["protocol"]
    assert (protocol["temporal_clips"], protocol["spatial_crops"], protocol["views"]) == (2, 1, 2)
    assert protocol["crop_size"] == 32 and protocol["gflops"].endswith("x 2 views at 32")
    # the model as built, not as the test left it (channels-last, where a layer that records
    # gradients is one autograd node that fvcore cannot count into)
    cfg = load_config(trained / "config.yaml")
    view = torch.zeros(1, 3, cfg.data.num_frames, 32, 32)
    expected = total_gflops(build_model(cfg.model), view)
    assert protocol["gflops_per_view"] == pytest.approx(expected, rel=1e-3)
    assert protocol["gflops"] == f"{protocol['gflops_per_view']:.4g} x 2 views at 32"
    with (report / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 == m["num_videos"]
    assert m["video_top1"] == pytest.approx(sum(int(r["correct"]) for r in rows) / len(rows))
    assert {int(r["num_views"]) for r in rows} == {2}
    assert (report / "confusion.png").is_file() and (report / "per_class.csv").is_file()
    assert (report / "failed_videos.txt").read_text() == ""


def test_failed_video_is_listed_not_scored(trained, tiny_synth, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"")
    val = tmp_path / "val.txt"
    val.write_text(
        (tiny_synth / "val.txt").read_text().replace("val/", f"{tiny_synth}/val/") + f"{broken} 0\n"
    )
    result = run_test(
        None,
        [*tiny_overrides(tiny_synth), f"data.val_list={val}", "data.root=/"],
        ckpt=trained / "checkpoints" / "last.ckpt",
        out=str(tmp_path / "run"),
    )
    assert result.metrics["num_failed"] == 1 and result.metrics["num_videos"] == 6
    assert result.files["failed"].read_text().startswith(f"{broken}\t")


def test_test_without_checkpoint_is_an_error(tiny_synth, tmp_path, capsys):
    with pytest.raises(UsageError, match="checkpoint is required"):
        run_test(None, tiny_overrides(tiny_synth), ckpt=None)
    assert cli.main(["test", "--cfg", "oct_i3d_synth", "--ckpt", str(tmp_path / "no.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": Path("x")}, path)
    with pytest.raises(UsageError, match="weights_only=True"):
        load_checkpoint(path)


def test_crash_during_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"step": torch.tensor(1)}, path)

    def torn_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert int(load_checkpoint(path)["step"]) == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind


class Crash(L.Callback):
    """Kills the run after a given optimiser step, the way a preempted job dies."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError("preempted")


class StateAt(L.Callback):
    """Records step, learning rate and momentum buffers when training starts or at a step."""

    def __init__(self, at_step: int | None = None) -> None:
        self.at_step = at_step
        self.state: dict | None = None

    def _grab(self, trainer) -> None:
        opt = trainer.optimizers[0]
        self.state = {
            "step": trainer.global_step,
            "lr": opt.param_groups[0]["lr"],
            "momentum": [
                opt.state[p]["momentum_buffer"].clone()
                for g in opt.param_groups
                for p in g["params"]
            ],
        }

    def on_train_start(self, trainer, pl_module) -> None:
        if self.at_step is None:
            self._grab(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.at_step == trainer.global_step:
            self._grab(trainer)


def test_resume_continues_at_the_same_step_lr_and_optimiser_state(tiny_synth, tmp_path):
    # 3 epochs x 3 steps; last.ckpt refreshed every 2 steps; the run dies after step 5, so the
    # newest checkpoint is from step 4, in the middle of epoch 2.
    overrides = tiny_overrides(
        tiny_synth,
        **{"trainer.max_epochs": 3, "output.ckpt_every_n_steps": 2, "optim.warmup_epochs": 1},
    )
    reference = StateAt(at_step=4)
    run_train(None, overrides, out=str(tmp_path / "ref"), callbacks=[reference])

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="preempted"):
        run_train(None, overrides, out=str(run), callbacks=[Crash(at_step=5)])
    saved = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 4

    resumed = StateAt()
    result = run_train(None, overrides, out=str(run), resume="auto", callbacks=[resumed])
    assert resumed.state["step"] == 4 == reference.state["step"]
    assert resumed.state["lr"] == pytest.approx(reference.state["lr"], rel=1e-12)
    saved_momentum = [s["momentum_buffer"] for s in saved["optimizer_states"][0]["state"].values()]
    for got, want in zip(resumed.state["momentum"], saved_momentum, strict=True):
        assert torch.equal(got, want)
    for got, want in zip(resumed.state["momentum"], reference.state["momentum"], strict=True):
        torch.testing.assert_close(got, want)
    assert result.global_step == 9


def test_explicit_resume_path_wins_over_auto(tmp_path):
    run = tmp_path / "run"
    atomic_save({}, run / "checkpoints" / "last.ckpt")
    other = atomic_save({}, tmp_path / "other.ckpt")
    assert resolve_resume("auto", run) == run / "checkpoints" / "last.ckpt"
    assert resolve_resume(str(other), run) == other
    assert resolve_resume("auto", tmp_path / "fresh") is None
    assert resolve_resume(None, run) is None
    with pytest.raises(UsageError, match="no such checkpoint"):
        resolve_resume(str(tmp_path / "missing.ckpt"), run)
    with pytest.raises(UsageError, match=r"is a directory; pass a checkpoint file, or continue"):
        resolve_resume(str(run), run)


def test_test_and_resume_do_not_need_the_init_weights_any_more(trained, tiny_synth, tmp_path):
    # a fine-tuned run's config names the weights it started from; the checkpoint replaces them
    # in test and resume, which used to fail once that file had been moved
    init = tmp_path / "init.ckpt"
    init.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes())
    run = tmp_path / "finetune"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    run_train(None, [*overrides, f"model.pretrained={init}"], out=str(run))
    init.unlink()
    saved = load_config(run / "config.yaml")
    assert saved.model.pretrained == str(init)
    result = run_test(run / "config.yaml", ckpt=run / "checkpoints" / "best.ckpt", out=str(run))
    assert result.metrics["num_videos"] == 6
    resumed = run_train(run / "config.yaml", ["trainer.max_epochs=2"], out=str(run), resume="auto")
    assert resumed.global_step == 6
