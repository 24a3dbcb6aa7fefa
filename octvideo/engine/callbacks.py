"""Callbacks of a training run: the training-curves PNG, the DDP replica check, the checkpoint
written when the job is told to stop (SIGTERM), precise batch-norm statistics and the one log
line per epoch where no progress bar is shown."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.utils.data import DataLoader

from octvideo.engine.lightning_state import accumulating
from octvideo.models.cost import fvcore_nn
from octvideo.paths import atomic_output, write_atomically

logger = logging.getLogger(__name__)


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Columns of a Lightning ``metrics.csv``: name -> [(step, value)], blank cells skipped."""
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            step = int(row.get("step") or 0)
            for name, text in row.items():
                if name in ("step", "epoch") or text in ("", None):
                    continue
                series.setdefault(name, []).append((step, float(text)))
    return series


def plot_curves(metrics_csv: Path, out_png: Path) -> Path:
    """Loss, accuracy and learning rate against the optimiser step, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(metrics_csv)
    panels = (
        ("loss", ("train/loss_step", "train/loss_epoch", "val/loss")),
        ("accuracy", ("train/top1", "val/top1", "val/top5")),
        ("learning rate", ("lr",)),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, names) in zip(axes, panels, strict=True):
        for name in names:
            points = series.get(name)
            if points:
                steps, values = zip(*points, strict=True)
                style = "-" if name.endswith("_step") or name == "lr" else "o-"
                ax.plot(steps, values, style, label=name, markersize=3, linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.has_data():
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    try:  # whole or not at all, never through a link (see octvideo.paths)
        with atomic_output(out_png) as part:  # same extension: the figure's format
            fig.savefig(part, dpi=100)
    finally:
        plt.close(fig)
    return out_png


class TrainingCurves(L.Callback):
    """Saves the curves of the run's CSV log as a PNG when training ends (global rank 0)."""

    def __init__(self, out_png: Path) -> None:
        self.out_png = Path(out_png)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        csv_loggers = [lg for lg in trainer.loggers if isinstance(lg, CSVLogger)]
        if not csv_loggers:
            raise RuntimeError("TrainingCurves needs a CSVLogger among the trainer's loggers")
        csv_logger = csv_loggers[0]
        csv_logger.save()  # flush what is buffered
        metrics_csv = Path(csv_logger.experiment.metrics_file_path)
        if not metrics_csv.is_file():
            logger.warning("no metrics logged; %s not written", self.out_png)
            return
        plot_curves(metrics_csv, self.out_png)
        logger.info("training curves: %s", self.out_png)


def _clock(seconds: float) -> str:
    """``H:MM:SS``."""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class EpochLog(L.Callback):
    """Logs one line at the end of each training epoch (global rank 0), for runs without a
    progress bar (output not to a terminal, or ``trainer.progress_bar=false``), where training
    would otherwise print nothing for minutes or hours::

        epoch 3/14: train loss 1.2345, val top-1 41.67%, 0:01:02 elapsed, about 0:03:38 left

    The validation part is there for epochs that validated (``trainer.check_val_every_n_epoch``);
    the time left is the mean time of the epochs this process trained times the epochs to go.
    """

    def __init__(self) -> None:
        self._start = 0.0
        self._first_epoch = 0
        self._validated = False
        self._top1: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()
        self._first_epoch = trainer.current_epoch

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._validated = True
        top1 = trainer.callback_metrics.get("val/top1")  # absent: no video was scored
        self._top1 = None if top1 is None else float(top1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        validated, top1 = self._validated, self._top1
        self._validated, self._top1 = False, None
        if not trainer.is_global_zero:
            return
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs
        parts = [f"epoch {epoch}/{total}: "]
        loss = trainer.callback_metrics.get("train/loss_epoch")
        parts.append("train loss -" if loss is None else f"train loss {float(loss):.4f}")
        if validated:
            parts.append(
                ", val top-1 - (no video scored)"
                if top1 is None
                else f", val top-1 {100 * top1:.2f}%"
            )
        elapsed = time.monotonic() - self._start
        trained = max(1, epoch - self._first_epoch)
        left = elapsed / trained * max(0, total - epoch)
        parts.append(f", {_clock(elapsed)} elapsed, about {_clock(left)} left")
        logger.info("".join(parts))


def parameter_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in ``named_parameters`` order."""
    digest = hashlib.sha256()
    for name, param in module.named_parameters():
        digest.update(name.encode())
        # as bytes: numpy has no bfloat16
        digest.update(param.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class ReplicaCheck(L.Callback):
    """At the end of training, checks that every DDP replica holds the same parameters.

    DDP keeps replicas identical only if every rank ran the same steps; a desynchronised run
    (a rank skipping a step, a non-deterministic all-reduce) would otherwise go unnoticed. Rank 0
    writes the digests to ``out_json`` (atomically, never through a symbolic link); differing
    digests raise ``RuntimeError``.
    """

    def __init__(self, out_json: Path) -> None:
        self.out_json = Path(out_json)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        digest = parameter_digest(pl_module)
        digests = [digest]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            digests = [""] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(digests, digest)
        if trainer.is_global_zero:
            self.out_json.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "world_size": len(digests),
                "global_step": trainer.global_step,
                "param_sha256": digests,
            }
            # atomic, and refused at a symbolic link (it would overwrite the file it points to)
            write_atomically(self.out_json, json.dumps(record, indent=2, allow_nan=False) + "\n")
        if len(set(digests)) != 1:
            raise RuntimeError(f"DDP replicas disagree after training: {digests}")
        if len(digests) > 1 and trainer.is_global_zero:  # a statement about all: said once
            logger.info("parameters identical on all %d ranks", len(digests))


def at_final_step(trainer: L.Trainer) -> bool:
    """Whether the optimiser step just taken is the run's last.

    A checkpoint written there, before the last epoch's validation, precise BN and epoch-end
    checkpoint, is one a resumed run would take as finished: Lightning resumes it with nothing
    left to do, so that validation and precise BN would never run. The step-triggered and the
    SIGTERM last.ckpt are not written at that step: the run's next last.ckpt is the one written
    as that validation starts, after precise BN, which a resumed run validates first
    (``octvideo.engine.run``), or the epoch-end one.
    """
    return trainer.global_step >= trainer.estimated_stepping_batches


class CheckpointOnSigterm(L.Callback):
    """Writes ``path`` (the run's last.ckpt) at the end of the batch during which the process was
    sent SIGTERM, as a scheduler does before it preempts a job; not at the run's last step
    (``at_final_step``) nor inside a gradient-accumulation window, whose gradient a checkpoint
    does not hold (the last.ckpt before is kept).

    Lightning answers SIGTERM by stopping after that batch (``SIGTERMException``) without a
    checkpoint; this one is written at the same point in the batch as the step-triggered
    last.ckpt, so ``--resume auto`` continues exactly where the job stopped. Every process
    takes part in the decision (any one signalled), so the write is collective under DDP.
    After an epoch's last batch Lightning goes on to its validation and stops after the
    validation batch under way; the last.ckpt written as that validation started keeps the
    epoch's training.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.strategy.reduce_boolean_decision(trainer.received_sigterm, all=False):
            if at_final_step(trainer):
                logger.info(
                    "SIGTERM at the last step: last.ckpt is written as its validation starts, "
                    "or at the epoch's end"
                )
                return
            if accumulating(trainer):  # no optimiser step after this batch
                # the gradient accumulated so far is not saved: resumed after this batch, the
                # step would miss the window's first batches
                logger.info("SIGTERM inside an accumulation window: last.ckpt kept as it was")
                return
            trainer.save_checkpoint(self.path, weights_only=False)  # the whole training state
            logger.info("SIGTERM: checkpoint written at global step %d", trainer.global_step)


class PreciseBatchNorm(L.Callback):
    """Recomputes every batch norm's running statistics from ``num_batches`` training batches,
    with the weights held, before each validation of a fit and at each training epoch's end (at
    most once per global step), so validation, best.ckpt and last.ckpt use them.

    The running averages that training keeps mix statistics of many past weights; these are the
    mean and variance of the current network's activations over the batches ("precise BN",
    Wu & Johnson, "Rethinking Batch in BatchNorm", 2021; PySlowFast's BN.USE_PRECISE_STATS).
    fvcore's ``update_bn_stats`` does the averaging. Under DDP each process averages its own
    batches and the processes then combine their means and second moments, so every rank ends
    with the statistics of all of them. Parameters, the modules' train/eval modes, momenta and
    ``num_batches_tracked`` are left as they were; the buffers keep their identity (DDP
    broadcasts the tensors it was built with).

    Args:
        num_batches: batches per update (fewer if an epoch has fewer).
        loader: ``epoch -> batches`` of the training set (dicts with ``"video"``), augmented as
            in training; ``VideoDataModule.precise_bn_dataloader``.
    """

    def __init__(self, num_batches: int, loader: Callable[[int], DataLoader]) -> None:
        if num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        self.num_batches = num_batches
        self.loader = loader
        self._updated_at: int | None = None  # the global step of the last update

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.update(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.update(trainer, pl_module)  # epochs without a validation

    def update(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Recompute the statistics, unless they were at this global step already."""
        if self._updated_at == trainer.global_step:
            return
        self._updated_at = trainer.global_step
        norms = _tracked_norms(pl_module)
        if not norms:
            return
        loader = self.loader(trainer.current_epoch)
        batches = min(self.num_batches, len(loader))
        if not batches:
            return
        start = time.perf_counter()
        kept: list[_Kept] = [
            (m, m.running_mean, m.running_var, m.num_batches_tracked.clone()) for m in norms
        ]
        modes = [(m, m.training) for m in pl_module.modules()]
        device = pl_module.device

        def clips() -> Iterator[Any]:
            for batch in loader:
                yield move_data_to_device(batch["video"], device)

        update_bn_stats = fvcore_nn().update_bn_stats
        say = trainer.is_global_zero  # the update is over every process: one of them says it
        pl_module.train()
        try:
            with torch.no_grad(), _fvcore_says(say):
                with trainer.precision_plugin.train_step_context():
                    update_bn_stats(pl_module, clips(), num_iters=batches)
                mean, var = _combined_moments(trainer, norms)
                _restore(kept, mean, var)
        finally:
            for module, training in modes:
                module.training = training
        if not say:
            return
        logger.info(
            "precise BN: statistics of %d batch-norm layers from %d batches x %d processes in "
            "%.1f s, at global step %d",
            len(norms),
            batches,
            trainer.world_size,
            time.perf_counter() - start,
            trainer.global_step,
        )


class _Unsaid(logging.Filter):
    """Leaves out the records whose message opens with ``start``."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


@contextlib.contextmanager
def _fvcore_says(say: bool) -> Iterator[None]:
    """fvcore's own line of a precise-BN update ("Computing precise BN statistics for ..."),
    left out unless ``say``: every process computes, global rank 0 says it."""
    if say:
        yield
        return
    quiet = _Unsaid("Computing precise BN statistics")
    fvcore_logger = logging.getLogger("fvcore.nn.precise_bn")
    fvcore_logger.addFilter(quiet)
    try:
        yield
    finally:
        fvcore_logger.removeFilter(quiet)


# a batch norm with the buffers it had before an update: running mean, variance, batches tracked
_Kept = tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]


def _tracked_norms(module: nn.Module) -> list[nn.Module]:
    """The batch norms in ``module`` that keep running statistics."""
    kinds = nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm
    return [m for m in module.modules() if isinstance(m, kinds) and m.track_running_stats]


def _combined_moments(
    trainer: L.Trainer, norms: list[nn.Module]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The running means and variances of ``norms`` (concatenated in their order) combined over
    the processes, each of which averaged as many batches of its own: the mean of their means,
    and the mean of their second moments (variance + mean squared) less the square of that mean.
    In float64: the variance comes back as a difference of second moments, which float32 would
    lose to cancellation where the mean is large against the spread."""
    means = torch.cat([m.running_mean.double() for m in norms])
    squares = torch.cat([m.running_var.double() + m.running_mean.double() ** 2 for m in norms])
    mean, square = trainer.strategy.reduce(torch.stack([means, squares]), reduce_op="mean")
    return mean, (square - mean.square()).clamp_min_(0)


def _restore(kept: list[_Kept], mean: torch.Tensor, var: torch.Tensor) -> None:
    """Writes ``mean`` and ``var`` (concatenated in ``kept``'s order) into each norm's buffers of
    before the update and puts those back on it, as its ``num_batches_tracked``: the tensors keep
    their identity (DDP broadcasts the ones it was built with) and their dtype."""
    at = 0
    for m, running_mean, running_var, tracked in kept:
        n = running_mean.numel()
        running_mean.copy_(mean[at : at + n])
        running_var.copy_(var[at : at + n])
        m.running_mean, m.running_var = running_mean, running_var
        m.num_batches_tracked.copy_(tracked)
        at += n
