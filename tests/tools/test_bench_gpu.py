"""tools/bench_gpu.sh: the order of its cases, its time budget and what it writes down for a case
that fails, runs out of time or cannot start, with a stand-in interpreter that answers at once
(eager), hangs (compiled) or fails (bfloat16 with the PyTorchVideo baseline, as on a CPU) instead
of running the benchmark; an argument or setting out of bounds is one line, exit 2, before any
work."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_gpu.sh"

FAKE_PYTHON = r"""#!/usr/bin/env bash
case "$1" in
-) cat >/dev/null; echo "torch stand-in" ;;
tools/check_device.py) echo "ok   stand-in check on $3" ;;
tools/bench.py)
    case "$2" in
    models)
        args="$*"
        echo "$args" >>"$CALLS"
        if [[ "$args" == *"--compile default"* ]]; then sleep 60; fi
        if [[ "$args" == *"--dtype bfloat16 --compile none --baseline"* ]]; then
            echo 'NotImplementedError: "avg_pool3d_out_frame" not implemented for BFloat16' >&2
            exit 1
        fi
        while [[ "$1" != --append ]]; do shift; done
        echo "| table | $args |" >>"$2"
        ;;
    layouts)
        echo "layouts $*" >>"$CALLS"
        while [[ "$1" != --append ]]; do shift; done
        echo "| layouts table |" >>"$2"
        ;;
    predict)
        echo "predict $*" >>"$CALLS"
        while [[ "$1" != --append ]]; do shift; done
        echo "| predict table |" >>"$2"
        ;;
    *) echo "unexpected: $*" >&2; exit 3 ;;
    esac
    ;;
*) echo "unexpected: $*" >&2; exit 3 ;;
esac
"""


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils' timeout")
def test_order_budget_and_records(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls, out = tmp_path / "calls.txt", tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "PYTHON": str(fake),
        "CALLS": str(calls),
        "OUT": str(out),
        "DEVICE": "cpu",
        # The stand-in answers at once, so only the compiled case's hang spends the budget: an
        # eager case never needs time left (0), and the first compiled case starts unless the
        # ten instant cases before it took 6 s, however busy the machine; after its hang ends
        # the budget (0-1 s left, bash counts whole seconds) no other compiled case has 2 s.
        "BUDGET_S": "8",
        "MIN_EAGER_S": "0",
        "MIN_PREDICT_S": "0",
        "MIN_COMPILED_S": "2",
    }
    run = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "8 cases ran, 2 failed, 5 skipped" in run.stderr

    # eager before compiled, alpha 0.5 first, float32 before bfloat16, the layout comparison
    # after alpha 0.5; the first compiled case hangs until the budget is spent, so no other
    # compiled case starts
    started = [
        ("layouts", line.split("--dtype ")[1].split()[0])
        if line.startswith("layouts")
        else ("predict", line.split("--alpha ")[1].split()[0])
        if line.startswith("predict")
        else tuple(line.split(f"--{key} ")[1].split()[0] for key in ("alpha", "dtype", "compile"))
        for line in calls.read_text().splitlines()
    ]
    eager = [(a, d, "none") for a in ("0.5", "0.2", "0.1") for d in ("float32", "bfloat16")]
    layouts = [("layouts", "float32"), ("layouts", "bfloat16")]
    predict = [("predict", "0.1")]
    assert started == [*eager[:2], *layouts, *predict, *eager[2:], ("0.5", "float32", "default")]
    # issue 25's predict benchmark: its own shape, 40 clips at 8x224x224, 0, 2 and 8 workers
    assert (
        "predict tools/bench.py predict --model i3d_r50 --device cpu --clips 40 --frames 8 "
        "--size 224 --batch-size 8 --rounds 2 --workers 2 8 --alpha 0.1 --threads 2 --append"
        in calls.read_text()
    )
    assert (
        "layouts tools/bench.py layouts --model i3d_r50 --device cpu --frames 8"
        in calls.read_text()
    )

    text = (out / "BENCHMARKS-gpu.md").read_text()
    order = [
        "`python tools/check_device.py --device cpu`:",
        "    ok   stand-in check on cpu",
        "| table |",
        "--dtype bfloat16 --compile none --baseline pytorchvideo` FAILED (exit 1):",
        "    NotImplementedError",
        "--dtype float32 --compile default` stopped at the end of the budget",
        "--dtype bfloat16 --compile default` not run:",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    assert text.count("| table |") == 5 and text.count("| layouts table |") == 2
    assert text.count("| predict table |") == 1
    assert text.count("` not run: ") == 5


@pytest.mark.parametrize(
    ("args", "env", "refusal"),
    [
        (["x"], {}, "unexpected argument(s) 'x': give none (run the benchmark) or --prepare"),
        (["--prepare", "x"], {}, "unexpected argument(s) '--prepare x': give none"),
        ([], {"BUDGET_S": "abc"}, "BUDGET_S=abc: give a whole number of seconds from 1 to 86400"),
        ([], {"BUDGET_S": "0"}, "BUDGET_S=0: give a whole number of seconds from 1 to 86400"),
        ([], {"MIN_EAGER_S": "-1"}, "MIN_EAGER_S=-1: give a whole number of seconds from 0 to"),
        ([], {"MIN_COMPILED_S": "1e9"}, "MIN_COMPILED_S=1e9: give a whole number of seconds"),
        ([], {"MIN_PREDICT_S": "86401"}, "MIN_PREDICT_S=86401: give a whole number of seconds"),
        ([], {"DEVICE": "nan"}, "DEVICE=nan: give cpu, cuda or cuda:N"),
        ([], {"QUICK": "yes"}, "QUICK=yes: give 1 (one tiny case per setting) or 0"),
    ],
)
def test_an_argument_or_setting_out_of_bounds_is_one_line_before_any_work(
    tmp_path: Path, args: list[str], env: dict[str, str], refusal: str
) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls, out = tmp_path / "calls.txt", tmp_path / "out"
    out.mkdir()
    environ = {**os.environ, "PYTHON": str(fake), "CALLS": str(calls), "OUT": str(out), **env}
    run = subprocess.run(
        ["bash", str(SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"tools/bench_gpu.sh: error: {refusal}"), line
    assert not calls.exists() and list(out.iterdir()) == []
