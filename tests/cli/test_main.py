"""``octvideo``'s entry point: what every command shares. A command whose stdout reader went away
ends quietly; what a command prints on stderr is its own: no library's import-time warnings
(fvcore's focal-loss module calls the deprecated ``torch.jit.script`` when ``fvcore.nn`` is
imported, which the engine and the FLOP count both do)."""

from __future__ import annotations

import os
import subprocess
import sys


def _buffered_env() -> dict[str, str]:
    """The environment with stdout block-buffered into a pipe, as in a user's shell (this one
    may set PYTHONUNBUFFERED)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, "OMP_NUM_THREADS": "1"}


def test_a_command_whose_stdout_reader_went_away_ends_quietly_with_status_1():
    # ``octvideo models ... | head -1`` once head has exited: Python's default is a
    # BrokenPipeError traceback at exit (status 120); every command ends quietly instead
    args = ["models", "--frames", "4", "--size", "32", "--filter", "c2d_r18"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "octvideo.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_buffered_env(),
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err.decode()
    assert err.decode() == ""


def _octvideo(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "octvideo.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_refused_command_prints_one_line(tmp_path):
    proc = _octvideo("data", "check", str(tmp_path / "missing.txt"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"octvideo data: error: annotations {tmp_path / 'missing.txt'} do not exist: pass a "
        "path/label list, a Kinetics CSV or a class-folder root"
    ]


def test_flop_count_prints_no_warning():
    proc = _octvideo("models", "--frames", "4", "--size", "32", "--filter", "c2d_r18")
    assert proc.returncode == 0, proc.stderr
    assert "c2d_r18" in proc.stdout
    assert proc.stderr == ""
