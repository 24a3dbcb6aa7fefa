"""Faults during training: SIGKILL mid-epoch and mid-write, a full disk, an unwritable output
folder, a non-finite loss, a data-loader worker killed by its decoder."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import get_worker_info

from octvideo import cli
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict
from octvideo.engine.run import run_test, run_train
from octvideo.errors import NonFiniteLoss, RunStopped, UsageError
from octvideo.paths import temporaries
from tests.engine.conftest import tiny_overrides

SCRIPT = Path(__file__).with_name("train_and_die.py")
REPO = Path(__file__).resolve().parents[2]


def _overrides(tiny_synth: Path) -> list[str]:
    # 12 clips, batch 4: 3 steps per epoch, 3 epochs; last.ckpt every 2 steps and at each epoch
    # end; dropout and flips on, so the replay must also reproduce the random draws.
    return tiny_overrides(
        tiny_synth,
        **{
            "trainer.max_epochs": 3,
            "trainer.deterministic": True,
            "output.ckpt_every_n_steps": 2,
            "output.plot_curves": False,
            "model.dropout": 0.5,
        },
    )


def _train_and_die(run: Path, overrides: list[str], mode: str, step: int) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), json.dumps(overrides), mode, str(step)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return model_state_dict(load_checkpoint(path))


@pytest.fixture(scope="module")
def uninterrupted(tiny_synth, tmp_path_factory):
    """A whole run of the fault tests' settings."""
    run = tmp_path_factory.mktemp("uninterrupted")
    return run_train(None, _overrides(tiny_synth), out=str(run))


@pytest.fixture(scope="module")
def reference(uninterrupted) -> tuple[int, dict[str, torch.Tensor]]:
    """The uninterrupted run's step count and final weights."""
    return uninterrupted.global_step, _weights(uninterrupted.last_ckpt)


def _assert_same_run(result, reference) -> None:
    steps, weights = reference
    assert result.global_step == steps == 9
    got = _weights(result.last_ckpt)
    assert got.keys() == weights.keys()
    differing = [k for k in weights if not torch.equal(got[k], weights[k])]
    assert not differing, f"weights differ from the uninterrupted run: {differing[:5]}"


def test_sigkill_mid_epoch_then_resume_auto_gives_the_same_weights(tiny_synth, tmp_path, reference):
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    _train_and_die(run, overrides, "step", 5)  # newest checkpoint: step 4, batch 1 of epoch 2
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 4
    result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(tiny_synth, tmp_path, reference):
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    _train_and_die(run, overrides, "ckpt-write", 4)
    ckpt_dir = run / "checkpoints"
    torn = temporaries(ckpt_dir / "last.ckpt")
    assert torn, "the kill should have left the half-written temporary file"
    previous = load_checkpoint(ckpt_dir / "last.ckpt")
    assert previous["global_step"] == 3  # the epoch-end checkpoint before the torn write
    result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)
    assert not temporaries(ckpt_dir / "last.ckpt")


def test_resuming_with_another_batch_size_is_refused(tiny_synth, tmp_path, uninterrupted):
    overrides = [*_overrides(tiny_synth), "data.batch_size=3", "trainer.max_epochs=4"]
    with pytest.raises(UsageError, match=r"data.batch_size=3 but the checkpoint was trained with"):
        run_train(None, overrides, out=str(tmp_path), resume=str(uninterrupted.last_ckpt))


@pytest.mark.parametrize("change", ["devices", "videos"])
def test_resuming_over_other_processes_or_videos_is_refused(
    tiny_synth, tmp_path, uninterrupted, change
):
    # the epoch's position was taken as is: an epoch was trained again and the rest ran at lr 0
    ckpt = uninterrupted.last_ckpt
    if change == "devices":
        extra = ["trainer.devices=2", "trainer.strategy=ddp"]
        differs = "world size 1 there, 2 here (trainer.devices x trainer.num_nodes)"
    else:
        fewer = tmp_path / "fewer.txt"
        fewer.write_text("".join((tiny_synth / "train.txt").read_text().splitlines(True)[:8]))
        extra = [f"data.train_list={fewer}", f"data.root={tiny_synth}"]
        differs = "training videos 12 there, 8 here"
    overrides = [*_overrides(tiny_synth), "trainer.max_epochs=4", *extra]
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(tmp_path / "run"), resume=str(ckpt))
    assert str(err.value) == (
        f"cannot resume from {ckpt}: {differs}, so its place in the epoch and the steps left are "
        f"not known; resume with the same, or start a new run from its weights with "
        f"model.pretrained={ckpt}"
    )


def test_a_refused_resume_changes_nothing_in_the_run(tiny_synth, tmp_path, uninterrupted):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    overrides = [*_overrides(tiny_synth), "data.batch_size=3", "trainer.max_epochs=4"]
    with pytest.raises(UsageError, match=r"data.batch_size=3 but the checkpoint"):
        run_train(None, overrides, out=str(run), resume="auto")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # config.yaml and the logs untouched, no new log version


def test_a_new_run_over_an_earlier_one_is_refused(tiny_synth, tmp_path, uninterrupted, capsys):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *_overrides(tiny_synth)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"octvideo train: error: {run} already holds a run (last.ckpt and best.ckpt in "
        f"{run / 'checkpoints'}); continue it with --resume auto, or start a new run with "
        "another --out (nothing was changed)"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


class SigtermDuring(L.Callback):
    """Sends this process SIGTERM as the batch of a given global step starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_writes_a_checkpoint_and_resume_gives_the_same_weights(
    tiny_synth, tmp_path, reference
):
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    with pytest.raises(RunStopped) as info:  # SIGTERM during step 5's batch (checkpoints: 2, 4)
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(4)])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 5; {last} (global step 5) is kept; continue with "
        "--resume auto"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # Lightning's handler is gone
    result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)


def test_sigterm_in_the_last_step_keeps_the_checkpoint_before_it(tiny_synth, tmp_path, reference):
    # a last.ckpt at step 9, before the last validation and epoch-end checkpoint, would resume
    # as a finished run that never validated its last epoch
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    with pytest.raises(RunStopped) as info:
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(8)])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 9; {last} (global step 8) is kept; continue with "
        "--resume auto"
    )
    result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)


def test_sigterm_inside_an_accumulation_window_keeps_the_checkpoint_before_it(tiny_synth, tmp_path):
    # a checkpoint there lacked the window's accumulated gradient: the resumed run differed
    overrides = [*_overrides(tiny_synth), "trainer.accumulate_grad_batches=2"]
    want = run_train(None, overrides, out=str(tmp_path / "ref"))  # 3 batches, 2 steps an epoch
    run = tmp_path / "run"
    with pytest.raises(RunStopped) as info:  # during epoch 1's first batch: no step after it
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(2)])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 2; {last} (global step 2) is kept; continue with "
        "--resume auto"
    )
    assert load_checkpoint(last)["VideoDataModule"]["batches_done"] == 3  # epoch 0's end
    result = run_train(None, overrides, out=str(run), resume="auto")
    assert result.global_step == want.global_step == 6
    got, expected = _weights(result.last_ckpt), _weights(want.last_ckpt)
    assert [k for k in expected if not torch.equal(got[k], expected[k])] == []


def test_skipping_nonfinite_steps_with_accumulation_is_refused(tiny_synth, tmp_path):
    # the skipped batch's step was taken anyway, on the window's other batches' gradient
    overrides = [
        *_overrides(tiny_synth),
        "trainer.accumulate_grad_batches=2",
        "optim.on_nonfinite_loss=skip",
    ]
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert str(err.value) == (
        "optim.on_nonfinite_loss=skip skips a step by leaving out its backward pass, which cannot "
        "take back the other batches accumulated into it (trainer.accumulate_grad_batches=2): the "
        "step would be taken on a partial gradient; use optim.on_nonfinite_loss=stop with "
        "accumulation"
    )


class InterruptAt(L.Callback):
    """Raises KeyboardInterrupt, as Ctrl-C does, at the end of a given global step's batch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_stops_in_one_line_naming_the_checkpoint_kept(tiny_synth, tmp_path):
    run = tmp_path / "run"
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(RunStopped) as info:
            run_train(None, _overrides(tiny_synth), out=str(run), callbacks=[InterruptAt(5)])
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C once stopping
    assert str(info.value) == (
        f"stopped by an interrupt (Ctrl-C) at global step 5; {run / 'checkpoints' / 'last.ckpt'} "
        "(global step 4) is kept; continue with --resume auto"
    )


def test_another_class_list_is_refused_by_test_and_resume(tiny_synth, tmp_path, uninterrupted):
    classes = (tiny_synth / "classes.txt").read_text().split()
    swapped = [classes[1], classes[0], *classes[2:]]
    names = tmp_path / "swapped.txt"
    names.write_text("\n".join(swapped) + "\n")
    overrides = [*_overrides(tiny_synth), f"data.classes_file={names}"]
    ckpt = uninterrupted.last_ckpt
    needle = (
        f"checkpoint {ckpt} was trained on other classes than the data's (class 0 is "
        f"{classes[0]!r} there, {classes[1]!r} here)"
    )
    with pytest.raises(UsageError, match=re.escape(needle)):
        run_test(None, overrides, ckpt=str(ckpt), out=str(tmp_path / "test"))
    with pytest.raises(UsageError, match=re.escape(needle)):
        run_train(None, overrides, out=str(tmp_path / "train"), resume=str(ckpt))


def test_testing_on_other_clips_than_trained_is_refused_unless_allowed(
    tiny_synth, tmp_path, uninterrupted, caplog
):
    ckpt = uninterrupted.last_ckpt
    other = [*_overrides(tiny_synth), "data.num_frames=8", "data.mean=[0.5,0.5,0.5]"]
    with pytest.raises(UsageError) as info:
        run_test(None, other, ckpt=str(ckpt), out=str(tmp_path / "refused"))
    assert str(info.value) == (
        f"checkpoint {ckpt} was trained on other clips than the config gives (data.num_frames=8 "
        "here, 4 in training; data.mean=[0.5, 0.5, 0.5] here, [0.45, 0.45, 0.45] in training); "
        "test with data.num_frames=4 data.mean=[0.45,0.45,0.45], or set "
        "test.allow_other_clip=true to test on these on purpose"
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.run"):
        result = run_test(
            None, [*other, "test.allow_other_clip=true"], ckpt=str(ckpt), out=str(tmp_path / "ok")
        )
    assert result.metrics["num_videos"] == 6
    assert "is tested on other clips than it was trained on: data.num_frames=8 here" in caplog.text


def test_an_unwritable_report_folder_is_refused_before_the_evaluation(
    tiny_synth, tmp_path, uninterrupted, monkeypatch, capsys
):
    import octvideo.engine.run as run_module

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    evaluated = []
    monkeypatch.setattr(run_module, "_trainer", lambda *a, **k: evaluated.append(1))
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(uninterrupted.last_ckpt)]
    args += ["--out", str(tmp_path / "run"), *_overrides(tiny_synth)]
    assert cli.main([*args, f"test.out_dir={blocker / 'report'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"octvideo test: error: output folder {blocker / 'report'} is not")
    assert err.endswith("(Not a directory); choose another with --out or test.out_dir")
    assert not evaluated


# -- disk and paths ---------------------------------------------------------------------------


def _fast(tiny_synth: Path, **extra: object) -> list[str]:
    return tiny_overrides(tiny_synth, **{"output.plot_curves": False, **extra})


def test_a_full_disk_at_a_checkpoint_write_stops_and_keeps_the_last_good_one(
    tiny_synth, tmp_path, monkeypatch
):
    real_save = torch.save

    def save(obj, fh, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("global_step") == 4:
            fh.write(b"the first bytes of a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, fh, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    overrides = _fast(tiny_synth, **{"trainer.max_epochs": 3, "output.ckpt_every_n_steps": 2})
    with pytest.raises(RunStopped) as info:
        run_train(None, overrides, out=str(run))
    message = str(info.value)
    assert "No space left on device" in message and "\n" not in message
    assert f"{run / 'checkpoints' / 'last.ckpt'} (global step 3) is kept" in message
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 3
    assert not temporaries(run / "checkpoints" / "last.ckpt")


def test_too_little_free_space_is_reported_before_training(
    tiny_synth, tmp_path, monkeypatch, capsys
):
    import octvideo.engine.run as run_module

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_module.shutil, "disk_usage", lambda _: usage._replace(free=64 * 1024))
    run = tmp_path / "run"
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *_fast(tiny_synth)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"octvideo train: stopped: only 0.1 MiB free on the disk of {run}")
    assert "checkpoints need about" in err and "\n" not in err
    assert not (run / "config.yaml").exists()  # failed before anything was written


def test_an_output_folder_inside_a_file_is_reported_before_training(tiny_synth, tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(blocker / "run"), *_fast(tiny_synth)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("octvideo train: error: output folder ") and "\n" not in err
    assert "is not writable (Not a directory); choose another with --out" in err


def test_an_unwritable_output_folder_is_reported_before_training(tiny_synth, tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    if os.geteuid() == 0:  # root writes through any mode bits: refuse as the kernel would
        import octvideo.paths

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr(octvideo.paths.tempfile, "TemporaryFile", refuse)
    else:
        (run / "checkpoints").chmod(0o500)
    with pytest.raises(UsageError, match=r"is not writable \(Permission denied\)"):
        run_train(None, _fast(tiny_synth), out=str(run))


# -- divergence -------------------------------------------------------------------------------


class PoisonBatch(L.Callback):
    """Turns the clips of the batch at a given global step into NaN."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step
        self.poisoned = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step and not self.poisoned:
            batch["video"].fill_(float("nan"))
            self.poisoned += 1


def test_a_nan_loss_stops_the_run_naming_the_step(tiny_synth, tmp_path):
    run = tmp_path / "run"
    overrides = _fast(tiny_synth, **{"trainer.max_epochs": 3})
    with pytest.raises(NonFiniteLoss) as info:
        run_train(None, overrides, out=str(run), callbacks=[PoisonBatch(at_step=4)])
    message = str(info.value)
    assert message.startswith("loss is nan at global step 4 (epoch 1, batch 1)")
    assert f"{run / 'checkpoints' / 'last.ckpt'} (global step 3) is kept" in message
    kept = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert kept["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in model_state_dict(kept).values())


class StateAround(L.Callback):
    """The whole state dict (weights, batch-norm statistics) before and after one step."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step
        self.before: dict[str, torch.Tensor] = {}
        self.after: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step and not self.before:
            self.before = {k: v.clone() for k, v in pl_module.model.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step + 1 and not self.after:
            self.after = {k: v.clone() for k, v in pl_module.model.state_dict().items()}


def test_a_nan_loss_step_is_skipped_when_configured(tiny_synth, tmp_path, caplog):
    overrides = _fast(tiny_synth, **{"optim.on_nonfinite_loss": "skip"})
    poison, around = PoisonBatch(at_step=2), StateAround(at_step=2)
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.module"):
        result = run_train(None, overrides, out=str(tmp_path / "run"), callbacks=[poison, around])
    assert poison.poisoned == 1
    assert "loss is nan at global step 2 (epoch 0, batch 2): step skipped" in caplog.text
    # the skipped batch changed nothing: weights, batch-norm statistics and counters are as before
    assert around.before and around.after
    changed = [k for k in around.before if not torch.equal(around.before[k], around.after[k])]
    assert not changed
    assert result.global_step == 6  # Lightning counts the skipped batch as a step
    final = model_state_dict(load_checkpoint(result.last_ckpt))
    assert all(torch.isfinite(v).all() for v in final.values())


def test_skipping_stops_after_max_skipped_steps_in_a_row(tiny_synth, tmp_path):
    class PoisonAll(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            batch["video"].fill_(float("inf"))

    overrides = _fast(
        tiny_synth, **{"optim.on_nonfinite_loss": "skip", "optim.max_skipped_steps": 2}
    )
    with pytest.raises(NonFiniteLoss, match=r"after 2 skipped steps in a row"):
        run_train(None, overrides, out=str(tmp_path / "run"), callbacks=[PoisonAll()])


# -- data-loader workers ------------------------------------------------------------------------


def test_a_worker_killed_by_its_decoder_is_reported_with_the_file(
    tiny_synth, tmp_path, monkeypatch
):
    import octvideo.data.datasets as datasets

    lines = (tiny_synth / "train.txt").read_text().splitlines()
    culprit = lines[5].split()[0]
    real_decode = datasets.decode_clip

    def decode(path, *args, **kwargs):
        if path.endswith(culprit) and get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGSEGV)  # what a crashing FFmpeg does to a worker
        return real_decode(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "decode_clip", decode)
    overrides = _fast(tiny_synth, **{"data.num_workers": 1, "data.persistent_workers": False})
    with pytest.raises(RunStopped) as info:
        run_train(None, overrides, out=str(tmp_path / "run"))
    message = str(info.value)
    # PyTorch's words depend on who notices first: "(pid N) is killed by signal: Segmentation
    # fault" or "(pid(s) N) exited unexpectedly"
    assert re.match(r"DataLoader worker \(pid(\(s\))? \d+\) (is killed|exited)", message)
    assert f"while decoding {tiny_synth / culprit}" in message
    assert "octvideo data check" in message and "\n" not in message


# -- clips and checkpoints that do not fit the model ------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "overrides", "needle"),
    [
        (
            "slowfast_r50_4x16",
            ["data.num_frames=30"],
            "data.num_frames=30 is not a multiple of data.slowfast_alpha=8 (the slow pathway "
            "takes every 8th frame of the fast one); use data.num_frames=24",
        ),
        (
            "slowfast_r50_4x16",
            ["data.slowfast_alpha=null"],
            "model.name=slowfast_r50 takes [slow, fast] pathways: set data.slowfast_alpha=8",
        ),
        (
            "slowfast_r50_4x16",
            ["data.slowfast_alpha=4"],
            "data.slowfast_alpha=4 but slowfast_r50 is built with slowfast_alpha=8",
        ),
        (
            "i3d_r50_8x8",
            ["data.slowfast_alpha=4"],
            "model.name=i3d_r50 takes one clip, not SlowFast pathways",
        ),
        (
            "c2d_r50_8x8",
            ["data.num_frames=1"],
            "c2d_r50 cannot take clips of data.num_frames=1 frames at",
        ),
    ],
)
def test_a_clip_the_model_cannot_take_is_one_line(cfg, overrides, needle, tmp_path, capsys):
    for command in ("train", "test"):
        ckpt = ["--ckpt", str(tmp_path / "none.ckpt")] if command == "test" else []
        args = [command, "--cfg", cfg, "--out", str(tmp_path / "run"), *ckpt, *overrides]
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"octvideo {command}: error: ") and "\n" not in err
        assert needle in err
        if "cannot take" in needle:  # the network's own words come after the settings
            assert err.endswith("Output size is too small")
    assert not (
        tmp_path / "run" / "config.yaml"
    ).exists()  # refused before anything is written  # refused before anything was made


def test_training_without_a_validation_list_is_refused_before_it_starts(tiny_synth, tmp_path):
    overrides = [*_fast(tiny_synth), "data.val_list="]
    with pytest.raises(UsageError, match=r"^training needs data.val_list \(best.ckpt is chosen"):
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before anything is written


@pytest.mark.parametrize("workers", [0, 2])
def test_a_training_list_of_bad_videos_stops_in_one_line(tiny_synth, tmp_path, workers):
    bad = []
    for i in range(3):
        bad.append(tmp_path / f"empty{i}.mp4")
        bad[-1].write_bytes(b"")
    listing = tmp_path / "bad_train.txt"
    listing.write_text("".join(f"{p} 0\n" for p in bad))
    overrides = _fast(
        tiny_synth,
        **{"data.train_list": listing, "data.max_retries": 2, "data.num_workers": workers},
    )
    with pytest.raises(RunStopped) as info:
        run_train(None, overrides, out=str(tmp_path / "run"))
    message = str(info.value)
    assert message.startswith("3 videos in a row failed to decode (data.max_retries=2); run ")
    assert "\n" not in message and "Traceback" not in message
    tried = message.split("on the annotations: ", 1)[1].split("; ")[:3]  # retries pick at random
    assert [t.split(": ", 1)[0] in map(str, bad) for t in tried] == [True] * 3
    assert all("cannot open it" in t for t in tried)
    assert message.endswith(
        f"no checkpoint had been written yet ({tmp_path / 'run'}/checkpoints/last.ckpt)"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_gpu_accelerator_without_a_gpu_is_one_line(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *_fast(tiny_synth)]
    assert cli.main([*args, "trainer.accelerator=gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "octvideo train: error: trainer.accelerator=gpu trainer.devices=1 trainer.strategy=auto: "
    )
    assert "\n" not in err and not (run / "config.yaml").exists()


def test_all_devices_on_a_cpu_is_the_one_process(tiny_synth, tmp_path):
    overrides = [*_fast(tiny_synth), "trainer.accelerator=cpu", "trainer.devices=-1"]
    result = run_train(None, [*overrides, "trainer.max_epochs=1"], out=str(tmp_path / "run"))
    assert result.global_step == 3  # 12 clips at batch 4, one process (before: a TypeError)


def test_missing_pretrained_weights_say_which_setting_names_them(tiny_synth, tmp_path):
    weights = tmp_path / "pretrained" / "resnet50.pth"
    overrides = [*_fast(tiny_synth), f"model.pretrained={weights}"]
    overrides.append("model.pretrained_kind=imagenet2d")
    with pytest.raises(UsageError) as info:
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert str(info.value) == (
        f"model.pretrained={weights} (imagenet2d): checkpoint '{weights}' does not exist; put the "
        "weights there (the README's 'Training on Kinetics' says which), set "
        "model.pretrained=PATH, or model.pretrained=null to start from random weights"
    )


def test_a_checkpoint_for_another_class_count_is_one_line(
    tiny_synth, tmp_path, uninterrupted, capsys
):
    classes = tmp_path / "classes7.txt"
    classes.write_text((tiny_synth / "classes.txt").read_text() + "one_more\n")
    overrides = _overrides(tiny_synth) + [
        f"data.classes_file={classes}",
        "model.num_classes=7",
    ]
    ckpt = uninterrupted.last_ckpt
    args = [
        "test",
        "--cfg",
        "oct_i3d_synth",
        "--ckpt",
        str(ckpt),
        "--out",
        str(tmp_path),
        *overrides,
    ]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == (
        f"octvideo test: error: checkpoint {ckpt} has 6 classes but model.num_classes=7; use "
        "the config and data it was trained with"
    )
    with pytest.raises(UsageError, match="has 6 classes but model.num_classes=7"):
        run_train(None, overrides, out=str(tmp_path / "run"), resume=str(ckpt))


@pytest.mark.parametrize("with_file", [True, False])
def test_class_count_mismatch_names_where_the_classes_came_from(tiny_synth, tmp_path, with_file):
    # a shipped config's relative classes file of another dataset was picked up unnamed
    extra = {"model.num_classes": 3, **({} if with_file else {"data.classes_file": ""})}
    with pytest.raises(UsageError) as err:
        run_train(None, tiny_overrides(tiny_synth, **extra), out=str(tmp_path / "run"))
    source = (
        f"data.classes_file={tiny_synth / 'classes.txt'}"
        if with_file
        else f"the labels of {tiny_synth / 'train.txt'}"
    )
    assert str(err.value) == (
        f"model.num_classes=3 but the data has 6 classes (from {source}); set "
        "model.num_classes=6, or point data.classes_file at this dataset's classes"
    )
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before anything is written


def test_a_validation_set_that_all_fails_to_decode_leaves_best_alone(tiny_synth, tmp_path, caplog):
    # Lightning stopped the run with a traceback: ModelCheckpoint found no val/top1
    val = tmp_path / "val.txt"
    lines = []
    for i in range(3):
        broken = tmp_path / f"broken{i}.mp4"
        broken.write_bytes(b"not a video")
        lines.append(f"{broken} {i}\n")
    val.write_text("".join(lines))
    train = tmp_path / "train.txt"
    train.write_text(
        (tiny_synth / "train.txt").read_text().replace("train/", f"{tiny_synth}/train/")
    )
    overrides = tiny_overrides(
        tiny_synth, **{"trainer.max_epochs": 1, "data.root": "/", "data.val_list": val}
    )
    overrides.append(f"data.train_list={train}")
    caplog.set_level(logging.WARNING)
    result = run_train(None, overrides, out=str(tmp_path / "run"))
    assert result.last_ckpt.is_file() and result.best_ckpt is None
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert (
        "best.ckpt not updated at epoch 0: validation scored no video, so there is no val/top1; "
        "check data.val_list with 'octvideo data check'"
    ) in caplog.text
