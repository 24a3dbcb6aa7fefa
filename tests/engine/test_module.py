"""The training logic: the learning rate is scaled for the global batch a step really has, and
the epoch's training metrics a checkpoint carries are counted once over the processes."""

from __future__ import annotations

import copy
import logging

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from octvideo.config import OptimConfig, to_dict
from octvideo.engine.module import EPOCH_METRICS, VideoClassifier, metric_state

NUM_CLASSES = 3


class _Clips(Dataset):
    """``size`` fixed random clips of 2 frames at 4x4 with labels."""

    def __init__(self, size: int) -> None:
        generator = torch.Generator().manual_seed(size)
        self.videos = torch.randn(size, 3, 2, 4, 4, generator=generator)
        self.labels = torch.randint(0, NUM_CLASSES, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.videos[i], "label": self.labels[i], "video_index": torch.tensor(i)}


def _network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, NUM_CLASSES))


def _train(
    network: nn.Module, clips: int, batch_size: int, accumulate: int = 1, warmup_epochs: float = 0
) -> VideoClassifier:
    """One epoch of SGD (lr 0.05 at batch 4, momentum, weight decay) over ``clips`` clips."""
    optim = OptimConfig(
        lr=0.05,
        lr_reference_batch=4,
        weight_decay=0.1,
        schedule="step",
        warmup_epochs=warmup_epochs,
    )
    module = VideoClassifier(
        copy.deepcopy(network),
        optim=to_dict(optim),
        num_classes=NUM_CLASSES,
        batch_size=batch_size,
        memory_format="contiguous",
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        accumulate_grad_batches=accumulate,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(_Clips(clips), batch_size=batch_size))
    return module


def _lr(module: VideoClassifier) -> float:
    return module.trainer.optimizers[0].param_groups[0]["initial_lr"]


def test_lr_is_scaled_for_the_configured_global_batch_when_an_epoch_holds_it():
    module = _train(_network(), clips=16, batch_size=4, accumulate=2)
    assert _lr(module) == pytest.approx(0.05 * 8 / 4)


def test_a_batch_larger_than_the_epoch_scales_lr_for_the_clips_a_step_has(caplog):
    network = _network()
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        big = _train(network, clips=6, batch_size=1024)
    assert _lr(big) == pytest.approx(0.05 * 6 / 4)  # not 0.05 x 1024 / 4 = 12.8
    assert "data.batch_size=1024 is more than the 6 training clips" in caplog.text
    exact = _train(network, clips=6, batch_size=6)
    for got, want in zip(big.model.parameters(), exact.model.parameters(), strict=True):
        torch.testing.assert_close(got, want)


def test_accumulating_more_batches_than_an_epoch_has_steps_as_one_batch_of_the_epoch(caplog):
    # Lightning divides each batch's loss by accumulate_grad_batches; a step of 4 batches out
    # of 1024 would take 4/1024 of the gradient, with weight decay at an lr for 1024 batches
    network = _network()
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        accumulated = _train(network, clips=8, batch_size=2, accumulate=1024)
    assert _lr(accumulated) == pytest.approx(0.05 * 8 / 4)  # not 0.05 x 2048 / 4 = 25.6
    assert "trainer.accumulate_grad_batches=1024 is more than the 4 batches" in caplog.text
    whole = _train(network, clips=8, batch_size=8)
    assert not torch.equal(whole.model[1].weight, network[1].weight)  # it trained
    for got, want in zip(accumulated.model.parameters(), whole.model.parameters(), strict=True):
        torch.testing.assert_close(got, want)


def test_only_the_first_process_says_how_lr_was_scaled(caplog, monkeypatch):
    """Every process of a multi-process run computes the same lr; one line each would repeat
    it per process."""
    monkeypatch.setattr(L.Trainer, "is_global_zero", property(lambda self: False))
    with caplog.at_level(logging.INFO, logger="octvideo.engine.module"):
        other = _train(_network(), clips=6, batch_size=1024)
    assert _lr(other) == pytest.approx(0.05 * 6 / 4)  # scaled all the same
    assert not [r for r in caplog.records if r.name == "octvideo.engine.module"]


def test_a_warmup_longer_than_the_run_is_said_with_the_lr_the_run_reaches(caplog):
    with caplog.at_level(logging.INFO, logger="octvideo.engine.module"):
        _train(_network(), clips=8, batch_size=4, warmup_epochs=10)  # 2 steps, lr 0.05
    assert "2 steps (2 per epoch), a 20-step warmup, then step schedule" in caplog.text
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        "optim.warmup_epochs=10 (20 steps) outlasts trainer.max_epochs=1 (2 steps): lr rises to "
        "0.00725, never to 0.05, and the step schedule never starts; set optim.warmup_epochs "
        "below 1 (0 for none)"
    )  # 0.05 x (0.1 + 0.9 x 1 / 20) at the second and last step


def test_a_warmup_within_the_run_is_said_without_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger="octvideo.engine.module"):
        _train(_network(), clips=8, batch_size=2, warmup_epochs=0.5)  # 4 steps
    assert "4 steps (4 per epoch), a 2-step warmup, then step schedule" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def _module() -> VideoClassifier:
    optim = to_dict(OptimConfig())
    return VideoClassifier(_network(), optim=optim, num_classes=NUM_CLASSES, batch_size=4)


@pytest.mark.filterwarnings("error:The ``compute`` method of metric:UserWarning")
@pytest.mark.parametrize("rank", [0, 1])
def test_the_epoch_metrics_a_checkpoint_carries_are_counted_once_over_the_processes(
    monkeypatch, rank
):
    # the checkpoint holds every process's sums: rank 0 takes them, the others start from none
    trained = _module()
    clips = _Clips(6)
    logits = trained.model(clips.videos)
    trained.train_loss.update(torch.tensor(1.5), 4)
    trained.train_loss.update(torch.tensor(0.5), 2)
    trained.train_top1.update(logits, clips.labels)
    carried = {
        EPOCH_METRICS: {
            "train/loss_epoch": metric_state(trained.train_loss),
            "train/top1": metric_state(trained.train_top1),
        }
    }
    resumed = _module()
    monkeypatch.setattr(VideoClassifier, "global_rank", property(lambda self: rank))
    resumed.on_load_checkpoint(carried)
    if rank == 0:
        assert float(resumed.train_loss.compute()) == pytest.approx((1.5 * 4 + 0.5 * 2) / 6)
        assert torch.equal(resumed.train_top1.compute(), trained.train_top1.compute())
    else:
        assert float(resumed.train_loss.metric_state["weight"]) == 0
        assert int(sum(resumed.train_top1.metric_state.values())) == 0
