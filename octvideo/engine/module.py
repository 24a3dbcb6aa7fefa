"""The training logic: loss, metrics and optimisation around a video classifier.

The network (``nn.Module`` from ``octvideo.models``), the training logic (this LightningModule) and
the data (``octvideo.data.VideoDataModule``) are three separate things. The module receives the
optim section, the class count and the per-device batch size; ``meta`` (model section, class
names, normalisation, clip protocol, whole resolved config) is stored as plain values in the
checkpoint's hyper-parameters, so a checkpoint alone can rebuild the model and its input pipeline
and loads with ``torch.load(weights_only=True)``.

A checkpoint written during an epoch (every N steps, on SIGTERM, as the epoch's validation starts)
also carries what the epoch's training metrics have accumulated over the batches so far
(``EPOCH_METRICS``), so a run resumed from it logs the same training loss and top-1 for that epoch
as an uninterrupted run, even when no training batch of it is left to run. Every checkpoint of
a fit records the validation videos its scores are over (``validation_set``), which a resume
compares (``octvideo.engine.run.check_same_validation``).

A step whose loss or gradients hold a NaN or an infinity is never taken: the run stops, or with
``optim.on_nonfinite_loss=skip`` the step leaves the weights, the momentum and the batch-norm
statistics as they were, so no checkpoint is written with weights that no command would load.
Under ``16-mixed`` the gradient scaler has the first say (``_nonfinite_under_scaler``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.amp import GradScaler
from torch.optim import Optimizer
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from octvideo.config import OptimConfig
from octvideo.data.annotations import nfc
from octvideo.data.datasets import item_seed
from octvideo.engine.evaluate import ViewOutputs
from octvideo.engine.lightning_state import epoch_under_way
from octvideo.engine.logs import command_logging
from octvideo.engine.mixing import mix_batch, soft_targets
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
from octvideo.errors import NonFiniteLoss
from octvideo.models.weights import first_non_finite, non_finite_tensors
from octvideo.ops import memory_format_for, to_memory_format

logger = logging.getLogger(__name__)

# the norm layers that keep running statistics (torch's public classes: their base is private)
_RUNNING_STAT_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)

Clip = Tensor | list[Tensor]

# the checkpoint key of the training metrics' state accumulated during the epoch under way
EPOCH_METRICS = "train_epoch_metrics"
# the checkpoint key of the videos its run validates on (``validation_set``), and the form
# of that record: a resume compares a record with one of its own form (``validation_set_like``)
VALIDATION_SET = "validation_set"
VALIDATION_FORM = 2


def validation_set(records: Sequence[Any]) -> dict[str, Any]:
    """What tells the videos of a validation list apart: their count, and a digest of each
    video's file name (``_named``), label and size in bytes, in sorted order. The same
    videos moved or copied (another ``data.root`` or list path, names in either Unicode form,
    one reached through a link) give the same; another list, the list edited, or other videos
    under the same names (a set generated again) give another, so a resumed run's scores (and
    ``best.ckpt``'s) stay over one set of videos. Files with the same names, labels and sizes
    but other bytes are not told apart (reading every video would be).

    Args:
        records: (path, label) of each video (``VideoDataset.records``).
    """
    lines = sorted(f"{name}\t{int(label)}\t{size}" for name, size, label in _named(records))
    return {"form": VALIDATION_FORM, **_digest(lines)}


def validation_set_like(stored: Any, records: Sequence[Any]) -> dict[str, Any] | None:
    """``records``' validation set in the form of ``stored`` (a checkpoint's record), so that
    the two compare like with like; None when ``stored`` is no record this octvideo can compare
    (not one, or a later form). A record without a ``form`` (octvideo before file sizes were in
    it) is computed by its own rule, file names as listed and labels, so such a checkpoint
    still resumes on its videos and is refused on others, as when it was written.
    """
    if not isinstance(stored, dict):
        return None
    if "form" not in stored:
        lines = sorted(
            f"{os.path.basename(os.fspath(path))}\t{int(label)}" for path, label in records
        )
        return _digest(lines)
    return validation_set(records) if stored["form"] == VALIDATION_FORM else None


def _digest(lines: list[str]) -> dict[str, Any]:
    """The count of ``lines`` and a digest of them in their order."""
    text = "\n".join(lines).encode("utf-8", "surrogateescape")
    return {"videos": len(lines), "digest": hashlib.sha256(text).hexdigest()[:16]}


def _named(records: Sequence[Any]) -> Iterator[tuple[str, int, Any]]:
    """(file name, size in bytes or -1 for a file that cannot be read, label) of each record.

    The name is the file's own (a link's target's: a list that reaches one file through a link
    and by its name keeps whichever line comes first, as ``octvideo.data.annotations`` keeps one
    line a file), in Unicode's composed form (``nfc``: macOS names files decomposed); not its
    folders, so that a copy of the videos elsewhere, or into another folder tree, names them
    alike. One ``lstat`` a video, and for a link a ``stat`` and a ``realpath``: 20,000 videos
    take about 30 ms, their list's reader having stat-ed them already.
    """
    for path, label in records:
        path, size = os.fspath(path), -1
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                info = os.stat(path)
                path = os.path.realpath(path)
            size = info.st_size
        except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
            pass
        yield nfc(os.path.basename(path)), size, label


def _clips_per_epoch(loader: Any) -> int | None:
    """Clips of one process's epoch of a training loader (its sampler's length), or None."""
    try:
        return len(loader.sampler)
    except (AttributeError, TypeError):
        return None


def _warn_short_epoch(
    batch_size: int, clips: int | None, accumulate: int, accumulated: int, global_batch: int
) -> None:
    """Warns where an epoch holds fewer than a step asks for (``step_batch``): fewer training
    ``clips`` a process than ``batch_size``, or fewer batches than the ``accumulate`` a step
    gathers (``accumulated`` instead), so that lr is scaled for the smaller ``global_batch``."""
    if clips is not None and clips < batch_size:
        logger.warning(
            "data.batch_size=%d is more than the %d training clips a process has per epoch: "
            "a step takes those, so lr is scaled for a global batch of %d",
            batch_size,
            clips,
            global_batch,
        )
    if accumulated < accumulate:
        logger.warning(
            "trainer.accumulate_grad_batches=%d is more than the %d batches of an epoch: a "
            "step accumulates those, so lr is scaled for a global batch of %d",
            accumulate,
            accumulated,
            global_batch,
        )


def _warn_warmup_outlasts_run(
    cfg: OptimConfig, schedule: LRSchedule, lr: float, steps_per_epoch: int, max_epochs: int
) -> None:
    """Warns that ``schedule``'s warmup ends after the run's last step, so lr never reaches its
    peak ``lr``, and says what ``optim.warmup_epochs`` would fit (in the value rounded to steps
    as the schedule rounds it)."""
    total_steps = schedule.total_steps
    longest = longest_warmup_epochs(steps_per_epoch, total_steps)
    steps = round(longest * steps_per_epoch)
    advice = (
        f"set optim.warmup_epochs to at most {longest:g} (a warmup of {steps} "
        f"step{'s' if steps > 1 else ''}), or 0 for none"
        if longest
        else "set optim.warmup_epochs=0: a run of one step has no room for a warmup"
    )
    logger.warning(
        "optim.warmup_epochs=%g (%d steps) outlasts trainer.max_epochs=%d (%d steps): "
        "lr rises to %.4g, never to %.4g, and the %s schedule never starts; %s",
        cfg.warmup_epochs,
        schedule.warmup_steps,
        max_epochs,
        total_steps,
        lr * schedule.peak(),
        lr,
        cfg.schedule,
        advice,
    )


def _decoded(batch: dict[str, Any]) -> Tensor:
    """(B,) True for the rows of an evaluation batch whose video decoded (its ``ok``); every row
    of a batch that carries no ``ok``."""
    return batch.get("ok", torch.ones_like(batch["label"], dtype=torch.bool)).bool()


def _rows(video: Clip, mask: Tensor) -> Clip:
    """The rows of a batch (one tensor or a list of pathways) where ``mask`` is true."""
    return [v[mask] for v in video] if isinstance(video, list) else video[mask]


def metric_state(metric: Metric) -> dict[str, Tensor]:
    """A metric's accumulated state summed over every process (a collective under DDP), on the
    CPU; the process's own state is left as it was."""
    with metric.sync_context():
        return {k: v.detach().clone().cpu() for k, v in metric.metric_state.items()}


def carry_in(metric: Metric, state: Mapping[str, Tensor]) -> None:
    """Adds an accumulated ``state`` (``metric_state``) to ``metric``, counted as one update.

    ``Metric.merge_state`` adds it but counts no update, and torchmetrics warns when it computes
    a metric that counts none, as a resumed epoch with no training batch left would; no public
    API sets the count, hence the private attribute, here only.
    """
    metric.merge_state({k: v.to(getattr(metric, k).device) for k, v in state.items()})
    metric._update_count += 1


class _CommandLogging:
    """The command's logging, in the processes that ``trainer.strategy=ddp_spawn`` starts: they
    import octvideo afresh, without it, where the processes of ``ddp`` run the command again.

    Pickled with the module, it takes the sending process and its root logger's level; ``apply``
    gives any other process the command's set-up at that level (``command_logging``) with
    Lightning's noise left out, as ``octvideo.engine.run`` leaves it out for the command. In the
    sender, and where the module was never pickled (a caller's own Trainer), it does nothing.
    """

    def __init__(self) -> None:
        self._sender: tuple[int, int] | None = None  # process id, root level; set by unpickling

    def __getstate__(self) -> dict[str, Any]:
        return {"_sender": (os.getpid(), logging.getLogger().level)}

    def apply(self) -> None:
        if self._sender is None or self._sender[0] == os.getpid():
            return
        from octvideo.engine.run import _quiet_lightning  # here: run imports this module

        command_logging(self._sender[1])
        _quiet_lightning()


class VideoClassifier(L.LightningModule):
    """Trains and evaluates a clip classifier.

    Batches are dicts: ``video`` (B, 3, T, H, W) or [slow, fast], ``label`` (B,), ``video_index``
    (B,); evaluation batches carry ``ok`` (B,) (False = the video failed to decode; its row is
    dropped, never substituted) and test batches ``temporal_index`` / ``spatial_index``.

    Args:
        model: the network; forward(clip) -> logits (B, num_classes).
        optim: the optim section as a plain dict (``octvideo.config.to_dict``).
        num_classes: classifier outputs.
        batch_size: clips per device and batch; with the world size and gradient accumulation
            it gives the global batch that scales the learning rate, unless an epoch holds fewer
            clips or batches: then a step has those, and the rate is scaled for them
            (``step_batch``).
        seed: seeds mixup / CutMix draws (with the rank and the starting step).
        meta: plain values stored with every checkpoint (see module docstring).
        memory_format: ``trainer.memory_format``; the model and every clip are put in it once
            the device is known (``setup``): "auto" is channels-last on CPU, where OctConv3d
            takes its fast path.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        optim: dict[str, Any],
        num_classes: int,
        batch_size: int,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
        memory_format: str = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        memory_format_for("cpu", memory_format)  # a wrong name fails here, not in setup
        self.memory_format: torch.memory_format | None = None  # set by setup
        self.optim_cfg = OptimConfig(**optim)
        self.num_classes = num_classes
        top5 = min(5, num_classes)
        # the epoch's training metrics, over every rank's batches (weighted by batch size)
        self.train_loss = MeanMetric()
        self.train_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        self.val_loss = MeanMetric()  # over videos: ranks' shares may differ in size
        self._step_rng: np.random.Generator | None = None
        self._skipped_in_row = 0
        self._skipped = 0
        self._scaler_skipped_in_row = 0  # 16-mixed: steps in a row the scaler skipped, scale > 1
        # 16-mixed: the scale of a step the policy skipped, put back after it (optimizer_step)
        self._scale_to_restore: float | None = None
        self._batch_idx = 0  # of the batch under way, for messages
        self._step_skipped = False  # the batch under way was skipped (loss or gradients)
        self._norm_stats: list[Tensor] = []
        self._test_rows: list[dict[str, Tensor]] = []
        self._test_errors: dict[int, str] = {}
        self._val_failed = 0
        self._val_scored = 0
        # accumulate_grad_batches / the batches a step accumulates (set by configure_optimizers):
        # Lightning divides each batch's loss by the former, which a step of fewer batches would
        # leave as a share of the gradient
        self._short_accumulation_factor = 1.0
        self._carried = False  # the epoch's training metrics came from the resumed checkpoint
        self._validation_set: dict[str, Any] | None = None  # of the fit under way
        self.test_views: ViewOutputs | None = None
        # the command's logging, in the processes trainer.strategy=ddp_spawn starts
        self._command_logging = _CommandLogging()

    def setup(self, stage: str) -> None:
        self._command_logging.apply()  # before the module logs anything in a spawned process
        # before the strategy moves the model to its device (``.to(device)`` keeps the format)
        # and before the optimiser is made, so its state takes the parameters' format as well
        self.memory_format = memory_format_for(
            self.trainer.strategy.root_device, self.hparams.memory_format
        )
        self.model.to(memory_format=self.memory_format)

    def forward(self, video: Clip) -> Tensor:
        if self.memory_format is not None:
            video = to_memory_format(video, self.memory_format)
        return self.model(video)  # (B, K)

    # -- training ---------------------------------------------------------------------------

    @property
    def mixing(self) -> bool:
        cfg = self.optim_cfg
        return cfg.mix_prob > 0 and (cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Every random draw of a step (dropout, mixup / CutMix) is seeded by the run's seed, the
        # rank, the epoch and the batch: a run resumed from a mid-epoch checkpoint replays the
        # steps of an uninterrupted one exactly, with no generator state to save.
        self._batch_idx = batch_idx
        self._step_skipped = False
        parts = [self.hparams.seed, self.global_rank, self.current_epoch, batch_idx]
        torch.manual_seed(item_seed(*parts))
        self._step_rng = np.random.default_rng(parts)
        if self.optim_cfg.on_nonfinite_loss == "skip":
            # the forward pass of a skipped step has already updated the batch-norm statistics
            # (with NaN, if the input was): keep a copy to put back (a few KiB per layer)
            self._norm_stats = [b.detach().clone() for b in self._norm_buffers()]

    def _norm_buffers(self) -> list[Tensor]:
        return [
            b
            for m in self.model.modules()
            if isinstance(m, _RUNNING_STAT_NORMS)
            for b in m.buffers(recurse=False)
        ]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        labels = batch["label"]  # (B,)
        logits, loss = self._logits_and_loss(batch["video"], labels)  # (B, K), ()
        if not self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True):
            # every rank skips or stops together; no backward pass, so no gradient: SGD leaves
            # every weight and momentum buffer as it was
            return self._nonfinite(f"loss is {float(loss.detach())}")
        batch_size = labels.shape[0]
        self.train_loss.update(loss.detach(), batch_size)
        self.train_top1.update(logits.detach(), labels)
        self.log(
            "train/loss_step",
            loss,
            on_step=True,
            on_epoch=False,
            prog_bar=True,
            batch_size=batch_size,
            sync_dist=True,
        )
        self._log_epoch_metrics()
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("lr", lr, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        factor = self._short_accumulation_factor
        return loss * factor if factor != 1 else loss

    def _logits_and_loss(self, video: Clip, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The model's logits (B, K) for ``video`` (B, 3, T, H, W) or [slow, fast], and the
        step's loss: cross-entropy against ``labels`` (B,) with label smoothing, or, on a batch
        that mixup / CutMix mixes (drawn with the step's generator), against its soft targets."""
        cfg = self.optim_cfg
        rng = self._step_rng if self._step_rng is not None else np.random.default_rng(0)
        if self.mixing and rng.random() < cfg.mix_prob:
            targets = soft_targets(labels, self.num_classes, cfg.label_smoothing)
            video, targets, _ = mix_batch(
                video,
                targets,
                mixup_alpha=cfg.mixup_alpha,
                cutmix_alpha=cfg.cutmix_alpha,
                rng=rng,
            )
            logits = self(video)  # (B, K)
            loss = torch.sum(-targets * F.log_softmax(logits.float(), dim=1), dim=1).mean()
        else:
            logits = self(video)  # (B, K)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=cfg.label_smoothing)
        return logits, loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._step_skipped:
            self._skipped_in_row = 0

    def _epoch_metrics(self) -> dict[str, Metric]:
        return {"train/loss_epoch": self.train_loss, "train/top1": self.train_top1}

    def _log_epoch_metrics(self) -> None:
        """Logs the epoch's training metrics, which Lightning computes and resets at its end."""
        for name, metric in self._epoch_metrics().items():
            self.log(
                name, metric, on_step=False, on_epoch=True, prog_bar=name.endswith("loss_epoch")
            )

    def on_fit_start(self) -> None:
        dataset = getattr(self.trainer.datamodule, "val_dataset", None)
        records = getattr(dataset, "records", None)
        self._validation_set = validation_set(records) if records is not None else None

    def on_train_start(self) -> None:
        if self._carried:  # the resumed epoch may have no training batch left to log them
            self._log_epoch_metrics()
        if self.trainer.is_global_zero:
            self._warn_if_no_epoch_validates()

    def _warn_if_no_epoch_validates(self) -> None:
        """Warns when no epoch left to train validates (``trainer.check_val_every_n_epoch``
        past ``trainer.max_epochs``): such a run logs no validation metric and writes no
        best.ckpt (a resumed run's stays its earlier epoch's), where the next step of a run is
        to test its best.ckpt."""
        trainer = self.trainer
        every, last = trainer.check_val_every_n_epoch, trainer.max_epochs
        first = trainer.current_epoch + 1  # the epoch starting now (a resumed one's counted)
        if every is None or not trainer.enable_validation or last is None or last < first:
            return
        validates = -(-first // every) * every  # the first epoch from ``first`` on that does
        if validates <= last:
            return
        left = last - first + 1
        epochs = (
            f"of trainer.max_epochs={last}"
            if first == 1
            else f"of the {left} left ({first}-{last} of trainer.max_epochs={last})"
        )
        best = "writes no best.ckpt" if first == 1 else "writes no new best.ckpt"
        logger.warning(
            "trainer.check_val_every_n_epoch=%d validates no epoch %s: the run logs no "
            "validation metric and %s; set trainer.check_val_every_n_epoch to at most %d, or "
            "trainer.max_epochs to %d",
            every,
            epochs,
            best,
            left,
            validates,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = self.trainer
        if trainer.state.fn != TrainerFn.FITTING:
            return
        if self._validation_set is not None:  # the videos its scores are over
            checkpoint[VALIDATION_SET] = dict(self._validation_set)
        if epoch_under_way(trainer):
            # during an epoch (every process takes part: the states are summed over them)
            checkpoint[EPOCH_METRICS] = {
                name: metric_state(metric) for name, metric in self._epoch_metrics().items()
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        carried = checkpoint.get(EPOCH_METRICS)
        if not carried:  # written at an epoch's end, or by an older octvideo
            return
        self._carried = True
        if self.global_rank == 0:  # the sums of every process: counted once
            for name, metric in self._epoch_metrics().items():
                if name in carried:
                    carry_in(metric, carried[name])

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Checks the gradients a step is about to apply; one that holds a NaN or an infinity
        stops the run or skips the step, as a NaN loss does (``optim.on_nonfinite_loss``).

        Lightning calls this after the step's backward passes (all those a gradient accumulation
        gathers; under DDP after their reduction, so every process decides alike), before the
        gradients are clipped and the step is taken. A step skipped here had a finite loss, which
        is logged and counted in the epoch's training loss and top-1 as any other.
        """
        what = self._gradient_fault(optimizer)
        if what is None:
            self._scaler_skipped_in_row = 0
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            self._nonfinite_under_scaler(scaler, what)
            return
        self._nonfinite(what)
        # skipped: with no gradient SGD leaves every weight and momentum buffer as it was,
        # weight decay included (Lightning still counts the batch in global_step and the LR
        # schedule)
        optimizer.zero_grad(set_to_none=True)

    def _gradient_fault(self, optimizer: Optimizer) -> str | None:
        """What of the step's gradients holds a NaN or an infinity ("the gradient of weight
        1.weight holds 2 NaN"), or None if none does or the loss was skipped."""
        norm = gradient_norm(optimizer)  # one fused pass
        if norm is None or bool(torch.isfinite(norm)):  # None: the loss was skipped
            return None
        # a second pass, only now: which gradients hold a NaN or an infinity, if any does (the
        # squares of finite gradients beyond about 1e19 overflow the norm alone)
        grads = {n: p.grad for n, p in self.model.named_parameters() if p.grad is not None}
        broken = non_finite_tensors(grads)
        return f"the gradient of {first_non_finite(broken, 'gradient')}" if broken else None

    def _nonfinite_under_scaler(self, scaler: GradScaler, what: str) -> None:
        """Under ``16-mixed``: ``what`` of the gradients, unscaled by now, is not finite.

        The gradient scaler found it in its ``unscale_``; it skips the step whatever is decided
        here and halves its scale. While the scale stands above 1 the backward pass magnifies the
        gradients, and such a step is taken for an overflow of that scaling, which the lower
        scale mends: it is left to the scaler, without a warning (most float16 runs have a few at
        their start). A NaN alone does not tell the two apart: an overflow turns into NaN where
        an infinity meets a zero or another infinity.

        At a scale of 1 or below nothing is magnified, so a NaN or an infinity comes from the
        model or the data, as in float32: from there ``optim.on_nonfinite_loss`` applies and
        counts each such step (gradients that are NaN at every step have the scaler skip 16
        steps before, from its initial 65536 down to 1). A step the policy skips there keeps its
        scale (``optimizer_step`` puts it back): halving mends nothing there, and the policy's
        skips would go on halving it (a NaN batch at every other step takes it to 2**-24 in 48
        steps) until the gradients of the steps between underflow float16 to 0 and the run
        trains nothing, without a word; with the scale kept, they train as in float32.
        """
        scale = scaler.get_scale()  # the scale of this step's backward: update() comes after
        if scale > 1:
            self._scaler_skipped_in_row += 1
            logger.debug("%s at float16 gradient scale %g: the scaler halves it", what, scale)
            return
        skipped = self._scaler_skipped_in_row
        lowered = f" (the scaler skipped {skipped} steps in a row to lower it)" if skipped else ""
        self._scaler_skipped_in_row = 0  # said once: the policy's skips do not lower the scale
        self._nonfinite(f"{what} at float16 gradient scale {scale:g}{lowered}")
        self._scale_to_restore = scale

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Lightning's step; under ``16-mixed`` the gradient scaler's ``update`` ends it, and a
        step the policy skipped (``_nonfinite_under_scaler``) gets its scale back here, so that
        no checkpoint of the step holds the halved one."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self._scale_to_restore is not None:
            self.trainer.precision_plugin.scaler.update(new_scale=self._scale_to_restore)
            self._scale_to_restore = None

    def _nonfinite(self, what: str) -> None:
        """Skip the step (``optim.on_nonfinite_loss=skip``, at most ``max_skipped_steps`` in a
        row; the batch-norm statistics its forward pass changed are put back) or stop the run,
        naming what was not finite (``what``: "loss is nan") and the step."""
        cfg = self.optim_cfg
        where = (
            f"global step {self.global_step} (epoch {self.current_epoch}, batch {self._batch_idx})"
        )
        if cfg.on_nonfinite_loss == "skip" and self._skipped_in_row < cfg.max_skipped_steps:
            self._step_skipped = True
            self._skipped_in_row += 1
            self._skipped += 1
            if self._norm_stats:
                for buffer, saved in zip(self._norm_buffers(), self._norm_stats, strict=True):
                    buffer.copy_(saved)
            logger.warning(
                "%s at %s: step skipped (%d in a row, %d in this run)",
                what,
                where,
                self._skipped_in_row,
                self._skipped,
            )
            return
        after = (
            f" after {self._skipped_in_row} skipped steps in a row (optim.max_skipped_steps)"
            if cfg.on_nonfinite_loss == "skip"
            else ""
        )
        raise NonFiniteLoss(
            f"{what} at {where}{after}; the step was not taken. Lower optim.lr, set "
            "trainer.gradient_clip_val, or skip such steps with optim.on_nonfinite_loss=skip"
        )

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_cfg
        trainer = self.trainer
        total_steps = int(trainer.estimated_stepping_batches)  # loads the training data
        steps_per_epoch = max(1, total_steps // max(1, trainer.max_epochs))
        batch_size, accumulate = self.hparams.batch_size, trainer.accumulate_grad_batches
        batches = trainer.num_training_batches
        clips = _clips_per_epoch(trainer.train_dataloader)
        global_batch, accumulated = step_batch(
            batch_size, trainer.world_size, accumulate, batches, clips
        )
        self._short_accumulation_factor = accumulate / accumulated
        say = trainer.is_global_zero  # each process computes the same: one of them says it
        if say:
            _warn_short_epoch(batch_size, clips, accumulate, accumulated, global_batch)
        lr = scaled_lr(cfg, global_batch)
        schedule = LRSchedule(cfg, steps_per_epoch, total_steps)
        if say:
            logger.info(
                "SGD: lr %.4g (%.4g x global batch %d / %d), %d steps (%d per epoch), "
                "%s%s schedule",
                lr,
                cfg.lr,
                global_batch,
                cfg.lr_reference_batch,
                total_steps,
                steps_per_epoch,
                f"a {schedule.warmup_steps}-step warmup, then " if schedule.warmup_steps else "",
                cfg.schedule,
            )
        if say and schedule.ends_in_warmup():
            _warn_warmup_outlasts_run(cfg, schedule, lr, steps_per_epoch, trainer.max_epochs)
        if say:
            for line in idle_settings(cfg, schedule, steps_per_epoch, trainer.max_epochs):
                logger.warning("%s", line)
        optimizer = torch.optim.SGD(
            param_groups(self.model, cfg.weight_decay),
            lr=lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov and cfg.momentum > 0,
        )
        scheduler = ScheduleLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # -- validation (one centre clip per video) ---------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val_failed = 0
        self._val_scored = 0

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        labels = batch["label"]  # (B,)
        ok = _decoded(batch)  # (B,)
        self._val_failed += int((~ok).sum())
        if not bool(ok.any()):
            return  # nothing collective here: a rank may have no video that decodes
        labels = labels[ok]
        logits = self(_rows(batch["video"], ok))  # (B', K)
        self._val_scored += labels.shape[0]
        self.val_loss.update(F.cross_entropy(logits.float(), labels, reduction="none"))
        self.val_top1.update(logits, labels)
        self.val_top5.update(logits, labels)

    def on_validation_epoch_end(self) -> None:
        """Logs the epoch's metrics over every rank's videos. Every rank takes part in the same
        collectives whatever its share held (a share whose videos all failed to decode, a share
        of another size), and nothing is logged for an epoch that scored no video, so best.ckpt
        is not chosen on an empty validation."""
        local = torch.tensor([self._val_scored, self._val_failed], device=self.device)
        scored, failed = (int(n) for n in self.trainer.strategy.reduce(local, reduce_op="sum"))
        # the values are the same on every rank: "max" syncs them exactly
        self.log("val/failed", float(failed), reduce_fx="max", sync_dist=True)
        if scored:
            for name, metric in (
                ("val/loss", self.val_loss),
                ("val/top1", self.val_top1),
                ("val/top5", self.val_top5),
            ):
                self.log(
                    name,
                    metric.compute(),
                    prog_bar=name != "val/top5",
                    reduce_fx="max",
                    sync_dist=True,
                )
        for metric in (self.val_loss, self.val_top1, self.val_top5):
            metric.reset()
        if failed and self.trainer.is_global_zero:
            logger.warning("validation: %d videos failed to decode and were left out", failed)

    # -- multi-view test ---------------------------------------------------------------------

    def on_test_epoch_start(self) -> None:
        self._test_rows = []
        self._test_errors = {}
        self.test_views = None

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        labels = batch["label"]  # (B,)
        ok = _decoded(batch)  # (B,)
        logits = torch.zeros(labels.shape[0], self.num_classes, dtype=torch.float32)
        if bool(ok.any()):
            logits[ok.cpu()] = self(_rows(batch["video"], ok)).float().cpu()  # (B', K)
        row = {
            "video_index": batch["video_index"].cpu(),
            "temporal_index": batch.get("temporal_index", torch.zeros_like(labels)).cpu(),
            "spatial_index": batch.get("spatial_index", torch.zeros_like(labels)).cpu(),
            "label": labels.cpu(),
            "ok": ok.cpu(),
            "logits": logits,
        }
        self._test_rows.append(row)
        messages = batch.get("error", [""] * labels.shape[0])
        for vid, good, message in zip(row["video_index"], row["ok"], messages, strict=True):
            if not good:
                self._test_errors[int(vid)] = message or "failed to decode"

    def on_test_epoch_end(self) -> None:
        keys = ("video_index", "temporal_index", "spatial_index", "label", "ok", "logits")
        if self._test_rows:
            local = {k: torch.cat([r[k] for r in self._test_rows]) for k in keys}
        else:  # a rank with no test items still takes part in the gather
            local = {k: torch.empty(0, dtype=torch.long) for k in keys}
            local["ok"] = torch.empty(0, dtype=torch.bool)
            local["logits"] = torch.empty(0, self.num_classes)
        parts = [(local, self._test_errors)]
        self._test_rows = []
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # to rank 0 only, which writes the report: the views' logits of a Kinetics test
            # (20k videos x 30 views x 400 classes) are about 1 GB, several times that while
            # unpickled and merged, on every process of a node if every rank gathered them
            rank0 = torch.distributed.get_rank() == 0
            gathered = [None] * torch.distributed.get_world_size() if rank0 else None
            torch.distributed.gather_object((local, self._test_errors), gathered, dst=0)
            if not rank0:
                self.test_views = None
                return
            parts = gathered
        merged = {k: torch.cat([p[0][k] for p in parts]) for k in keys}
        errors = {vid: msg for p in parts for vid, msg in p[1].items()}
        del parts
        self.test_views = ViewOutputs(
            video_index=merged["video_index"].long(),
            temporal_index=merged["temporal_index"].long(),
            spatial_index=merged["spatial_index"].long(),
            labels=merged["label"].long(),
            ok=merged["ok"].bool(),
            logits=merged["logits"],
            errors=errors,
        ).deduplicated()
