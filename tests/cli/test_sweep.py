"""``octvideo sweep`` on the command line: a bad grid and more jobs than cores are one line and
exit status 2, before any run; Ctrl-C and SIGTERM stop it with one line and status 130 / 143."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from octvideo.cli import main
from octvideo.cli import sweep as cli_sweep
from octvideo.engine.sweep import RunRecord, StudyResult

CFG = "oct_i3d_synth.yaml"


def test_cli_reports_a_bad_grid_in_one_line(tmp_path, capsys):
    code = main(["sweep", "--cfg", CFG, "--out", str(tmp_path), "--grid", "model.alpha"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("octvideo sweep: error: --grid 'model.alpha' is not KEY=V1,V2")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(("cores", "unit"), [(2, "cores"), (1, "core")])
def test_cli_refuses_more_jobs_than_cores_in_one_line(tmp_path, capsys, monkeypatch, cores, unit):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))  # taskset
    args = ["sweep", "--cfg", CFG, "--out", str(tmp_path), "--grid", "model.alpha=0", "--jobs"]
    for jobs in ("3", "0"):  # 0 was answered "give 1 to 1024", a range 3 to 1024 is not in
        assert main([*args, jobs]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"octvideo sweep: error: --jobs {jobs}: give 1 to {cores} (at most one run per CPU "
            f"core; this machine has {cores} CPU {unit} available)"
        )
        assert not list(tmp_path.iterdir())  # refused before any run


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("1e-300", "--run-timeout '1e-300': give at least 1 second (a shorter one stops "),
        ("0.5", "--run-timeout '0.5': give at least 1 second"),
        ("86401", "--run-timeout '86401': give at most 86400 seconds (a day)"),
    ],
)
def test_a_run_timeout_past_the_bounds_of_every_timeout_is_refused_first(
    tmp_path, capsys, value, line
):
    # 1e-300 was taken: each run stopped at once and was recorded as failed
    args = ["sweep", "--cfg", CFG, "--out", str(tmp_path / "study"), "--grid", "model.alpha=0"]
    assert main([*args, "--run-timeout", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"octvideo sweep: error: {line}") and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("signum", "line", "status"),
    [
        (signal.SIGINT, "stopped by Ctrl-C", 130),
        (signal.SIGTERM, "stopped by SIGTERM", 143),
    ],
)
def test_a_stopped_study_says_so_and_how_to_continue(
    tmp_path, capsys, monkeypatch, signum, line, status
):
    def run_study(*args, **kwargs):
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        cli_sweep._on_sigterm(signum, None)  # what the handler sweep installs raises

    monkeypatch.setattr(cli_sweep, "run_study", run_study)
    code = main(["sweep", "--cfg", CFG, "--out", str(tmp_path), "--grid", "model.alpha=0"])
    assert code == status
    assert capsys.readouterr().err == (
        f"octvideo sweep: {line}; run the same command again to continue the study\n"
    )


def test_a_study_started_outside_the_main_thread_runs_and_keeps_the_handlers(
    tmp_path, capsys, monkeypatch
):
    # signal.signal works only in the main thread: sweep set its SIGTERM handler with it, and
    # main() called from another thread (a notebook's worker, a job runner) raised ValueError
    seen = []

    def run_study(*args, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_sweep, "run_study", run_study)
    before = signal.getsignal(signal.SIGTERM)
    codes = []
    argv = ["sweep", "--cfg", CFG, "--out", str(tmp_path), "--grid", "model.alpha=0"]
    thread = threading.Thread(target=lambda: codes.append(main(argv)))
    thread.start()
    thread.join()
    assert codes == [130]
    assert seen == [before]  # the main thread's handler, untouched
    assert capsys.readouterr().err == (
        "octvideo sweep: stopped by Ctrl-C; run the same command again to continue the study\n"
    )


@pytest.mark.parametrize(
    ("statuses", "code"), [(["finished", "finished"], 0), (["finished", "failed"], 1)]
)
def test_a_study_with_a_failed_run_is_written_and_ends_with_status_one(
    tmp_path, capsys, monkeypatch, statuses, code
):
    # every run past --run-timeout: the study was written and the command ended with status 0
    md = tmp_path / "study.md"
    records = [RunRecord("p", seed, status) for seed, status in enumerate(statuses)]

    def run_study(*args, **kwargs):
        return StudyResult(tmp_path, [], {"md": md}, records)

    monkeypatch.setattr(cli_sweep, "run_study", run_study)
    assert main(["sweep", "--cfg", CFG, "--out", str(tmp_path), "--grid", "model.alpha=0"]) == code
    said = capsys.readouterr()
    assert said.out.splitlines()[-1] == f"study: {md.resolve()}"
    failed = "octvideo sweep: 1 of 2 runs failed; the study names each one's reason\n"
    assert said.err == (failed if code else "")
