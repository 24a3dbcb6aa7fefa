"""``octvideo predict`` arguments: every number bounded, every argument checked before any output
is opened, so a refused command leaves an existing ``--out`` file as it was; progress, and output
into a pipe whose reader goes away."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from octvideo.cli import main
from octvideo.engine.checkpoint import atomic_save, load_checkpoint
from octvideo.inference import predictor as predictor_module

EARLIER = b'{"type": "video", "path": "earlier.mp4"}\n'


def _predict(*args: object) -> int:
    return main(["predict", *map(str, args)])


@pytest.fixture
def earlier(tmp_path):
    out = tmp_path / "earlier.jsonl"
    out.write_bytes(EARLIER)
    return out


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--window", "nan"], "--window nan: a duration must be a finite number of seconds, got "),
        (["--window", "inf"], "--window inf: a duration must be a finite number of seconds, got "),
        (["--window", "1s", "--stride", "nan"], "--stride nan: a duration must be a finite "),
        (["--window=-inf"], "--window -inf: a duration must be a finite number of seconds"),
        (["--window", "1e-9s"], "--window 1e-9s: give at least 0.1s"),
        (["--window", "1s", "--stride", "1e-7"], "--stride 1e-7: give at least 0.1s"),
        (["--window", "99ms"], "--window 99ms: give at least 0.1s"),
        (["--views", "100000x1"], "--views 100000x1: N temporal clips (1 to 100) x 1 or 3 crops"),
        (["--views", "9" * 5000 + "x3"], f"--views {'9' * 5000}x3: N temporal clips (1 to 100)"),
        (["--device", "foo"], "--device 'foo': use cpu, cuda or cuda:N"),
        (["--device", "meta"], "--device 'meta': use cpu, cuda or cuda:N"),
        (["--device", "cuda:999"], "--device cuda:999: "),
        (["--timeout", "0"], "--timeout 0: a duration must be positive, got '0'"),
        (["--timeout", "nan"], "--timeout nan: a duration must be a finite number of seconds"),
        (["--timeout", "1e400s"], "--timeout 1e400s: a duration must be a finite number of "),
        (["--timeout", "soon"], "--timeout soon: cannot read 'soon' as a duration"),
        (["--timeout", "86401"], "--timeout 86401: give at most 86400s (a day)"),
        (
            ["--workers", "0", "--timeout", "5s"],
            "--timeout 5s needs --workers 1 or more: a decoder in the model's own process cannot "
            "be stopped",
        ),
    ],
)
def test_refused_arguments_name_the_option_and_keep_the_out_file(
    checkpoint, videos, earlier, capsys, bad, message
):
    code = _predict("--ckpt", checkpoint, videos["short"], "--out", earlier, *bad)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"octvideo predict: error: {message}")
    assert earlier.read_bytes() == EARLIER


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--topk", "1001", "give at most 1000"),
        ("--batch-size", "513", "give at most 512"),
        ("--batch-size", "9" * 5000, "give at most 512"),
        ("--topk", "-" + "9" * 5000, "give 1 or more"),
        ("--topk", "five", "is not a whole number"),
        ("--workers", "65", "give at most 64"),
        ("--workers", "-1", "give 0 or more"),
        ("--workers", "9" * 5000, "give at most 64"),
    ],
)
def test_counts_past_their_bound_are_refused_by_the_parser(
    checkpoint, videos, earlier, capsys, option, value, message
):
    with pytest.raises(SystemExit) as info:
        _predict("--ckpt", checkpoint, videos["short"], "--out", earlier, option, value)
    assert info.value.code == 2
    sep = " " if message.startswith("is") else ": "
    assert f"argument {option}: {value!r}{sep}{message}\n" in capsys.readouterr().err
    assert earlier.read_bytes() == EARLIER


def test_multi_views_past_the_bound_in_the_checkpoint_are_refused(
    checkpoint, videos, earlier, tmp_path, capsys
):
    saved = load_checkpoint(checkpoint)
    saved["hyper_parameters"]["meta"]["clip"]["test_num_clips"] = 1000
    changed = tmp_path / "many_views.ckpt"
    atomic_save(saved, changed)
    code = _predict("--ckpt", changed, videos["short"], "--views", "multi", "--out", earlier)
    assert code == 2
    assert capsys.readouterr().err == (
        "octvideo predict: error: --views multi: the checkpoint's protocol is 1000x3; give "
        "--views NxC with N from 1 to 100 and 1 or 3 crops\n"
    )
    assert earlier.read_bytes() == EARLIER


def test_a_video_with_more_windows_than_the_bound_fails_alone(
    checkpoint, videos, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(predictor_module, "MAX_WINDOWS", 10)
    out = tmp_path / "preds.jsonl"
    # 9.5 s at 0.5 s: 19 windows, over the bound; 0.6 s: two windows
    bounds = ["--topk", 1000, "--batch-size", 512]  # the largest counts are taken
    code = _predict(
        "--ckpt",
        checkpoint,
        videos["long"],
        videos["short"],
        "--window",
        "0.5s",
        "--out",
        out,
        *bounds,
    )
    assert code == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    long_row = next(r for r in rows if r["path"] == str(videos["long"]))
    assert long_row["ok"] is False and long_row["num_windows"] == 0
    assert long_row["error"] == (
        "TooManyWindows: windows 0.5s apart over 9.5s of video make 19, more than 10 a video; "
        "use a stride of at least 0.95s"
    )
    short_rows = [r["type"] for r in rows if r["path"] == str(videos["short"])]
    assert short_rows == ["window", "window", "video"]
    assert len(rows[-1]["top"]) == 3  # every class of the checkpoint, not more
    assert "1 of 2 inputs predicted, 1 failed" in capsys.readouterr().out


def test_a_cuda_device_the_machine_lacks_is_refused(
    checkpoint, videos, earlier, capsys, monkeypatch
):
    import torch

    from octvideo.cli import inference as predict_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert predict_cli._device("cuda") == "cuda" and predict_cli._device("cuda:1") == "cuda:1"
    code = _predict("--ckpt", checkpoint, videos["short"], "--out", earlier, "--device", "cuda:2")
    assert code == 2
    assert capsys.readouterr().err == (
        "octvideo predict: error: --device cuda:2: this machine has 2 CUDA device(s), cuda:0 to "
        "cuda:1\n"
    )
    assert earlier.read_bytes() == EARLIER


def test_progress_is_a_line_per_input_when_stdout_is_not_a_terminal(checkpoint, videos, capsys):
    code = _predict("--ckpt", checkpoint, videos["short"], videos["corrupt"], "--workers", 1)
    assert code == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("predict ")]
    assert len(lines) == 2
    assert lines[0].startswith(f"predict 1/2 {videos['short']}: ok (")
    assert lines[1].startswith(f"predict 2/2 {videos['corrupt']}: FAILED: DecodeError: ")
    assert _predict("--ckpt", checkpoint, videos["short"], "--quiet") == 0
    assert "predict 1/1" not in capsys.readouterr().err


def test_progress_is_a_bar_over_the_inputs_on_a_terminal(checkpoint, videos, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = _predict("--ckpt", checkpoint, videos["short"], videos["odd"], "--workers", 0)
    assert code == 0
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "2/2" in err and "2 clips" in err
    assert "predict 1/2" not in err


def _buffered_env() -> dict[str, str]:
    """The environment with stdout block-buffered into a pipe, as in a user's shell (this one
    may set PYTHONUNBUFFERED)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, "OMP_NUM_THREADS": "1"}


def test_predict_into_a_pipe_whose_reader_went_away_stops_quietly_at_the_first_video(
    checkpoint, videos
):
    # ``octvideo predict ... | head -1`` once head has exited: no traceback, status 1, and the
    # run ends at the first table it cannot write instead of predicting every input first
    inputs = [str(videos[n]) for n in ("short", "odd", "audio")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "octvideo.cli", "predict", "--ckpt", str(checkpoint), *inputs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_buffered_env(),
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=300)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert "predict 1/3" not in stderr, stderr  # the first table's flush ended the run
