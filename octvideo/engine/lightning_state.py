"""Lightning's private state, read and written here alone: the ``loops`` layout of a checkpoint,
the loops' batch counters, and of ``ModelCheckpoint`` one private method and the layout of its
saved state.

octvideo needs them for exact resumes (how far a checkpoint trained, a validation to run again
first), for the SIGTERM checkpoint (never inside a gradient-accumulation window) and for
best.ckpt (an epoch whose validation scored no video; a run folder moved or copied, whose
best.ckpt keeps its score). None is Lightning's public API, so an
upgrade of Lightning that moves one changes this file, and tests/engine/test_lightning_state.py,
which pins each against the installed Lightning, says which. One read lies outside it, as the
data layer lies below this one: ``VideoDataModule.state_dict`` reads the training loop's count of
the epoch's batches done (``trainer.fit_loop.epoch_loop.batch_progress``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import lightning as L
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint

logger = logging.getLogger(__name__)

# -- a checkpoint's "loops" state --------------------------------------------------------------


def epochs_done(checkpoint: dict[str, Any]) -> int | None:
    """Whole training epochs a Lightning checkpoint has completed (None: not a training state);
    a checkpoint written during an epoch (``epoch_in_progress``) has trained part of one more."""
    done = _epoch_progress(checkpoint).get("processed")
    return int(done) if done is not None else None


def epoch_in_progress(checkpoint: dict[str, Any]) -> bool:
    """Whether a Lightning checkpoint was written during an epoch (by the step trigger or on
    SIGTERM), not at an epoch's end: the epoch started is not processed yet."""
    progress = _epoch_progress(checkpoint)
    return int(progress.get("started") or 0) > int(progress.get("processed") or 0)


def _epoch_progress(checkpoint: dict[str, Any]) -> dict[str, Any]:
    loops = checkpoint.get("loops") or {}
    return ((loops.get("fit_loop") or {}).get("epoch_progress") or {}).get("current") or {}


# Lightning's key for the validation loop's batch counters in a checkpoint's "loops" state
_VAL_PROGRESS = "epoch_loop.val_loop.batch_progress"
# the counters as the first validation batch is being run: Lightning's "restarted mid-evaluation"
# (``_EvaluationLoop.update_restart_stage``), which it resumes by running that validation again
# from its first batch (its counters of the batches done, none, are where it starts)
_FIRST_VAL_BATCH = {"ready": 1, "started": 1, "processed": 0, "completed": 0}


def mark_validation_started(checkpoint: dict[str, Any]) -> None:
    """Marks a checkpoint written as an epoch's validation starts, after its training, as one
    written during that validation's first batch: Lightning then resumes it by running the
    validation whole, then the epoch's end (its last.ckpt, best.ckpt, the epoch log) and the
    epochs after it. Unmarked, it would skip that validation (a checkpoint "saved on last",
    which Lightning takes to be written after it)."""
    progress = checkpoint["loops"]["fit_loop"][_VAL_PROGRESS]
    progress["total"], progress["current"] = dict(_FIRST_VAL_BATCH), dict(_FIRST_VAL_BATCH)
    progress["is_last_batch"] = False


def validation_under_way(checkpoint: dict[str, Any]) -> bool:
    """Whether a Lightning checkpoint was written during an epoch's validation, after the
    epoch's training (``mark_validation_started``): it has trained that epoch whole."""
    loops = checkpoint.get("loops") or {}
    total = ((loops.get("fit_loop") or {}).get(_VAL_PROGRESS) or {}).get("total") or {}
    return epoch_in_progress(checkpoint) and int(total.get("started") or 0) > int(
        total.get("completed") or 0
    )


# -- a running trainer's loops -----------------------------------------------------------------


def accumulating(trainer: L.Trainer) -> bool:
    """Whether the training batch just run lies inside a gradient-accumulation window: no
    optimiser step follows it, and the gradient accumulated so far is in no checkpoint."""
    return trainer.accumulate_grad_batches > 1 and trainer.fit_loop.epoch_loop._should_accumulate()


def epoch_under_way(trainer: L.Trainer) -> bool:
    """Whether the trainer is during a training epoch (started, not processed): a checkpoint
    written now is one of ``epoch_in_progress``."""
    progress = trainer.fit_loop.epoch_progress.current
    return progress.started > progress.processed


def val_batches_unfinished(trainer: L.Trainer) -> bool:
    """Whether the fit's validation loop has started a batch it has not completed: it was
    resumed from a checkpoint marked by ``mark_validation_started``."""
    total = trainer.fit_loop.epoch_loop.val_loop.batch_progress.total
    return total.started > total.completed


def forget_val_batches(trainer: L.Trainer) -> None:
    """Sets the fit's validation batch counters to none done, as they are where an epoch's
    validation is not resumed (the checkpoints written after it are then the same)."""
    trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.reset()


def completed_test_batches(trainer: L.Trainer) -> int:
    """The batches the test loop has completed."""
    return int(trainer.test_loop.batch_progress.current.completed)


# -- ModelCheckpoint ---------------------------------------------------------------------------


class FolderCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose saved state belongs to its folder, which may move: resumed in
    another folder (the run folder moved or copied), the files it recorded in the folder it was
    saved in are taken to be this folder's files of the same names. Lightning's own
    ``load_state_dict`` forgets the scores of a folder that moved, so the next epoch's
    validation, however worse, would replace best.ckpt. A recorded file that is no file here (a
    run branched into a new folder, a best.ckpt deleted) is forgotten with its score: the next
    validation writes it anew."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(self._in_this_folder(state_dict))

    def _in_this_folder(self, state: dict[str, Any]) -> dict[str, Any]:
        was, dirpath = state.get("dirpath"), self.dirpath
        if not was or not dirpath:
            return state
        dirpath = str(dirpath)

        def here(path: str | None) -> str:
            """``path``, recorded in ``was``, as this folder's file; '' if it is none."""
            if not path or os.path.dirname(path) != was:
                return ""
            mine = os.path.join(dirpath, os.path.basename(path))
            return mine if os.path.isfile(mine) else ""

        recorded = state.get("best_k_models") or {}
        scored = [(path, here(path), score) for path, score in recorded.items()]
        if rank_zero_only.rank == 0:
            for path, here_path, score in scored:
                _say_where(
                    path, here_path, f"{state.get('monitor')} {float(score):.4f}", was != dirpath
                )
        best, kth = here(state["best_model_path"]), here(state.get("kth_best_model_path"))
        moved = {**state, "dirpath": dirpath, "best_model_path": best, "kth_best_model_path": kth}
        moved["best_k_models"] = {here_path: score for _, here_path, score in scored if here_path}
        moved["last_model_path"] = here(state.get("last_model_path"))
        if not best:
            moved["best_model_score"] = None
        if not kth:
            moved.pop("kth_value", None)  # this callback's own start value
        return moved


def _say_where(path: str, here_path: str, score: str, moved: bool) -> None:
    """Logs a scored checkpoint kept from the folder the run moved from (``here_path``, its path
    in this folder), or one of this folder's that is gone (``here_path`` empty)."""
    if here_path and moved:
        logger.info(
            "%s keeps its %s: the run folder was moved or copied from %s",
            here_path,
            score,
            os.path.dirname(path),
        )
    elif not here_path and not moved:
        logger.warning("%s is gone (it scored %s); the next validation writes it anew", path, score)


class TopKCheckpoint(FolderCheckpoint):
    """``ModelCheckpoint`` that asks ``skip_top_k`` before each save of its top-k checkpoints,
    the saves Lightning makes through its private ``_save_topk_checkpoint``."""

    def skip_top_k(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> bool:
        """Whether to leave the top-k checkpoints as they are this time (never, here)."""
        return False

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        if not self.skip_top_k(trainer, monitor_candidates):
            super()._save_topk_checkpoint(trainer, monitor_candidates)
