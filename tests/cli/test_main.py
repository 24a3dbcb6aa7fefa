"""``octvideo``'s entry point: what every command shares."""

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
