"""Reporting bad videos in the main process: each decoder error once, counts per epoch.

Workers are other processes, so the data layer reports through the batch (see
``octvideo.data.datasets``): training batches carry ``skipped`` and ``errors``, evaluation batches
``ok`` and ``error``. ``BadVideoTracker`` reads those fields; ``BadVideoCallback`` wires it into a
Lightning ``Trainer``:

    train  WARNING once per file with the decoder's error; at epoch end an INFO line with the number
           of bad videos stepped over and the metric ``data/skipped_videos`` (summed over ranks).
           A checkpoint written during an epoch carries each process's count so far
           (``EPOCH_SKIPPED``), so a run resumed from it counts the epoch's bad videos from its
           start, as an uninterrupted run does.
    val    WARNING once per file; at epoch end ``data/failed_val_videos`` (distinct videos).
    test   WARNING once per file; the engine's report counts the failed videos (rows ``ok=False``).

Every checkpoint carries the files already reported (``state_dict``: the first ``MAX_REPORTED``,
path -> first error), so a run resumed from it warns only about files it has not reported yet.
"""

from __future__ import annotations

import logging
import warnings
from itertools import islice
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

logger = logging.getLogger(__name__)

# the checkpoint key of each process's count of training items that stepped over a bad video in
# the epoch under way (a list, by global rank)
EPOCH_SKIPPED = "train_epoch_skipped_videos"

# At most this many reported files ride in a checkpoint, each error cut to ERROR_CHARS: under a
# megabyte with paths of up to 700 characters, however many videos are bad. Past the cap the first
# ones reported are kept; the others are counted (``not_kept``), and a resumed run may warn about
# each of them once more.
MAX_REPORTED = 1000
ERROR_CHARS = 300

# torch's warning for the all_gather that Lightning's ``strategy.all_gather`` calls (torch 2.14)
_ALL_GATHER_DEPRECATED = r"torch\.distributed\.nn\.functional\.all_gather is deprecated"


class BadVideoTracker:
    """Counts bad videos reported by batches and logs each file's error once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}  # path -> first error seen, whole run
        self.skipped = 0  # training items that stepped over a bad file, this epoch
        self.failed: set[tuple[str, int]] = set()  # (stage, video_index) failed, this epoch

    def _note(self, path: str, error: str) -> None:
        if path not in self.errors:
            self.errors[path] = error
            logger.warning("bad video %s: %s", path, error)

    def update(self, batch: dict[str, Any], stage: str) -> None:
        """Record the bad videos of one batch of ``stage`` ("train", "val" or "test")."""
        if "skipped" in batch:
            self.skipped += int(torch.as_tensor(batch["skipped"]).sum())
            for text in batch["errors"]:
                for line in filter(None, text.split("\n")):
                    path, _, error = line.partition("\t")
                    self._note(path, error)
        if "ok" in batch:
            ok = torch.as_tensor(batch["ok"]).tolist()
            for row, good in enumerate(ok):
                if not good:
                    self.failed.add((stage, int(batch["video_index"][row])))
                    self._note(
                        f"{stage} video #{int(batch['video_index'][row])}", batch["error"][row]
                    )

    def end_epoch(self, stage: str) -> int:
        """Return and reset the epoch's count: skipped items (train) or failed videos (val/test)."""
        if stage == "train":
            count, self.skipped = self.skipped, 0
            return count
        count = sum(1 for s, _ in self.failed if s == stage)
        self.failed = {f for f in self.failed if f[0] != stage}
        return count


class BadVideoCallback(L.Callback):
    """Logs bad videos once and their count at each epoch end (see the module docstring)."""

    def __init__(self) -> None:
        self.tracker = BadVideoTracker()

    def state_dict(self) -> dict[str, Any]:
        """The files reported so far, for a resumed run (empty, and so not saved, if none).

        Under DDP every process has its own tracker, and the checkpoint file holds global rank 0's:
        every process of a resumed run loads those, so no process warns again about a file that
        rank 0 reported; a file that only another rank reported before the stop may be warned
        about once more, by the process that meets it after the resume."""
        errors = self.tracker.errors
        if not errors:
            return {}
        kept = dict(islice(errors.items(), MAX_REPORTED))  # insertion order: the first reported
        return {
            "reported": {path: error[:ERROR_CHARS] for path, error in kept.items()},
            "not_kept": len(errors) - len(kept),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning calls this only with a non-empty state, so one that ``state_dict`` wrote
        for path, error in state_dict["reported"].items():
            self.tracker.errors.setdefault(path, error)
        not_kept = state_dict["not_kept"]
        if not_kept:
            logger.info(
                "%d bad videos reported before the resume were past the %d a checkpoint keeps; "
                "each may be reported once more",
                not_kept,
                MAX_REPORTED,
            )

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # counted as the batch starts: a checkpoint written at its end, by any callback (the
        # SIGTERM one runs before this one's batch-end hook), holds its bad videos
        self.tracker.update(batch, "train")

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # as ``engine.lightning_state.epoch_under_way``: data does not import engine
        progress = trainer.fit_loop.epoch_progress.current
        if trainer.state.fn == TrainerFn.FITTING and progress.started > progress.processed:
            # during an epoch, as the module's training metrics (a collective under DDP, as every
            # process writes the checkpoint)
            count = torch.tensor(self.tracker.skipped, device=pl_module.device)
            with warnings.catch_warnings():
                # torch's deprecation of the all_gather Lightning calls, nothing a user can act
                # on: in every process, and again at each checkpoint (a change of the warning
                # filters anywhere resets Python's once-a-place record)
                warnings.filterwarnings("ignore", _ALL_GATHER_DEPRECATED, FutureWarning)
                gathered = trainer.strategy.all_gather(count)
            checkpoint[EPOCH_SKIPPED] = gathered.reshape(-1).tolist()

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        counts = checkpoint.get(EPOCH_SKIPPED)
        if not counts:  # written at an epoch's end, or by an older octvideo
            return
        if len(counts) == trainer.world_size:  # each process its own: the same INFO lines
            self.tracker.skipped = int(counts[trainer.global_rank])
        elif trainer.global_rank == 0:  # other processes than the checkpoint's: the same sum
            self.tracker.skipped = int(sum(counts))

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:
            self.tracker.update(batch, "val")

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.tracker.update(batch, "test")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        count = self.tracker.end_epoch("train")
        if count:
            logger.info(
                "epoch %d: stepped over %d bad training videos", trainer.current_epoch, count
            )
        pl_module.log("data/skipped_videos", float(count), reduce_fx="sum", sync_dist=True)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        count = self.tracker.end_epoch("val")
        if count:
            logger.warning("validation: %d videos failed to decode and were excluded", count)
        pl_module.log("data/failed_val_videos", float(count), reduce_fx="sum", sync_dist=True)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        count = self.tracker.end_epoch("test")
        if count:
            logger.warning("test: %d videos failed to decode and were excluded", count)
