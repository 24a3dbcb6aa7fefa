"""SGD parameter groups, the learning-rate rule and the warmup + decay schedule.

Recipe of the paper's video baselines (Chen et al., "Drop an Octave", ICCV 2019, Sec. 4.3, after
Wang et al., "Non-local Neural Networks", CVPR 2018): SGD with momentum 0.9 (Nesterov), weight
decay 1e-4 on weights but not on batch-norm or bias parameters. The learning rate follows the
linear scaling rule (Goyal et al., "Accurate, Large Minibatch SGD", 2017): ``lr`` is stated for a
global batch of ``lr_reference_batch`` clips and scaled to the global batch a step really has (no
more than an epoch holds, ``step_batch``), then warmed up linearly and decayed by a half cosine or
by steps, per optimiser step. A resumed run keeps its step
count and follows the schedule of its current config (``ScheduleLR``). ``gradient_norm`` is
what the training module checks before each step, so no NaN or infinite gradient reaches the
weights.
"""

from __future__ import annotations

import bisect
import logging
import math
from typing import Any

from torch import Tensor, nn
from torch.nn.utils import get_total_norm
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from octvideo.config import OptimConfig

logger = logging.getLogger(__name__)

# the parameter-group settings a resume takes from the config, not from the saved optimiser
_GROUP_SETTINGS = ("momentum", "nesterov", "weight_decay", "dampening")
# LRSchedule attribute -> how the resume message names a change of it (one missing here is
# named by the attribute itself)
_SCHEDULE_CHANGES = {
    "schedule": "{} -> {} schedule",
    "total_steps": "{} -> {} steps",
    "warmup_steps": "warmup {} -> {} steps",
    "warmup_start": "warmup start factor {} -> {}",
    "final": "final factor {} -> {}",
    "milestones": "milestones {} -> {}",
    "gamma": "step gamma {} -> {}",
}


def scaled_lr(cfg: OptimConfig, global_batch_size: int) -> float:
    """Peak learning rate for a global batch (per-device batch x devices x nodes x accumulation)."""
    if not cfg.scale_lr:
        return cfg.lr
    return cfg.lr * global_batch_size / cfg.lr_reference_batch


def step_batch(
    batch_size: int, world_size: int, accumulate: int, batches: float, clips: int | None
) -> tuple[int, int]:
    """The global batch an optimiser step really has, and the batches it accumulates.

    It is ``batch_size x world_size x accumulate`` unless an epoch is shorter: a process whose
    epoch holds fewer ``clips`` than ``batch_size`` steps on those clips, and one whose epoch has
    fewer ``batches`` than ``accumulate`` steps once at the end of it, on those batches. The
    linear scaling rule is about the clips a step averages its gradient over, so the learning rate
    is scaled for these, not for a global batch no step has.

    Args:
        batch_size: clips per process and batch (``data.batch_size``).
        world_size: processes (devices x nodes).
        accumulate: batches per optimiser step (``trainer.accumulate_grad_batches``).
        batches: batches of one process's epoch (inf for an endless loader).
        clips: clips of one process's epoch, or None where unknown.

    Returns:
        (clips of one step over all processes, batches of one process it accumulates)
    """
    per_batch = batch_size if clips is None else max(1, min(batch_size, clips))
    if batches != float("inf"):
        accumulate = max(1, min(accumulate, int(batches)))
    return per_batch * world_size * accumulate, accumulate


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two SGD groups: weights with decay, and norm / bias parameters (ndim <= 1) without.

    One-dimensional parameters are exactly the biases and the norm layers' scales and shifts in
    these networks; decaying them hurts batch-norm networks and buys nothing.
    """
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def gradient_norm(optimizer: Optimizer) -> Tensor | None:
    """The 2-norm of all the gradients a step of ``optimizer`` would apply, in one fused pass
    (torch's total-norm helper), as a 0-d tensor; None where no parameter has a gradient (the
    step ran no backward pass).

    It is finite exactly when every gradient is finite and none is so large (beyond about 1e19
    in float32) that its square overflows: where it is not, ``models.weights.non_finite_tensors``
    tells the two apart. The 2-norm is the cheap pass (on a CPU a tenth of the time of the
    infinity norm, which cannot overflow, for i3d_r50's 28M gradients). Under DDP the gradients
    are the reduced ones, the same on every process, so every process finds the same norm.
    """
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    if not grads:
        return None
    return get_total_norm(grads, norm_type=2.0)


def longest_warmup_epochs(steps_per_epoch: int, total_steps: int) -> float:
    """The largest ``optim.warmup_epochs``, in hundredths, whose warmup (rounded to steps as
    ``LRSchedule`` rounds it) ends within a run of ``total_steps``: the peak is reached at the
    last step at the latest. 0.0 for a run of one step."""
    return (total_steps - 1) * 100 // steps_per_epoch / 100


class LRSchedule:
    """Multiplier of the peak learning rate at an optimiser step: linear warmup, then decay.

    A plain callable object with plain attributes, so ``LambdaLR.state_dict()`` stores it as
    numbers and a checkpoint loads with ``weights_only=True``.

    Args:
        cfg: the optim section.
        steps_per_epoch: optimiser steps in one epoch (> 0).
        total_steps: optimiser steps of the whole run.
    """

    def __init__(self, cfg: OptimConfig, steps_per_epoch: int, total_steps: int) -> None:
        if steps_per_epoch < 1 or total_steps < 1:
            raise ValueError(
                f"steps_per_epoch and total_steps must be >= 1, got {steps_per_epoch}, "
                f"{total_steps}"
            )
        # in the order ``described_changes`` lists their changes
        self.schedule = cfg.schedule
        self.total_steps = total_steps
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.warmup_start = cfg.warmup_start_factor
        self.final = cfg.final_lr_factor
        self.milestones = [round(e * steps_per_epoch) for e in cfg.step_epochs]
        self.gamma = cfg.step_gamma

    def described_changes(self, saved: dict[str, Any]) -> list[str]:
        """What differs from ``saved`` (a schedule's attributes, as ``LambdaLR.state_dict``
        stores them), as ``"72 -> 108 steps"``. Every attribute is compared, so an added one
        cannot change unreported; one that ``saved`` lacks (an older checkpoint) is skipped."""
        return [
            _SCHEDULE_CHANGES.get(key, f"{key} {{}} -> {{}}").format(saved[key], value)
            for key, value in vars(self).items()
            if key in saved and saved[key] != value
        ]

    def ends_in_warmup(self) -> bool:
        """Whether the run's last step comes before the warmup's end: the peak is never reached
        and the decay never starts."""
        return self.warmup_steps >= self.total_steps

    def peak(self) -> float:
        """The largest multiplier of the run's steps (0 to ``total_steps - 1``): 1.0, or less
        where the run ends in its warmup. The warmup rises and the decay falls, so it is at the
        last step of one or the first of the other."""
        last = self.total_steps - 1
        return max(
            self(max(0, min(self.warmup_steps - 1, last))), self(min(self.warmup_steps, last))
        )

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            # Reaches 1.0 exactly at the first step after the warmup.
            return self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
        if self.schedule == "step":
            return self.gamma ** bisect.bisect_right(self.milestones, step)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def idle_settings(
    cfg: OptimConfig, schedule: LRSchedule, steps_per_epoch: int, max_epochs: int
) -> list[str]:
    """One line for each optim setting, away from its default, that changes nothing in this
    run, whose ``schedule`` is made of ``cfg`` for its ``steps_per_epoch`` and ``max_epochs``:
    a key of the other schedule, a step epoch at or past the run's end, a warmup setting
    without a warmup, ``mix_prob`` with mixup and CutMix off. Such a config is legitimate (one
    file shared by runs of either schedule), so these are warnings, not refusals; each names
    the key, why it does nothing and what would use it."""
    default = OptimConfig()
    moved = {k for k in vars(default) if getattr(cfg, k) != getattr(default, k)}
    lines = []
    if cfg.schedule == "cosine":
        lines += [
            f"optim.{key}={_shown(getattr(cfg, key))} has no effect under optim.schedule=cosine "
            "(it sets the step schedule's decay); set optim.schedule=step to use it"
            for key in ("step_epochs", "step_gamma")
            if key in moved
        ]
    else:
        if "final_lr_factor" in moved:
            lines.append(
                f"optim.final_lr_factor={cfg.final_lr_factor:g} has no effect under "
                "optim.schedule=step (it is where the cosine schedule ends); set "
                "optim.schedule=cosine to use it"
            )
        if "step_gamma" in moved and not cfg.step_epochs:
            lines.append(
                f"optim.step_gamma={cfg.step_gamma:g} has no effect: optim.step_epochs is empty, "
                "so the step schedule never decays; list the epochs to decay at there"
            )
        late = [e for e, at in zip(cfg.step_epochs, schedule.milestones, strict=True)
                if at >= schedule.total_steps]  # fmt: skip
        if late:
            if len(late) == len(cfg.step_epochs):
                outcome = "lr never decays"
            else:
                outcome = "it never happens" if len(late) == 1 else "they never happen"
            which = f"decay at epoch {late[0]} is" if len(late) == 1 else "decays at "
            if len(late) > 1:
                which += f"epochs {_shown(late)[1:-1]} are"
            lines.append(
                f"optim.step_epochs={_shown(cfg.step_epochs)}: the {which} at or past the "
                f"run's end (trainer.max_epochs={max_epochs}), so {outcome}; use epochs below "
                f"{max_epochs}"
            )
    if schedule.warmup_steps == 0 and "warmup_start_factor" in moved:
        lines.append(
            f"optim.warmup_start_factor={cfg.warmup_start_factor:g} has no effect without a "
            f"warmup (optim.warmup_epochs={cfg.warmup_epochs:g}); set optim.warmup_epochs > 0"
        )
    if schedule.warmup_steps == 0 and cfg.warmup_epochs > 0:
        lines.append(
            f"optim.warmup_epochs={cfg.warmup_epochs:g} rounds to 0 of the {steps_per_epoch} "
            f"steps an epoch has: no warmup; set it to at least {1 / steps_per_epoch:.3g} for "
            "one step"
        )
    if "mix_prob" in moved and cfg.mixup_alpha == 0 and cfg.cutmix_alpha == 0:
        lines.append(
            f"optim.mix_prob={cfg.mix_prob:g} has no effect: mixup and CutMix are off "
            "(optim.mixup_alpha=0, optim.cutmix_alpha=0); set either above 0 to mix"
        )
    return lines


def _shown(value: Any) -> str:
    """A setting as a ``key=value`` override writes it: ``[1, 2]``, ``0.01``."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


class ScheduleLR(LambdaLR):
    """``LambdaLR`` of an ``LRSchedule`` that resumes on the schedule of the current config.

    ``LambdaLR.load_state_dict`` brings back the saved schedule (its total and warmup steps,
    milestones) and base learning rates along with the step count, and the optimiser's state
    brings back its learning rates: a run resumed with a longer ``trainer.max_epochs`` or another
    ``optim.lr`` would go on with the old schedule (past its end at ``final_lr_factor``, 0.0 by
    default) while the log states the new one. As in PySlowFast, which computes the rate from the
    config at every step, only the step count comes from the checkpoint: the learning rate at the
    saved step is the current schedule's (the very number an uninterrupted run has there when
    nothing changed), and one info line says what differs from the saved schedule. So do the
    parameter groups' momentum, Nesterov flag and weight decay, which the optimiser's state brings
    back as saved (Lightning restores the optimiser before its scheduler); momentum buffers are
    restored as they were.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: LRSchedule) -> None:
        self._group_settings = [
            {k: group[k] for k in _GROUP_SETTINGS if k in group} for group in optimizer.param_groups
        ]
        super().__init__(optimizer, lr_lambda)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        changes = _schedule_changes(state_dict, self.base_lrs, self.lr_lambdas[0])
        changes += _apply_group_settings(self.optimizer.param_groups, self._group_settings)
        # the step count from the checkpoint; the base learning rates and schedules stay
        super().load_state_dict(
            {**state_dict, "base_lrs": self.base_lrs, "lr_lambdas": [None] * len(self.lr_lambdas)}
        )
        groups = self.optimizer.param_groups
        for group, base_lr, fn in zip(groups, self.base_lrs, self.lr_lambdas, strict=True):
            group["initial_lr"] = base_lr
            group["lr"] = base_lr * fn(self.last_epoch)
        self._last_lr = [group["lr"] for group in groups]
        if changes:
            logger.info(
                "resumed optimiser settings differ from the config: %s; following the config",
                ", ".join(changes),
            )


def _schedule_changes(
    saved: dict[str, Any], base_lrs: list[float], schedule: LRSchedule
) -> list[str]:
    """What differs between a saved ``LambdaLR`` state and the current base learning rates and
    schedule, as ``"lr 0.1 -> 0.2"``, ``"72 -> 108 steps"``, ..."""
    changes = []
    old_lrs = saved.get("base_lrs")
    if old_lrs is not None and [float(lr) for lr in old_lrs] != [float(lr) for lr in base_lrs]:
        changes.append(f"lr {float(old_lrs[0]):.6g} -> {float(base_lrs[0]):.6g}")
    return changes + schedule.described_changes((saved.get("lr_lambdas") or [None])[0] or {})


def _apply_group_settings(groups: list[dict[str, Any]], own: list[dict[str, Any]]) -> list[str]:
    """Sets each parameter group's momentum, Nesterov flag and weight decay back to ``own`` (the
    config's), over the optimiser state's; returns the changes, as ``"group 0 momentum 0.9 ->
    0.5"``."""
    changes = []
    for i, (group, settings) in enumerate(zip(groups, own, strict=True)):
        for key, value in settings.items():
            if group.get(key) != value:
                changes.append(f"group {i} {key} {group.get(key)} -> {value}")
                group[key] = value
    return changes
