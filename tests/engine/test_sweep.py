"""The study command: grid parsing, its bound on runs, resuming (refused for another config,
overrides or point in a folder), failed points, the table's aggregation and its files (never
through a symbolic link), on made-up run folders and a recording runner (no training)."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from octvideo.config import load_config, save_config
from octvideo.engine import sweep
from octvideo.engine.sweep import (
    GridAxis,
    Measured,
    Point,
    collect,
    expand,
    parse_grid,
    run_folder,
    run_study,
    split_groups,
)
from octvideo.engine.sweep_report import CSV_COLUMNS, MEASURED_COLUMNS
from octvideo.errors import RunFailed, RunStopped, UsageError
from octvideo.paths import hold_folder
from tests.engine.conftest import tiny_overrides

CFG = "oct_i3d_synth.yaml"


# ------------------------------------------------------------------------------------ the grid


def test_grid_values_split_at_top_level_commas():
    assert parse_grid("model.alpha=0,0.125, 0.25") == GridAxis(
        "model.alpha", ("0", "0.125", "0.25")
    )
    assert parse_grid("model.octave=[1,2,2],[2,2,2]").values == ("[1,2,2]", "[2,2,2]")
    assert parse_grid("model.name=i3d_r18,c2d_r18").values == ("i3d_r18", "c2d_r18")
    assert parse_grid("model.extra={width: 8, depth: 2},{}").values == (
        "{width: 8, depth: 2}",
        "{}",
    )


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("model.alpha", "is not KEY=V1,V2"),
        ("=0,1", "is not KEY=V1,V2"),
        ("model.alpha=", "empty value"),
        ("model.alpha=0,,0.5", "empty value"),
        ("model.alpha=0,0.5,", "empty value"),
        ("model.octave=[1,2,2", "unbalanced"),
        ("model.octave=1,2,2]", "unbalanced"),
        ("model.alpha=0,0.5,0", "lists 0 more than once"),
        ("model.octave=[1,2,2],[1, 2, 2.0]", "lists \\[1,2,2\\] and \\[1, 2, 2.0\\], which"),
        ("model.extra={width: 8},{'width': 8}", "lists {width: 8} and {'width': 8}, which"),
        ("trainer.seed=0,1", "the study sets trainer.seed itself"),
        ("output.dir=a,b", "the study sets output.dir itself"),
        ("trainer={seed: 3}", "the study sets trainer.seed itself"),
        ("output={dir: a},{name: b}", "the study sets output.dir itself"),
    ],
)
def test_bad_grid_spec_is_one_line_usage_error(spec, match):
    with pytest.raises(UsageError, match=match) as err:
        parse_grid(spec)
    assert "\n" not in str(err.value)


def test_grid_values_are_compared_as_the_runs_read_them():
    with pytest.raises(UsageError) as err:  # trained two identical points, alpha-0 and alpha-0.0
        parse_grid("model.alpha=0,0.0")
    assert str(err.value) == (
        "--grid model.alpha lists 0 and 0.0, which are the same value; give it once"
    )
    # values the runs read differently stay two points
    assert parse_grid("trainer.deterministic=true,1").values == ("true", "1")
    assert parse_grid("model.extra.tag='0',0").values == ("'0'", "0")
    assert parse_grid("model.alpha=.nan,0").values == (".nan", "0")


def test_groups_are_products_joined_in_order():
    groups = split_groups(
        ["model.alpha=0,0.25", "model.octave=[1,2,2],[2,2,2]", None, "model.alpha=0.5"]
    )
    points = expand(groups)
    assert [p.overrides for p in points] == [
        ["model.alpha=0", "model.octave=[1,2,2]"],
        ["model.alpha=0", "model.octave=[2,2,2]"],
        ["model.alpha=0.25", "model.octave=[1,2,2]"],
        ["model.alpha=0.25", "model.octave=[2,2,2]"],
        ["model.alpha=0.5"],
    ]
    assert points[1].name == "alpha-0_octave-2-2-2"
    assert points[1].label == "alpha=0 octave=[2,2,2]"


def test_same_key_twice_in_a_group_and_dangling_plus_are_refused():
    with pytest.raises(UsageError, match="both set model.alpha in one group"):
        expand(split_groups(["model.alpha=0", "model.alpha=0.5"]))
    with pytest.raises(UsageError, match="--plus needs --grid options on both sides"):
        split_groups(["model.alpha=0", None])


@pytest.mark.parametrize(
    ("first", "second", "key"),
    [  # each pair trained every point at the second's value, under the first's labels
        ("model.alpha=0.5,0.25", "model={alpha: 0.125}", "model.alpha"),
        ("model.extra.width=8,16", "model.extra={width: 4}", "model.extra.width"),
        ("model.extra.width=8,16", "model={extra: {}}", "model.extra.width"),
        ("model={extra: {width: 4}}", "model.extra={}", "model.extra"),
        ("model={alpha: 0.5},{dropout: 0.1}", "model.dropout=0.2", "model.dropout"),
    ],
)
def test_two_grids_of_a_group_that_set_one_key_in_any_spelling_are_refused(first, second, key):
    with pytest.raises(UsageError) as err:
        expand(split_groups([first, second]))
    assert str(err.value) == (
        f"--grid {first} and --grid {second} both set {key} in one group; give its values in "
        "one --grid, or start another group with --plus"
    )


def test_grids_of_a_group_that_set_apart_make_a_product():
    groups = split_groups(["model={alpha: 0.5}", "model.extra.width=4", "model.dropout=0,0.1"])
    assert [p.overrides for p in expand(groups)] == [
        ["model={alpha: 0.5}", "model.extra.width=4", "model.dropout=0"],
        ["model={alpha: 0.5}", "model.extra.width=4", "model.dropout=0.1"],
    ]


def test_points_that_would_share_a_folder_are_refused_with_advice_that_applies_to_files():
    # "write their values the same way" could not be followed for two different files
    with pytest.raises(UsageError) as info:
        expand([[GridAxis("data.val_list", ("data/val.txt", "data_val.txt"))]])
    assert str(info.value) == (
        "grid points 'val_list=data/val.txt' and 'val_list=data_val.txt' would share the folder "
        "val_list-data-val.txt (a folder name keeps only the letters, digits and . + - of a "
        "value); give one of them a value that differs in those: for a file, a link to it or a "
        "copy of it under another name"
    )


_SEED_SET = r"the study sets trainer\.seed itself \(seeds from --seeds, folders from --out\)$"


@pytest.mark.parametrize(
    ("grid", "overrides", "match"),
    [
        ("model.alpah=0,0.5", [], "--grid model.alpah: every value is refused.*alpha"),
        ("model.alpha=0,0.5", ["trainer.seed=3"], f"^override trainer.seed: {_SEED_SET}"),
        ("model.alpha=0,0.5", ["trainer={seed: 3}"], f"^override trainer: {_SEED_SET}"),
    ],
)
def test_a_misspelt_grid_key_or_an_override_the_study_sets_is_refused_before_any_run(
    tmp_path, grid, overrides, match
):
    calls = []
    with pytest.raises(UsageError, match=match):
        run_study(
            CFG,
            [[parse_grid(grid)]],
            seeds=1,
            out=tmp_path,
            runner=lambda *a: calls.append(a),
            measure=False,
            overrides=overrides,
        )
    assert calls == []


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"seeds": 0}, "--seeds 0: give 1 to 1000"),
        ({"seeds": 10**9}, "--seeds 1000000000: give 1 to 1000"),
        ({"repeats": 1001}, "--time-repeats 1001: give 0 to 1000"),
        ({"batch": 1025}, "--bench-batch 1025: give 1 to 1024"),
        ({"seeds": 2.5}, "--seeds 2.5: give 1 to 1000"),
        ({"seeds": True}, "--seeds True: give 1 to 1000"),
        ({"jobs": 0}, "--jobs 0: give 1 to 1024"),
    ],
)
def test_counts_past_their_bounds_are_refused_before_the_plan_is_written(tmp_path, counts, message):
    calls = []
    kwargs = {"seeds": 1, **counts}
    with pytest.raises(UsageError) as err:
        run_study(
            CFG,
            [[parse_grid("model.alpha=0,0.5")]],
            out=tmp_path / "study",
            runner=lambda *a: calls.append(a),
            **kwargs,
        )
    assert str(err.value) == message
    assert calls == [] and not (tmp_path / "study").exists()


def test_a_study_of_more_runs_than_the_bound_is_refused_before_the_grid_is_expanded(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sweep, "expand", lambda groups: pytest.fail("the grid was expanded"))
    values = ",".join(str(i) for i in range(300))
    groups = split_groups([f"data.seed={values}", f"trainer.max_epochs={values}"])
    with pytest.raises(UsageError) as err:
        run_study(CFG, groups, seeds=2, out=tmp_path / "study", runner=Recorder(), measure=False)
    assert str(err.value) == (
        f"--grid and --seeds make 180000 runs (90000 points x 2 seed(s)), more than "
        f"{sweep.MAX_RUNS}; give fewer values, or split the study over several --out"
    )
    assert not (tmp_path / "study").exists()


def test_points_shared_by_groups_come_once_in_grid_order():
    groups = split_groups(["model.alpha=0,0.5", None, "model.alpha=0.25,0,0.5"])
    assert [p.name for p in expand(groups)] == ["alpha-0", "alpha-0.5", "alpha-0.25"]


def test_a_point_another_group_sets_in_another_spelling_or_order_comes_once():
    groups = split_groups(
        [
            "model.alpha=0,0.5",
            "model.octave=[1,2,2]",
            None,
            "model.octave=[1, 2, 2]",
            "model.alpha=0.0,0.25",
        ]
    )
    assert [p.label for p in expand(groups)] == [
        "alpha=0 octave=[1,2,2]",
        "alpha=0.5 octave=[1,2,2]",
        "octave=[1, 2, 2] alpha=0.25",
    ]


def test_a_point_another_group_sets_through_a_section_mapping_comes_once():
    groups = split_groups(
        [
            "model.alpha=0.5",
            "model.dropout=0.1",
            None,
            "model={dropout: 0.1, alpha: .5},{alpha: 0.25}",
            None,
            "model.extra={width: 4}",
            None,
            "model={extra: {width: 4}}",
            "model.alpha=0.25",
            None,
            "model.extra.width=4",  # sets width alone: not the whole model.extra above
        ]
    )
    assert [p.label for p in expand(groups)] == [
        "alpha=0.5 dropout=0.1",
        "model={alpha: 0.25}",
        "extra={width: 4}",
        "model={extra: {width: 4}} alpha=0.25",
        "width=4",
    ]


# ------------------------------------------------------------------------------------ the runs


def _finish(run_dir: Path, video: float, clip: float, mca: float) -> None:
    """A made-up finished run: its test summary."""
    (run_dir / "test").mkdir(parents=True, exist_ok=True)
    metrics = {"video_top1": video, "clip_top1": clip, "mean_class_accuracy": mca}
    (run_dir / "test" / "summary.json").write_text(json.dumps({"metrics": metrics}))


class Recorder:
    """A runner that records its calls and finishes each run with made-up accuracies; points
    named in ``fail`` raise RunFailed instead."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[list[str], Path]] = []
        self.fail = fail

    def __call__(self, cfg, overrides, run_dir: Path) -> None:
        self.calls.append((list(overrides), run_dir))
        if any(f in overrides for f in self.fail):
            raise RunFailed("octvideo train: stopped: loss is NaN at step 3")
        _finish(run_dir, 0.5, 0.4, 0.45)


def _clock() -> itertools.count:
    ticks = itertools.count(0.0, 10.0)  # every call 10 s after the one before
    return lambda: next(ticks)


def _study(out: Path, runner, grid="model.alpha=0,0.25,0.5", seeds=2):
    return run_study(
        CFG,
        [[parse_grid(grid)]],
        seeds=seeds,
        out=out,
        runner=runner,
        measure=False,
        clock=_clock(),
    )


def test_each_point_and_seed_runs_once_in_its_own_folder(tmp_path):
    runner = Recorder()
    _study(tmp_path, runner)
    folders = [d.relative_to(tmp_path).as_posix() for _, d in runner.calls]
    assert folders == [
        "alpha-0/seed0",
        "alpha-0.25/seed0",
        "alpha-0.5/seed0",
        "alpha-0/seed1",
        "alpha-0.25/seed1",
        "alpha-0.5/seed1",
    ]
    overrides = runner.calls[4][0]
    assert overrides[-2:] == ["model.alpha=0.25", "trainer.seed=1"]


def test_the_log_counts_runs_over_all_points_and_seeds(tmp_path, caplog):
    _finish(run_folder(tmp_path, Point((("model.alpha", "0"),)), 0), 0.9, 0.8, 0.85)
    with caplog.at_level(logging.INFO, logger="octvideo.engine.sweep"):
        _study(tmp_path, Recorder(), grid="model.alpha=0,0.5")
    started = [r.getMessage() for r in caplog.records if " run " in r.getMessage()]
    assert [m.split(":")[0] for m in started] == [
        "[alpha=0.5, seed 0] run 2 of 4",
        "[alpha=0, seed 1] run 3 of 4",
        "[alpha=0.5, seed 1] run 4 of 4",
    ]


def test_started_again_a_study_skips_finished_runs(tmp_path):
    point = Point((("model.alpha", "0.25"),))
    _finish(run_folder(tmp_path, point, 0), 0.9, 0.8, 0.85)  # finished before the "kill"
    (run_folder(tmp_path, point, 1) / "checkpoints").mkdir(parents=True)  # killed mid-training
    runner = Recorder()
    result = _study(tmp_path, runner)
    ran = [d.relative_to(tmp_path).as_posix() for _, d in runner.calls]
    assert "alpha-0.25/seed0" not in ran and "alpha-0.25/seed1" in ran
    assert len(ran) == 5
    again = Recorder()
    _study(tmp_path, again)
    assert again.calls == []  # everything finished: nothing runs
    row = next(r for r in result.rows if r["folder"] == "alpha-0.25")
    assert row["video_top1_max"] == pytest.approx(0.9)


def test_a_failed_point_is_reported_and_the_others_go_on(tmp_path):
    runner = Recorder(fail=("model.alpha=0.25",))
    result = _study(tmp_path, runner, grid="model.alpha=0,0.25,0.5,1.5", seeds=1)
    status = {r["folder"]: r["status"] for r in result.rows}
    assert status["alpha-0"] == status["alpha-0.5"] == "ok"
    assert status["alpha-0.25"] == "failed: seed 0: octvideo train: stopped: loss is NaN at step 3"
    # a value the config refuses never runs; its one-line reason is in the table
    assert status["alpha-1.5"].startswith("failed: seed 0: model.alpha must be a number in [0, 1)")
    assert [d.name for _, d in runner.calls] == ["seed0"] * 3
    table = (tmp_path / "study.md").read_text()
    assert "loss is NaN at step 3" in table and "alpha=0.5" in table
    # the failed point runs again when the study is started again (a crash may not recur)
    again = Recorder()
    _study(tmp_path, again, grid="model.alpha=0,0.25,0.5,1.5", seeds=1)
    assert [d.parent.name for _, d in again.calls] == ["alpha-0.25"]


def test_a_study_started_again_with_another_config_or_overrides_is_refused(tmp_path):
    out = tmp_path / "study"
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, seeds=1, out=out, runner=Recorder(), measure=False)
    plan = (out / "plan.json").read_bytes()
    runner = Recorder()
    with pytest.raises(UsageError) as err:
        run_study(
            CFG, grid, seeds=1, out=out, runner=runner, measure=False, overrides=["optim.lr=0.9"]
        )
    lr = load_config(CFG).optim.lr
    assert str(err.value) == (
        f"--out {out} holds a study of other runs (optim.lr={lr} there, 0.9 here); choose "
        "another --out, or continue it with the config and overrides of its plan.json"
    )
    other = save_config(load_config(CFG, ["trainer.max_epochs=7"]), tmp_path / "other.yaml")
    epochs = load_config(CFG).trainer.max_epochs
    with pytest.raises(UsageError, match=f"trainer.max_epochs={epochs} there, 7 here"):
        run_study(str(other), grid, seeds=1, out=out, runner=runner, measure=False)
    assert runner.calls == [] and (out / "plan.json").read_bytes() == plan
    # the same config from another path, and the study grown by a point and a seed, continue
    same = save_config(load_config(CFG), tmp_path / "same.yaml")
    grown = [[parse_grid("model.alpha=0,0.5,0.25")]]
    run_study(str(same), grown, seeds=2, out=out, runner=runner, measure=False)
    assert len(runner.calls) == 3 * 2 - 2


class CheckpointRecorder(Recorder):
    """A ``Recorder`` that says which checkpoint it tests, as ``SubprocessRunner`` does."""

    def __init__(self, ckpt: str) -> None:
        super().__init__()
        self.ckpt = ckpt


def test_a_study_started_again_with_another_tested_checkpoint_is_refused(tmp_path):
    out = tmp_path / "study"
    study = {"seeds": 1, "out": out, "measure": False}
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, runner=CheckpointRecorder("last"), **study)
    plan = (out / "plan.json").read_bytes()
    assert json.loads(plan)["ckpt"] == "last"
    runner = CheckpointRecorder("best")
    with pytest.raises(UsageError) as err:
        run_study(CFG, grid, runner=runner, **study)
    assert str(err.value) == (
        f"--out {out} holds a study of other runs (runs tested with --ckpt last there, best "
        "here); choose another --out, or continue it with the config, overrides and --ckpt of "
        "its plan.json"
    )
    assert runner.calls == [] and (out / "plan.json").read_bytes() == plan
    same = CheckpointRecorder("last")
    run_study(CFG, grid, runner=same, **{**study, "seeds": 2})  # the same --ckpt continues
    assert len(same.calls) == 2  # the second seed of each point


def test_a_plan_that_records_no_tested_checkpoint_is_compared_as_before(tmp_path):
    out = tmp_path / "study"
    study = {"seeds": 1, "out": out, "measure": False}
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, runner=Recorder(), **study)  # a plan.json without "ckpt"
    assert "ckpt" not in json.loads((out / "plan.json").read_text())
    runner = CheckpointRecorder("best")
    run_study(CFG, grid, runner=runner, **study)
    assert runner.calls == [] and json.loads((out / "plan.json").read_text())["ckpt"] == "best"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", None),  # not JSON: json's own reason
        ("[]", "no resolved base config"),
        (
            json.dumps({"config": CFG, "overrides": [], "points": [], "seeds": 1}),
            "no resolved base config",
        ),
    ],
)
def test_a_plan_json_that_is_not_a_studys_plan_is_refused(tmp_path, content, reason):
    out = tmp_path / "study"
    out.mkdir()
    (out / "plan.json").write_text(content)
    runner = Recorder()
    grid = [[parse_grid("model.alpha=0")]]
    with pytest.raises(UsageError) as err:
        run_study(CFG, grid, seeds=1, out=out, runner=runner, measure=False)
    line = str(err.value)
    assert line.startswith(f"--out {out}: its plan.json is not a study's plan (")
    assert line.endswith("); choose another --out")
    assert reason is None or f"({reason})" in line
    assert runner.calls == [] and (out / "plan.json").read_text() == content


def test_a_run_folder_that_another_point_would_share_is_refused(tmp_path):
    out = tmp_path / "study"
    study = {"seeds": 1, "out": out, "measure": False}
    run_study(CFG, [[parse_grid("model.extra={width: 4}")]], runner=Recorder(), **study)
    runner = Recorder()
    with pytest.raises(UsageError) as err:
        run_study(CFG, [[parse_grid('model.extra={"width": 4}')]], runner=runner, **study)
    assert (
        'folder extra-width-4 holds model.extra={width: 4} there, model.extra={"width": 4} here'
        in (str(err.value))
    )
    assert runner.calls == []


def test_a_symbolic_link_at_a_study_file_is_refused_before_any_run(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.md").symlink_to(victim)
    runner = Recorder()
    with pytest.raises(
        UsageError, match=f"^the study's file {out / 'study.md'} is a symbolic link"
    ):
        _study(out, runner, seeds=1)
    assert runner.calls == [] and victim.read_text() == "victim data\n"


def test_a_runs_log_is_never_appended_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("victim data\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "sweep.log").symlink_to(victim)
    with pytest.raises(RunFailed, match="sweep.log is a symbolic link; remove it"):
        sweep.SubprocessRunner()(CFG, [], run_dir)
    assert victim.read_text() == "victim data\n"


class FullDisk(Recorder):
    """Finishes its first ``room`` runs, then cannot create a run folder: the disk is full."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def __call__(self, cfg, overrides, run_dir: Path) -> None:
        if len(self.calls) == self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir))
        super().__call__(cfg, overrides, run_dir)


def test_a_study_into_an_out_another_sweep_writes_is_refused_before_it_writes(tmp_path):
    out = tmp_path / "study"
    _study(out, Recorder(), seeds=1)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    runner = Recorder()
    with hold_folder(out, "sweep"), pytest.raises(UsageError) as caught:  # the other sweep
        _study(out, runner, seeds=2)
    assert str(caught.value) == (
        f"--out {out} is in use by octvideo sweep (pid {os.getpid()}); wait for it to end, or "
        "choose another --out (nothing was changed)"
    )
    assert runner.calls == []
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_out_not_utf8_is_refused_before_any_run(tmp_path):
    """Every run's train would refuse it (Lightning's logs take only UTF-8), after the plan."""
    out = tmp_path / os.fsdecode(b"s\xff")
    runner = Recorder()
    with pytest.raises(UsageError) as caught:
        _study(out, runner, seeds=1)
    assert str(caught.value) == (
        f"--out {str(out)!r}: its name is not UTF-8 text, which the run's logs (Lightning's "
        "hparams.yaml, TensorBoard) cannot take; choose another --out name"
    )
    assert runner.calls == [] and os.listdir(tmp_path) == []


def test_an_out_where_the_plan_cannot_be_written_is_a_usage_error(tmp_path):
    (tmp_path / "plan.json").mkdir()  # a folder where the study's plan goes
    with pytest.raises(UsageError) as caught:
        _study(tmp_path, Recorder(), seeds=1)
    assert str(caught.value) == (
        f"the study's file {tmp_path / 'plan.json'} is a folder; give a file name"
    )


def test_a_full_disk_stops_the_study_in_one_line_and_keeps_the_finished_runs(tmp_path):
    with pytest.raises(RunStopped) as caught:
        _study(tmp_path, FullDisk(room=2), seeds=1)
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'alpha-0.5' / 'seed0'} (No space left on device); the "
        "finished runs are kept: free space and run the same command again to continue"
    )
    again = Recorder()
    _study(tmp_path, again, seeds=1)
    assert [d.parent.name for _, d in again.calls] == ["alpha-0.5"]


def test_runs_side_by_side_meet_report_failures_and_keep_the_order(tmp_path):
    together = threading.Barrier(2)

    class SideBySide(Recorder):
        def __init__(self, fail: tuple[str, ...]) -> None:
            super().__init__(fail)
            self.lock = threading.Lock()
            self.started = 0

        def __call__(self, cfg, overrides, run_dir: Path) -> None:
            with self.lock:  # counted under a lock: which runs are the first two is not a race
                self.started += 1
                first_two = self.started <= 2
            if first_two:  # the first two runs must be running at the same time
                together.wait(timeout=60)
            super().__call__(cfg, overrides, run_dir)

    runner = SideBySide(fail=("model.alpha=0.25",))
    grid = "model.alpha=0,0.25,0.5,1.5"
    result = run_study(
        CFG, [[parse_grid(grid)]], seeds=2, out=tmp_path, runner=runner, measure=False, jobs=2
    )
    ran = [d.relative_to(tmp_path).as_posix() for _, d in runner.calls]
    assert sorted(ran) == sorted(f"alpha-{a}/seed{s}" for a in ("0", "0.25", "0.5") for s in (0, 1))
    status = {r["folder"]: r["status"] for r in result.rows}
    assert status["alpha-0"] == status["alpha-0.5"] == "ok"
    assert status["alpha-0.25"].startswith("failed: seed 0: octvideo train: stopped: loss is NaN")
    assert status["alpha-1.5"].startswith("failed: seed 0: model.alpha must be a number")
    records = [(r.point, r.seed) for r in result.records]
    assert records == [
        (p, s) for s in (0, 1) for p in ("alpha-0", "alpha-0.25", "alpha-0.5", "alpha-1.5")
    ]


def test_a_stopped_side_by_side_study_stops_every_run_and_records_none(tmp_path, monkeypatch):
    class Blocking:
        """Each run waits until the study stops it; the second run to start stops the study."""

        def __init__(self) -> None:
            self.calls: list[Path] = []
            self.released = threading.Event()
            self.stopped = False

        def __call__(self, cfg, overrides, run_dir: Path) -> None:
            self.calls.append(run_dir)
            if len(self.calls) == 2:
                os.kill(os.getpid(), signal.SIGUSR1)  # handled in the main thread
            self.released.wait(timeout=60)
            raise RunFailed("octvideo train: stopped: SIGTERM")

        def stop_all(self) -> None:
            self.stopped = True
            self.released.set()

    def stop(signum, frame):
        raise RuntimeError("told to stop")

    previous = signal.signal(signal.SIGUSR1, stop)
    try:
        runner = Blocking()
        with pytest.raises(RuntimeError, match="told to stop"):
            run_study(
                CFG,
                [[parse_grid("model.alpha=0,0.25,0.5")]],
                seeds=1,
                out=tmp_path,
                runner=runner,
                measure=False,
                jobs=2,
            )
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert runner.stopped and len(runner.calls) == 2  # the third run never started
    assert not list(tmp_path.glob("*/seed0/sweep.json"))  # a stop is not a failed run


def test_subprocess_runner_gives_each_command_its_thread_count(tmp_path, monkeypatch):
    seen = []

    class FakeProc:
        def __init__(self, cmd, stdout, stderr, env):
            seen.append(env)
            self.returncode = 0

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(sweep.subprocess, "Popen", FakeProc)
    sweep.SubprocessRunner(threads=1)._run(tmp_path, "test", "--cfg", CFG)
    sweep.SubprocessRunner()._run(tmp_path, "test", "--cfg", CFG)
    assert seen[0]["OMP_NUM_THREADS"] == "1"
    assert seen[1] is None  # torch's own default: one thread per core


AFTER_ITS_LAST_STEP = (
    "after the run finished at global step 9, its files written: LAST (global step 9) is kept"
)
IN_ITS_LOOP = "at global step 5; LAST (global step 5) is kept; continue with --resume auto"


@pytest.mark.parametrize(
    ("stop", "stopping", "commands"),
    [
        (AFTER_ITS_LAST_STEP, False, ["train", "test"]),
        (AFTER_ITS_LAST_STEP, True, ["train"]),
        (IN_ITS_LOOP, False, ["train"]),
    ],
    ids=["after-its-last-step", "the-study-stopping", "in-its-loop"],
)
def test_a_train_stopped_after_its_last_step_is_tested_as_a_finished_one(
    tmp_path, monkeypatch, stop, stopping, commands
):
    # stopped after its training, its files written, the run was failed ("octvideo train:
    # stopped by SIGTERM after the run finished ..."), and the next start found nothing to train
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    line = f"octvideo train: stopped by SIGTERM {stop.replace('LAST', str(last))}"
    seen = []

    class FakeProc:
        def __init__(self, cmd, stdout, stderr, env):
            seen.append(cmd[4])  # after python -P -c CODE: the command
            self.returncode = 0
            if cmd[4] == "train":
                last.parent.mkdir(parents=True, exist_ok=True)
                last.write_bytes(b"a checkpoint")
                stdout.write(f"Epoch 0: 100%\n{line}\n")
                self.returncode = 143

        def wait(self, timeout=None):
            return self.returncode

        def poll(self):
            return self.returncode

        def terminate(self):
            pass  # it has ended

    monkeypatch.setattr(sweep.subprocess, "Popen", FakeProc)
    runner = sweep.SubprocessRunner()
    runner._stopped = stopping  # the study itself was told to stop: it tests nothing
    if commands == ["train", "test"]:
        runner(CFG, [], run_dir)
    else:
        with pytest.raises(RunFailed) as caught:
            runner(CFG, [], run_dir)
        assert str(caught.value) == line
    assert seen == commands


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (1e20, "--run-timeout 1e+20: give at most 86400 seconds (a day)"),
        (86_401, "--run-timeout 86401: give at most 86400 seconds (a day)"),
        (0, "--run-timeout 0: give a number of seconds above 0"),
        (math.inf, "--run-timeout inf: give a number of seconds above 0"),
        (math.nan, "--run-timeout nan: give a number of seconds above 0"),
        ("60", "--run-timeout '60': give a number of seconds above 0"),
    ],
)
def test_a_run_timeout_is_bounded_as_every_duration_at_most_a_day(timeout, message):
    with pytest.raises(UsageError) as err:
        sweep.SubprocessRunner(timeout=timeout)
    assert str(err.value) == message
    assert sweep.SubprocessRunner(timeout=86_400).timeout == 86_400


def test_subprocess_runner_fails_with_the_runs_own_one_line_error(tmp_path):
    run_dir = tmp_path / "run"
    refused = r"^octvideo train: error: model.name: unknown model 'nope'"
    with pytest.raises(RunFailed, match=refused):
        sweep.SubprocessRunner()(CFG, ["model.name=nope"], run_dir)
    assert "$ octvideo train --cfg" in (run_dir / "sweep.log").read_text()


def test_subprocess_runner_reason_is_the_commands_one_line_error():
    tail = ["Traceback (most recent call last):", "octvideo train: error: model.name='x': bad", ""]
    assert sweep._reason(tail, 2) == "octvideo train: error: model.name='x': bad"
    assert sweep._reason(["...", "RuntimeError: boom"], 1) == "RuntimeError: boom"
    assert sweep._reason(["last words"], -9) == "killed by SIGKILL: last words"
    assert sweep._reason([], 3) == "exit status 3"


# ------------------------------------------------------------------------------- the table


def test_table_aggregates_mean_and_spread_over_seeds(tmp_path):
    base, octave = Point((("model.alpha", "0"),)), Point((("model.alpha", "0.5"),))
    for seed, (v, c, m) in enumerate([(0.6, 0.5, 0.55), (0.8, 0.7, 0.75), (0.7, 0.6, 0.65)]):
        _finish(run_folder(tmp_path, base, seed), v, c, m)
        (run_folder(tmp_path, base, seed) / "sweep.json").write_text(
            json.dumps({"wall_s": 10 * (seed + 1)})
        )
    _finish(run_folder(tmp_path, octave, 0), 0.5, 0.5, 0.5)
    measured = {"alpha-0": Measured(gflops=2.0, params=10), "alpha-0.5": Measured(gflops=1.0)}
    rows = collect(tmp_path, [base, octave], [0, 1, 2], measured)
    row = rows[0]
    assert row["baseline"] and not rows[1]["baseline"]
    assert row["video_top1_mean"] == pytest.approx(0.7)
    assert row["video_top1_std"] == pytest.approx(0.1)  # sample standard deviation
    assert (row["video_top1_min"], row["video_top1_max"]) == (0.6, 0.8)
    assert row["clip_top1_mean"] == pytest.approx(0.6)
    assert row["mean_class_accuracy_mean"] == pytest.approx(0.65)
    assert row["wall_s_mean"] == pytest.approx(20.0)
    assert row["gflops"] == 2.0 and row["status"] == "ok"
    one = rows[1]
    assert one["video_top1_mean"] == 0.5 and one["video_top1_std"] is None
    assert one["status"] == "1/3 seeds (not run yet)"


def test_a_row_has_every_column_of_the_table():
    rows = collect(Path("no-study"), [Point(())], [0], {})
    assert set(rows[0]) == {*CSV_COLUMNS, "settings"}
    measured = [f.name for f in dataclasses.fields(Measured) if f.name != "error"]
    assert measured == list(MEASURED_COLUMNS)  # in the table's order


def test_a_study_writes_the_table_of_its_runs(tmp_path):
    result = _study(tmp_path, Recorder(), seeds=2)
    for name in ("study.csv", "study.json", "study.md", "study.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "study.json").read_text())
    assert [r["point"] for r in data["rows"]] == ["alpha=0", "alpha=0.25", "alpha=0.5"]
    assert data["rows"][0]["video_top1_mean"] == 0.5
    assert result.files["png"] == tmp_path / "study.png"
    assert data["meta"]["jobs"] == 1


def test_study_table_says_how_many_runs_went_side_by_side(tmp_path):
    run_study(
        CFG,
        [[parse_grid("model.alpha=0")]],
        seeds=1,
        out=tmp_path,
        runner=Recorder(),
        measure=False,
        jobs=2,
    )
    first = (tmp_path / "study.md").read_text().splitlines()[0]
    assert "1 seed(s) per point, 2 run(s) at a time;" in first


# --------------------------------------------------------------------------------- measuring


def test_measured_cost_and_ratios_of_tiny_points(tmp_path):
    points = expand([[parse_grid("model.alpha=0,0.5")]])
    tick = itertools.count()
    measured = sweep.measure_points(
        CFG,
        points,
        [
            "model.extra={width: 4}",
            "data.num_frames=4",
            "data.test_crop_size=32",
            "data.train_crop_size=32",
        ],
        repeats=2,
        batch=2,
        timer=lambda: float(next(tick)),  # every timed call takes one "second"
    )
    base, octave = measured["alpha-0"], measured["alpha-0.5"]
    assert base.params == octave.params and octave.gflops < base.gflops
    assert octave.saved_mib_per_clip > 0
    assert base.infer_ratio == octave.infer_ratio == 1.0 and math.isclose(base.train_ms, 1e3)


@pytest.mark.parametrize("name", ["study.md", "study.png", "measured.json"])
def test_a_study_file_in_an_out_without_a_plan_is_refused_not_replaced(tmp_path, name):
    """A study writes plan.json before any other file: a study.md without one is someone's
    notes (or a run folder's), which the study's table would replace."""
    out = tmp_path / "notes"
    out.mkdir()
    (out / name).write_bytes(b"my notes\n")
    runner = Recorder()
    with pytest.raises(UsageError) as caught:
        _study(out, runner, seeds=1)
    assert str(caught.value) == (
        f"--out {out} holds {name}, which the study would replace, but no plan.json, which a "
        "study writes first: it is not an earlier study's; move it away, or choose another "
        "--out (nothing was changed)"
    )
    assert runner.calls == [] and sorted(os.listdir(out)) == [name]
    assert (out / name).read_bytes() == b"my notes\n"


def test_an_out_in_a_folder_read_as_data_is_refused_before_any_run(tmp_path):
    """Its run folders would be read as classes by the next command reading the data."""
    root = tmp_path / "train"
    root.mkdir()
    runner = Recorder()
    with pytest.raises(UsageError) as caught:
        run_study(
            CFG,
            [[parse_grid("model.alpha=0,0.25")]],
            seeds=1,
            out=root / "study",
            overrides=[f"data.train_list={root}"],
            runner=runner,
            measure=False,
        )
    assert str(caught.value) == (
        f"--out {root / 'study'} is inside {root}, the class folders of data.train_list: the "
        "next command reading the data would read what is written there with it; choose "
        "another --out (nothing was changed)"
    )
    assert runner.calls == [] and os.listdir(root) == []


# ------------------------------------------------------------------------------ a stopped study


@pytest.mark.parametrize(
    ("cause", "trained"), [("Ctrl-C", False), ("SIGTERM", False), ("SIGTERM", True)]
)
def test_a_stopped_study_says_which_runs_it_kept_and_where_the_stopped_one_is(
    tmp_path, cause, trained
):
    # trained: its train ended after its last step, its files written; that was "stopped: ...",
    # as if its training had more to do
    import torch

    from octvideo.errors import Interrupted, Terminated

    class StopsInTheSecondRun(Recorder):
        def __call__(self, cfg, overrides, run_dir: Path) -> None:
            if len(self.calls) < 1:
                return super().__call__(cfg, overrides, run_dir)
            self.calls.append((list(overrides), run_dir))
            (run_dir / "checkpoints").mkdir(parents=True)
            last = run_dir / "checkpoints" / "last.ckpt"
            torch.save({"global_step": 3}, last)
            if trained:
                (run_dir / "sweep.log").write_text(
                    "\n$ octvideo train --cfg x\noctvideo train: stopped by SIGTERM after the "
                    f"run finished at global step 3, its files written: {last} (global step 3) "
                    "is kept\n"
                )
            raise KeyboardInterrupt if cause == "Ctrl-C" else Terminated("stopped by SIGTERM")

    with pytest.raises(KeyboardInterrupt) as caught:
        _study(tmp_path, StopsInTheSecondRun(), seeds=1)
    assert isinstance(caught.value, Interrupted)
    assert isinstance(caught.value, Terminated) is (cause == "SIGTERM")
    last = tmp_path / "alpha-0.25" / "seed0" / "checkpoints" / "last.ckpt"
    said = "trained, its test not run" if trained else "stopped"
    assert str(caught.value) == (
        f"stopped by {cause}; 1 of 3 runs finished and kept; [alpha=0.25, seed 0] "
        f"{said}: {last} (global step 3) is kept; run the same command again to continue the "
        "study"
    )
    again = Recorder()
    _study(tmp_path, again, seeds=1)
    assert [d.parent.name for _, d in again.calls] == ["alpha-0.25", "alpha-0.5"]


def test_a_study_stopped_while_measuring_says_its_runs_are_kept(tmp_path, monkeypatch):
    def measure_points(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "measure_points", measure_points)
    with pytest.raises(KeyboardInterrupt) as caught:
        run_study(
            CFG, [[parse_grid("model.alpha=0,0.25")]], seeds=1, out=tmp_path, runner=Recorder()
        )
    assert str(caught.value) == (
        "stopped by Ctrl-C while measuring the points; 2 of 2 runs finished and kept; run the "
        "same command again to continue the study"
    )


def test_a_study_that_reuses_its_measurements_keeps_their_date_and_machine(tmp_path, monkeypatch):
    measuring = []

    def measure_points(cfg, points, *args, **kwargs):
        measuring.append(cfg)
        return {p.name: Measured(gflops=1.0, infer_ms=2.0) for p in points}

    monkeypatch.setattr(sweep, "measure_points", measure_points)
    monkeypatch.setattr(sweep, "machine", lambda threads: f"the first machine, {threads}")
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, seeds=1, out=tmp_path, runner=Recorder())
    stored = json.loads((tmp_path / "measured.json").read_text())
    assert stored["machine"] == "the first machine, True"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", stored["date"])
    # as if taken long ago: a study continued later, on another machine, keeps them
    stored["date"] = "2020-01-02 03:04 UTC"
    (tmp_path / "measured.json").write_text(json.dumps(stored))
    monkeypatch.setattr(sweep, "machine", lambda threads: "another machine")
    run_study(CFG, grid, seeds=1, out=tmp_path, runner=Recorder())
    assert measuring == [CFG]  # measured once, reused
    first = (tmp_path / "study.md").read_text().splitlines()[0]
    assert first.endswith("; 2020-01-02 03:04 UTC, the first machine, True (timings).")
    timing = json.loads((tmp_path / "study.json").read_text())["meta"]["timing"]
    assert (timing["date"], timing["machine"]) == (
        "2020-01-02 03:04 UTC",
        "the first machine, True",
    )
    # a measured.json of an older octvideo recorded neither: the head does not say today
    del stored["date"], stored["machine"]
    (tmp_path / "measured.json").write_text(json.dumps(stored))
    run_study(CFG, grid, seeds=1, out=tmp_path, runner=Recorder())
    assert measuring == [CFG]
    first = (tmp_path / "study.md").read_text().splitlines()[0]
    assert first.endswith(
        "; timings' date and machine unknown (measured.json of an older octvideo)."
    )


@pytest.mark.parametrize("text", ["[1, 2]", "3", "not json", '{"key": 1, "points": []}'])
def test_a_measured_json_that_is_not_a_measurement_is_measured_again(tmp_path, monkeypatch, text):
    measuring = []

    def measure_points(cfg, points, *args, **kwargs):
        measuring.append(cfg)
        return {p.name: Measured(gflops=1.0, infer_ms=2.0) for p in points}

    monkeypatch.setattr(sweep, "measure_points", measure_points)
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, seeds=1, out=tmp_path, runner=Recorder())
    (tmp_path / "measured.json").write_text(text)  # a study's, damaged
    run_study(CFG, grid, seeds=1, out=tmp_path, runner=Recorder())
    assert measuring == [CFG, CFG]
    assert "key" in json.loads((tmp_path / "measured.json").read_text())


def test_a_plan_that_spells_random_init_as_empty_text_is_the_same_study(tmp_path):
    """A plan.json written when ``model.pretrained`` defaulted to "" (random init, as null is
    now) continues with its own command."""
    out = tmp_path / "study"
    grid = [[parse_grid("model.alpha=0,0.5")]]
    run_study(CFG, grid, seeds=1, out=out, runner=Recorder(), measure=False)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["base"]["model"]["pretrained"] is None
    plan["base"]["model"]["pretrained"] = ""
    (out / "plan.json").write_text(json.dumps(plan))
    runner = Recorder()
    run_study(CFG, grid, seeds=2, out=out, runner=runner, measure=False)
    assert len(runner.calls) == 2  # the second seed of each point


def test_a_runs_command_imports_no_module_of_the_folder_the_sweep_runs_in(tmp_path):
    (tmp_path / "ctypes.py").write_text("raise SystemExit('the folder\\'s ctypes.py ran')\n")
    done = subprocess.run(
        sweep._cli_command("--help"), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (an orphan that has ended may wait unreaped as a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_sweep_killed_by_sigkill_takes_its_run_with_it_and_the_restart_resumes_it(
    tiny_synth, tmp_path
):
    # the run went on as an orphan, and the restarted sweep recorded its point as failed: "run
    # folder ... is in use by octvideo train (pid N)"
    out = tmp_path / "study"
    last = out / "base" / "seed0" / "checkpoints" / "last.ckpt"
    overrides = tiny_overrides(
        tiny_synth, **{"trainer.max_epochs": 3, "output.ckpt_every_n_steps": 1}
    )
    args = ["sweep", "--cfg", "oct_i3d_synth", "--out", str(out), "--seeds", "1", "--no-measure"]
    command = [*sweep._cli_command(*args, *overrides)]
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    study = subprocess.Popen(command, cwd=repo, env=env, stderr=subprocess.DEVNULL)
    try:
        while not last.exists() and study.poll() is None:
            time.sleep(0.05)  # until the run has kept its first step
        assert last.exists()
        (run,) = _children(study.pid)
        study.kill()
    finally:
        study.kill()
        study.wait()
    while _running(run):
        time.sleep(0.05)  # the orphan stops at its step's end
    log = (last.parents[1] / "sweep.log").read_text()
    assert re.search(r"stopped by SIGTERM at global step \d+; .* is kept", log), log[-3000:]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((last.parents[1] / "sweep.json").read_text())["status"] == "finished"
