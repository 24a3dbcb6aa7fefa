"""A resumed run keeps its step count and momentum and follows the learning-rate schedule of its
current config: a longer ``trainer.max_epochs`` or another ``optim.lr`` is not trained at the old
schedule's final rate (0.0) while the log states the new one."""

from __future__ import annotations

import csv
import logging

import lightning as L
import pytest
import torch
from torch import nn

from octvideo.config import OptimConfig
from octvideo.engine.checkpoint import load_checkpoint
from octvideo.engine.optim import LRSchedule, ScheduleLR
from octvideo.engine.run import run_train
from tests.engine.conftest import tiny_overrides


def _sgd(lr: float) -> tuple[nn.Parameter, torch.optim.SGD]:
    param = nn.Parameter(torch.ones(3))
    return param, torch.optim.SGD([param], lr=lr, momentum=0.9, nesterov=True)


def _train(param: nn.Parameter, opt: torch.optim.SGD, sched: ScheduleLR, steps: int) -> None:
    for _ in range(steps):
        param.grad = torch.full_like(param, 0.5)
        opt.step()
        sched.step()


def test_a_resumed_schedule_follows_the_current_config(caplog):
    param, opt = _sgd(0.1)
    sched = ScheduleLR(opt, LRSchedule(OptimConfig(lr=0.1), steps_per_epoch=4, total_steps=8))
    _train(param, opt, sched, 8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # the old schedule's end
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()

    cfg = OptimConfig(lr=0.2, warmup_epochs=1)
    param, opt = _sgd(0.2)
    schedule = LRSchedule(cfg, steps_per_epoch=4, total_steps=12)
    sched = ScheduleLR(opt, schedule)
    opt.load_state_dict(saved_opt)
    with caplog.at_level(logging.INFO, logger="octvideo.engine.optim"):
        sched.load_state_dict(saved_sched)
    assert sched.last_epoch == 8
    assert opt.param_groups[0]["lr"] == 0.2 * schedule(8) == 0.2 * 0.5  # half-way down the cosine
    assert opt.param_groups[0]["initial_lr"] == 0.2 and sched.base_lrs == [0.2]
    assert sched.get_last_lr() == [0.2 * schedule(8)]
    assert vars(sched.lr_lambdas[0]) == vars(LRSchedule(cfg, 4, 12))
    assert torch.equal(
        opt.state[param]["momentum_buffer"],
        saved_opt["state"][0]["momentum_buffer"],
    )
    assert (
        "resumed optimiser settings differ from the config: lr 0.1 -> 0.2, 8 -> 12 steps, "
        "warmup 0 -> 4 steps; following the config"
    ) in caplog.text
    _train(param, opt, sched, 1)
    assert opt.param_groups[0]["lr"] == 0.2 * schedule(9)


def test_a_resume_takes_momentum_and_weight_decay_from_the_config(caplog):
    param, opt = _sgd(0.1)
    schedule = LRSchedule(OptimConfig(lr=0.1), steps_per_epoch=4, total_steps=8)
    sched = ScheduleLR(opt, schedule)
    _train(param, opt, sched, 2)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    param = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([{"params": [param], "weight_decay": 1e-3}], lr=0.1, momentum=0.5)
    sched = ScheduleLR(opt, schedule)
    opt.load_state_dict(saved_opt)  # as Lightning does: the optimiser, then its scheduler
    assert opt.param_groups[0]["momentum"] == 0.9  # the saved one
    with caplog.at_level(logging.INFO, logger="octvideo.engine.optim"):
        sched.load_state_dict(saved_sched)
    group = opt.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.5, False, 1e-3)
    assert (
        "resumed optimiser settings differ from the config: group 0 momentum 0.9 -> 0.5, "
        "group 0 nesterov True -> False, group 0 weight_decay 0 -> 0.001; following the config"
    ) in caplog.text
    assert torch.equal(
        opt.state[param]["momentum_buffer"], saved_opt["state"][0]["momentum_buffer"]
    )


def test_a_resume_with_the_same_config_is_exact_and_silent(caplog):
    cfg = OptimConfig(lr=0.1, warmup_epochs=1)

    def run(steps: int, resume_from: tuple | None = None) -> tuple:
        param, opt = _sgd(0.1)
        sched = ScheduleLR(opt, LRSchedule(cfg, steps_per_epoch=4, total_steps=12))
        if resume_from is not None:
            weights, opt_state, sched_state = resume_from
            with torch.no_grad():
                param.copy_(weights)
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            _train(param, opt, sched, 1)
        return param.detach().clone(), opt, sched, lrs

    whole, _, _, lrs = run(12)
    part, opt, sched, _ = run(5)
    with caplog.at_level(logging.INFO, logger="octvideo.engine.optim"):
        resumed, _, _, resumed_lrs = run(7, (part, opt.state_dict(), sched.state_dict()))
    assert "resumed schedule differs" not in caplog.text
    assert resumed_lrs == lrs[5:]  # the same numbers, bit for bit
    assert torch.equal(resumed, whole)


class FirstStep(L.Callback):
    """The momentum buffers when training starts; the step and learning rate of its first batch."""

    def __init__(self) -> None:
        self.momentum: list[torch.Tensor] = []
        self.first: tuple[int, float] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        opt = trainer.optimizers[0]
        self.momentum = [
            opt.state[p]["momentum_buffer"].clone() for g in opt.param_groups for p in g["params"]
        ]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first is None:
            self.first = (trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"])


def _logged_lrs(metrics_csv) -> list[tuple[int, float]]:
    with metrics_csv.open() as fh:
        return [(int(r["step"]), float(r["lr"])) for r in csv.DictReader(fh) if r.get("lr")]


def test_resume_with_more_epochs_and_another_lr_trains_on_the_new_schedule(
    tiny_synth, tmp_path, caplog
):
    # 12 clips at batch 4: 3 steps per epoch; cosine without warmup; lr not scaled (batch 4 is
    # the reference batch)
    run = tmp_path / "run"
    fast = {"output.plot_curves": False}
    first = run_train(
        None, tiny_overrides(tiny_synth, **fast, **{"trainer.max_epochs": 1}), out=str(run)
    )
    assert first.global_step == 3
    saved = load_checkpoint(first.last_ckpt)
    momentum = [s["momentum_buffer"] for s in saved["optimizer_states"][0]["state"].values()]

    probe = FirstStep()
    changed = {"trainer.max_epochs": 3, "optim.lr": 0.2}
    with caplog.at_level(logging.INFO, logger="octvideo.engine.optim"):
        result = run_train(
            None,
            tiny_overrides(tiny_synth, **fast, **changed),
            out=str(run),
            resume="auto",
            callbacks=[probe],
        )
    assert result.global_step == 9
    want = 0.2 * LRSchedule(OptimConfig(lr=0.2), steps_per_epoch=3, total_steps=9)(3)
    assert want == pytest.approx(0.15)  # not 0.0 (the old schedule's end), not 0.05 (old lr)
    assert probe.first == (3, want)
    logged = _logged_lrs(run / "logs" / "version_1" / "metrics.csv")
    assert logged[0] == (3, pytest.approx(want, rel=1e-6))
    assert all(lr > 0 for _, lr in logged[:-1])
    assert (
        "resumed optimiser settings differ from the config: lr 0.05 -> 0.2, 3 -> 9 steps"
        in caplog.text
    )
    for got, want_buffer in zip(probe.momentum, momentum, strict=True):
        assert torch.equal(got, want_buffer)
