"""``octvideo train`` / ``octvideo test`` in-process (``run_train``, ``run_test``) on a tiny model
and tiny real video files.

The run's order and its resume targets: every check before the first file or folder (a refused run
leaves nothing behind, not even a classes file; the training and validation lists are read and
counted before it, so an empty one changes nothing, on a resume neither), a symbolic link at a run
file, or the --cfg file at a new run's config.yaml, is refused (a resume may read the run's own
config.yaml), an empty training list or a folder as classes file is one line, a finished run resumed
into another folder is refused, a run resumed there as a branch reports that folder's checkpoints,
--out is a path, never YAML, and test and resume refuse a checkpoint whose metadata does not read;
the checkpoint records ``data.target_fps`` and test refuses another one. A resumed run follows the
learning-rate schedule of its current config. Reduced precision: bfloat16 training on a CPU is
refused before anything is written, bfloat16 testing works. Two-process CPU DDP (gloo) through the
real command line: the run completes, ranks agree, and precise BN combines the two ranks' batches.
Faults during training: SIGKILL mid-epoch and mid-write, SIGTERM and Ctrl-C (also during an
epoch's validation, which the resumed run runs again before the epochs left; a SIGTERM after the
last step lets the run write its files and says it finished), a full disk, an
unwritable output folder, a non-finite loss, a data-loader worker killed by its decoder."""

from __future__ import annotations

import contextlib
import copy
import csv
import errno
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from torch._utils import ExceptionWrapper
from torch.utils.data import get_worker_info

from octvideo import cli
from octvideo.checkpoint_meta import ADVICE, CheckpointMeta
from octvideo.config import OptimConfig, load_config, save_config
from octvideo.data import VideoDataModule
from octvideo.data.datamodule import EpochSampler
from octvideo.data.datasets import OutOfOpenFiles
from octvideo.engine import build
from octvideo.engine import run as engine_run
from octvideo.engine.build import build_model
from octvideo.engine.callbacks import read_metrics
from octvideo.engine.checkpoint import atomic_save, load_checkpoint, model_state_dict
from octvideo.engine.lightning_state import (
    epochs_done,
    mark_validation_started,
    validation_under_way,
)
from octvideo.engine.optim import LRSchedule
from octvideo.engine.run import (
    check_same_clips,
    check_same_run,
    check_same_validation,
    resolve_resume,
    resume_is_finished,
    run_test,
    run_train,
    writes_run_folder,
)
from octvideo.errors import (
    CheckpointError,
    CheckpointWriteError,
    ConfigError,
    Interrupted,
    NonFiniteLoss,
    RunStopped,
    Terminated,
    UsageError,
)
from octvideo.models.cost import cost_table, measure_cost
from octvideo.network import build_network
from octvideo.ops import is_channels_last
from octvideo.paths import LOCK_NAME, hold_folder, temporaries, write_failure
from tests.data.test_open_files import fake_open_file_limit
from tests.engine.conftest import NUM_CLASSES, bn_population_moments, tiny_overrides
from tests.reliability.bad_input_matrix import NO_FILES, make_no_file


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


@contextlib.contextmanager
def _sigint_handler_put_back() -> Iterator[None]:
    """Checks that the command inside put back the SIGINT handler (Lightning ignores Ctrl-C once
    it is stopping, and left it so), and puts it back itself either way."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, handler)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"model.num_classes": NUM_CLASSES + 1}, "model.num_classes=7 but the data has 6"),
        ({"trainer.sync_batchnorm": "true"}, "trainer.sync_batchnorm=true needs GPUs"),
        ({"model.num_classes": 100001}, "model.num_classes=100001 is over the limit"),
        ({"model.extra": "{width: 1000}"}, "parameters, over the limit"),
    ],
)
def test_a_refused_run_writes_nothing(tiny_synth, tmp_path, extra, needle):
    # a classes file that does not exist yet: a run writes it, a refused one must not
    classes = tmp_path / "data" / "classes.txt"
    overrides = tiny_overrides(tiny_synth, **{**extra, "data.classes_file": classes})
    before = _files(tmp_path)
    run = tmp_path / "runs" / "refused"
    with pytest.raises((ConfigError, UsageError), match=needle):
        run_train(None, overrides, out=str(run))
    assert _files(tmp_path) == before  # no run folder, no checkpoints/, no classes.txt


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("data.batch_size", 0, "data.batch_size must be >= 1, got 0"),
        ("optim.lr", "0.1", "RunConfig: optim.lr takes a number, got '0.1'"),
        ("data.num_frames", 10**6, "data.num_frames=1000000 is over the limit of 256 frames"),
    ],
)
@pytest.mark.parametrize("command", ["train", "test"])
def test_a_run_config_changed_in_python_is_refused_before_anything_is_written(
    tiny_synth, tmp_path, command, key, value, needle
):
    cfg = load_config(None, tiny_overrides(tiny_synth, **{"output.dir": tmp_path / "run"}))
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, value)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        if command == "train":
            run_train(cfg)
        else:
            run_test(cfg, ckpt=tmp_path / "best.ckpt")
    assert _files(tmp_path) == []


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.random()), torch.rand(1).item()


def _lightning_says(text: str) -> bool:
    """Whether Lightning's loggers that octvideo quiets during a run let ``text`` through."""
    for name in engine_run._LIGHTNING_LOGGERS:
        record = logging.LogRecord(name, logging.INFO, __file__, 0, text, None, None)
        if not logging.getLogger(name).filter(record):
            return False
    return True


def test_a_run_config_takes_overrides_and_out_and_the_callers_state_is_kept(
    tiny_synth, tmp_path, monkeypatch
):
    cfg = load_config("oct_i3d_synth", tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1}))
    kept = copy.deepcopy(cfg)
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # seed_everything's, read by a Trainer
        monkeypatch.delenv(name, raising=False)
    filters = list(warnings.filters)
    _seed(7)
    expected = _draws()
    run = tmp_path / "run"
    _seed(7)
    result = run_train(cfg, ["optim.lr=0.2"], out=str(run))
    assert _draws() == expected  # trainer.seed seeded the run, not the caller's generators
    _seed(7)
    report = run_test(cfg, ["data.test_num_clips=1"], ckpt=result.best_ckpt, out=str(run))
    assert _draws() == expected
    assert result.run_dir == run and report.out_dir == run / "test"
    ran = load_config(run / "config.yaml")
    assert (ran.optim.lr, ran.output.dir, ran.name) == (0.2, str(run), "oct_i3d_synth")
    summary = json.loads((run / "test" / "summary.json").read_text())
    assert summary["protocol"]["temporal_clips"] == 1
    assert cfg == kept  # the overrides and out applied to a copy
    assert warnings.filters == filters
    assert not {"PL_GLOBAL_SEED", "PL_SEED_WORKERS"} & set(os.environ)
    # a caller's own Trainer logs its stop lines again
    assert _lightning_says("Received SIGTERM: 15, ...")
    assert _lightning_says("Detected KeyboardInterrupt, attempting graceful shutdown ...")


def test_a_missing_classes_file_is_written_only_by_a_run_that_starts(tiny_synth, tmp_path):
    classes = tmp_path / "classes.txt"
    settings = {"data.classes_file": classes, "trainer.max_epochs": 1}
    wrong = tiny_overrides(tiny_synth, **settings, **{"model.num_classes": NUM_CLASSES + 1})
    with pytest.raises(ConfigError, match="model.num_classes=7 but the data has 6"):
        run_train(None, wrong, out=str(tmp_path / "run"))
    assert not classes.exists()
    run_train(None, tiny_overrides(tiny_synth, **settings), out=str(tmp_path / "run"))
    assert classes.read_text().splitlines() == [str(i) for i in range(NUM_CLASSES)]  # labels


@pytest.mark.parametrize("name", ["config.yaml", "replicas.json", "curves.png"])
def test_a_symbolic_link_at_a_run_file_is_refused_and_its_target_kept(tiny_synth, tmp_path, name):
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    run = tmp_path / "run"
    (run / name).parent.mkdir(parents=True)
    (run / name).symlink_to(victim)
    before = _files(tmp_path)
    with pytest.raises(UsageError, match=f"^the run's file {run / name} is a symbolic link to"):
        run_train(None, tiny_overrides(tiny_synth), out=str(run))
    assert victim.read_text() == "victim data\n"
    assert _files(tmp_path) == before


def test_a_new_run_refuses_its_cfg_as_the_run_folders_config_yaml(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    mine = run / "config.yaml"
    mine.write_text("model: {name: i3d_r18}  # my notes\n")
    before = _files(tmp_path)
    args = ["train", "--cfg", str(mine), "--out", str(run), *tiny_overrides(tiny_synth)]
    assert cli.main(args) == 2
    assert capsys.readouterr().err.strip() == (
        f"octvideo train: error: --cfg {mine} is the config.yaml of the run folder {run}, which a "
        "new run replaces with its resolved config; pass a copy kept outside the run folder, or "
        "choose another --out (nothing was changed)"
    )
    assert mine.read_text() == "model: {name: i3d_r18}  # my notes\n"
    assert _files(tmp_path) == before


def test_an_empty_validation_list_is_refused_before_the_run_folder_is_made(tiny_synth, tmp_path):
    empty = tmp_path / "val.txt"
    empty.write_text("# only a comment\n")
    before = _files(tmp_path)
    overrides = tiny_overrides(tiny_synth, **{"data.val_list": empty})
    with pytest.raises(UsageError, match=f"data: {empty} lists no video that exists"):
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert _files(tmp_path) == before  # no config.yaml, logs/ or checkpoints/


def test_a_training_list_of_missing_videos_is_refused_before_the_run_folder_is_made(
    tiny_synth, tmp_path
):
    listing = tmp_path / "train.txt"
    listing.write_text("nope/a.mp4 0\nnope/b.mp4 1\n")
    overrides = tiny_overrides(tiny_synth, **{"data.train_list": listing})
    before = _files(tmp_path)
    with pytest.raises(
        UsageError, match=f"^data: {listing} lists no video that exists \\(2 listed"
    ):
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert _files(tmp_path) == before  # no config.yaml, logs/ or checkpoints/


def test_an_empty_training_list_says_it_lists_no_video(tiny_synth, tmp_path):
    empty = tmp_path / "train.txt"
    empty.write_text("")
    overrides = tiny_overrides(
        tiny_synth, **{"data.train_list": empty, "data.classes_file": tmp_path / "classes.txt"}
    )
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(tmp_path / "run"))
    assert str(err.value) == (
        f"data: {empty} lists no video that exists, so there are no classes to take from it; "
        "check the list's paths against data.root, or the class folders' videos against "
        "data.video_extensions"
    )
    assert sorted(tmp_path.iterdir()) == [empty]


def test_a_classes_file_that_is_a_folder_is_a_usage_error_naming_it(tiny_synth, tmp_path, capsys):
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run")]
    overrides = tiny_overrides(tiny_synth, **{"data.classes_file": tiny_synth})
    assert cli.main([*args, *overrides]) == 2
    assert capsys.readouterr().err.strip() == (
        f"octvideo train: error: data.classes_file={tiny_synth} is a folder; give the path of a "
        "classes file (one class name a line), or of a new file to write the training list's "
        "classes to"
    )
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def finished(tiny_synth, tmp_path_factory) -> Path:
    """A run that has trained all its (one) epoch."""
    run = tmp_path_factory.mktemp("finished") / "run"
    run_train(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1}), out=str(run))
    return run


def test_a_finished_run_resumed_elsewhere_is_refused_and_at_home_reports_its_checkpoints(
    finished, tiny_synth, tmp_path, capsys
):
    new = tmp_path / "new"
    last = finished / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    train = ["train", "--cfg", str(finished / "config.yaml"), "--resume"]
    assert cli.main([*train, str(last), "--out", str(new), *overrides]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith(f"octvideo train: error: checkpoint {last} has trained all 1 epochs")
    assert f"model.pretrained={last}" in line
    assert not new.exists()
    # in its own folder there is nothing to train either: it names the checkpoints it has, and
    # writes nothing (it added a log version and rewrote config.yaml)
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert cli.main([*train, "auto", "--out", str(finished), *overrides]) == 0
    out = capsys.readouterr().out
    assert f"last checkpoint: {last.resolve()}" in out
    assert f"best checkpoint: {(finished / 'checkpoints' / 'best.ckpt').resolve()}" in out
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("max_epochs", [1, 2])
def test_a_resume_with_fewer_epochs_than_trained_is_refused_and_changes_nothing(
    tiny_synth, tmp_path, uninterrupted, max_epochs
):
    # 1 was Lightning's traceback, 2 trained nothing: both rewrote config.yaml and added logs
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    overrides = [*_overrides(tiny_synth), f"trainer.max_epochs={max_epochs}"]
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(run), resume="auto")
    last = run / "checkpoints" / "last.ckpt"
    assert str(err.value) == (
        f"checkpoint {last} has trained 3 epochs, more than trainer.max_epochs={max_epochs}, so "
        "resuming it would train nothing; set trainer.max_epochs=4 or more to train it further, "
        f"or start a new run from its weights with model.pretrained={last} and another --out "
        "(nothing was changed)"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("started", "max_epochs", "home", "said"),
    [
        (2, 2, True, None),  # a finished run at home: nothing to do
        (3, 2, True, "has trained 2 epochs and part of epoch 3, more than trainer.max_epochs=2"),
        (3, 3, True, None),  # part of its last epoch left: it goes on
        (2, 2, False, "has trained all 2 epochs of trainer.max_epochs=2"),
        (2, 1, False, "has trained 2 epochs, more than trainer.max_epochs=1"),
    ],
)
def test_what_a_resume_may_continue_counts_an_epoch_under_way(
    tiny_synth, tmp_path, started, max_epochs, home, said
):
    # a checkpoint written during epoch 3 (started 3, processed 2) trains nothing at 2 epochs
    progress = {"started": started, "processed": 2}
    checkpoint = {"loops": {"fit_loop": {"epoch_progress": {"current": progress}}}}
    cfg = load_config(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": max_epochs}))
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt_dir = path.parent if home else tmp_path / "other" / "checkpoints"
    if said is None:
        assert resume_is_finished(checkpoint, cfg, path, ckpt_dir) is (started == 2)
        return
    with pytest.raises(UsageError, match=f"^checkpoint {re.escape(str(path))} {said}, so "):
        resume_is_finished(checkpoint, cfg, path, ckpt_dir)


def test_a_checkpoint_written_as_a_validation_starts_has_trained_that_epoch(tiny_synth, tmp_path):
    progress = {"started": 3, "processed": 2}  # during epoch 3: its validation
    checkpoint = {"loops": {"fit_loop": {"epoch_progress": {"current": progress}}}}
    checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"] = {}
    assert not validation_under_way(checkpoint)
    mark_validation_started(checkpoint)
    assert validation_under_way(checkpoint)
    cfg = load_config(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": 2}))
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(UsageError) as err:
        resume_is_finished(checkpoint, cfg, path, path.parent)
    assert str(err.value).startswith(
        f"checkpoint {path} has trained 3 epochs, the last not validated yet, more than "
        "trainer.max_epochs=2, so resuming it would train nothing; set trainer.max_epochs=3 or "
        "more"
    )
    # with 3 it validates epoch 3 and ends
    cfg = load_config(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": 3}))
    assert resume_is_finished(checkpoint, cfg, path, path.parent) is False


def test_a_run_resumed_into_another_folder_continues_there_unless_it_holds_a_run(
    finished, tiny_synth, tmp_path
):
    last = finished / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 2})
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "best.ckpt").write_bytes(b"kept")
    with pytest.raises(UsageError, match="already holds a run"):
        run_train(None, overrides, out=str(other), resume=str(last))
    assert (other / "checkpoints" / "best.ckpt").read_bytes() == b"kept"
    new = tmp_path / "branch"
    result = run_train(None, overrides, out=str(new), resume=str(last))
    assert result.last_ckpt == new / "checkpoints" / "last.ckpt" and result.last_ckpt.is_file()
    assert result.best_ckpt == new / "checkpoints" / "best.ckpt" and result.best_ckpt.is_file()
    assert (finished / "checkpoints" / "best.ckpt").is_file()  # the other run's is left alone


def test_a_run_folder_copied_elsewhere_keeps_its_best_checkpoint_when_resumed(
    finished, tiny_synth, tmp_path, caplog
):
    # Lightning forgets best.ckpt's score when the checkpoints' folder changed: the next epoch,
    # however worse, replaced it. Stored here as one no epoch can beat (top-1 100%).
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    (key,) = [k for k in checkpoint["callbacks"] if "'monitor': 'val/top1'" in k]
    state = checkpoint["callbacks"][key]
    state["best_model_score"] = torch.tensor(1.0)
    state["best_k_models"] = {path: torch.tensor(1.0) for path in state["best_k_models"]}
    torch.save(checkpoint, last)
    best = run / "checkpoints" / "best.ckpt"
    kept = best.read_bytes()
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 2})
    with caplog.at_level(logging.INFO, logger="octvideo.engine.lightning_state"):
        result = run_train(None, overrides, out=str(run), resume="auto")
    assert result.global_step == 6 and result.best_ckpt == best
    assert best.read_bytes() == kept  # epoch 1's, not epoch 2's
    assert f"{best.resolve()} keeps its val/top1 1.0000: the run folder was moved or copied" in (
        caplog.text
    )
    state = torch.load(last, weights_only=True)["callbacks"][key]  # now this folder's
    assert state["dirpath"] == str(best.parent.resolve())
    assert state["best_model_path"] == str(best.resolve())


@pytest.mark.parametrize(
    ("command", "case"),
    [("train", "copied"), ("test", "copied"), ("test", "moved"), ("test", "inside")]
    + [("test", "elsewhere"), ("train", "beside")],
)
def test_a_moved_run_folders_config_yaml_is_refused_where_it_names_another_folder(
    finished, tmp_path, capsys, monkeypatch, command, case
):
    # its output.dir names the folder it came from: continued or tested without --out, the
    # command would write there (for a copy, over the original's checkpoints or report). Every
    # --out the refusal offers is right from the working folder, and names a folder that exists.
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    config = run / "config.yaml"
    named, here, why = finished, "", "the run folder was moved or copied"
    other = f"{why}, or the command runs in another working folder than its run"
    if case == "moved":  # the folder named is gone
        named = tmp_path / "gone"
    elif case == "inside":  # started with --out copy, then run inside it: copy is copy/copy
        named, here, why = Path("copy"), f", from here {run / 'copy'}", other
        monkeypatch.chdir(run)
        config = Path("config.yaml")
    elif case == "elsewhere":  # started with --out copy, then run from a folder inside it
        named, here, why = Path("copy"), f", from here {run / 'checkpoints' / 'copy'}", other
        monkeypatch.chdir(run / "checkpoints")
    elif case == "beside":  # a copy of the run beside it, named relative to this folder
        named, here, why = Path("copy2"), f", from here {tmp_path / 'copy2'}", other
        monkeypatch.chdir(tmp_path)
        shutil.copytree(run, tmp_path / "copy2")
    text = config.read_text()
    config.write_text(text.replace(f"dir: {finished}\n", f"dir: {named}\n"))
    exists = case in ("copied", "beside")

    def tree() -> dict[Path, bytes | None]:  # every folder and file, and each file's bytes
        paths = [p for folder in (finished, tmp_path) for p in folder.rglob("*")]
        return {p: p.read_bytes() if p.is_file() else None for p in paths}

    before = tree()
    best = config.parent / "checkpoints" / "best.ckpt"
    args = ["--cfg", str(config)]
    args += ["--resume", "auto"] if command == "train" else ["--ckpt", str(best)]
    assert cli.main([command, *args]) == 2
    doing = "train in" if command == "train" else "test into"
    that = f", or --out {named} for that one" if exists else ""
    where = f"{named} (output.dir{here}{'' if exists else ', which does not exist'})"
    assert capsys.readouterr().err.strip() == (
        f"octvideo {command}: error: --cfg {config} is the config of the run folder "
        f"{config.parent}, but names the folder {where}: {why}; add --out {config.parent} to "
        f"{doing} it{that} (nothing was changed)"
    )
    assert tree() == before


def test_a_run_folder_or_config_name_not_utf8_is_one_line_before_anything_is_written(
    tiny_synth, tmp_path, monkeypatch
):
    """Lightning's hparams.yaml and TensorBoard take only UTF-8 text: the run failed in
    ``trainer.fit`` with a traceback, its folder (config.yaml, logs/, tb/) made."""
    monkeypatch.chdir(tmp_path)
    logs = (
        "not UTF-8 text, which the run's logs (Lightning's hparams.yaml, TensorBoard) cannot take"
    )
    config = tmp_path / os.fsdecode(b"c\xfe.yaml")  # the run's name is the config's
    config.write_text("{}\n")
    before = _files(tmp_path)
    for cfg, out, message in [
        (None, b"r\xff", f"--out 'r\\udcff' is {logs}; choose another --out name"),
        (
            None,
            b"r\xff/run",
            f"--out 'r\\udcff/run': its path is {logs}; choose another --out name",
        ),
        (
            str(config),
            b"run",
            f"config name (the --cfg file's) 'c\\udcfe' is {logs}; rename it, or set name=NAME",
        ),
    ]:
        with pytest.raises(UsageError) as caught:
            run_train(cfg, tiny_overrides(tiny_synth), out=os.fsdecode(out))
        assert str(caught.value) == message
    assert _files(tmp_path) == before


@pytest.mark.parametrize("name", ["null", "yes", "[1]"])
def test_out_is_a_path_not_yaml(tiny_synth, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name / "checkpoints").mkdir(parents=True)
    (tmp_path / name / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(UsageError, match=rf"^{re.escape(name)} already holds a run"):
        run_train(None, tiny_overrides(tiny_synth), out=name)


def test_a_checkpoint_with_malformed_metadata_is_refused_by_test_and_resume(
    tiny_synth, tmp_path, capsys
):
    overrides = tiny_overrides(tiny_synth)
    cfg = load_config("oct_i3d_synth.yaml", overrides)
    classes = (tiny_synth / "classes.txt").read_text().split()
    meta = CheckpointMeta.from_run(cfg, classes).to_dict()
    meta["clip"]["num_frames"] = "4"  # the weights fit; the description does not parse
    state = build_model(cfg.model, pretrained=False).state_dict()
    path = tmp_path / "odd.ckpt"
    atomic_save(
        {
            "state_dict": {f"model.{k}": v for k, v in state.items()},
            "hyper_parameters": {"meta": meta},
        },
        path,
    )
    line = (
        f"checkpoint {str(path)!r} metadata: clip.num_frames is '4' (str), not a whole number "
        f"of 1 or more; {ADVICE}"
    )
    test = [
        "test",
        "--cfg",
        "oct_i3d_synth.yaml",
        "--ckpt",
        str(path),
        "--out",
        str(tmp_path / "t"),
    ]
    assert cli.main([*test, *overrides]) == 2
    assert capsys.readouterr().err == f"octvideo test: error: {line}\n"
    with pytest.raises(UsageError) as info:
        run_train("oct_i3d_synth.yaml", overrides, out=str(tmp_path / "r"), resume=str(path))
    assert str(info.value) == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.ckpt"]  # nothing written


def test_the_checkpoint_records_target_fps_and_test_checks_it():
    trained = load_config(None, ["data.target_fps=30"])
    meta = CheckpointMeta.from_run(trained, ["a", "b"]).to_dict()
    assert CheckpointMeta.from_dict(meta).clip.target_fps == 30.0
    unset = {**meta, "clip": {**meta["clip"]} | {"target_fps": None}}
    assert CheckpointMeta.from_dict(unset).clip.target_fps is None
    checkpoint = {"hyper_parameters": {"meta": meta}}
    check_same_clips(checkpoint, trained, "x.ckpt")  # the same: no error
    with pytest.raises(UsageError, match=r"data.target_fps=None here, 30.0 in training"):
        check_same_clips(checkpoint, load_config(None, []), "x.ckpt")


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true", "16-mixed"])
def test_bf16_training_on_cpu_is_refused_before_anything_is_written(
    tiny_synth, tmp_path, monkeypatch, precision
) -> None:
    monkeypatch.setattr(build, "_cpu_bf16_weight_grads_ok", lambda: False)
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_synth, **{"trainer.precision": precision})
    refusal = rf"trainer.precision={precision} on a CPU[^:]*: .*32-true"
    with pytest.raises(UsageError, match=refusal):
        run_train(None, overrides, out=str(run))
    assert not run.exists()


def test_bf16_test_command_on_a_float32_checkpoint(tiny_synth, tmp_path_factory) -> None:
    """Testing (inference only) runs in bfloat16 on a CPU, FLOPs counted on the bfloat16 model."""
    run = tmp_path_factory.mktemp("bf16test")
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    assert cli.main(["train", "--cfg", "oct_i3d_synth", "--out", str(run), *overrides]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    results = {}
    for precision in ("32-true", "bf16-true", "bf16-mixed"):
        out = run / precision
        extra = {"trainer.precision": precision, "test.count_flops": True}
        args = ["test", "--cfg", str(run / "config.yaml"), "--ckpt", str(ckpt), "--out", str(out)]
        assert cli.main([*args, *tiny_overrides(tiny_synth, **extra)]) == 0
        results[precision] = json.loads((out / "test" / "summary.json").read_text())
    counts = {p: r["protocol"]["gflops_per_view"] for p, r in results.items()}
    assert counts["bf16-true"] == counts["bf16-mixed"] == counts["32-true"] > 0
    for r in results.values():
        assert r["metrics"]["num_videos"] == 6 and r["metrics"]["num_failed"] == 0


class FirstStep(L.Callback):
    """The momentum buffers when training starts; the step and learning rate of its first batch."""

    def __init__(self) -> None:
        self.momentum: list[torch.Tensor] = []
        self.first: tuple[int, float] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        opt = trainer.optimizers[0]
        self.momentum = [
            opt.state[p]["momentum_buffer"].clone() for g in opt.param_groups for p in g["params"]
        ]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first is None:
            self.first = (trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"])


def _logged_lrs(metrics_csv) -> list[tuple[int, float]]:
    with metrics_csv.open() as fh:
        return [(int(r["step"]), float(r["lr"])) for r in csv.DictReader(fh) if r.get("lr")]


def test_resume_with_more_epochs_and_another_lr_trains_on_the_new_schedule(
    tiny_synth, tmp_path, caplog
):
    # 12 clips at batch 4: 3 steps per epoch; cosine without warmup; lr not scaled (batch 4 is
    # the reference batch)
    run = tmp_path / "run"
    fast = {"output.plot_curves": False}
    first = run_train(
        None, tiny_overrides(tiny_synth, **fast, **{"trainer.max_epochs": 1}), out=str(run)
    )
    assert first.global_step == 3
    saved = load_checkpoint(first.last_ckpt)
    momentum = [s["momentum_buffer"] for s in saved["optimizer_states"][0]["state"].values()]

    probe = FirstStep()
    changed = {"trainer.max_epochs": 3, "optim.lr": 0.2}
    with caplog.at_level(logging.INFO, logger="octvideo.engine.optim"):
        result = run_train(
            None,
            tiny_overrides(tiny_synth, **fast, **changed),
            out=str(run),
            resume="auto",
            callbacks=[probe],
        )
    assert result.global_step == 9
    want = 0.2 * LRSchedule(OptimConfig(lr=0.2), steps_per_epoch=3, total_steps=9)(3)
    assert want == pytest.approx(0.15)  # not 0.0 (the old schedule's end), not 0.05 (old lr)
    assert probe.first == (3, want)
    logged = _logged_lrs(run / "logs" / "version_1" / "metrics.csv")
    assert logged[0] == (3, pytest.approx(want, rel=1e-6))
    assert all(lr > 0 for _, lr in logged[:-1])
    assert (
        "resumed optimiser settings differ from the config: lr 0.05 -> 0.2, 3 -> 9 steps"
        in caplog.text
    )
    for got, want_buffer in zip(probe.momentum, momentum, strict=True):
        assert torch.equal(got, want_buffer)


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def test_training_steps_reduce_the_loss(tiny_synth, tmp_path):
    # Same 4 clips every step (one batch per epoch, no augmentation): the loss must go down.
    train4 = tmp_path / "train4.txt"
    lines = (tiny_synth / "train.txt").read_text().splitlines()[:4]
    train4.write_text("".join(f"{tiny_synth / line}\n" for line in lines))
    recorder = LossRecorder()
    result = run_train(
        None,
        tiny_overrides(
            tiny_synth,
            **{
                "data.train_list": train4,
                "data.random_flip": False,
                "trainer.max_epochs": 8,
                "optim.schedule": "step",
            },
        ),
        out=str(tmp_path / "run"),
        callbacks=[recorder],
    )
    assert len(recorder.losses) == 8
    assert recorder.losses[-1] < 0.5 * recorder.losses[0]
    assert result.global_step == 8
    run = tmp_path / "run"
    for name in ("config.yaml", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


class LayoutProbe(L.Callback):
    """Records the memory format of the clips the network sees and of its weights."""

    def __init__(self) -> None:
        self.inputs: list[bool] = []
        self.weights: list[bool] = []

    def on_train_start(self, trainer, pl_module) -> None:
        def see(module, args) -> None:
            self.inputs.append(is_channels_last(args[0]))

        pl_module.model.register_forward_pre_hook(see)
        self.weights = [is_channels_last(p) for p in pl_module.model.parameters() if p.dim() == 5]


@pytest.mark.parametrize(("setting", "channels_last"), [("auto", True), ("contiguous", False)])
def test_memory_format_reaches_weights_and_clips(tiny_synth, tmp_path, setting, channels_last):
    # "auto" on CPU: channels-last, where OctConv3d takes its fast path (a training step 0.69-0.89
    # of the contiguous time in BENCHMARKS.md)
    probe = LayoutProbe()
    overrides = {"trainer.max_epochs": 1, "trainer.memory_format": setting}
    run_train(
        None, tiny_overrides(tiny_synth, **overrides), out=str(tmp_path / "run"), callbacks=[probe]
    )
    assert probe.inputs and set(probe.inputs) == {channels_last}
    # the stem's 5x7x7 weight (1x1x1 kernels are both layouts at once)
    assert probe.weights[0] is channels_last


def test_unknown_memory_format_is_a_config_error(tiny_synth, tmp_path):
    with pytest.raises(UsageError, match=r"trainer.memory_format: 'nhwc' is not one of auto"):
        run_train(
            None,
            tiny_overrides(tiny_synth, **{"trainer.memory_format": "nhwc"}),
            out=str(tmp_path / "run"),
        )


@pytest.fixture(scope="module")
def trained(tiny_synth, tmp_path_factory) -> Path:
    """A 2-epoch tiny run through the CLI entry point; returns its run dir."""
    run = tmp_path_factory.mktemp("trained")
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *tiny_overrides(tiny_synth)]
    assert cli.main(args) == 0
    return run


def test_every_record_of_a_run_names_the_precision_it_trained_in(trained):
    """trainer.precision=auto trains in 32-true on a CPU: config.yaml, Lightning's hparams.yaml
    and the checkpoints record 32-true, config.yaml's first line what was asked for."""
    lines = (trained / "config.yaml").read_text().splitlines()
    assert lines[0] == (
        "# trainer.precision=auto was asked for; the run trains in 32-true on this machine, as "
        "trainer.precision below records"
    )
    assert load_config(trained / "config.yaml").trainer.precision == "32-true"
    hparams = yaml.safe_load((trained / "logs" / "version_0" / "hparams.yaml").read_text())
    assert hparams["meta"]["config"]["trainer"]["precision"] == "32-true"
    for name in ("last.ckpt", "best.ckpt"):
        meta = CheckpointMeta.from_checkpoint(load_checkpoint(trained / "checkpoints" / name))
        assert meta.config["trainer"]["precision"] == "32-true"


@pytest.mark.parametrize(("asked", "runs_as"), [("16-mixed", "bf16-mixed"), ("64-true", "64-true")])
def test_resuming_in_another_precision_than_the_run_trained_in_is_refused(
    trained, tiny_synth, tmp_path, asked, runs_as
):
    """16-mixed trains as bf16-mixed on a CPU: said by what it runs as, as 32-true's fix."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth, **{"trainer.precision": asked, "trainer.max_epochs": 3})
    with pytest.raises(UsageError) as err:
        run_train("oct_i3d_synth", overrides, out=str(tmp_path / "run"), resume=str(ckpt))
    said = f'(trainer.precision is "32-true" in the checkpoint, "{runs_as}" in the config)'
    assert said in str(err.value)
    assert 'resume with trainer.precision="32-true", or start a new run' in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_run_config_records_the_precision_that_runs_and_what_was_asked(tiny_synth, tmp_path):
    cfg = load_config(
        "oct_i3d_synth", tiny_overrides(tiny_synth, **{"trainer.precision": "16-mixed"})
    )
    ran = engine_run._with_precision_that_runs(cfg)
    assert ran.trainer.precision == "bf16-mixed" and cfg.trainer.precision == "16-mixed"
    engine_run._save_run_config(ran, tmp_path / "config.yaml", "16-mixed")
    assert (
        (tmp_path / "config.yaml")
        .read_text()
        .startswith(
            "# trainer.precision=16-mixed was asked for; the run trains in bf16-mixed on this "
            "machine, as trainer.precision below records\n"
        )
    )
    assert load_config(tmp_path / "config.yaml").trainer == ran.trainer
    engine_run._save_run_config(ran, tmp_path / "same.yaml", "bf16-mixed")
    assert load_config(tmp_path / "same.yaml").trainer == ran.trainer
    assert not (tmp_path / "same.yaml").read_text().startswith("#")


def test_checkpoint_is_self_describing_and_weights_only(trained):
    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    meta = ckpt["hyper_parameters"]["meta"]
    assert meta["classes"][:2] == ["move_left", "move_right"]
    assert meta["model"]["name"] == "i3d_r18" and meta["model"]["extra"] == {"width": 4}
    assert meta["clip"]["num_frames"] == 4 and meta["normalization"]["mean"] == [0.45] * 3
    assert ckpt["global_step"] == 6  # 12 clips / batch 4 x 2 epochs
    assert {"optimizer_states", "lr_schedulers", "loops"} <= set(ckpt)
    assert (trained / "logs" / "version_0" / "metrics.csv").is_file()


def test_test_command_writes_the_report(trained, capsys):
    ckpt = trained / "checkpoints" / "best.ckpt"
    overrides = tiny_overrides(
        Path(
            load_checkpoint(ckpt)["hyper_parameters"]["meta"]["config"]["data"]["train_list"]
        ).parent
    )
    code = cli.main(
        [
            "test",
            "--cfg",
            str(trained / "config.yaml"),
            "--ckpt",
            str(ckpt),
            "--out",
            str(trained),
            *overrides,
            "test.count_flops=true",
        ]
    )
    assert code == 0
    assert "video top-1" in capsys.readouterr().out
    report = trained / "test"
    summary = json.loads((report / "summary.json").read_text())
    m, protocol = summary["metrics"], summary["protocol"]
    assert (protocol["temporal_clips"], protocol["spatial_crops"], protocol["views"]) == (2, 1, 2)
    assert protocol["crop_size"] == 32 and protocol["gflops"].endswith("x 2 views at 32")
    # the model as built, not as the test left it (channels-last, where a layer that records
    # gradients is one autograd node that fvcore cannot count into)
    cfg = load_config(trained / "config.yaml")
    expected = measure_cost(build_model(cfg.model), cfg.data.num_frames, 32).gflops
    assert protocol["gflops_per_view"] == pytest.approx(expected, rel=1e-3)
    assert protocol["gflops"] == f"{protocol['gflops_per_view']:.4g} x 2 views at 32"
    with (report / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 == m["num_videos"]
    assert m["video_top1"] == pytest.approx(sum(int(r["correct"]) for r in rows) / len(rows))
    assert {int(r["num_views"]) for r in rows} == {2}
    assert (report / "confusion.png").is_file() and (report / "per_class.csv").is_file()
    assert (report / "failed_videos.txt").read_text() == ""


def test_failed_video_is_listed_not_scored(trained, tiny_synth, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"")
    val = tmp_path / "val.txt"
    val.write_text(
        (tiny_synth / "val.txt").read_text().replace("val/", f"{tiny_synth}/val/") + f"{broken} 0\n"
    )
    result = run_test(
        None,
        [*tiny_overrides(tiny_synth), f"data.val_list={val}", "data.root=/"],
        ckpt=trained / "checkpoints" / "last.ckpt",
        out=str(tmp_path / "run"),
    )
    assert result.metrics["num_failed"] == 1 and result.metrics["num_videos"] == 6
    assert result.files["failed"].read_text().startswith(f"{broken}\t")


@pytest.mark.parametrize(
    ("name", "setting", "what"),
    [
        ("failed_videos.txt", "data.test_list", "data.test_list"),
        ("per_class.csv", "data.classes_file", "data.classes_file"),
        ("summary.json", None, "the checkpoint --ckpt"),
    ],
)
def test_a_report_file_that_the_test_reads_is_refused_before_the_evaluation(
    trained, tiny_synth, tmp_path, capsys, name, setting, what
):
    report = tmp_path / "run" / "test"
    report.mkdir(parents=True)
    victim = report / name
    ckpt = trained / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth)
    if setting == "data.test_list":
        victim.write_text(
            (tiny_synth / "val.txt").read_text().replace("val/", f"{tiny_synth}/val/")
        )
        overrides += [f"data.test_list={victim}", "data.root=/"]
    elif setting == "data.classes_file":
        shutil.copy(tiny_synth / "classes.txt", victim)
        overrides += [f"data.classes_file={victim}"]
    else:
        shutil.copy(ckpt, victim)
        ckpt = victim
    before = victim.read_bytes()
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(ckpt), "--out", str(tmp_path / "run")]
    assert cli.main([*args, *overrides]) == 2
    assert capsys.readouterr().err.strip() == (
        f"octvideo test: error: report file {victim} is {what} {victim}: "
        "writing it would destroy it; choose another path"
    )
    assert victim.read_bytes() == before
    assert sorted(report.iterdir()) == [victim]


def test_a_refused_test_leaves_no_report_folder(trained, tiny_synth, tmp_path):
    empty = tmp_path / "test.txt"
    empty.write_text("# only a comment\n")
    overrides = [*tiny_overrides(tiny_synth), f"data.test_list={empty}"]
    with pytest.raises(UsageError, match=f"data: {empty} lists no video that exists"):
        run_test(
            None, overrides, ckpt=trained / "checkpoints" / "last.ckpt", out=str(tmp_path / "run")
        )
    assert sorted(tmp_path.iterdir()) == [empty]  # no run/ or run/test/


def test_a_test_into_a_report_folder_another_test_holds_is_refused(
    trained, tiny_synth, tmp_path, capsys
):
    run, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(run))
    capsys.readouterr()
    earlier = _report(run / "test")
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(ckpt), "--out", str(run)]
    with hold_folder(run / "test", "test"):  # the test going on: this process holds its folder
        assert cli.main([*args, *tiny_overrides(tiny_synth)]) == 2
    assert capsys.readouterr().err == (
        f"octvideo test: error: report folder {run / 'test'} is in use by octvideo test (pid "
        f"{os.getpid()}); wait for it to end, or choose another --out or test.out_dir (nothing "
        "was changed)\n"
    )
    assert _report(run / "test") == earlier


@pytest.mark.parametrize("holder", ["train", "sweep"])
def test_a_test_runs_beside_a_train_or_sweep_writing_its_run_folder(
    trained, tiny_synth, tmp_path, holder
):
    # testing a run's checkpoints while it trains: the run writes no report
    run, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    with hold_folder(run, holder):
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(run))
    assert (run / "test" / "summary.json").is_file()


def test_a_test_into_a_report_folder_another_test_writes_is_refused(trained, tiny_synth, tmp_path):
    report, ckpt = tmp_path / "report", trained / "checkpoints" / "last.ckpt"
    overrides = [*tiny_overrides(tiny_synth), f"test.out_dir={report}"]
    with hold_folder(report, "test"), pytest.raises(UsageError) as info:
        run_test(None, overrides, ckpt=ckpt, out=str(tmp_path / "run"))
    assert str(info.value) == (
        f"report folder {report} is in use by octvideo test (pid {os.getpid()}); wait for it to "
        "end, or choose another --out or test.out_dir (nothing was changed)"
    )
    assert sorted(tmp_path.iterdir()) == []  # the holder's folder, removed as it ended


class HoldersDuringTest(L.Callback):
    """Records, as the first test batch starts, whether a train can take each folder."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self.refused: list[bool] = []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            for folder in self.folders:
                try:
                    with hold_folder(folder, "train"):
                        self.refused.append(False)
                except UsageError as err:
                    self.refused.append("in use by octvideo test" in str(err))


def test_a_running_test_holds_its_report_folder_alone(trained, tiny_synth, tmp_path):
    run, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    seen = HoldersDuringTest(run, run / "test")
    run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(run), callbacks=[seen])
    assert seen.refused == [False, True]
    assert not (run / LOCK_NAME).exists() and not (run / "test" / LOCK_NAME).exists()
    with hold_folder(run, "train"):  # free again once the test ended
        pass


class StopAtTestBatch(L.Callback):
    """As a test batch starts, sends this process SIGTERM or raises KeyboardInterrupt (Ctrl-C)."""

    def __init__(self, batch: int, how: str) -> None:
        self.batch, self.how = batch, how

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx != self.batch:
            return
        if self.how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            raise KeyboardInterrupt


def _report(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("how", "kind", "line", "status"),
    [
        ("sigterm", Terminated, "stopped by SIGTERM after 1 of 3 test batches", 143),
        ("ctrl-c", Interrupted, "stopped by Ctrl-C after 0 of 3 test batches", 130),
    ],
)
def test_a_stopped_test_leaves_no_report_not_even_the_earlier_one(
    trained, tiny_synth, tmp_path, how, kind, line, status
):
    # SIGTERM exited 0 with the earlier summary.json in place, which passed for this test's
    out, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth)  # 6 videos x 2 views, 4 a batch: 3 batches
    run_test(None, overrides, ckpt=ckpt, out=str(out))
    with _sigint_handler_put_back(), pytest.raises(kind) as info:
        run_test(None, overrides, ckpt=ckpt, out=str(out), callbacks=[StopAtTestBatch(0, how)])
    assert str(info.value) == (
        f"{line}; {out / 'test'} holds no report (the earlier one was removed as this test "
        "began); run the test again for one"
    )
    assert info.value.status == status
    assert list((out / "test").iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def _cli_test_stopped_by_sigterm_at_batch_1(trained, tiny_synth, tmp_path, monkeypatch) -> None:
    """Runs ``octvideo test`` of the trained run, which SIGTERM stops as its batch 1 starts,
    and checks it exits 143."""
    real = engine_run.run_test

    def stopped_at_batch_1(*args, **kwargs):
        return real(*args, **kwargs, callbacks=[StopAtTestBatch(1, "sigterm")])

    monkeypatch.setattr(engine_run, "run_test", stopped_at_batch_1)
    ckpt = trained / "checkpoints" / "last.ckpt"
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(ckpt), "--out", str(tmp_path / "run")]
    assert cli.main([*args, *tiny_overrides(tiny_synth)]) == 143


def test_test_stopped_by_sigterm_exits_143(trained, tiny_synth, tmp_path, monkeypatch, capsys):
    _cli_test_stopped_by_sigterm_at_batch_1(trained, tiny_synth, tmp_path, monkeypatch)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("octvideo test: stopped by SIGTERM")


def test_sigterm_in_the_last_test_batch_lets_the_test_finish(trained, tiny_synth, tmp_path):
    ckpt = trained / "checkpoints" / "last.ckpt"
    callbacks = [StopAtTestBatch(2, "sigterm")]
    result = run_test(
        None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(tmp_path), callbacks=callbacks
    )
    assert result.metrics["num_videos"] == 6 and (tmp_path / "test" / "summary.json").is_file()


def test_sigterm_before_the_evaluation_stops_the_test_where_it_is(
    trained, tiny_synth, tmp_path, monkeypatch
):
    # it killed the process without a line: only Lightning's loop answered SIGTERM
    real = engine_run.load_checkpoint

    def told_to_stop(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_run, "load_checkpoint", told_to_stop)
    ckpt = trained / "checkpoints" / "last.ckpt"
    with pytest.raises(Terminated) as info:
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(tmp_path / "run"))
    assert str(info.value) == "stopped by SIGTERM"
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class SigtermOutsideTheLoop(L.Callback):
    """Sends this process SIGTERM from Lightning's ``setup`` hook, before Lightning installs its
    SIGTERM handler, or from its ``teardown`` hook, after it took it away."""

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def setup(self, trainer, pl_module, stage) -> None:
        if self.hook == "setup":
            os.kill(os.getpid(), signal.SIGTERM)

    def teardown(self, trainer, pl_module, stage) -> None:
        if self.hook == "teardown":
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_before_lightnings_loop_stops_the_test_at_its_first_batch(
    trained, tiny_synth, tmp_path, monkeypatch, capsys
):
    # it ended the process by the default action: status -15, no line, the folder left
    real = engine_run.run_test
    monkeypatch.setattr(
        engine_run,
        "run_test",
        lambda *args, **kwargs: real(*args, **kwargs, callbacks=[SigtermOutsideTheLoop("setup")]),
    )
    out, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    args = ["test", "--cfg", "oct_i3d_synth", "--ckpt", str(ckpt), "--out", str(out)]
    assert cli.main([*args, *tiny_overrides(tiny_synth)]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"octvideo test: stopped by SIGTERM after 1 of 3 test batches; {out / 'test'} holds no "
        "report; run the test again for one"
    )
    assert not (out / "test").exists()  # a new folder: nothing is left of the test
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_after_lightnings_loop_stops_the_test_before_its_report(
    trained, tiny_synth, tmp_path
):
    ckpt, callbacks = trained / "checkpoints" / "last.ckpt", [SigtermOutsideTheLoop("teardown")]
    with pytest.raises(Terminated) as info:
        run_test(
            None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(tmp_path), callbacks=callbacks
        )
    assert str(info.value) == "stopped by SIGTERM"
    assert not (tmp_path / "test").exists()  # no report, the folder it made removed
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_before_lightnings_loop_stops_the_training_at_its_first_batch(tiny_synth, tmp_path):
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    with pytest.raises(Terminated) as info:
        run_train(None, overrides, out=str(run), callbacks=[SigtermOutsideTheLoop("setup")])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 1; {last} (global step 1) is kept; continue with "
        "--resume auto"
    )
    assert info.value.status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_callers_own_sigterm_handler_is_left_alone(trained, tiny_synth, tmp_path, monkeypatch):
    seen = []
    real = engine_run.load_checkpoint

    def look(*args, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_run, "load_checkpoint", look)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ckpt = trained / "checkpoints" / "last.ckpt"
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(tmp_path))
        assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_test_replaces_the_whole_earlier_report_and_a_refused_one_keeps_it(
    trained, tiny_synth, tmp_path
):
    out, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth)
    run_test(None, overrides, ckpt=ckpt, out=str(out))
    earlier = _report(out / "test")
    empty = tmp_path / "test.txt"
    empty.write_text("# only a comment\n")
    with pytest.raises(UsageError, match="lists no video"):
        run_test(None, [*overrides, f"data.test_list={empty}"], ckpt=ckpt, out=str(out))
    assert _report(out / "test") == earlier
    # without a confusion matrix, the earlier test's is not left beside the new report
    run_test(None, [*overrides, "test.confusion_matrix=false"], ckpt=ckpt, out=str(out))
    assert "confusion.png" in earlier and "confusion.png" not in _report(out / "test")


def test_test_without_checkpoint_is_an_error(tiny_synth, tmp_path, capsys):
    with pytest.raises(UsageError, match="checkpoint is required"):
        run_test(None, tiny_overrides(tiny_synth), ckpt=None)
    assert cli.main(["test", "--cfg", "oct_i3d_synth", "--ckpt", str(tmp_path / "no.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": Path("x")}, path)
    with pytest.raises(UsageError, match="holds objects other than tensors and plain values"):
        load_checkpoint(path)


def test_crash_during_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"step": torch.tensor(1)}, path)

    def torn_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert int(load_checkpoint(path)["step"]) == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind


class Crash(L.Callback):
    """Kills the run after a given optimiser step, the way a preempted job dies."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError("preempted")


class StateAt(L.Callback):
    """Records step, learning rate and momentum buffers when training starts or at a step."""

    def __init__(self, at_step: int | None = None) -> None:
        self.at_step = at_step
        self.state: dict | None = None

    def _grab(self, trainer) -> None:
        opt = trainer.optimizers[0]
        self.state = {
            "step": trainer.global_step,
            "lr": opt.param_groups[0]["lr"],
            "momentum": [
                opt.state[p]["momentum_buffer"].clone()
                for g in opt.param_groups
                for p in g["params"]
            ],
        }

    def on_train_start(self, trainer, pl_module) -> None:
        if self.at_step is None:
            self._grab(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.at_step == trainer.global_step:
            self._grab(trainer)


def test_resume_continues_at_the_same_step_lr_and_optimiser_state(tiny_synth, tmp_path):
    # 3 epochs x 3 steps; last.ckpt refreshed every 2 steps; the run dies after step 5, so the
    # newest checkpoint is from step 4, in the middle of epoch 2.
    overrides = tiny_overrides(
        tiny_synth,
        **{"trainer.max_epochs": 3, "output.ckpt_every_n_steps": 2, "optim.warmup_epochs": 1},
    )
    reference = StateAt(at_step=4)
    run_train(None, overrides, out=str(tmp_path / "ref"), callbacks=[reference])

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="preempted"):
        run_train(None, overrides, out=str(run), callbacks=[Crash(at_step=5)])
    saved = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 4

    resumed = StateAt()
    result = run_train(None, overrides, out=str(run), resume="auto", callbacks=[resumed])
    assert resumed.state["step"] == 4 == reference.state["step"]
    assert resumed.state["lr"] == pytest.approx(reference.state["lr"], rel=1e-12)
    saved_momentum = [s["momentum_buffer"] for s in saved["optimizer_states"][0]["state"].values()]
    for got, want in zip(resumed.state["momentum"], saved_momentum, strict=True):
        assert torch.equal(got, want)
    for got, want in zip(resumed.state["momentum"], reference.state["momentum"], strict=True):
        torch.testing.assert_close(got, want)
    assert result.global_step == 9


def test_explicit_resume_path_wins_over_auto(tmp_path):
    run = tmp_path / "run"
    atomic_save({}, run / "checkpoints" / "last.ckpt")
    other = atomic_save({}, tmp_path / "other.ckpt")
    assert resolve_resume("auto", run) == run / "checkpoints" / "last.ckpt"
    assert resolve_resume(str(other), run) == other
    assert resolve_resume("auto", tmp_path / "fresh") is None
    assert resolve_resume(None, run) is None
    with pytest.raises(UsageError, match="no such checkpoint"):
        resolve_resume(str(tmp_path / "missing.ckpt"), run)
    with pytest.raises(UsageError, match=r"is a directory; pass a checkpoint file, or continue"):
        resolve_resume(str(run), run)


@pytest.mark.parametrize("kind", NO_FILES)
def test_a_resume_path_that_is_no_file_is_named_for_what_it_is(tmp_path, kind):
    path = tmp_path / "last.ckpt"
    what = make_no_file(path, kind)
    with pytest.raises(UsageError) as err:
        resolve_resume(str(path), tmp_path / "run")
    assert str(err.value) == f"--resume {path} {what}; pass a checkpoint file"


def test_test_and_resume_do_not_need_the_init_weights_any_more(trained, tiny_synth, tmp_path):
    # a fine-tuned run's config names the weights it started from; the checkpoint replaces them
    # in test and resume, which used to fail once that file had been moved
    init = tmp_path / "init.ckpt"
    init.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes())
    run = tmp_path / "finetune"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    run_train(None, [*overrides, f"model.pretrained={init}"], out=str(run))
    init.unlink()
    saved = load_config(run / "config.yaml")
    assert saved.model.pretrained == str(init)
    result = run_test(run / "config.yaml", ckpt=run / "checkpoints" / "best.ckpt", out=str(run))
    assert result.metrics["num_videos"] == 6
    resumed = run_train(run / "config.yaml", ["trainer.max_epochs=2"], out=str(run), resume="auto")
    assert resumed.global_step == 6


def _octvideo(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "octvideo.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_process_cpu_ddp(tiny_synth, tmp_path):
    run = tmp_path / "ddp"
    # Validation: 2 good videos on rank 0, a broken one alone on rank 1 (shares of different
    # sizes, one with no video that decodes: the ranks' collectives used to mismatch).
    good = [line.split() for line in (tiny_synth / "val.txt").read_text().splitlines()[:2]]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    val = tmp_path / "val.txt"
    lines = [f"{tiny_synth / good[0][0]} {good[0][1]}", f"{broken} 0"]
    val.write_text("\n".join([*lines, f"{tiny_synth / good[1][0]} {good[1][1]}", ""]))
    train = tmp_path / "train.txt"
    train.write_text(
        (tiny_synth / "train.txt").read_text().replace("train/", f"{tiny_synth}/train/")
    )
    overrides = tiny_overrides(
        tiny_synth,
        **{
            "trainer.devices": 2,
            "trainer.strategy": "ddp",
            "trainer.max_epochs": 1,
            "trainer.precise_bn_batches": 1,
            "data.batch_size": 2,
            "data.root": "/",
        },
    )
    overrides += [f"data.train_list={train}", f"data.val_list={val}"]
    proc = _octvideo("train", "--cfg", "oct_i3d_synth", "--out", str(run), *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # both ranks read the lists alike: their counts said once, by rank 0
    counts = [line for line in proc.stderr.splitlines() if " videos from " in line]
    assert counts == [
        f"INFO octvideo.data.datamodule: train: 12 videos from {train}",
        f"INFO octvideo.data.datamodule: val: 3 videos from {val}",
    ]
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    assert len(set(replicas["param_sha256"])) == 1  # identical parameters on both ranks
    # 12 clips over 2 ranks x 2 per rank = 3 steps.
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3 == replicas["global_step"]
    # Per-rank batch 2 x 2 ranks = lr_reference_batch 4: the full 0.05 (one rank alone: 0.025).
    assert ckpt["lr_schedulers"][0]["base_lrs"][0] == pytest.approx(0.05)

    # Precise BN: each rank took the first batch of its share of epoch 0; the stored statistics
    # are the moments of both batches together (rank 0's alone would differ).
    state = model_state_dict(ckpt)
    model = build_network(CheckpointMeta.from_checkpoint(ckpt).model)
    model.load_state_dict(state)
    data = load_config("oct_i3d_synth", overrides).data
    dataset = VideoDataModule(data).train_dataloader().dataset
    clips = []
    for rank in (0, 1):
        sampler = EpochSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=data.seed)
        sampler.set_epoch(0)
        first = list(sampler)[: data.batch_size]
        clips.append(torch.stack([dataset[key]["video"] for key in first]))
    both = bn_population_moments(model, clips)  # two batches, each normalised by its own
    alone = bn_population_moments(model, clips[:1])
    norms = [k.removesuffix(".running_mean") for k in state if k.endswith(".running_mean")]
    assert len(norms) == len(both)
    for key, (mean, var) in zip(norms, both, strict=True):
        torch.testing.assert_close(
            state[f"{key}.running_mean"].double(), mean, rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(state[f"{key}.running_var"].double(), var, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(state[f"{norms[0]}.running_mean"].double(), alone[0][0], atol=1e-3)

    # Validation metrics are over both ranks' videos, each video once: the mean loss of the 2
    # good videos (the mean of the ranks' means was 7/6 of it with shares of 4 and 3).
    model.eval()
    dataset = VideoDataModule(data).val_dataloader().dataset
    with torch.no_grad():
        logits = torch.cat([model(dataset[i]["video"][None]) for i in (0, 2)])
    labels = torch.tensor([int(good[0][1]), int(good[1][1])])
    logged = read_metrics(run / "logs" / "version_0" / "metrics.csv")
    assert logged["val/loss"][-1][1] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-4
    )
    assert logged["val/top1"][-1][1] == float((logits.argmax(1) == labels).float().mean())
    assert logged["val/failed"][-1][1] == 1.0

    # Multi-view test on 2 processes (contiguous shares, gathered on rank 0): the report of one
    # process, byte for byte.
    test_overrides = [o for o in overrides if not o.startswith("data.val_list=")]
    test_overrides += [f"data.test_list={tiny_synth / 'val.txt'}", "data.root="]
    last = run / "checkpoints" / "last.ckpt"
    proc = _octvideo(
        "test", "--cfg", "oct_i3d_synth", "--ckpt", str(last), "--out", str(run), *test_overrides
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = run_test(
        "oct_i3d_synth",
        [*test_overrides, "trainer.devices=1", "trainer.strategy=auto"],
        ckpt=last,
        out=str(tmp_path / "one"),
    )
    for name in ("predictions.csv", "failed_videos.txt"):
        assert (run / "test" / name).read_text() == (one.out_dir / name).read_text()
    assert one.metrics["num_views"] == 6 * 2


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


class _EpochLines(logging.Handler):
    """The epoch lines a run logs (``EpochLog``), without their times."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        said = record.getMessage()
        if re.match(r"epoch \d+/\d+: train loss ", said):
            self.lines.append(re.sub(r", \d+:\d\d:\d\d elapsed, .*", "", said))


@contextlib.contextmanager
def _epoch_lines() -> Iterator[list[str]]:
    log, handler = logging.getLogger("octvideo.engine.callbacks"), _EpochLines()
    level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _logged_rows(run: Path, version: int) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv, their empty cells left out."""
    with (run / "logs" / f"version_{version}" / "metrics.csv").open(newline="") as fh:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def _uninterrupted_run(tiny_synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    with _epoch_lines() as lines:
        result = run_train(None, _overrides(tiny_synth), out=str(run))
    return result, lines


@pytest.fixture(scope="module")
def uninterrupted(_uninterrupted_run):
    """A whole run of the fault tests' settings."""
    return _uninterrupted_run[0]


@pytest.fixture(scope="module")
def uninterrupted_lines(_uninterrupted_run) -> list[str]:
    """Its epoch lines, without their times."""
    return _uninterrupted_run[1]


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


def test_a_resume_from_a_file_that_is_no_checkpoint_asks_for_a_runs_checkpoint(
    tiny_synth, tmp_path
):
    from octvideo.engine.checkpoint import WANTED

    path = tmp_path / "list.ckpt"
    torch.save([1, 2], path)
    with pytest.raises(UsageError) as err:
        run_train(None, _overrides(tiny_synth), out=str(tmp_path / "run"), resume=str(path))
    assert f"pass {WANTED['run']}" in str(err.value)


@pytest.mark.parametrize(
    ("change", "said", "fix"),
    [
        (
            "model.dropout=0.3",
            "model.dropout is 0.5 in the checkpoint, 0.3 in the config",
            "model.dropout=0.5",
        ),
        (
            "model.octave=[2,2,2]",
            "model.octave is [1,2,2] in the checkpoint, [2,2,2] in the config",
            "model.octave=[1,2,2]",
        ),
        (  # a key both set: that key alone puts it back
            "model.extra={width: 8}",
            "model.extra.width is 4 in the checkpoint, 8 in the config",
            "model.extra.width=4",
        ),
        ("data.seed=5", "data.seed is 0 in the checkpoint, 5 in the config", "data.seed=0"),
        (
            "data.num_frames=2",
            "data.num_frames is 4 in the checkpoint, 2 in the config",
            "data.num_frames=4",
        ),
        (
            "trainer.seed=3",
            "trainer.seed is 0 in the checkpoint, 3 in the config",
            "trainer.seed=0",
        ),
        (
            "data.decode_short_side=40",
            "data.decode_short_side is null in the checkpoint, 40 in the config",
            "data.decode_short_side=null",
        ),
        (
            "output.monitor=val/top5",
            'output.monitor is "val/top1" in the checkpoint, "val/top5" in the config',
            'output.monitor="val/top1"',
        ),
    ],
)
def test_a_resume_with_another_model_seed_or_clip_than_its_run_is_refused(
    tiny_synth, tmp_path, uninterrupted, change, said, fix
):
    # the weights' shapes fitted (or the shapes were named, not the key): the run went on as
    # another one, its config.yaml and checkpoints calling all of it by the new settings
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    overrides = [*_overrides(tiny_synth), "trainer.max_epochs=4", "optim.lr=0.2", change]
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(run), resume="auto")
    last = run / "checkpoints" / "last.ckpt"
    assert str(err.value) == (
        f"cannot resume from {last} with other settings than its run's ({said}): its weights "
        f"would go on as another run; resume with {fix}, or start a new run from its weights "
        f"with model.pretrained={last} (nothing was changed)"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_resume_on_other_validation_videos_is_refused(tiny_synth, tmp_path, uninterrupted):
    # best.ckpt's score over the run's 6 videos would be compared with scores over 3 of them
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    lines = (tiny_synth / "val.txt").read_text().splitlines()
    fewer = tiny_synth / "val_fewer.txt"  # beside val.txt: its paths resolve alike
    fewer.write_text("\n".join(lines[:3]) + "\n")
    overrides = [*_overrides(tiny_synth), "trainer.max_epochs=4", f"data.val_list={fewer}"]
    with pytest.raises(UsageError) as err:
        run_train(None, overrides, out=str(run), resume="auto")
    last = run / "checkpoints" / "last.ckpt"
    val = tiny_synth / "val.txt"
    assert str(err.value) == (
        f"cannot resume from {last} on other validation videos than its run's (6 videos of "
        f'data.val_list="{val}" there, 3 of data.val_list="{fewer}" here): its scores and '
        f'best.ckpt\'s would be over another set; resume with data.val_list="{val}", or start '
        f"a new run from its weights with model.pretrained={last} (nothing was changed)"
    )
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_resume_on_the_same_validation_videos_listed_elsewhere_passes(
    tiny_synth, tmp_path, uninterrupted
):
    checkpoint = load_checkpoint(uninterrupted.last_ckpt)
    cfg = load_config(None, _overrides(tiny_synth))
    listed = [line.split() for line in (tiny_synth / "val.txt").read_text().splitlines()]
    shutil.copytree(tiny_synth / "val", tmp_path / "elsewhere" / "val")  # the same files
    moved = [(str(tmp_path / "elsewhere" / path), int(label)) for path, label in listed]
    check_same_validation(checkpoint, moved, cfg, uninterrupted.last_ckpt)
    with pytest.raises(UsageError, match=r"\(6 videos of .* there, 6, other ones of "):
        check_same_validation(checkpoint, [*moved[:-1], (moved[0][0], 5)], cfg, "last.ckpt")


def test_no_epoch_left_to_validate_is_warned_about(tiny_synth, tmp_path, finished, caplog):
    caplog.set_level(logging.WARNING, logger="octvideo.engine.module")
    new = tmp_path / "new"
    overrides = tiny_overrides(tiny_synth, **{"trainer.check_val_every_n_epoch": 2})
    result = run_train(None, [*overrides, "trainer.max_epochs=1"], out=str(new))
    assert result.best_ckpt is None
    assert (
        "trainer.check_val_every_n_epoch=2 validates no epoch of trainer.max_epochs=1: the run "
        "logs no validation metric and writes no best.ckpt; set "
        "trainer.check_val_every_n_epoch to at most 1, or trainer.max_epochs to 2"
    ) in caplog.messages
    caplog.clear()
    run = tmp_path / "run"  # one epoch trained and validated
    shutil.copytree(finished, run)
    every3 = tiny_overrides(tiny_synth, **{"trainer.check_val_every_n_epoch": 3})
    run_train(None, [*every3, "trainer.max_epochs=2"], out=str(run), resume="auto")
    assert caplog.messages == [
        "trainer.check_val_every_n_epoch=3 validates no epoch of the 1 left (2-2 of "
        "trainer.max_epochs=2): the run logs no validation metric and writes no new best.ckpt; "
        "set trainer.check_val_every_n_epoch to at most 1, or trainer.max_epochs to 3"
    ]
    caplog.clear()
    run_train(None, [*every3, "trainer.max_epochs=3"], out=str(run), resume="auto")
    assert caplog.messages == []  # epoch 3 validates


def test_a_resume_may_name_other_starting_weights(tiny_synth, uninterrupted):
    """A fine-tune run started with model.pretrained=P resumes with or without it: a resume
    takes every weight from its checkpoint, not from P."""
    checkpoint = load_checkpoint(uninterrupted.last_ckpt)
    for change in ("model.pretrained=elsewhere/pre.ckpt", "model.pretrained_kind=pytorchvideo"):
        cfg = load_config(None, [*_overrides(tiny_synth), change])
        check_same_run(checkpoint, cfg, uninterrupted.last_ckpt)


def test_a_resume_takes_an_empty_mapping_for_the_keys_it_does_not_set(tiny_synth, uninterrupted):
    # model.extra {width: 4} there, {} here: the leaf "model.extra" ({} here, absent there) is no
    # difference of its own, model.extra.width is
    checkpoint = load_checkpoint(uninterrupted.last_ckpt)
    cfg = load_config(None, [*_overrides(tiny_synth), "model.extra={}"])
    with pytest.raises(UsageError) as err:
        check_same_run(checkpoint, cfg, "last.ckpt")
    assert str(err.value).startswith(
        "cannot resume from last.ckpt with other settings than its run's (model.extra.width is "
        "4 in the checkpoint, unset in the config): its weights would go on as another run; "
        "resume with model.extra.width=4, or "
    )


def test_a_checkpoint_without_metadata_resumes_on_the_configs_settings(tiny_synth):
    cfg = load_config(None, tiny_overrides(tiny_synth))
    check_same_run({"state_dict": {}}, cfg, "bare.ckpt")  # nothing recorded to compare


def test_a_resume_refused_for_an_empty_validation_list_keeps_the_runs_config(
    tiny_synth, tmp_path, uninterrupted
):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    empty = tmp_path / "val.txt"
    empty.write_text("# only a comment\n")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    extra = {"data.val_list": empty, "optim.lr": 0.7, "trainer.max_epochs": 4}
    with pytest.raises(UsageError, match=f"data: {empty} lists no video that exists"):
        overrides = [*_overrides(tiny_synth), *(f"{k}={v}" for k, v in extra.items())]
        run_train(None, overrides, out=str(run), resume="auto")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # config.yaml keeps the config that ran


def test_a_resume_may_read_the_runs_own_config_yaml(tiny_synth, tmp_path, uninterrupted):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run)
    result = run_train(run / "config.yaml", ["trainer.max_epochs=4"], out=str(run), resume="auto")
    assert result.run_dir == run and result.global_step == 12
    assert load_config(run / "config.yaml").trainer.max_epochs == 4


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


@pytest.mark.parametrize("resume", [[], ["--resume", "auto"]])
def test_a_train_into_a_run_folder_another_command_holds_is_refused(
    tiny_synth, tmp_path, capsys, resume
):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"the other run's")
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run), *resume]
    with hold_folder(run, "train"):  # the run going on: this process holds its folder
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        assert cli.main([*args, *_overrides(tiny_synth)]) == 2
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert capsys.readouterr().err == (
        f"octvideo train: error: run folder {run} is in use by octvideo train (pid "
        f"{os.getpid()}); wait for it to end, or choose another --out (nothing was changed)\n"
    )
    assert not (run / LOCK_NAME).exists()  # the holder's, removed as it ended


@pytest.mark.parametrize(
    ("env", "rank", "writes"),
    [({}, 0, True), ({"NODE_RANK": "1"}, 0, False), ({}, 1, False), ({"NODE_RANK": "0"}, 0, True)],
)
def test_only_the_process_that_writes_a_run_folder_holds_it(monkeypatch, env, rank, writes):
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    monkeypatch.delenv("NODE_RANK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(rank_zero_only, "rank", rank)
    assert writes_run_folder() is writes


def test_a_ddp_process_of_another_rank_trains_in_the_folder_its_rank_zero_holds(
    tiny_synth, tmp_path, monkeypatch
):
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.ckpt").write_bytes(b"x")
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    with hold_folder(run, "train"), pytest.raises(UsageError, match="already holds a run"):
        run_train(None, _overrides(tiny_synth), out=str(run))  # past the lock, to the checks


class SigtermDuring(L.Callback):
    """Sends this process SIGTERM as the batch of a given global step starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_writes_a_checkpoint_and_resume_gives_the_same_weights(
    tiny_synth, tmp_path, uninterrupted, reference, uninterrupted_lines
):
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    with (
        _epoch_lines() as lines,
        pytest.raises(Terminated) as info,  # SIGTERM during step 5's batch (checkpoints: 2, 4)
    ):
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(4)])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 5; {last} (global step 5) is kept; continue with "
        "--resume auto"
    )
    assert info.value.status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # Lightning's handler is gone
    with _epoch_lines() as resumed:
        result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)
    # epoch 2's training loss and top-1 over all its batches, the 2 before the stop included
    assert lines + resumed == uninterrupted_lines
    assert _logged_rows(run, 0) + _logged_rows(run, 1) == _logged_rows(uninterrupted.run_dir, 0)


class SigtermAfterTraining(L.Callback):
    """Sends this process SIGTERM (or ``signum``) after the run's last training step: as that
    step ends, during the last epoch's validation (as it starts, after its first batch, as it
    ends) or at that epoch's end, as training ends (under Lightning's
    own handler), as the fit ends or in its teardown (after Lightning took its handler away,
    before the logs are finalised), or as the command computes its result."""

    def __init__(self, hook: str, signum: int = signal.SIGTERM) -> None:
        self.hook = hook
        self.signum = signum
        self.sent = False

    def _stop(self, hook: str, trainer) -> None:
        last = trainer.global_step >= trainer.estimated_stepping_batches
        if hook == self.hook and last and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, *args) -> None:
        self._stop("last_step", trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._stop("on_validation_start", trainer)

    def on_validation_batch_end(self, trainer, *args) -> None:
        self._stop("on_validation_batch_end", trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._stop("on_validation_end", trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop("on_train_epoch_end", trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop("on_train_end", trainer)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._stop("on_fit_end", trainer)

    def teardown(self, trainer, pl_module, stage) -> None:
        self._stop("teardown", trainer)


# from the last training step to the end of the last epoch's validation: SIGTERM ended the run in
# its loop ("continue with --resume auto") without curves.png and replicas.json, last.ckpt at the
# epoch's end, so the resume found nothing to train and wrote nothing; Ctrl-C left only last.ckpt
FINAL_VALIDATION = (
    "last_step",
    "on_validation_start",
    "on_validation_batch_end",
    "on_validation_end",
    "on_train_epoch_end",
)


@pytest.mark.parametrize(
    ("hook", "signum"),
    [
        *((hook, signal.SIGTERM) for hook in ("on_train_end", "on_fit_end", "teardown", "result")),
        *((hook, signal.SIGINT) for hook in ("on_train_end", "teardown", "result")),
        *((hook, sig) for hook in FINAL_VALIDATION for sig in (signal.SIGTERM, signal.SIGINT)),
    ],
)
def test_a_stop_after_the_last_step_lets_the_run_finish_and_says_so(
    tiny_synth, tmp_path, monkeypatch, hook, signum
):
    # SIGTERM in on_train_end was lost (the run ended as finished, status 0); in the others it
    # ended with "stopped by SIGTERM" alone, not saying that the run had finished and its
    # checkpoints were kept. Ctrl-C ended the fit at once, curves.png and replicas.json unwritten,
    # with "stopped by Ctrl-C at global step 3; ...; continue with --resume auto", which a resume
    # then answered with nothing to train.
    stop = SigtermAfterTraining(hook, signum)
    own = engine_run._train_callbacks  # the stop first: before curves.png and replicas.json
    monkeypatch.setattr(engine_run, "_train_callbacks", lambda *a: [stop, *own(*a)])
    if hook == "result":
        result = engine_run._result

        def stopped_result(*args, **kwargs):
            os.kill(os.getpid(), signum)
            return result(*args, **kwargs)

        monkeypatch.setattr(engine_run, "_result", stopped_result)
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
    with _sigint_handler_put_back(), pytest.raises(Interrupted) as info:
        run_train(None, overrides, out=str(run))
    ckpts = run / "checkpoints"
    cause = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert str(info.value) == (
        f"stopped by {cause} after the run finished at global step 3, its files written: "
        f"{ckpts / 'last.ckpt'} (global step 3) is kept, and so is {ckpts / 'best.ckpt'}"
    )
    assert isinstance(info.value, Terminated) is (signum == signal.SIGTERM)
    assert info.value.status == 128 + signum
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    # every file whole, none left half-written
    assert load_checkpoint(ckpts / "last.ckpt")["global_step"] == 3
    assert load_checkpoint(ckpts / "best.ckpt")["global_step"] == 3
    assert json.loads((run / "replicas.json").read_text())["global_step"] == 3
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert read_metrics(run / "logs" / "version_0" / "metrics.csv")["val/top1"]
    for path in (ckpts / "last.ckpt", run / "replicas.json", run / "curves.png"):
        assert not temporaries(path)


def _skipped_videos(run: Path, version: int) -> list[tuple[int, float]]:
    return read_metrics(run / "logs" / f"version_{version}" / "metrics.csv")["data/skipped_videos"]


def test_a_resume_mid_epoch_counts_the_bad_videos_stepped_over_before_the_stop(
    tiny_synth, tmp_path
):
    # half the training list is missing: each process's count of the epoch's skips so far goes
    # into last.ckpt, and the resumed epoch logs the uninterrupted run's data/skipped_videos
    listed = (tiny_synth / "train.txt").read_text().splitlines(True)
    listing = tmp_path / "half_bad.txt"
    listing.write_text(
        "".join(f"missing{i}.mp4 0\n" if i % 2 else line for i, line in enumerate(listed))
    )
    overrides = _fast(
        tiny_synth,
        **{"data.train_list": listing, "data.root": tiny_synth, "trainer.max_epochs": 1},
    )
    whole = run_train(None, overrides, out=str(tmp_path / "whole")).run_dir
    run = tmp_path / "run"
    with pytest.raises(Terminated):  # after batch 2 of 3, so over 8 of the 12 items: 2 bad or more
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(1)])
    carried = load_checkpoint(run / "checkpoints" / "last.ckpt")["train_epoch_skipped_videos"]
    assert carried[0] >= 2
    run_train(None, overrides, out=str(run), resume="auto")
    assert _skipped_videos(run, 1) == _skipped_videos(whole, 0)
    assert _skipped_videos(whole, 0)[0][1] >= 6  # each of the 6 missing videos once, at least


def test_sigterm_in_the_last_step_keeps_it_for_the_last_validation(tiny_synth, tmp_path, reference):
    # a last.ckpt written after step 9's batch would resume as a finished run that never
    # validated its last epoch; the one written as that validation starts resumes with it
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    with pytest.raises(Terminated) as info:
        run_train(None, overrides, out=str(run), callbacks=[SigtermDuring(8)])
    last = run / "checkpoints" / "last.ckpt"
    assert str(info.value) == (
        f"stopped by SIGTERM at global step 9; {last} (global step 9) is kept; continue with "
        "--resume auto"
    )
    assert validation_under_way(load_checkpoint(last))
    seen = Seen()
    result = run_train(None, overrides, out=str(run), resume="auto", callbacks=[seen])
    assert seen.batches == [] and seen.validated == [2]
    _assert_same_run(result, reference)


class StopInValidation(L.Callback):
    """As the first validation batch of a given epoch starts: sends this process SIGTERM,
    raises KeyboardInterrupt (Ctrl-C) or crashes, as a killed job leaves its files."""

    def __init__(self, epoch: int, how: str) -> None:
        self.epoch, self.how = epoch, how

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        if trainer.sanity_checking or trainer.current_epoch != self.epoch or batch_idx != 0:
            return
        if self.how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.how == "ctrl-c":
            raise KeyboardInterrupt
        else:
            raise RuntimeError("preempted")


class Seen(L.Callback):
    """The training batches ``(epoch, batch)`` and the validated epochs of a run, in order."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []
        self.validated: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append((trainer.current_epoch, batch_idx))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validated.append(trainer.current_epoch)


@pytest.mark.parametrize(
    ("epoch", "how"),
    # (2: the last epoch, where a SIGTERM or Ctrl-C is held: FINAL_VALIDATION)
    [(1, "sigterm"), (0, "ctrl-c"), (1, "crash"), (2, "crash")],
)
# the carried training metrics count as updated: torchmetrics warns of one computed without
@pytest.mark.filterwarnings("error:The ``compute`` method of metric:UserWarning")
def test_a_stop_during_validation_keeps_the_epoch_and_the_resume_validates_it_first(
    tiny_synth, tmp_path, uninterrupted, reference, uninterrupted_lines, caplog, epoch, how
):
    # no checkpoint was written from the end of an epoch's training to the end of its
    # validation: a stop there lost the epoch, which the resumed run trained again
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    stopped = {"sigterm": Terminated, "ctrl-c": Interrupted, "crash": RuntimeError}[how]
    with _epoch_lines() as lines, _sigint_handler_put_back(), pytest.raises(stopped) as info:
        run_train(None, overrides, out=str(run), callbacks=[StopInValidation(epoch, how)])
    last = run / "checkpoints" / "last.ckpt"
    step = 3 * (epoch + 1)  # all the epoch's steps
    if how != "crash":
        cause = "SIGTERM" if how == "sigterm" else "Ctrl-C"
        assert str(info.value) == (
            f"stopped by {cause} at global step {step}; {last} (global step {step}) is kept; "
            "continue with --resume auto"
        )
    kept = load_checkpoint(last)
    assert kept["global_step"] == step and not temporaries(last)
    assert validation_under_way(kept) and epochs_done(kept) == epoch
    caplog.set_level(logging.INFO, logger="octvideo.engine.run")
    seen = Seen()
    with _epoch_lines() as resumed:
        result = run_train(None, overrides, out=str(run), resume="auto", callbacks=[seen])
    # the stopped validation again, whole, then exactly the epochs left
    assert seen.validated == list(range(epoch, 3))
    assert seen.batches == [(e, b) for e in range(epoch + 1, 3) for b in range(3)]
    said = f"epoch {epoch + 1}/3: the run stopped during its validation, after its training; "
    assert said + "validating it now, then training goes on" in caplog.messages
    _assert_same_run(result, reference)
    end = load_checkpoint(result.last_ckpt)
    assert epochs_done(end) == 3 and not validation_under_way(end)
    # what the uninterrupted run logged from that epoch's validation on, at the same steps: its
    # validation, so the same best.ckpt, and the epoch's training loss and top-1, which the
    # checkpoint carried (the resumed run trained none of that epoch)
    assert lines + resumed == uninterrupted_lines
    assert _logged_rows(run, 0) + _logged_rows(run, 1) == _logged_rows(uninterrupted.run_dir, 0)
    best, want_best = load_checkpoint(result.best_ckpt), load_checkpoint(uninterrupted.best_ckpt)
    assert best["global_step"] == want_best["global_step"]
    got, expected = model_state_dict(best), model_state_dict(want_best)
    assert [k for k in expected if not torch.equal(got[k], expected[k])] == []


def test_sigkill_during_the_write_before_a_validation_keeps_the_previous_checkpoint(
    tiny_synth, tmp_path, reference
):
    run = tmp_path / "run"
    overrides = _overrides(tiny_synth)
    _train_and_die(run, overrides, "ckpt-write", 3)  # step 3's first: as validation starts
    last = run / "checkpoints" / "last.ckpt"
    assert temporaries(last), "the kill should have left the half-written temporary file"
    assert load_checkpoint(last)["global_step"] == 2
    result = run_train(None, overrides, out=str(run), resume="auto")
    _assert_same_run(result, reference)
    assert not temporaries(last)


def test_sigterm_inside_an_accumulation_window_keeps_the_checkpoint_before_it(tiny_synth, tmp_path):
    # a checkpoint there lacked the window's accumulated gradient: the resumed run differed
    overrides = [*_overrides(tiny_synth), "trainer.accumulate_grad_batches=2"]
    want = run_train(None, overrides, out=str(tmp_path / "ref"))  # 3 batches, 2 steps an epoch
    run = tmp_path / "run"
    with pytest.raises(Terminated) as info:  # during epoch 1's first batch: no step after it
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
    with _sigint_handler_put_back(), pytest.raises(Interrupted) as info:
        run_train(None, _overrides(tiny_synth), out=str(run), callbacks=[InterruptAt(5)])
    assert str(info.value) == (
        f"stopped by Ctrl-C at global step 5; {run / 'checkpoints' / 'last.ckpt'} "
        "(global step 4) is kept; continue with --resume auto"
    )
    assert not isinstance(info.value, Terminated) and info.value.status == 130


@pytest.mark.parametrize(
    ("callback", "status", "line"),
    [
        (InterruptAt(2), 130, "stopped by Ctrl-C"),
        (SigtermDuring(2), 143, "stopped by SIGTERM"),
        (SigtermAfterTraining("on_train_end"), 143, "stopped by SIGTERM after the run finished"),
        (
            SigtermAfterTraining("on_validation_batch_end"),
            143,
            "stopped by SIGTERM after the run finished",
        ),
        (
            SigtermAfterTraining("teardown", signal.SIGHUP),
            143,
            "stopped by SIGTERM after the run finished",
        ),
        (
            SigtermAfterTraining("on_train_end", signal.SIGINT),
            130,
            "stopped by Ctrl-C after the run finished",
        ),
    ],
)
def test_train_stopped_by_ctrl_c_or_sigterm_exits_130_or_143(
    tiny_synth, tmp_path, monkeypatch, capsys, callback, status, line
):
    # both were "octvideo train: stopped: stopped by ...", exit status 1
    own = engine_run._train_callbacks
    monkeypatch.setattr(engine_run, "_train_callbacks", lambda *a: [*own(*a), callback])
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run")]
    with _sigint_handler_put_back():
        assert cli.main([*args, *_overrides(tiny_synth)]) == status
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"octvideo train: {line}")


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
    assert err == (
        f"octvideo test: error: output folder {blocker / 'report'}: {blocker} is a file, not a "
        "folder; choose another with --out or test.out_dir"
    )
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
    with pytest.raises(CheckpointWriteError) as info:
        run_train(None, overrides, out=str(run))
    message = str(info.value)
    assert "No space left on device" in message and "\n" not in message
    assert f"{run / 'checkpoints' / 'last.ckpt'} (global step 3) is kept" in message
    # the failed write's fields, as every OutputWriteError has them
    stopped = info.value
    assert (stopped.path, stopped.errno) == (run / "checkpoints" / "last.ckpt", errno.ENOSPC)
    assert write_failure(stopped) == "No space left on device" and stopped.existed
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
    assert err == (
        f"octvideo train: error: output folder {blocker / 'run' / 'checkpoints'}: {blocker} is a "
        "file, not a folder; choose another with --out or output.dir"
    )
    assert blocker.read_text() == "not a folder"


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
    with pytest.raises(UsageError) as err:
        run_train(None, _fast(tiny_synth), out=str(run))
    assert str(err.value) == (
        f"output folder {run / 'checkpoints'}: cannot write in {run / 'checkpoints'} (Permission "
        "denied); choose another with --out or output.dir"
    )


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
            "data.slowfast_alpha=4 but model.name=slowfast_r50 is built with slowfast_alpha=8",
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
            assert ": ResNet3D-50 takes (B, C, T, H, W) clips of 2 or more frames" in err
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
        "octvideo train: error: trainer.accelerator=gpu: no such device on this machine "
    )
    assert "\n" not in err and not run.exists()  # refused as the config loads


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
        "weights there (docs/training.md, 'ImageNet init', says how), set "
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


@pytest.mark.parametrize("command", ["train", "test"])
def test_an_open_file_limit_too_low_for_the_data_loaders_workers_is_refused_writing_nothing(
    tiny_synth, tmp_path, monkeypatch, command
):
    # under `ulimit -n 20` the loader hung for ever, its workers logging EMFILE at 9 MB/s
    fake_open_file_limit(monkeypatch, soft=20, hard=20)
    overrides = tiny_overrides(tiny_synth, **{"data.num_workers": 2})
    before = _files(tmp_path)
    run = str(tmp_path / "runs" / "refused")
    line = (
        "the open-file limit 20 is too low for 2 workers (data.num_workers 2); raise `ulimit -n` "
        "to at least 56 or use fewer workers"
    )
    with pytest.raises(ConfigError, match=re.escape(line)):
        if command == "train":
            run_train(None, overrides, out=run)
        else:
            run_test(None, overrides, ckpt=str(tmp_path / "missing.ckpt"), out=run)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("where", ["here", "decoding here", "in a worker", "decoding in a worker"])
def test_running_out_of_open_files_in_the_loop_stops_naming_the_limit_not_a_video(
    tmp_path, monkeypatch, where
):
    # a worker's decoder out of files reached the loop rebuilt by PyTorch, and was worded as
    # "this command ran out of open files"
    fake_open_file_limit(monkeypatch, soft=64, hard=64)
    what = "a data-loader worker" if where.endswith("in a worker") else "this command"
    with (
        pytest.raises(RunStopped) as caught,
        engine_run._data_faults(None, tmp_path / "last.ckpt"),
    ):
        if where.startswith("decoding"):
            try:
                raise OutOfOpenFiles(errno.EMFILE, "Too many open files", "a.mp4")
            except OutOfOpenFiles:
                if where == "decoding here":
                    raise
                wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
            wrapper.reraise()
        if where == "in a worker":
            pid = os.fork()
            if pid == 0:
                try:
                    sys.excepthook(OSError, OSError(errno.EMFILE, "Too many open files"), None)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            raise RuntimeError("DataLoader worker (pid(s) 1) exited unexpectedly")
        raise OSError(errno.EMFILE, "Too many open files")
    assert str(caught.value).startswith(
        f"{what} ran out of open files (the open-file limit is 64); raise `ulimit -n` or use "
        "fewer workers; "
    )


def test_test_of_an_imported_checkpoint_whose_logits_overflow_says_import_it_anew(
    trained, tiny_synth, tmp_path
):
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["state_dict"]
    weights = [k for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    state[weights[-1]].fill_(3e38)  # finite weights; the pooled features after a ReLU are not
    # negative, so the logits pass float32's largest value
    checkpoint["hyper_parameters"]["meta"]["source"] = {"file": "SLOW_8x8_R50.pyth"}
    ckpt = tmp_path / "imported.ckpt"
    torch.save(checkpoint, ckpt)
    with pytest.raises(CheckpointError) as info:
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(tmp_path / "run"))
    assert str(info.value).endswith(": get 'SLOW_8x8_R50.pyth' again and import it anew")


@pytest.mark.parametrize(("name", "alpha"), [("i3d_nl_r50", 0.0), ("i3d_r18", 0.25)])
def test_test_counts_gflops_per_view_as_the_models_command(name, alpha) -> None:
    """The summary's GFLOPs per view are ``octvideo models``' count (convolutions and classifier,
    the README's), the Non-local attention products apart as its ``+attn`` column; batch norm and
    attention in the view's count made it 0.4% to 10% more than what every other command says."""
    overrides = [f"model.name={name}", f"model.alpha={alpha}", "data.num_frames=4"]
    overrides += ["data.test_short_side=64", "data.test_crop_size=64", "test.count_flops=true"]
    cfg = load_config(None, overrides)
    protocol = engine_run._test_protocol(cfg, "x.ckpt", build_model(cfg.model))
    row = cost_table([name], frames=4, size=64, alpha=alpha)[0]
    assert protocol["gflops_per_view"] == float(f"{row['gflops']:.4g}")
    assert protocol["attention_gflops_per_view"] == float(f"{row['attention_gflops']:.4g}")
    assert (protocol["attention_gflops_per_view"] > 0) == (name == "i3d_nl_r50")
    assert protocol["gflops"] == f"{protocol['gflops_per_view']:.4g} x 30 views at 64"


def test_a_run_or_report_folder_in_a_folder_read_as_data_is_refused_writing_nothing(
    tiny_synth, tmp_path
):
    """A run folder among the class folders would be read as a class by the next command
    reading the data: a resume or a test of the run failed, and the advice of that failure was
    to delete the run's folder."""
    data = tmp_path / "data"
    for split in ("train", "val"):
        shutil.copytree(tiny_synth / split, data / split)
    folders = tiny_overrides(tiny_synth, **{"data.train_list": data / "train"})
    folders += [f"data.val_list={data / 'val'}"]
    tail = "the next command reading the data would read what is written there with it"
    cases = [
        (folders, data / "train", "run folder", "", "the class folders of data.train_list"),
        (folders, data / "val" / "a" / "b", "run folder", f"inside {data / 'val'}, ", "the "),
        (folders, data / "val", "report folder", f"inside {data / 'val'}, ", "the class "),
    ]
    before = _files(tmp_path)
    for overrides, out, name, where, what in cases:
        with pytest.raises(UsageError) as caught:
            if name == "run folder":
                run_train(None, overrides, out=str(out))
            else:
                run_test(None, overrides, ckpt=str(tmp_path / "any.ckpt"), out=str(out))
        folder, also = (out, "") if name == "run folder" else (out / "test", " or test.out_dir")
        assert str(caught.value).startswith(f"{name} {folder} is {where}{what}")
        assert str(caught.value).endswith(
            f": {tail}; choose another --out{also} (nothing was changed)"
        )
    assert _files(tmp_path) == before


@pytest.mark.parametrize("name", ["config.yaml", "replicas.json", "curves.png"])
@pytest.mark.parametrize("checkpoints", [False, True])
def test_a_new_run_refuses_a_file_it_would_replace_that_no_run_wrote(
    tiny_synth, tmp_path, name, checkpoints
):
    # --out . in a project folder, which may well hold a checkpoints/ folder of its own
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_bytes(b"my notes\n")
    if checkpoints:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "model_v1.pt").write_bytes(b"mine\n")
    before = _files(tmp_path)
    for resume in (None, "auto"):  # auto without a last.ckpt starts a new run
        with pytest.raises(UsageError) as caught:
            run_train(None, tiny_overrides(tiny_synth), out=str(run), resume=resume)
        assert str(caught.value) == (
            f"{run} holds {name}, which a new run would replace, but no .octvideo-run, which "
            "every run writes there first: it is not an earlier run's; move it away, or choose "
            "another --out (nothing was changed)"
        )
        assert _files(tmp_path) == before and (run / name).read_bytes() == b"my notes\n"


def test_a_new_run_replaces_the_files_of_an_earlier_run_of_its_folder(tiny_synth, tmp_path):
    """A run's folder is known by the mark it writes first, also once its checkpoints are
    deleted to start it over; a folder of a run before the mark, by its config.yaml naming it."""
    run = tmp_path / "run"
    run_train(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1}), out=str(run))
    assert (run / ".octvideo-run").is_file()
    shutil.rmtree(run / "checkpoints")  # starting it over
    result = run_train(None, tiny_overrides(tiny_synth, **{"trainer.max_epochs": 2}), out=str(run))
    assert result.last_ckpt.is_file()
    assert load_config(run / "config.yaml").trainer.max_epochs == 2
    for named, accepted in ((run, True), (tmp_path / "elsewhere", False)):
        shutil.rmtree(run)
        run.mkdir()
        earlier = load_config(None, [*tiny_overrides(tiny_synth), f"output.dir={named}"])
        save_config(earlier, run / "config.yaml")  # no mark: written before there was one
        overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
        if accepted:
            assert run_train(None, overrides, out=str(run)).last_ckpt.is_file()
            assert load_config(run / "config.yaml").trainer.max_epochs == 1
        else:
            with pytest.raises(UsageError, match=r"holds config\.yaml, which a new run would"):
                run_train(None, overrides, out=str(run))


def test_a_test_in_another_network_than_trained_is_refused_naming_the_keys(
    trained, tiny_synth, tmp_path
):
    """An octave or a flag that keeps the weights' shapes loads them into another network,
    whose scores the report would give as the checkpoint's; dropout (off in evaluation) and
    zero_init_final_bn (only the initial weights) change nothing tested."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(tiny_synth)
    other = [*overrides, "model.octave=[2,2,2]", "model.extra={width: 4, temporal_pool: false}"]
    with pytest.raises(UsageError) as caught:
        run_test(None, other, ckpt=str(ckpt), out=str(tmp_path / "refused"))
    assert str(caught.value) == (
        f"checkpoint {ckpt} was trained as another network than the config builds "
        "(model.octave is [1,2,2] in the checkpoint, [2,2,2] in the config; "
        "model.extra.temporal_pool is unset in the checkpoint, false in the config): its weights "
        "would be scored in a network they were not trained in; test with model.octave=[1,2,2] "
        'model.extra={"width":4}, or with the --cfg of its run folder '
        "(config.yaml)"
    )
    assert not (tmp_path / "refused").exists()
    # an extra key set to its model's default builds the same network
    extra = "model.extra={width: 4, zero_init_final_bn: true, temporal_pool: true}"
    same = [*overrides, "model.dropout=0.3", extra]
    result = run_test(None, same, ckpt=str(ckpt), out=str(tmp_path / "ok"))
    assert result.metrics["num_videos"] == 6


@pytest.mark.parametrize("summary", [None, b"{}", b"\xff not json"])
def test_a_test_refuses_report_files_no_test_wrote(trained, tiny_synth, tmp_path, summary):
    """A test removes the earlier report as it begins: files of that name beside no summary of
    a test (which it writes last) are someone's own, and kept."""
    report = tmp_path / "mine"
    report.mkdir()
    (report / "predictions.csv").write_bytes(b"my predictions\n")
    if summary is not None:
        (report / "summary.json").write_bytes(summary)
    before = {p: p.read_bytes() for p in report.iterdir()}
    ckpt = trained / "checkpoints" / "last.ckpt"
    overrides = [*tiny_overrides(tiny_synth), f"test.out_dir={report}"]
    with pytest.raises(UsageError) as caught:
        run_test(None, overrides, ckpt=str(ckpt), out=str(tmp_path / "run"))
    first = "summary.json" if summary is not None else "predictions.csv"
    assert str(caught.value) == (
        f"report folder {report} holds {first}, which a test would replace, but no "
        ".octvideo-test, which every test writes there first: it is not an earlier test's "
        "report; move it away, or choose another --out or test.out_dir (nothing was changed)"
    )
    assert {p: p.read_bytes() for p in report.iterdir()} == before
    assert not (tmp_path / "run").exists()


def test_a_train_and_its_ctrl_c_show_none_of_lightnings_noise(
    tiny_synth, tmp_path, monkeypatch, capsys, caplog
):
    # Lightning's litlogger tip on every run, its Ctrl-C line before octvideo's own, and the
    # LeafSpec deprecation warning its pytree code raises (pytest takes the log records and
    # the warnings that would go to stderr: they are caught here)
    import warnings

    own = engine_run._train_callbacks
    monkeypatch.setattr(engine_run, "_train_callbacks", lambda *a: [*own(*a), InterruptAt(2)])
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run")]
    with _sigint_handler_put_back(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main([*args, *_overrides(tiny_synth)]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("octvideo train: stopped by Ctrl-C")
    logged = [r.getMessage() for r in caplog.records]
    assert "GPU available: False, used: False" in logged  # Lightning's other lines are kept
    shown = [err, *logged, *(str(w.message) for w in caught)]
    for noise in ("litlogger", "Detected KeyboardInterrupt", "LeafSpec"):
        assert not [text for text in shown if noise in text], noise


def test_a_test_and_its_sigterm_show_none_of_lightnings_noise(
    trained, tiny_synth, tmp_path, monkeypatch, capsys, caplog
):
    # Lightning's tips, whatever they advertise (a test's is litmodels'), and its "[rank: 0]
    # Received SIGTERM: 15" before octvideo's own stop line
    _cli_test_stopped_by_sigterm_at_batch_1(trained, tiny_synth, tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("octvideo test: stopped by SIGTERM")
    logged = [r.getMessage() for r in caplog.records]
    assert "GPU available: False, used: False" in logged  # Lightning's other lines are kept
    for noise in ("Tip:", "litmodels", "Received SIGTERM"):
        assert not [text for text in [err, *logged] if noise in text], noise


def test_a_test_stopped_as_it_writes_its_report_leaves_none_and_a_killed_one_reruns(
    trained, tiny_synth, tmp_path, monkeypatch
):
    """Ctrl-C as the report is written removes what was written; a test killed there (nothing
    removed) leaves its own files beside its mark, which the next test replaces. Both were
    refused as files no test wrote, and a continued study failed the point."""
    from octvideo.engine import evaluate

    out, ckpt = tmp_path / "run", trained / "checkpoints" / "last.ckpt"
    report = out / "test"

    def stop(*args, **kwargs):  # after predictions.csv, per_class.csv and failed_videos.txt
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "plot_confusion", stop)
    with pytest.raises(KeyboardInterrupt):
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(out))
    assert not report.exists()  # no report, and no folder the test made
    monkeypatch.setattr(engine_run, "_forget_report", lambda out_dir: None)  # as by a kill -9
    with pytest.raises(KeyboardInterrupt):
        run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(out))
    assert sorted(p.name for p in report.iterdir()) == [
        ".octvideo-test",
        "failed_videos.txt",
        "per_class.csv",
        "predictions.csv",
    ]
    monkeypatch.undo()
    result = run_test(None, tiny_overrides(tiny_synth), ckpt=ckpt, out=str(out))
    assert result.metrics["num_videos"] == 6 and (report / "summary.json").is_file()


def test_a_run_and_a_report_beside_a_kinetics_csv_are_accepted(
    trained, tiny_synth, tmp_path, monkeypatch
):
    """A Kinetics CSV's video root is searched only for files named like its rows' videos, which
    a run folder or a report never holds: the CSV in the working folder refused every --out."""
    with (tiny_synth / "val.txt").open() as fh:
        rows = [line.split() for line in fh if line.strip()]
    classes = (tiny_synth / "classes.txt").read_text().split()
    (tmp_path / "videos").mkdir()
    with (tmp_path / "val.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        for i, (path, label) in enumerate(rows):
            shutil.copy(tiny_synth / path, tmp_path / "videos" / f"v{i}_000000_000010.mp4")
            writer.writerow([classes[int(label)], f"v{i}", 0, 10, "val"])
    monkeypatch.chdir(tmp_path)
    overrides = [*tiny_overrides(tiny_synth), "data.test_list=val.csv"]
    result = run_test(None, overrides, ckpt=trained / "checkpoints" / "last.ckpt", out="runs/x")
    assert result.metrics["num_videos"] == 6
    assert (tmp_path / "runs" / "x" / "test" / "summary.json").is_file()
    cfg = load_config(None, [*overrides, "data.train_list=val.csv"])
    assert engine_run.data_folders(cfg).find("runs/y") is None  # train's and sweep's check


def test_an_imported_checkpoints_other_network_names_the_config_of_its_import(
    trained, tiny_synth, tmp_path
):
    checkpoint = load_checkpoint(trained / "checkpoints" / "last.ckpt")
    checkpoint["hyper_parameters"]["meta"]["source"] = {
        "from": "pytorchvideo",
        "file": "I3D_8x8_R50.pyth",
        "sha256": "0" * 64,
    }
    ckpt = tmp_path / "imp.ckpt"
    torch.save(checkpoint, ckpt)
    other = [*tiny_overrides(tiny_synth), "model.octave=[2,2,2]"]
    with pytest.raises(UsageError) as caught:
        run_test(None, other, ckpt=str(ckpt), out=str(tmp_path / "refused"))
    assert str(caught.value).endswith(
        f"; test with model.octave=[1,2,2], or with the --cfg its import wrote beside it "
        f"({tmp_path / 'imp.yaml'})"
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("sign", engine_run.EARLIER_RUN_FILES)
def test_a_run_folder_from_before_the_mark_is_known_once_moved(tiny_synth, tmp_path, sign):
    """A run of octvideo before the mark, stopped before its first checkpoint, whose folder was
    moved (its output.dir, relative to its working folder, names another): its logs say it is a
    run's, so a new run replaces its config.yaml."""
    run = tmp_path / "moved"
    earlier = load_config(None, [*tiny_overrides(tiny_synth), "output.dir=runs/run"])
    save_config(earlier, run / "config.yaml")
    (run / "checkpoints").mkdir()
    assert not engine_run.is_run_folder(run)  # a config naming another folder, alone
    _write(run / sign.replace("*", "0"), "{}\n")
    assert engine_run.is_run_folder(run)
    if sign.startswith("logs/"):
        overrides = tiny_overrides(tiny_synth, **{"trainer.max_epochs": 1})
        assert run_train(None, overrides, out=str(run)).last_ckpt.is_file()
        assert load_config(run / "config.yaml").trainer.max_epochs == 1


@pytest.mark.parametrize("mine", ["# project settings\nlr: 3\n", "model:\n  name: i3d_r18\n"])
def test_a_users_config_beside_run_like_folders_is_not_a_runs(tiny_synth, tmp_path, mine):
    """Notes, or a recipe naming the folder (a run writes every section), beside a checkpoints/
    and logs/ of the user's own: refused, the file kept."""
    run = tmp_path / "project"
    _write(run / "config.yaml", f"{mine}output:\n  dir: {run}\n")
    _write(run / "checkpoints" / "model_v1.pt", "mine\n")
    _write(run / "logs" / "version_0" / "hparams.yaml", "lr: 3\n")
    before = _files(tmp_path)
    assert not engine_run.is_run_folder(run)
    with pytest.raises(UsageError, match=r"holds config\.yaml, which a new run would replace"):
        run_train(None, tiny_overrides(tiny_synth), out=str(run))
    assert _files(tmp_path) == before


def test_an_epoch_shorter_than_the_logging_interval_is_no_warning():
    # "The number of training batches (3) is smaller than the logging interval
    # Trainer(log_every_n_steps=5)" at every tiny run: the interval counts the run's steps, not
    # an epoch's. Lightning's other warnings are left as they are.
    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    short = (
        "The number of training batches (3) is smaller than the logging interval "
        "Trainer(log_every_n_steps=5). Set a lower value for log_every_n_steps if you want to "
        "see logs for the training epoch."
    )
    other = "The 'train_dataloader' does not have many workers which may be a bottleneck."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine_run._quiet_lightning()
        for message in (short, other):
            warnings.warn(message, PossibleUserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [other]
