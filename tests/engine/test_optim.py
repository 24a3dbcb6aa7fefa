"""Parameter groups, the learning-rate rule and schedule. A resumed schedule keeps its step count
and momentum and follows the current config's rate, momentum and weight decay. The norm of a step's
gradients is finite when each of them is."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from octvideo.config import OptimConfig
from octvideo.engine.optim import (
    LRSchedule,
    ScheduleLR,
    gradient_norm,
    idle_settings,
    longest_warmup_epochs,
    param_groups,
    scaled_lr,
    step_batch,
)


def test_no_weight_decay_on_norm_and_bias():
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(model[0].weight), id(model[3].weight)}
    assert ids(no_decay["params"]) == {
        id(model[0].bias),
        id(model[1].weight),
        id(model[1].bias),
        id(model[3].bias),
    }


def test_lr_scales_with_global_batch():
    cfg = OptimConfig(lr=0.1, lr_reference_batch=64)
    assert scaled_lr(cfg, 64) == pytest.approx(0.1)
    assert scaled_lr(cfg, 16) == pytest.approx(0.025)
    assert scaled_lr(OptimConfig(lr=0.1, scale_lr=False), 16) == 0.1


@pytest.mark.parametrize(
    ("batch_size", "world", "accumulate", "batches", "clips", "expected"),
    [
        (4, 2, 3, 10, 40, (24, 3)),  # the epoch holds the global batch
        (1024, 1, 1, 1, 24, (24, 1)),  # one batch of the whole epoch
        (4, 1, 1024, 6, 24, (24, 6)),  # one step of the epoch's 6 batches
        (8, 4, 2, 1, 3, (12, 1)),  # 3 clips a process (4 processes), one step
        (4, 2, 3, float("inf"), None, (24, 3)),  # an endless loader of unknown size
    ],
)
def test_the_global_batch_is_what_a_step_really_has(
    batch_size, world, accumulate, batches, clips, expected
):
    assert step_batch(batch_size, world, accumulate, batches, clips) == expected


def test_warmup_then_cosine():
    cfg = OptimConfig(warmup_epochs=2, warmup_start_factor=0.1, final_lr_factor=0.0)
    f = LRSchedule(cfg, steps_per_epoch=10, total_steps=100)
    assert f(0) == pytest.approx(0.1)
    assert f(10) == pytest.approx(0.55)  # halfway through the warmup
    assert f(20) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5)  # halfway through the cosine
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    values = [f(s) for s in range(20, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_step_decay():
    cfg = OptimConfig(schedule="step", step_epochs=[3, 6], step_gamma=0.1)
    f = LRSchedule(cfg, steps_per_epoch=5, total_steps=50)
    assert [f(s) for s in (0, 14, 15, 29, 30, 49)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def _idle(max_epochs: int = 3, steps_per_epoch: int = 2, **settings: object) -> list[str]:
    cfg = OptimConfig(**settings)
    schedule = LRSchedule(cfg, steps_per_epoch, steps_per_epoch * max_epochs)
    return idle_settings(cfg, schedule, steps_per_epoch, max_epochs)


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (
            {"step_epochs": [1]},
            "optim.step_epochs=[1] has no effect under optim.schedule=cosine (it sets the step "
            "schedule's decay); set optim.schedule=step to use it",
        ),
        (
            {"step_gamma": 0.01},
            "optim.step_gamma=0.01 has no effect under optim.schedule=cosine (it sets the step "
            "schedule's decay); set optim.schedule=step to use it",
        ),
        (
            {"schedule": "step", "step_epochs": [1], "final_lr_factor": 0.5},
            "optim.final_lr_factor=0.5 has no effect under optim.schedule=step (it is where the "
            "cosine schedule ends); set optim.schedule=cosine to use it",
        ),
        (
            {"schedule": "step", "step_gamma": 0.5},
            "optim.step_gamma=0.5 has no effect: optim.step_epochs is empty, so the step "
            "schedule never decays; list the epochs to decay at there",
        ),
        (
            {"schedule": "step", "step_epochs": [300]},
            "optim.step_epochs=[300]: the decay at epoch 300 is at or past the run's end "
            "(trainer.max_epochs=3), so lr never decays; use epochs below 3",
        ),
        (
            {"schedule": "step", "step_epochs": [1, 3]},  # epoch 3 of 3: after the last step
            "optim.step_epochs=[1, 3]: the decay at epoch 3 is at or past the run's end "
            "(trainer.max_epochs=3), so it never happens; use epochs below 3",
        ),
        (
            {"schedule": "step", "step_epochs": [1, 4, 9]},
            "optim.step_epochs=[1, 4, 9]: the decays at epochs 4, 9 are at or past the run's end "
            "(trainer.max_epochs=3), so they never happen; use epochs below 3",
        ),
        (
            {"warmup_start_factor": 0.5},
            "optim.warmup_start_factor=0.5 has no effect without a warmup "
            "(optim.warmup_epochs=0); set optim.warmup_epochs > 0",
        ),
        (
            {"warmup_epochs": 0.2},  # 0.4 of a step
            "optim.warmup_epochs=0.2 rounds to 0 of the 2 steps an epoch has: no warmup; set it "
            "to at least 0.5 for one step",
        ),
        (
            {"mix_prob": 0.5},
            "optim.mix_prob=0.5 has no effect: mixup and CutMix are off (optim.mixup_alpha=0, "
            "optim.cutmix_alpha=0); set either above 0 to mix",
        ),
    ],
)
def test_a_setting_that_does_nothing_in_the_run_is_named_with_why(settings, line):
    assert _idle(**settings) == [line]


@pytest.mark.parametrize(
    "settings",
    [
        {},  # every default, under either schedule
        {"schedule": "step"},
        {"schedule": "step", "step_epochs": [0, 2], "step_gamma": 0.5, "warmup_epochs": 1},
        {"final_lr_factor": 0.01, "warmup_epochs": 0.5, "warmup_start_factor": 0.5},
        {"mix_prob": 0.5, "cutmix_alpha": 1.0},
    ],
)
def test_settings_the_run_uses_and_defaults_are_not_named(settings):
    assert _idle(**settings) == []


@pytest.mark.parametrize(
    ("cfg", "total_steps", "ends_in_warmup"),
    [
        (OptimConfig(warmup_epochs=10), 12, True),  # a 60-step warmup in a 12-step run
        (OptimConfig(warmup_epochs=2), 12, True),  # the warmup's last step is the run's
        (OptimConfig(warmup_epochs=1.5), 12, False),
        (OptimConfig(warmup_epochs=0), 12, False),
        (OptimConfig(warmup_epochs=3, schedule="step", step_epochs=[0]), 12, True),
        (OptimConfig(warmup_epochs=1, schedule="step", step_epochs=[0]), 12, False),
    ],
)
def test_peak_is_the_largest_multiplier_the_run_reaches(cfg, total_steps, ends_in_warmup):
    f = LRSchedule(cfg, steps_per_epoch=6, total_steps=total_steps)
    assert f.ends_in_warmup() is ends_in_warmup
    assert f.peak() == max(f(s) for s in range(total_steps))


def test_a_warmup_longer_than_the_run_peaks_where_the_run_ends():
    f = LRSchedule(OptimConfig(warmup_epochs=10), steps_per_epoch=6, total_steps=12)
    assert f.peak() == pytest.approx(0.1 + 0.9 * 11 / 60)  # 0.265 of the peak lr


def test_the_longest_warmup_advised_ends_within_the_run_after_rounding():
    # 1.95 epochs of 6 steps is round(11.7) = 12 steps, the whole 2-epoch run, though below 2
    assert LRSchedule(OptimConfig(warmup_epochs=1.95), 6, 12).ends_in_warmup()
    assert longest_warmup_epochs(6, 12) == 1.83
    for steps_per_epoch in range(1, 40):
        for total_steps in range(steps_per_epoch, 4 * steps_per_epoch + 1):
            longest = longest_warmup_epochs(steps_per_epoch, total_steps)
            cfg = OptimConfig(warmup_epochs=longest)
            schedule = LRSchedule(cfg, steps_per_epoch, total_steps)
            assert not schedule.ends_in_warmup()
            assert schedule.peak() == pytest.approx(1.0)  # reached, at the last step at the latest
            # a step and a hundredth of an epoch more would outlast the run: the advice is tight
            longer = OptimConfig(warmup_epochs=longest + 0.01 + 1 / steps_per_epoch)
            assert LRSchedule(longer, steps_per_epoch, total_steps).ends_in_warmup()
    assert longest_warmup_epochs(1, 1) == 0.0  # one step: no room for a warmup


def _with_gradients(*grads: torch.Tensor | None) -> torch.optim.Optimizer:
    params = []
    for grad in grads:
        param = nn.Parameter(torch.zeros(3))
        param.grad = grad
        params.append(param)
    return torch.optim.SGD(params, lr=0.1)


@pytest.mark.parametrize(
    ("bad", "finite"),
    [
        (float("nan"), False),
        (float("inf"), False),
        (float("-inf"), False),
        (1e19, True),
        (1e30, False),  # finite, but its square overflows: non_finite_tensors tells them apart
    ],
)
def test_the_gradient_norm_is_finite_when_every_gradient_is(bad, finite):
    norm = gradient_norm(
        _with_gradients(torch.tensor([1.0, -2.0, 2.0]), None, torch.tensor([0.0, bad, 0.0]))
    )
    assert bool(torch.isfinite(norm)) is finite
    assert float(gradient_norm(_with_gradients(torch.tensor([1.0, -2.0, 2.0])))) == 3.0


def test_a_step_with_no_gradient_has_no_gradient_norm():
    assert gradient_norm(_with_gradients(None, None)) is None


def test_schedule_state_is_plain_numbers():
    # LambdaLR stores a callable object's __dict__: it must load with weights_only=True.
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LRSchedule(OptimConfig(), 4, 40))
    state = sched.state_dict()
    for value in state["lr_lambdas"][0].values():
        assert isinstance(value, int | float | str | list)


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


def test_a_resume_reports_a_change_of_every_schedule_attribute():
    schedule = LRSchedule(OptimConfig(schedule="step"), steps_per_epoch=4, total_steps=12)
    saved = {**vars(schedule), "total_steps": 8, "gamma": 0.5}
    assert schedule.described_changes(saved) == ["8 -> 12 steps", "step gamma 0.5 -> 0.1"]
    schedule.cycles = 2  # an attribute the message table does not word
    assert schedule.described_changes({**vars(schedule), "cycles": 1}) == ["cycles 1 -> 2"]
    assert schedule.described_changes({"schedule": "step"}) == []  # an older checkpoint's


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
