"""The bad-video callback: a checkpoint written during an epoch carries each process's count of
the bad videos stepped over so far, and a resumed run takes it back, so that the epoch's
``data/skipped_videos`` (summed over the processes) and each process's INFO line are those of an
uninterrupted run. Every checkpoint carries the files already reported (capped), so a resumed run
warns only about new ones. The whole run is in tests/engine/test_run.py."""

from __future__ import annotations

import io
import logging
import warnings
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from octvideo.data import callbacks
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


def test_the_count_gathered_for_a_checkpoint_leaves_out_torchs_deprecation_only(monkeypatch):
    """Lightning's all_gather calls torch's deprecated one: its warning, in every process and
    at every such checkpoint, is left out; any other warning of the gather is not."""

    def all_gather(count: torch.Tensor) -> torch.Tensor:
        warnings.warn(
            "torch.distributed.nn.functional.all_gather is deprecated, use torch.distributed."
            "_functional_collectives.all_gather_single instead.",
            FutureWarning,
            stacklevel=2,
        )
        warnings.warn("another deprecation", FutureWarning, stacklevel=2)
        return torch.tensor(COUNTS)

    trainer = _trainer(0, 2)
    monkeypatch.setattr(trainer.strategy, "all_gather", all_gather)
    checkpoint: dict = {}
    callback = BadVideoCallback()
    module = SimpleNamespace(device=torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback.on_save_checkpoint(trainer, module, checkpoint)
    assert [str(w.message) for w in caught] == ["another deprecation"]
    assert checkpoint == {EPOCH_SKIPPED: COUNTS}


@pytest.mark.parametrize("rank", [0, 1])
def test_each_resumed_process_takes_its_own_count_back(rank):
    assert _resumed(_saved(), rank, world=2) == COUNTS[rank]


@pytest.mark.parametrize(("rank", "count"), [(0, sum(COUNTS)), (1, 0), (2, 0)])
def test_resumed_over_other_processes_the_first_takes_the_sum(rank, count):
    assert _resumed(_saved(), rank, world=3) == count


def test_a_checkpoint_written_at_an_epoch_end_carries_nothing_to_count():
    assert _resumed(_saved(epoch_done=True), 0, world=2) == 0


def _batch(*paths: str) -> dict:
    """A training batch of one item that stepped over ``paths``, each with its own error."""
    return {
        "skipped": torch.tensor([len(paths)]),
        "errors": ["\n".join(f"{p}\tboom {p}" for p in paths)],
    }


def _checkpoint(callback: BadVideoCallback) -> dict:
    """The checkpoint a trainer writes with ``callback``, through a file and back as ``--resume``
    reads it (Lightning keeps a callback's non-empty ``state_dict`` under its ``state_key``)."""
    state = callback.state_dict()
    checkpoint = {"callbacks": {callback.state_key: state} if state else {}}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _resumed_from(checkpoint: dict) -> BadVideoCallback:
    """A fresh callback given back its state from ``checkpoint``, as Lightning does on resume."""
    callback = BadVideoCallback()
    state = (checkpoint.get("callbacks") or {}).get(callback.state_key)
    if state:
        callback.load_state_dict(state)
    return callback


def _warned(caplog: pytest.LogCaptureFixture, callback: BadVideoCallback, *paths: str) -> list:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=callbacks.__name__):
        callback.tracker.update(_batch(*paths), "train")
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_resumed_run_warns_only_about_files_it_has_not_reported(caplog):
    before = BadVideoCallback()
    assert _warned(caplog, before, "a.mp4", "b.mp4") == [
        "bad video a.mp4: boom a.mp4",
        "bad video b.mp4: boom b.mp4",
    ]
    resumed = _resumed_from(_checkpoint(before))
    assert _warned(caplog, resumed, "a.mp4", "c.mp4", "b.mp4") == ["bad video c.mp4: boom c.mp4"]
    assert _warned(caplog, resumed, "c.mp4") == []  # and the new one once, as before


@pytest.mark.parametrize("checkpoint", [{}, {"callbacks": {}}, {"callbacks": {"Other": {"x": 1}}}])
def test_a_checkpoint_without_reported_files_loads_and_warns_again(caplog, checkpoint):
    resumed = _resumed_from(checkpoint)  # written by an older octvideo, or with nothing reported
    assert _warned(caplog, resumed, "a.mp4") == ["bad video a.mp4: boom a.mp4"]
    assert _warned(caplog, resumed, "a.mp4") == []


def test_nothing_reported_adds_nothing_to_the_checkpoint():
    assert _checkpoint(BadVideoCallback()) == {"callbacks": {}}


def test_the_reported_files_a_checkpoint_carries_are_capped(caplog, monkeypatch):
    monkeypatch.setattr(callbacks, "MAX_REPORTED", 3)
    before = BadVideoCallback()
    before.tracker.update(
        {"skipped": torch.tensor([1]), "errors": ["long.mp4\t" + "x" * 1000]}, "train"
    )
    _warned(caplog, before, "a.mp4", "b.mp4", "c.mp4", "d.mp4")
    state = _checkpoint(before)["callbacks"][before.state_key]
    assert list(state["reported"]) == ["long.mp4", "a.mp4", "b.mp4"]  # the first reported
    assert len(state["reported"]["long.mp4"]) == callbacks.ERROR_CHARS
    assert state["not_kept"] == 2
    with caplog.at_level(logging.INFO, logger=callbacks.__name__):
        resumed = _resumed_from(_checkpoint(before))
    assert (
        "2 bad videos reported before the resume were past the 3 a checkpoint keeps" in caplog.text
    )
    # past the cap: warned once more after the resume, and only once
    assert _warned(caplog, resumed, "a.mp4", "c.mp4", "d.mp4") == [
        "bad video c.mp4: boom c.mp4",
        "bad video d.mp4: boom d.mp4",
    ]
    assert _warned(caplog, resumed, "c.mp4") == []
