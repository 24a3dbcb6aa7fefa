"""What a command prints on stderr is its own: no library's import-time warnings (fvcore's
focal-loss module calls the deprecated ``torch.jit.script`` when ``fvcore.nn`` is imported, which
the engine and the FLOP count both do)."""

from __future__ import annotations

import os
import subprocess
import sys


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
