"""``run_train``'s order and its resume targets: every check before the first file or folder (a
refused run leaves nothing behind, not even a classes file), a finished run resumed into another
folder is refused, a run resumed there as a branch reports that folder's checkpoints, --out is a
path, never YAML, and test and resume refuse a checkpoint whose metadata does not read; the
checkpoint records ``data.target_fps`` and test refuses another one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from octvideo import cli
from octvideo.checkpoint_meta import ADVICE, CheckpointMeta
from octvideo.config import load_config
from octvideo.engine.build import build_model
from octvideo.engine.checkpoint import atomic_save
from octvideo.engine.run import check_same_clips, checkpoint_meta, run_train
from octvideo.errors import ConfigError, UsageError
from tests.engine.conftest import NUM_CLASSES, tiny_overrides


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"model.num_classes": NUM_CLASSES + 1}, "model.num_classes=7 but the data has 6"),
        ({"trainer.sync_batchnorm": "true"}, "trainer.sync_batchnorm=true needs GPUs"),
        ({"model.num_classes": 100001}, "model.num_classes=100001 is over the limit"),
        ({"model.extra": "{width: 100000}"}, "parameters, over the limit"),
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


def test_a_missing_classes_file_is_written_only_by_a_run_that_starts(tiny_synth, tmp_path):
    classes = tmp_path / "classes.txt"
    settings = {"data.classes_file": classes, "trainer.max_epochs": 1}
    wrong = tiny_overrides(tiny_synth, **settings, **{"model.num_classes": NUM_CLASSES + 1})
    with pytest.raises(ConfigError, match="model.num_classes=7 but the data has 6"):
        run_train(None, wrong, out=str(tmp_path / "run"))
    assert not classes.exists()
    run_train(None, tiny_overrides(tiny_synth, **settings), out=str(tmp_path / "run"))
    assert classes.read_text().splitlines() == [str(i) for i in range(NUM_CLASSES)]  # labels


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
    train = ["train", "--cfg", "oct_i3d_synth.yaml", "--resume"]
    assert cli.main([*train, str(last), "--out", str(new), *overrides]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith(f"octvideo train: error: checkpoint {last} has trained all 1 epochs")
    assert f"model.pretrained={last}" in line
    assert not new.exists()
    # in its own folder there is nothing to train either: it names the checkpoints it has
    assert cli.main([*train, "auto", "--out", str(finished), *overrides]) == 0
    out = capsys.readouterr().out
    assert f"last checkpoint: {last.resolve()}" in out
    assert f"best checkpoint: {(finished / 'checkpoints' / 'best.ckpt').resolve()}" in out


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
    meta = checkpoint_meta(cfg, classes)
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
        f"checkpoint {str(path)!r} metadata clip.num_frames is '4' (str), not a whole number of 1 "
        f"or more; {ADVICE}"
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
    meta = checkpoint_meta(trained, ["a", "b"])
    assert CheckpointMeta.from_dict(meta).clip.target_fps == 30.0
    unset = {**meta, "clip": {**meta["clip"]} | {"target_fps": None}}
    assert CheckpointMeta.from_dict(unset).clip.target_fps is None
    checkpoint = {"hyper_parameters": {"meta": meta}}
    check_same_clips(checkpoint, trained, "x.ckpt")  # the same: no error
    with pytest.raises(UsageError, match=r"data.target_fps=None here, 30.0 in training"):
        check_same_clips(checkpoint, load_config(None, []), "x.ckpt")
