"""The bad-video callback: a checkpoint written during an epoch carries each process's count of
the bad videos stepped over so far, and a resumed run takes it back, so that the epoch's
``data/skipped_videos`` (summed over the processes) and each process's INFO line are those of an
uninterrupted run. The whole run is in tests/engine/test_run.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from octvideo.data.callbacks import EPOCH_SKIPPED, BadVideoCallback

COUNTS = [3, 5]  # the bad videos each of two processes stepped over before the checkpoint


def _trainer(rank: int, world: int, *, epoch_done: bool = False) -> SimpleNamespace:
    """What the callback reads of a trainer: a fit, its epoch under way unless ``epoch_done``,
    and the gather over ``world`` processes, each of which counted ``COUNTS[rank]``."""
    progress = SimpleNamespace(started=2, processed=2 if epoch_done else 1)
    return SimpleNamespace(
        global_rank=rank,
        world_size=world,
        state=SimpleNamespace(fn=TrainerFn.FITTING),
        fit_loop=SimpleNamespace(epoch_progress=SimpleNamespace(current=progress)),
        strategy=SimpleNamespace(all_gather=lambda count: torch.tensor(COUNTS[:world])),
    )


def _saved(*, epoch_done: bool = False) -> dict:
    checkpoint: dict = {}
    callback = BadVideoCallback()
    callback.tracker.skipped = COUNTS[0]
    module = SimpleNamespace(device=torch.device("cpu"))
    callback.on_save_checkpoint(_trainer(0, 2, epoch_done=epoch_done), module, checkpoint)
    return checkpoint


def _resumed(checkpoint: dict, rank: int, world: int) -> int:
    callback = BadVideoCallback()
    callback.on_load_checkpoint(_trainer(rank, world), None, checkpoint)
    return callback.tracker.end_epoch("train")


def test_a_checkpoint_during_an_epoch_carries_each_process_count():
    assert _saved() == {EPOCH_SKIPPED: COUNTS}
    assert _saved(epoch_done=True) == {}  # the count was logged and reset at the epoch's end


@pytest.mark.parametrize("rank", [0, 1])
def test_each_resumed_process_takes_its_own_count_back(rank):
    assert _resumed(_saved(), rank, world=2) == COUNTS[rank]


@pytest.mark.parametrize(("rank", "count"), [(0, sum(COUNTS)), (1, 0), (2, 0)])
def test_resumed_over_other_processes_the_first_takes_the_sum(rank, count):
    assert _resumed(_saved(), rank, world=3) == count


def test_a_checkpoint_written_at_an_epoch_end_carries_nothing_to_count():
    assert _resumed(_saved(epoch_done=True), 0, world=2) == 0
