"""The training logic: the learning rate is scaled for the global batch a step really has, a
warmup that outlasts the run is said with a value that fits, a NaN or infinite gradient of a finite
loss stops the run or skips its step before any weight moves, and the epoch's training metrics a
checkpoint carries are counted once over the processes."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from torch import nn
from torch.utils.data import DataLoader, Dataset

from octvideo.config import OptimConfig, to_dict
from octvideo.engine.module import (
    EPOCH_METRICS,
    VideoClassifier,
    _CommandLogging,
    metric_state,
    validation_set,
    validation_set_like,
)
from octvideo.errors import NonFiniteLoss

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
    network: nn.Module,
    clips: int,
    batch_size: int,
    accumulate: int = 1,
    warmup_epochs: float = 0,
    callbacks: tuple[L.Callback, ...] = (),
    precision: Precision | None = None,
    **settings: object,
) -> VideoClassifier:
    """One epoch of SGD (lr 0.05 at batch 4, momentum, weight decay) over ``clips`` clips, in
    float32 or the ``precision`` plugin given; more optim ``settings`` by name."""
    optim = OptimConfig(
        lr=0.05,
        lr_reference_batch=4,
        weight_decay=0.1,
        schedule="step",
        warmup_epochs=warmup_epochs,
        **settings,
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
        callbacks=list(callbacks),
        plugins=[precision] if precision is not None else None,
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
        "0.00725, never to 0.05, and the step schedule never starts; set optim.warmup_epochs to "
        "at most 0.5 (a warmup of 1 step), or 0 for none"
    )  # 0.05 x (0.1 + 0.9 x 1 / 20) at the second and last step


def test_the_warmup_advised_fits_the_run_after_rounding_to_steps(caplog):
    # 0.95 of an epoch of 6 steps rounds to 6 steps: the whole run, though below its 1 epoch
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        _train(_network(), clips=12, batch_size=2, warmup_epochs=0.95)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("optim.warmup_epochs=0.95 (6 steps) outlasts trainer.max_epochs=1")
    assert warning.endswith(
        "set optim.warmup_epochs to at most 0.83 (a warmup of 5 steps), or 0 for none"
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="octvideo.engine.module"):
        _train(_network(), clips=12, batch_size=2, warmup_epochs=0.83)  # as advised
    assert "6 steps (6 per epoch), a 5-step warmup, then step schedule" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_warmup_within_the_run_is_said_without_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger="octvideo.engine.module"):
        _train(_network(), clips=8, batch_size=2, warmup_epochs=0.5)  # 4 steps
    assert "4 steps (4 per epoch), a 2-step warmup, then step schedule" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_settings_that_do_nothing_are_warned_once_each_by_the_first_process(caplog, monkeypatch):
    """A config shared by runs of either schedule is legitimate: it trains, with one line each."""
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        module = _train(_network(), clips=8, batch_size=4, final_lr_factor=0.5, mix_prob=0.5)
    assert _lr(module) == pytest.approx(0.05)
    assert [r.getMessage().split(" has no effect")[0] for r in caplog.records] == [
        "optim.final_lr_factor=0.5",
        "optim.mix_prob=0.5",
    ]
    caplog.clear()
    monkeypatch.setattr(L.Trainer, "is_global_zero", property(lambda self: False))
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        _train(_network(), clips=8, batch_size=4, final_lr_factor=0.5, mix_prob=0.5)
    assert not caplog.records


def test_the_module_gives_a_spawned_process_the_command_logging_in_setup(monkeypatch):
    """trainer.strategy=ddp_spawn pickles the module into new processes (``_CommandLogging``)."""
    applied = []
    monkeypatch.setattr(_CommandLogging, "apply", lambda self: applied.append(self))
    module = _train(_network(), clips=4, batch_size=4)
    assert applied == [module._command_logging]


_CHILD = """
import logging, pickle, sys
logging.getLogger("octvideo").info("before: lost")
pickle.loads(sys.stdin.buffer.read()).apply()
logging.getLogger("octvideo.engine.module").info("an info line")
logging.getLogger("octvideo.engine.module").debug("below the sender's level")
rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
rank_zero.info("\U0001f4a1 Tip: an advertisement")
rank_zero.info("GPU available: False, used: False")
"""


def test_a_spawned_process_logs_as_the_command_and_the_sender_is_untouched(monkeypatch):
    """trainer.strategy=ddp_spawn: Lightning pickles the module into processes that import
    octvideo afresh; they get the command's logging at the sender's level, with Lightning's
    noise left out. The sender, and a module never pickled, leave the logging as it is."""
    root = logging.getLogger()
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(rank_zero, "filters", [])
    level = root.level
    root.setLevel(logging.INFO)  # setLevel: the loggers' caches of it are cleared
    try:
        sent = pickle.dumps(_CommandLogging())
        _CommandLogging().apply()  # never pickled: nothing to apply
        pickle.loads(sent).apply()  # in the process it was sent from: nothing to do
        assert (root.handlers, rank_zero.filters) == ([], [])
    finally:
        root.setLevel(level)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], input=sent, capture_output=True, check=True
    )
    assert child.stderr.decode().splitlines() == [
        "INFO octvideo.engine.module: an info line",
        "GPU available: False, used: False",
    ]


class _SpoilGradients(L.Callback):
    """Puts NaN into two values of the first gradient, and an infinity into the last, of the
    steps given (all from ``first`` on where ``steps`` is None), after their backward pass: the
    loss stays finite (``values``: other values instead). Keeps each step's state before and
    after: the weights, the batch-norm statistics and the optimiser's momentum."""

    def __init__(
        self,
        steps: set[int] | None = None,
        first: int = 0,
        values: tuple[float, float] = (float("nan"), float("inf")),
    ) -> None:
        self.steps, self.first, self.values = steps, first, values
        self.spoilt: list[int] = []
        self.before: dict[int, dict[str, torch.Tensor]] = {}
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def _spoils(self, step: int) -> bool:
        return step in self.steps if self.steps is not None else step >= self.first

    @staticmethod
    def _state(trainer: L.Trainer, module: VideoClassifier) -> dict[str, torch.Tensor]:
        state = {k: v.clone() for k, v in module.model.state_dict().items()}
        for i, (param, saved) in enumerate(trainer.optimizers[0].state.items()):
            if saved.get("momentum_buffer") is not None:
                state[f"momentum {i} {tuple(param.shape)}"] = saved["momentum_buffer"].clone()
        return state

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.module = pl_module
        self.before[trainer.global_step] = self._state(trainer, pl_module)

    def on_after_backward(self, trainer, pl_module) -> None:
        if self._spoils(trainer.global_step):
            params = list(pl_module.model.parameters())
            params[0].grad.view(-1)[:2] = self.values[0]
            params[-1].grad.view(-1)[0] = self.values[1]
            self.spoilt.append(trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after[trainer.global_step - 1] = self._state(trainer, pl_module)


def _normed_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.BatchNorm3d(3), nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, NUM_CLASSES))


def test_a_nan_gradient_of_a_finite_loss_stops_the_run_before_its_step():
    spoil = _SpoilGradients({2})
    with pytest.raises(NonFiniteLoss) as info:
        _train(_normed_network(), clips=16, batch_size=4, callbacks=(spoil,))
    assert str(info.value) == (
        "the gradient of weight 0.weight holds 2 NaN (and 1 more gradient) at global step 2 "
        "(epoch 0, batch 2); the step was not taken. Lower optim.lr, set "
        "trainer.gradient_clip_val, or skip such steps with optim.on_nonfinite_loss=skip"
    )
    assert spoil.spoilt == [2]
    weights = dict(spoil.module.model.named_parameters())  # as before the step, all finite
    assert all(torch.equal(weights[k], v) for k, v in spoil.before[2].items() if k in weights)


def test_a_nan_gradient_step_skipped_leaves_weights_momentum_and_statistics(caplog):
    spoil = _SpoilGradients({2})
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        module = _train(
            _normed_network(), clips=16, batch_size=4, callbacks=(spoil,), on_nonfinite_loss="skip"
        )
    assert spoil.spoilt == [2]
    assert caplog.messages == [
        "the gradient of weight 0.weight holds 2 NaN (and 1 more gradient) at global step 2 "
        "(epoch 0, batch 2): step skipped (1 in a row, 1 in this run)"
    ]
    before, after = spoil.before[2], spoil.after[2]
    assert len([k for k in before if k.startswith("momentum")]) == 4  # SGD's state is there
    assert before.keys() == after.keys()
    assert not [k for k in before if not torch.equal(before[k], after[k])]  # nothing moved
    assert module.trainer.global_step == 4  # the run went on: the steps around it were taken
    for step in (1, 3):
        assert not torch.equal(spoil.before[step]["2.weight"], spoil.after[step]["2.weight"])
    assert all(torch.isfinite(v).all() for v in module.model.state_dict().values())


def test_skipped_nan_gradients_stop_the_run_after_max_skipped_steps_in_a_row():
    spoil = _SpoilGradients(first=1)
    with pytest.raises(NonFiniteLoss) as info:
        _train(
            _network(),
            clips=32,
            batch_size=4,
            callbacks=(spoil,),
            on_nonfinite_loss="skip",
            max_skipped_steps=2,
        )
    assert str(info.value).startswith(
        "the gradient of weight 1.weight holds 2 NaN (and 1 more gradient) at global step 3 "
        "(epoch 0, batch 3) after 2 skipped steps in a row (optim.max_skipped_steps); "
    )
    assert spoil.spoilt == [1, 2, 3]


def test_finite_gradients_too_large_for_the_norm_are_stepped_on():
    # 1e30 is finite, but its square overflows the gradients' 2-norm: the second pass finds
    # every gradient finite, and the step is taken as any other
    spoil = _SpoilGradients({3}, values=(1e30, 1e30))
    module = _train(_normed_network(), clips=16, batch_size=4, callbacks=(spoil,))
    assert spoil.spoilt == [3] and module.trainer.global_step == 4
    moved = spoil.before[3]["2.bias"] - spoil.after[3]["2.bias"]
    assert float(moved[0]) == pytest.approx(0.05 * 1.9 * 1e30, rel=1e-3)  # Nesterov: lr (1 + 0.9) g


def _float16(init_scale: float = 2.0**16) -> MixedPrecision:
    """``trainer.precision=16-mixed`` on the CPU, which Lightning's flag turns into bfloat16:
    float16 autocast and torch's gradient scaler (initial scale 65536 unless given)."""
    return MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=init_scale))


def test_nan_gradients_under_float16_stop_the_run_once_the_scaler_scale_is_down_to_1(caplog):
    # the scaler skips every step and halves its scale: 16 steps from 65536 down to 1, where
    # it magnifies nothing and the NaN is the run's own
    spoil = _SpoilGradients(first=0)
    warnings = caplog.at_level(logging.WARNING, logger="octvideo.engine.module")
    with warnings, pytest.raises(NonFiniteLoss) as info:
        _train(_network(), clips=80, batch_size=4, callbacks=(spoil,), precision=_float16())
    assert str(info.value) == (
        "the gradient of weight 1.weight holds 2 NaN (and 1 more gradient) at float16 gradient "
        "scale 1 (the scaler skipped 16 steps in a row to lower it) at global step 16 (epoch 0, "
        "batch 16); the step was not taken. Lower optim.lr, set trainer.gradient_clip_val, or "
        "skip such steps with optim.on_nonfinite_loss=skip"
    )
    assert spoil.spoilt == list(range(17)) and not caplog.messages
    weights = dict(spoil.module.model.named_parameters())  # no step was ever taken
    assert all(torch.equal(weights[k], v) for k, v in spoil.before[0].items())


def test_nan_gradients_under_float16_are_skipped_up_to_max_skipped_steps_in_a_row(caplog):
    spoil = _SpoilGradients(first=0)
    warnings = caplog.at_level(logging.WARNING, logger="octvideo.engine.module")
    with warnings, pytest.raises(NonFiniteLoss) as info:
        _train(
            _network(),
            clips=80,
            batch_size=4,
            callbacks=(spoil,),
            precision=_float16(),
            on_nonfinite_loss="skip",
            max_skipped_steps=2,
        )
    first = "the gradient of weight 1.weight holds 2 NaN (and 1 more gradient) at float16 gradient"
    assert caplog.messages == [
        f"{first} scale 1 (the scaler skipped 16 steps in a row to lower it) at global step 16 "
        "(epoch 0, batch 16): step skipped (1 in a row, 1 in this run)",
        f"{first} scale 1 at global step 17 (epoch 0, batch 17): step skipped (2 in a row, 2 in "
        "this run)",
    ]
    assert str(info.value).startswith(
        f"{first} scale 1 at global step 18 (epoch 0, batch 18) after 2 skipped steps in a row "
        "(optim.max_skipped_steps); "
    )


def _steps_that_moved_the_bias(precision: MixedPrecision | None) -> tuple[int, VideoClassifier]:
    """Trains 64 steps with a NaN gradient at every other one, skipped; counts the steps that
    moved the linear layer's bias, which only a gradient moves (no momentum, no weight decay)."""
    spoil = _SpoilGradients(set(range(0, 64, 2)))
    module = _train(
        _network(),
        clips=256,
        batch_size=4,
        callbacks=(spoil,),
        precision=precision,
        on_nonfinite_loss="skip",
        max_skipped_steps=3,
        momentum=0.0,
        nesterov=False,
    )
    moved = [
        s for s in range(64) if not torch.equal(spoil.before[s]["1.bias"], spoil.after[s]["1.bias"])
    ]
    return len(moved), module


def test_steps_skipped_under_float16_keep_the_scale_so_the_steps_between_train():
    # the scaler halves its scale after each step it skips; were the policy's skips at scale 1
    # to halve it too, 1, 0.5, ... 2**-32, the good steps' float16 gradients would underflow
    # to 0 from about step 50 on and the run would train nothing, with no error
    moved_float32, _ = _steps_that_moved_the_bias(None)
    moved_float16, module = _steps_that_moved_the_bias(_float16(init_scale=1.0))
    assert moved_float32 == 32
    assert moved_float16 == moved_float32
    assert module.trainer.precision_plugin.scaler.get_scale() == 1.0


def test_float16_overflows_the_scaler_mends_are_left_to_it_without_a_warning(caplog):
    # at 2**24 the scaled gradients overflow float16 (NaN in the batch norm's, infinities in the
    # linear layer's) until the scaler has halved its scale 8 times; then the run trains
    network = _normed_network()
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        module = _train(network, clips=48, batch_size=4, precision=_float16(2.0**24))
    assert not caplog.messages
    assert module.trainer.precision_plugin.scaler.get_scale() == 2.0**16
    assert module.trainer.global_step == 12
    assert not torch.equal(module.model[2].weight, network[2].weight)  # it trained
    assert all(torch.isfinite(v).all() for v in module.model.state_dict().values())


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


def _videos(folder: Path, names: dict[str, bytes]) -> list[tuple[str, int]]:
    """(path, label) of files ``folder/NAME`` written with the bytes given, labelled 0, 1, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in names.items():
        (folder / name).write_bytes(data)
    return [(str(folder / name), label) for label, name in enumerate(names)]


def test_the_same_validation_videos_copied_elsewhere_have_the_same_set(tmp_path):
    # in either Unicode form (a copy through macOS names files decomposed) and any order
    cafe = "caf\u00e9_0.mp4"
    records = _videos(tmp_path / "a", {cafe: b"abc", "b.mp4": b"de"})
    copied = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(tmp_path / "a", copied)
    decomposed = unicodedata.normalize("NFD", cafe)
    os.rename(copied / cafe, copied / decomposed)
    moved = [(str(copied / "b.mp4"), 1), (str(copied / decomposed), 0)]
    assert validation_set(moved) == validation_set(records)
    assert validation_set(records)["videos"] == 2


def test_a_video_named_through_a_link_is_the_video_it_links_to(tmp_path):
    # a list that names one file twice keeps its first line: reversed, it keeps the link's
    records = _videos(tmp_path, {"00004.mp4": b"abc", "b.mp4": b"de"})
    os.symlink("00004.mp4", tmp_path / "latest.mp4")
    linked = [(str(tmp_path / "latest.mp4"), 0), records[1]]
    assert validation_set(linked) == validation_set(records)


@pytest.mark.parametrize(
    "change",
    ["other bytes", "a label", "a video fewer", "a video missing"],
)
def test_other_validation_videos_have_another_set(tmp_path, change):
    records = _videos(tmp_path / "a", {"a.mp4": b"abc", "b.mp4": b"de"})
    other = _videos(tmp_path / "b", {"a.mp4": b"abc", "b.mp4": b"def"})  # generated again
    if change == "a label":
        other = [records[0], (records[1][0], 0)]
    elif change == "a video fewer":
        other = records[:1]
    elif change == "a video missing":
        os.remove(other[1][0])
    assert validation_set(other) != validation_set(records)


def test_an_earlier_form_of_validation_set_is_compared_by_its_own_rule(tmp_path):
    # a checkpoint written before sizes were in the record (no "form") resumes on its videos
    # and is refused on others; a later octvideo's form is not compared
    records = _videos(tmp_path, {"a.mp4": b"abc", "b.mp4": b"de"})
    earlier = {"videos": 2, "digest": "86404a9cbf2faf66"}  # d4ad4bf's validation_set
    assert validation_set_like(earlier, records) == earlier
    assert validation_set_like(earlier, records[:1]) != earlier
    assert validation_set_like(earlier, [records[0], (records[1][0], 0)]) != earlier
    current = validation_set(records)
    assert validation_set_like(current, records) == current
    assert validation_set_like({**current, "form": current["form"] + 1}, records) is None
    assert validation_set_like(None, records) is None
