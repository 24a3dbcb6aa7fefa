"""Lightning's private state as ``octvideo.engine.lightning_state`` reads and writes it, pinned
against the installed Lightning on a two-weight model: a checkpoint's epoch counters at an epoch's
end, the validation mark and its resume (the validation runs again from its first batch), the
accumulation window, the test loop's count, and a top-k save that is skipped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from octvideo.engine.lightning_state import (
    TopKCheckpoint,
    accumulating,
    completed_test_batches,
    epoch_in_progress,
    epoch_under_way,
    epochs_done,
    forget_val_batches,
    mark_validation_started,
    val_batches_unfinished,
    validation_under_way,
)


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        (x,) = batch
        return self.layer(x).pow(2).mean()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val", -self._loss(batch))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._loss(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _batches(n: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=1)


def _trainer(tmp_path: Path, callbacks: list[L.Callback], **kwargs: Any) -> L.Trainer:
    kwargs = {"max_epochs": 1, **kwargs}
    return L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=any(isinstance(c, TopKCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **kwargs,
    )


class _Record(L.Callback):
    """What the helpers say at the points octvideo's callbacks ask them."""

    def __init__(self, forget: bool = False) -> None:
        self.forget = forget
        self.accumulating: list[bool] = []
        self.unfinished: list[bool] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.accumulating.append(accumulating(trainer))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.unfinished.append(val_batches_unfinished(trainer))
            if self.forget and self.unfinished[-1]:
                forget_val_batches(trainer)
                self.unfinished.append(val_batches_unfinished(trainer))


def test_a_checkpoint_at_an_epochs_end_counts_it_done_and_takes_the_validation_mark(tmp_path):
    trainer = _trainer(tmp_path, [], num_sanity_val_steps=0)
    trainer.fit(_Tiny(), _batches(2), _batches(2))
    path = tmp_path / "end.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert epochs_done(checkpoint) == 1 and not epoch_in_progress(checkpoint)
    assert not validation_under_way(checkpoint)
    checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["started"] = 2  # in epoch 2
    mark_validation_started(checkpoint)
    assert validation_under_way(checkpoint) and epochs_done(checkpoint) == 1
    assert epochs_done({"state_dict": {}}) is None  # not a training state


def test_a_run_resumed_from_the_validation_mark_runs_that_validation_from_its_first_batch(
    tmp_path,
):
    class MarkAtValidation(L.Callback):
        def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if not trainer.sanity_checking:
                trainer.save_checkpoint(tmp_path / "marked.ckpt")

        def on_save_checkpoint(self, trainer: L.Trainer, pl_module: Any, checkpoint: dict) -> None:
            mark_validation_started(checkpoint)

    _trainer(tmp_path, [MarkAtValidation()], num_sanity_val_steps=0).fit(
        _Tiny(), _batches(2), _batches(3)
    )
    marked = torch.load(tmp_path / "marked.ckpt", weights_only=True)
    assert validation_under_way(marked) and epochs_done(marked) == 0
    record = _Record(forget=True)
    resumed = _trainer(tmp_path, [record], num_sanity_val_steps=0)
    resumed.fit(_Tiny(), _batches(2), _batches(3), ckpt_path=tmp_path / "marked.ckpt")
    assert record.unfinished == [True, False]  # resumed from the mark; then counted from none
    assert record.accumulating == []  # no training batch left in the epoch
    assert resumed.fit_loop.epoch_loop.val_loop.batch_progress.total.completed == 3


def test_accumulating_is_true_for_the_batches_of_a_window_before_its_step(tmp_path):
    for every, expected in ((2, [True, False, True, False]), (1, [False] * 4)):
        record = _Record()
        trainer = _trainer(tmp_path, [record], accumulate_grad_batches=every, limit_val_batches=0)
        trainer.fit(_Tiny(), _batches(4))
        assert record.accumulating == expected


def test_an_epoch_is_under_way_from_its_first_batch_to_its_end(tmp_path):
    class During(L.Callback):
        def __init__(self) -> None:
            self.seen: list[bool] = []

        def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
            self.seen.append(epoch_under_way(trainer))

        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.seen.append(epoch_under_way(trainer))

    during = During()
    _trainer(tmp_path, [during], limit_val_batches=0).fit(_Tiny(), _batches(3))
    assert during.seen == [True, True, True, False]


def test_completed_test_batches_counts_the_test_loops_batches(tmp_path):
    trainer = _trainer(tmp_path, [])
    trainer.test(_Tiny(), _batches(3), verbose=False)
    assert completed_test_batches(trainer) == 3


def test_a_top_k_checkpoint_skips_the_saves_skip_top_k_refuses(tmp_path):
    class Never(TopKCheckpoint):
        def skip_top_k(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> bool:
            return True

    for kind, written in ((TopKCheckpoint, True), (Never, False)):
        folder = tmp_path / kind.__name__
        best = kind(dirpath=folder, filename="best", monitor="val", mode="max", save_top_k=1)
        _trainer(tmp_path, [best], num_sanity_val_steps=0).fit(_Tiny(), _batches(2), _batches(2))
        assert (folder / "best.ckpt").is_file() is written


class _Scored(_Tiny):
    """Validation scores ``scores[epoch]``."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val", self.scores[self.current_epoch])


@pytest.mark.parametrize(("change", "best_epoch"), [("moved", 0), ("best gone", 1)])
def test_a_top_k_checkpoint_keeps_its_best_in_a_moved_folder_and_rewrites_one_gone(
    tmp_path, caplog, change, best_epoch
):
    def fit(folder: Path, epochs: int, resume: Path | None = None) -> L.Trainer:
        best = TopKCheckpoint(
            dirpath=folder, filename="best", monitor="val", mode="max", enable_version_counter=False
        )
        trainer = _trainer(tmp_path, [best], max_epochs=epochs, num_sanity_val_steps=0)
        trainer.fit(_Scored([0.5, 0.1]), _batches(2), _batches(1), ckpt_path=resume)
        return trainer

    fit(tmp_path / "a", 1).save_checkpoint(tmp_path / "end.ckpt")  # epoch 0 scored 0.5
    folder = tmp_path / "a"
    if change == "moved":  # the run folder renamed (or copied): its best.ckpt is epoch 0's
        folder = (tmp_path / "a").rename(tmp_path / "b")
    else:  # deleted: nothing holds epoch 0's weights any more
        (folder / "best.ckpt").unlink()
    with caplog.at_level(logging.INFO, logger="octvideo.engine.lightning_state"):
        fit(folder, 2, resume=tmp_path / "end.ckpt")  # epoch 1 scores 0.1
    assert torch.load(folder / "best.ckpt", weights_only=True)["epoch"] == best_epoch
    said = {"moved": "keeps its val 0.5000: the run folder was moved or copied from "}
    said["best gone"] = "best.ckpt is gone (it scored val 0.5000); the next validation writes it"
    assert said[change] in caplog.text
