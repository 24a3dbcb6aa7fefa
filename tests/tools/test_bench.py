"""tools/bench.py, the benchmarks' one entry point: it lists its subcommands, shows each one's
options, and refuses a bad option in one line with exit status 2, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench.py"
SUBCOMMANDS = ["models", "layouts", "conv-views", "data-loader", "predict", "long-video"]


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    proc = _bench("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: tools/bench.py [-h] SUBCOMMAND ...")
    # a subcommand's name is indented by four spaces, its wrapped help by more
    lines = proc.stdout.splitlines()
    listed = [ln.split()[0] for ln in lines if ln.startswith("    ") and ln[4] != " "]
    assert listed == SUBCOMMANDS


def test_a_bad_option_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    proc = _bench("models", "--alpha", "half", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "tools/bench.py models: error: argument --alpha: 'half' is not a number"
    ]


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_each_subcommand_shows_its_options(load_tool, subcommand: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_tool("bench").main([subcommand, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: tools/bench.py {subcommand} [-h]")


def test_no_benchmark_script_is_left_beside_it() -> None:
    """One entry point: the benchmarks are subcommands, not scripts that import each other."""
    assert sorted(p.name for p in SCRIPT.parent.glob("bench*.py")) == ["bench.py"]
