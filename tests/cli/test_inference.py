"""``octvideo predict`` on the command line: every number bounded, every argument checked before
any output is opened, so a refused command leaves an existing ``--out`` file or an input as it
was; renders named apart, a render failure reported as that input's failure; checkpoints that do
not fit are one line; records as JSON lines, CSV or a table; progress, and output into a pipe
whose reader goes away."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from octvideo.cli import build_parser, main
from octvideo.cli import inference as cli_inference
from octvideo.data import workers as workers_module
from octvideo.data.decoding import decode, probe
from octvideo.engine.checkpoint import atomic_save, load_checkpoint
from octvideo.errors import CheckpointError
from octvideo.inference import Predictor, window_times
from octvideo.inference import predictor as predictor_module
from octvideo.inference.inputs import expand_inputs
from tests.cli.test_main import FullStream, run_with_stdout_closed
from tests.data.test_open_files import fake_open_file_limit
from tests.inference.media_helpers import encode, faststart

# an earlier run's video record, whole: a --out predict may replace
EARLIER = (
    b'{"type": "video", "path": "earlier.mp4", "ok": true, "error": null, "start": 0.0, '
    b'"end": 1.0, "num_frames": 30, "fps": 30.0, "num_windows": 0, '
    b'"top": [{"label": "a", "index": 0, "prob": 0.8}], "seconds": 0.1}\n'
)


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
        (
            ["--window", "nan"],
            "--window 'nan': a duration must be a finite number of seconds, got ",
        ),
        (
            ["--window", "inf"],
            "--window 'inf': a duration must be a finite number of seconds, got ",
        ),
        (["--window", "1s", "--stride", "nan"], "--stride 'nan': a duration must be a finite "),
        (["--window=-inf"], "--window '-inf': a duration must be a finite number of seconds"),
        (["--window", "1e-9s"], "--window '1e-9s': give at least 0.1s"),
        (["--window", "1s", "--stride", "1e-7"], "--stride '1e-7': give at least 0.1s"),
        (["--window", "99ms"], "--window '99ms': give at least 0.1s"),
        (["--window", "86401s"], "--window '86401s': give at most 86400s (a day)"),
        # these did not name the bound: "a duration must be positive, got '0s'"
        (
            ["--window", "0s"],
            "--window '0s': a duration must be positive, got '0s'; give at least ",
        ),
        (
            ["--window=-2s"],
            "--window '-2s': a duration must be positive, got '-2s'; give at least ",
        ),
        (
            ["--window", "1s", "--stride", "0"],
            "--stride '0': a duration must be positive, got '0'; ",
        ),
        (["--window", "two"], "--window 'two': cannot read 'two' as a duration; write e.g. 2s, "),
        # a stride past the video by a billion times left no window, and a traceback
        (["--window", "1s", "--stride", "1e308"], "--stride '1e308': give at most 86400s (a day)"),
        (["--out", ""], "--out is empty; give a path, or no --out"),
        (["--render", ""], "--render is empty; give a path, or no --render"),
        (
            ["--views", "100000x1"],
            "--views '100000x1': views must be N temporal clips (1 to 100) x",
        ),
        (
            ["--views", "9" * 5000 + "x3"],
            f"--views '{'9' * 37}'...: views must be N temporal clips",
        ),
        (["--device", "foo"], "--device 'foo': use cpu, cuda or cuda:N"),
        (["--device", "meta"], "--device 'meta': use cpu, cuda or cuda:N"),
        (["--device", "cuda:999"], "--device cuda:999: "),
        (["--timeout", "0"], "--timeout '0': a duration must be positive, got '0'"),
        (["--timeout", "nan"], "--timeout 'nan': a duration must be a finite number of seconds"),
        (["--timeout", "1e400s"], "--timeout '1e400s': a duration must be a finite number of "),
        (["--timeout", "soon"], "--timeout 'soon': cannot read 'soon' as a duration"),
        (["--timeout", "86401"], "--timeout '86401': give at most 86400 seconds (a day)"),
        # every command's timeout has one floor: below it every video failed as hung
        (["--timeout", "1e-300"], "--timeout '1e-300': give at least 1 second (a shorter "),
        (["--timeout", "999ms"], "--timeout '999ms': give at least 1 second"),
        # a value with a line break is quoted, so that the error stays one line
        (["--window", "1\n2"], "--window '1\\n2': cannot read '1\\n2' as a duration"),
        (["--window", "1s", "--stride", "1\n2"], "--stride '1\\n2': cannot read"),
        (["--views", "1\n2"], "--views '1\\n2': views must be"),
        (["--timeout", "1\n2"], "--timeout '1\\n2': cannot read"),
        (
            ["--workers", "0", "--timeout", "5s"],
            "--timeout '5s' needs --workers 1 or more: a decoder in the model's own process cannot "
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
        # each was argparse's usage block, then this line (the parser's type bounds them)
        ("--topk", "0", "'0': give 1 or more"),
        ("--topk", "-1", "'-1': give 1 or more"),
        ("--topk", "1001", "'1001': give at most 1000"),
        ("--batch-size", "0", "'0': give 1 or more"),
        ("--batch-size", "513", "'513': give at most 512"),
        ("--batch-size", "9" * 100, f"{'9' * 37!r}...: give at most 512"),
        ("--topk", "-" + "9" * 100, f"{'-' + '9' * 36!r}...: give 1 or more"),
        ("--topk", "five", "'five' is not a whole number"),
        ("--batch-size", "9" * 5000, f"{'9' * 37!r}...: give at most 512"),
        (
            "--workers",
            "9" * 5000,
            f"{'9' * 37!r}... has more than 4300 digits; give a shorter number",
        ),
    ],
)
def test_counts_past_their_bound_are_one_line_naming_it(
    checkpoint, videos, earlier, capsys, option, value, message
):
    with pytest.raises(SystemExit) as info:
        _predict("--ckpt", checkpoint, videos["short"], "--out", earlier, option, value)
    assert info.value.code == 2
    assert capsys.readouterr().err == f"octvideo predict: error: argument {option}: {message}\n"
    assert earlier.read_bytes() == EARLIER


@pytest.mark.parametrize(
    ("cores", "workers", "limit"), [(2, "9", 8), (2, "-1", 8), (1, "5", 4), (32, "65", 64)]
)
def test_workers_past_what_the_machine_takes_are_one_line_naming_its_cores(
    checkpoint, videos, earlier, capsys, monkeypatch, cores, workers, limit
):
    # a fixed 64 let a 2-core machine start 64 decoding processes, each holding a batch
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    code = _predict("--ckpt", checkpoint, videos["short"], "--out", earlier, "--workers", workers)
    assert code == 2
    unit = "core" if cores == 1 else "cores"
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --workers {workers}: give 0 to {limit} (at most 4 per CPU core "
        f"and 64 in all; this machine has {cores} CPU {unit} available)\n"
    )
    assert earlier.read_bytes() == EARLIER


def test_workers_up_to_what_the_machine_takes_run(checkpoint, videos, capsys, monkeypatch):
    monkeypatch.setattr(workers_module, "usable_cores", lambda: 2)
    assert _predict("--ckpt", checkpoint, videos["short"], "--workers", 8, "-q") == 0  # 1 starts
    assert capsys.readouterr().out == "1 of 1 inputs predicted\n"


def test_multi_views_past_the_bound_in_the_checkpoint_are_refused(
    checkpoint, videos, earlier, tmp_path, capsys
):
    saved = load_checkpoint(checkpoint)
    saved["hyper_parameters"]["meta"]["clip"]["test_num_clips"] = 1000
    changed = tmp_path / "many_views.ckpt"
    atomic_save(saved, changed)
    code = _predict("--ckpt", changed, videos["short"], "--views", "multi", "--out", earlier)
    assert code == 2
    assert capsys.readouterr().err.startswith(
        f"octvideo predict: error: checkpoint {str(changed)!r} metadata: clip.test_num_clips 1000 "
        "is beyond the limit of 100 clips"
    )
    assert earlier.read_bytes() == EARLIER


def test_a_video_with_more_windows_than_the_bound_fails_alone(
    checkpoint, videos, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(predictor_module, "MAX_WINDOWS", 10)  # in this process: no workers
    out = tmp_path / "preds.jsonl"
    # 9.5 s at 0.5 s: 19 windows, over the bound; 0.6 s: two windows
    bounds = ["--topk", 1000, "--batch-size", 512, "--workers", 0]  # the largest are taken
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


def test_a_stride_under_one_frame_of_an_input_takes_one_frame_and_says_so(
    checkpoint, videos, tmp_path, capsys, caplog
):
    # one --stride over inputs of mixed rates: 0.15 s is under a frame of 5 fps, not of 10 fps
    five, ten = encode(tmp_path / "five.mp4", 50, rate=5), videos["long"]
    out = tmp_path / "preds.jsonl"
    args = ("--window", "2s", "--stride", "0.15s", "--workers", 0, "-q", "--out", out)
    assert _predict("--ckpt", checkpoint, five, ten, *args) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"{five}: windows 0.15s apart would be under one frame (50 frames over 10s): they are "
        "taken one frame, 0.2s, apart"
    ]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    starts = {
        path: [r["start"] for r in rows if r["path"] == str(path) and r["type"] == "window"]
        for path in (five, ten)
    }
    assert starts[five] == pytest.approx([k * 0.2 for k in range(len(starts[five]))])
    assert starts[ten] == pytest.approx([k * 0.15 for k in range(len(starts[ten]))])
    assert len(starts[five]) <= 50 and all(r["ok"] for r in rows if r["type"] == "video")
    assert "FAILED" not in capsys.readouterr().err


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


@pytest.mark.parametrize(("workers", "want"), [(1, ["server", "model"]), (0, ["model"])])
def test_predict_with_workers_starts_their_server_before_it_loads_the_model(
    workers, want, checkpoint, videos, monkeypatch
):
    """The worker server imports its modules while the checkpoint loads, not after."""
    from octvideo.cli import inference as predict_cli

    order: list[str] = []
    load = Predictor.from_checkpoint.__func__
    monkeypatch.setattr(predict_cli, "start_worker_server", lambda: order.append("server"))
    monkeypatch.setattr(
        Predictor,
        "from_checkpoint",
        classmethod(lambda cls, *a, **k: order.append("model") or load(cls, *a, **k)),
    )
    assert _predict("--ckpt", checkpoint, videos["short"], "--workers", workers, "--quiet") == 0
    assert order == want


def test_progress_is_a_line_per_input_when_stdout_is_not_a_terminal(checkpoint, videos, capsys):
    code = _predict("--ckpt", checkpoint, videos["short"], videos["corrupt"], "--workers", 1)
    assert code == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("predict ")]
    assert len(lines) == 2
    assert lines[0].startswith(f"predict 1/2 {videos['short']}: ok (")
    assert lines[1].startswith(f"predict 2/2 {videos['corrupt']}: FAILED: DecodeError: ")
    assert _predict("--ckpt", checkpoint, videos["short"], "--quiet") == 0
    assert "predict 1/1" not in capsys.readouterr().err


def test_quiet_prints_only_the_summary_line_as_its_help_says(checkpoint, videos, capsys):
    # the help said "a line only for an input that failed": no word of the last line, which a
    # script reads for the counts, nor of an input cut short, whose line stays too
    assert _predict("--ckpt", checkpoint, videos["short"], "-q") == 0
    assert capsys.readouterr() == ("1 of 1 inputs predicted\n", "")
    with pytest.raises(SystemExit):
        _predict("--help")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a line only for an input cut short or failed, and the last line, N of M inputs " in (
        help_text
    )


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_long_input_prints_a_progress_line_every_so_many_windows(
    checkpoint, videos, capsys, monkeypatch, workers
):
    # one long video under --window was one input: no line at all until it was done
    monkeypatch.setattr(cli_inference, "PROGRESS_CLIPS", 5)
    path = videos["long"]  # 19 windows of 0.5 s
    args = ["--window", "0.5s", "--batch-size", "3", "--workers", workers]
    assert _predict("--ckpt", checkpoint, path, *args) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("predict ")]
    assert [ln.rsplit(" ", 4)[0] for ln in lines[:-1]] == [f"predict 1/1 {path}:"] * 3
    done = [int(ln.split(": ")[1].split(" of ")[0]) for ln in lines[:-1]]
    assert [n // 5 for n in done] == [1, 2, 3]  # one line each time 5 more windows have run
    assert all(ln.endswith(" of 19 windows") for ln in lines[:-1])
    assert lines[-1].startswith(f"predict 1/1 {path}: ok (")
    assert _predict("--ckpt", checkpoint, path, *args, "-q") == 0
    assert "predict 1/1" not in capsys.readouterr().err


@pytest.mark.parametrize("quiet", [False, True])
def test_a_failed_input_is_one_line_on_stderr_also_under_quiet(
    checkpoint, videos, capsys, caplog, quiet
):
    # it was a logged WARNING and a progress line, and under -q the WARNING alone
    bad, good = videos["corrupt"], videos["short"]
    code = _predict("--ckpt", checkpoint, bad, good, "--workers", 0, *(["-q"] if quiet else []))
    assert code == 1
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    lines = capsys.readouterr().err.splitlines()
    assert [ln for ln in lines if str(bad) in ln] == [lines[0]]
    assert lines[0].startswith(f"predict 1/2 {bad}: FAILED: DecodeError: ")
    assert lines[1:] == ([] if quiet else [lines[1]])  # the other input's progress line
    if not quiet:
        assert lines[1].startswith(f"predict 2/2 {good}: ok (")


def test_progress_is_a_bar_over_the_inputs_on_a_terminal(checkpoint, videos, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = _predict("--ckpt", checkpoint, videos["short"], videos["odd"], "--workers", 0)
    assert code == 0
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "2/2" in err and "2 clips" in err
    assert "predict 1/2" not in err


def test_predict_into_a_pipe_whose_reader_went_away_stops_quietly_at_the_first_video(
    checkpoint, videos
):
    # ``octvideo predict ... | head -1`` once head has exited: no traceback, status 1, and the
    # run ends at the first table it cannot write instead of predicting every input first
    inputs = [str(videos[n]) for n in ("short", "odd", "audio")]
    code, err = run_with_stdout_closed("predict", "--ckpt", str(checkpoint), *inputs)
    stderr = err.decode()
    assert code == 1, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert "predict 1/3" not in stderr, stderr  # the first table's flush ended the run


@pytest.mark.parametrize("closed", ["stdout", "stdout and stderr"])
def test_predict_out_into_a_pipe_whose_reader_went_away_writes_every_record(
    checkpoint, videos, earlier, closed
):
    # ``octvideo predict --out F ... | true``: the records are the output and stdout a view of
    # them; the run stopped at its first table with status 1, nothing said, and an earlier
    # complete F replaced by the one record done
    inputs = [str(videos[n]) for n in ("short", "odd", "audio")]
    code, err = run_with_stdout_closed(
        "predict",
        "--ckpt",
        str(checkpoint),
        *inputs,
        "--out",
        str(earlier),
        "--workers",
        "0",
        stderr=subprocess.STDOUT if closed == "stdout and stderr" else subprocess.PIPE,
    )
    assert code == 0, err
    rows = [json.loads(line) for line in earlier.read_text().splitlines()]
    assert [r["path"] for r in rows if r["type"] == "video"] == inputs
    if err is not None:  # stderr, a pipe still read: its progress lines, to the last input
        stderr = err.decode()
        assert "Traceback" not in stderr and "predict 3/3" in stderr, stderr


def test_predict_of_a_folder_without_videos_is_one_failed_line_naming_it(
    checkpoint, videos, tmp_path, capsys
):
    # a warning "no video files under emp" and a record "emp is a directory, not a video file"
    empty, out = tmp_path / "emp", tmp_path / "preds.jsonl"
    empty.mkdir()
    code = _predict("--ckpt", checkpoint, empty, videos["short"], "--out", out, "-q")
    assert code == 1
    captured = capsys.readouterr()
    error = f"{empty} is a folder that holds no video files (.mp4, "
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"predict 1/2 {empty}: FAILED: {error}"), lines
    assert captured.out == f"1 of 2 inputs predicted, 1 failed; records in {out}\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["path"] == str(empty) and rows[0]["error"].startswith(error)


def _predict_ckpt(checkpoint, *args: str) -> int:
    return main(["predict", "--ckpt", str(checkpoint), *map(str, args)])


def _error(capsys) -> str:
    """The one line ``main`` printed for a refused command (nothing else on stderr)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.removeprefix("octvideo predict: error: ").removesuffix("\n")


# ----------------------------------------------------------------------------------- render outputs


@pytest.mark.parametrize("spelling", ["same", "dotdot"])
def test_render_onto_the_input_is_refused_and_the_input_kept(
    checkpoint, videos, tmp_path, capsys, spelling
):
    video = tmp_path / "v.mp4"
    shutil.copy(videos["short"], video)
    before = video.read_bytes()
    target = video if spelling == "same" else tmp_path / "sub" / ".." / "v.mp4"
    (tmp_path / "sub").mkdir()
    assert _predict_ckpt(checkpoint, video, "--render", target) == 2
    assert _error(capsys) == (
        f"--render {target} is the input {video}: writing it would destroy it; choose another path"
    )
    assert video.read_bytes() == before


def test_render_into_a_folder_holding_an_input_is_refused(checkpoint, videos, tmp_path, capsys):
    folder = tmp_path / "renders"
    folder.mkdir()
    earlier = folder / "short.pred.mp4"  # an input that is also where its render would go
    shutil.copy(videos["short"], earlier)
    before = earlier.read_bytes()
    code = _predict_ckpt(checkpoint, videos["short"], earlier, "--render", folder)
    assert code == 2
    assert _error(capsys) == (
        f"--render {earlier} is the input {earlier}: writing it would destroy it; "
        f"choose another path"
    )
    assert earlier.read_bytes() == before


def test_a_folder_rendered_into_itself_predicts_and_renders_the_same_again(
    checkpoint, videos, tmp_path, capsys
):
    # the renders were the next run's inputs, and the same command was refused over them
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(videos["short"], folder / "a.mp4")
    shutil.copy(videos["odd"], folder / "b.mp4")
    for _ in range(2):
        assert _predict_ckpt(checkpoint, folder, "--render", folder, "-q") == 0
        assert capsys.readouterr().out == "2 of 2 inputs predicted\n"
    assert sorted(p.name for p in folder.iterdir()) == [
        "a.mp4",
        "a.pred.mp4",
        "b.mp4",
        "b.pred.mp4",
    ]


def test_a_folder_input_reports_what_only_looks_like_a_video(checkpoint, videos, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(videos["short"], folder / "good.mp4")
    (folder / "gone.mp4").symlink_to("nope")
    os.mkfifo(folder / "fifo.mp4")
    out = tmp_path / "records.jsonl"
    assert _predict_ckpt(checkpoint, folder, "-q", "--out", out) == 1
    assert capsys.readouterr().out == f"1 of 3 inputs predicted, 2 failed; records in {out}\n"
    rows = {Path(r["path"]).name: r["error"] for r in map(json.loads, out.read_text().splitlines())}
    fifo, gone = folder / "fifo.mp4", folder / "gone.mp4"
    assert rows == {  # the reasons each gets alone, without a class name ("FileNotFoundError")
        "fifo.mp4": f"{fifo} is a pipe, not a video file",
        "gone.mp4": f"{gone} is a broken symlink (to nope), not a video file",
        "good.mp4": None,
    }


def test_inputs_of_one_name_render_to_distinct_files(checkpoint, videos, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(videos["short"], a / "clip.mp4")
    shutil.copy(videos["odd"], b / "clip.mp4")
    out = tmp_path / "renders"
    assert _predict_ckpt(checkpoint, a / "clip.mp4", b / "clip.mp4", "--render", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.2.pred.mp4", "clip.pred.mp4"]
    assert probe(out / "clip.pred.mp4").num_frames == probe(videos["short"]).num_frames
    assert probe(out / "clip.2.pred.mp4").num_frames == probe(videos["odd"]).num_frames
    stdout = capsys.readouterr().out
    assert f"  rendered {out / 'clip.pred.mp4'}\n" in stdout
    assert f"  rendered {out / 'clip.2.pred.mp4'}\n" in stdout


def test_an_input_named_near_the_name_limit_renders_under_a_shortened_name(
    checkpoint, videos, tmp_path
):
    # its render's name, <stem>.pred.mp4, is past 255 bytes: it used to refuse the whole batch
    long = tmp_path / ("L" * 251 + ".mp4")
    shutil.copy(videos["short"], long)
    renders, records = tmp_path / "renders", tmp_path / "preds.jsonl"
    args = (long, videos["odd"], "--render", renders, "--out", records, "--quiet")
    assert _predict_ckpt(checkpoint, *args) == 0
    cut, odd = sorted(p.name for p in renders.iterdir())
    assert odd == f"{videos['odd'].stem}.pred.mp4"
    assert len(cut.encode()) == 255 and cut.startswith("L" * 200)
    assert cut.endswith(".pred.mp4") and "~" in cut
    assert probe(renders / cut).num_frames == probe(videos["short"]).num_frames
    assert all(json.loads(line)["ok"] for line in records.read_text().splitlines())


def test_render_names_past_the_limit_are_cut_apart_on_character_boundaries(tmp_path):
    stem = "é" * 120 + "x" * 10  # 250 bytes of UTF-8
    inputs = [f"a/{stem}1.mp4", f"b/{stem}2.mp4", f"c/{stem}1.mp4", "d/short.mp4"]
    paths = cli_inference._render_paths(str(tmp_path), inputs)
    names = [p.name for p in paths]
    assert names[3] == "short.pred.mp4"
    assert len({n.lower() for n in names}) == 4  # the two differ past the cut, the third numbered
    for name in names[:3]:
        assert len(name.encode()) <= 255 and name.startswith("é" * 100)
    assert names[0].endswith(".pred.mp4") and names[2].endswith(".2.pred.mp4")
    assert names[0].split("~")[1][:8] != names[1].split("~")[1][:8]  # the whole stems' hashes


@pytest.mark.parametrize("name", ["holiday.mp4", "holiday.pred.mp4.mkv"])
def test_render_onto_a_video_that_is_no_render_is_refused_and_kept(
    checkpoint, videos, tmp_path, capsys, name
):
    # a user's 10 s video at --render (a typo, a tab completion) became a 1 s render, rc 0
    mine = tmp_path / name
    shutil.copy(videos["long"], mine)
    before = mine.read_bytes()
    assert _predict_ckpt(checkpoint, videos["short"], "--render", mine, "-q") == 2
    assert _error(capsys) == (
        f"--render {mine} exists and is not a render of predict (a video it wrote, or one named "
        f"<name>.pred{mine.suffix}): writing it would destroy it; choose another path or remove it"
    )
    assert mine.read_bytes() == before


@pytest.mark.parametrize("name", ["match.pred.mkv", "annotated.mp4", "annotated.mkv"])
def test_an_earlier_render_is_replaced_whatever_its_name(
    checkpoint, videos, tmp_path, capsys, name
):
    # a rerun of --render annotated.mp4 was refused: renders were known only by a .pred. name
    render = tmp_path / name
    for video in ("long", "short"):
        assert _predict_ckpt(checkpoint, videos[video], "--render", render, "-q") == 0
    assert capsys.readouterr().out == "1 of 1 inputs predicted\n" * 2
    assert probe(render).num_frames == probe(videos["short"]).num_frames


def test_an_empty_file_at_render_is_replaced(checkpoint, videos, tmp_path):
    render = tmp_path / "annotated.mp4"
    render.write_bytes(b"")  # nothing to lose
    assert _predict_ckpt(checkpoint, videos["short"], "--render", render, "-q") == 0
    assert probe(render).num_frames == probe(videos["short"]).num_frames


def test_an_existing_folder_at_render_takes_one_input_inside_it(checkpoint, videos, tmp_path):
    out = tmp_path / "renders"
    out.mkdir()
    assert _predict_ckpt(checkpoint, videos["short"], "--render", out, "--quiet") == 0
    assert [p.name for p in out.iterdir()] == [f"{videos['short'].stem}.pred.mp4"]


def test_a_video_file_name_at_render_for_several_inputs_is_refused(
    checkpoint, videos, tmp_path, capsys
):
    # it used to become a folder named out.mp4
    out = tmp_path / "out.mp4"
    assert _predict_ckpt(checkpoint, videos["short"], videos["odd"], "--render", out) == 2
    assert _error(capsys) == (
        f"--render {out} names a video file, but the inputs are 2 videos: give a folder, which "
        "gets one <name>.pred.mp4 each"
    )
    assert not out.exists()


# ---------------------------------------------------------------------------------- render failures


def test_a_render_failure_fails_that_input_and_the_others_go_on(
    checkpoint, videos, tmp_path, capsys, caplog, monkeypatch
):
    # the render of cut.mp4 reads a copy of it cut short, so that its decoder fails part-way
    # (a file cut short is itself reported before any render: it is never rendered)
    from octvideo.inference import render as render_module

    whole = faststart(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    shutil.copyfile(whole, cut)
    shorn = tmp_path / "shorn.mp4"
    shorn.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    real = render_module.render

    def render(result, classes, out, **kwargs):
        if result.path == str(cut):
            result = dataclasses.replace(result, path=str(shorn))
        return real(result, classes, out, **kwargs)

    monkeypatch.setattr(render_module, "render", render)
    renders, records = tmp_path / "renders", tmp_path / "preds.jsonl"
    code = _predict_ckpt(checkpoint, cut, whole, "--render", renders, "--out", records, "--quiet")
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == f"1 of 2 inputs predicted, 1 failed; records in {records}\n"
    (line,) = captured.err.splitlines()  # -q: the failed input's line alone
    assert line.startswith(f"predict 1/2 {cut}: FAILED: cannot render {renders / 'cut.pred.mp4'}")
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sorted(p.name for p in renders.iterdir()) == ["whole.pred.mp4"]  # no half file
    rows = {r["path"]: r for r in map(json.loads, records.read_text().splitlines())}
    assert rows[str(whole)]["ok"] and rows[str(whole)]["error"] is None
    bad = rows[str(cut)]
    assert bad["ok"] is False and len(bad["top"]) == 3  # the prediction is kept
    assert bad["error"].startswith(f"cannot render {renders / 'cut.pred.mp4'}: InvalidDataError")


def test_a_recording_cut_short_keeps_the_records_of_the_windows_before_the_cut(
    checkpoint, videos, tmp_path, capsys
):
    # it was one failed record, with FFmpeg's "avcodec_send_packet()" for its reason; then its
    # windows were kept but the summary line counted it failed
    whole = faststart(tmp_path / "whole.mp4")  # 6 s at 10 fps
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    records = tmp_path / "preds.jsonl"
    inputs = (cut, videos["short"], videos["corrupt"])
    code = _predict_ckpt(checkpoint, *inputs, "--window", "1s", "--out", records, "-q")
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == (
        f"1 of 3 inputs predicted, 1 cut short, 1 failed; records in {records}\n"
    )
    line, failed = captured.err.splitlines()  # -q: the inputs not predicted whole
    assert re.fullmatch(
        rf"predict 1/3 {re.escape(str(cut))}: CUT SHORT: DecodeError: {re.escape(str(cut))}: "
        r"frames \d+ to \d+ of \d+ \(from [\d.]+ s\) cannot be decoded and the file's index lists "
        r"60 frames \(6\.0 s\), \d+ of them missing: the file is truncated; \d+ of \d+ windows "
        r"predicted, the last \d+ dropped \([\d.]+ s\)",
        line,
    )
    assert failed.startswith(f"predict 3/3 {videos['corrupt']}: FAILED: DecodeError: ")
    rows = [json.loads(row) for row in records.read_text().splitlines()]
    video = next(r for r in rows if r["type"] == "video")
    assert video["path"] == str(cut) and video["ok"] is False and video["top"]
    assert [r["window"] for r in rows[: rows.index(video)]] == list(range(video["num_windows"]))
    assert video["num_windows"] >= 4


def test_a_recording_cut_short_ends_its_table_with_cut_short(checkpoint, tmp_path, capsys):
    whole = faststart(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    assert _predict_ckpt(checkpoint, cut, "--window", "1s") == 1
    *table, summary = capsys.readouterr().out.splitlines()
    assert table[-1].startswith(f"  CUT SHORT  DecodeError: {cut}: frames ")
    assert summary == "0 of 1 inputs predicted, 1 cut short"


def test_a_recording_cut_short_is_not_rendered_and_its_lines_say_so(checkpoint, tmp_path, capsys):
    # its records were kept, but --render wrote nothing and no line said so
    whole = faststart(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    render = tmp_path / "cut.pred.mp4"
    note = f"{render} not rendered: only an input decoded to its end is rendered"
    assert _predict_ckpt(checkpoint, cut, "--window", "1s", "--render", render) == 1
    captured = capsys.readouterr()
    *table, summary = captured.out.splitlines()
    assert table[-2].startswith("  CUT SHORT  DecodeError: ") and table[-1] == f"  {note}"
    assert summary == "0 of 1 inputs predicted, 1 cut short"
    assert _predict_ckpt(checkpoint, cut, "--window", "1s", "--render", render, "-q") == 1
    (line,) = capsys.readouterr().err.splitlines()  # -q: the line of an input not predicted
    assert line.startswith(f"predict 1/1 {cut}: CUT SHORT: DecodeError: ")
    assert re.search(rf"dropped; {re.escape(note)} \([\d.]+ s\)$", line), line
    assert not render.exists()


@pytest.mark.parametrize("name", ["out.txt", "noext"])
def test_render_name_without_a_video_extension_is_refused_first(
    checkpoint, videos, tmp_path, capsys, name
):
    target = tmp_path / name
    assert _predict_ckpt(checkpoint, videos["short"], "--render", target) == 2
    assert _error(capsys) == (
        f"--render {target}: use a .mp4, .mkv, .mov, .m4v, .avi file name, or an existing folder"
    )
    assert not target.exists()


# ---------------------------------------------------------------------------------- arguments first


@pytest.mark.parametrize(
    "bad",
    [
        ["--views", "2x2"],
        ["--render", "x.txt"],
        ["--window", "0s"],
        ["--ckpt", "missing.ckpt"],
    ],
)
def test_a_refused_command_leaves_the_earlier_records(checkpoint, videos, tmp_path, capsys, bad):
    out = tmp_path / "prev.jsonl"
    out.write_bytes(EARLIER)
    assert _predict_ckpt(checkpoint, videos["short"], "--out", out, *bad) == 2
    _error(capsys)
    assert out.read_bytes() == EARLIER


@pytest.mark.parametrize("bad", [["--views", "2x2"], ["--ckpt", "bad.ckpt"], ["--window", "0s"]])
def test_a_refused_command_makes_no_output_folder(checkpoint, videos, tmp_path, capsys, bad):
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    out, render = tmp_path / "new" / "o.jsonl", tmp_path / "renders"
    inputs = [videos["short"], videos["odd"]]  # two: --render is a folder
    bad = [str(tmp_path / b) if b == "bad.ckpt" else b for b in bad]
    assert _predict_ckpt(checkpoint, *inputs, "--out", out, "--render", render, *bad) == 2
    _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt"]


@pytest.mark.parametrize("views", ["2x2", "0x1", "3x0", "101x1"])
def test_views_the_model_cannot_take_are_one_line_errors(checkpoint, videos, capsys, views):
    assert _predict_ckpt(checkpoint, videos["short"], "--views", views) == 2
    assert _error(capsys) == (
        f"--views '{views}': views must be N temporal clips (1 to 100) x 1 or 3 crops, got {views}"
    )


# ------------------------------------------------------------------------------------- output paths


def test_out_paths_that_cannot_be_written_are_one_line_errors(checkpoint, videos, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    cases = {
        "x.txt": "--out x.txt: use a .jsonl or .csv file name",
        "x.json": "--out x.json: use a .jsonl or .csv file name",  # JSON lines are not JSON
        f"{tmp_path}/dir/": f"--out {tmp_path}/dir: use a .jsonl or .csv file name",
        str(folder): f"--out {folder} is a folder; give a file name",
        f"{a_file}/x.jsonl": f"--out {a_file}/x.jsonl: {a_file} is a file, not a folder; "
        f"choose another path",
        "/proc/x.jsonl": "--out /proc/x.jsonl: cannot write in /proc (No such file or "
        "directory); choose another path",
    }
    for out, message in cases.items():
        assert _predict_ckpt(checkpoint, videos["short"], "--out", out) == 2, out
        assert _error(capsys) == message
    assert a_file.read_text() == "kept"


def test_render_inside_a_file_is_a_one_line_error(checkpoint, videos, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    assert _predict_ckpt(checkpoint, videos["short"], "--render", a_file / "x.mp4") == 2
    assert _error(capsys) == (
        f"--render {a_file}/x.mp4: {a_file} is a file, not a folder; choose another path"
    )
    two = [videos["short"], videos["odd"]]
    assert _predict_ckpt(checkpoint, *two, "--render", a_file) == 2
    assert _error(capsys) == f"--render {a_file}: {a_file} is a file, not a folder; choose " + (
        "another path"
    )


# -------------------------------------------------------------------------------------- checkpoints


def _rewrite(checkpoint, tmp_path, change) -> Path:
    saved = load_checkpoint(checkpoint)
    saved = change(saved)
    path = tmp_path / "changed.ckpt"
    atomic_save(saved, path)
    return path


def _wider(saved):
    saved["hyper_parameters"]["meta"]["model"] = {
        **saved["hyper_parameters"]["meta"]["model"],
        "extra": {"width": 16},
    }
    return saved


def test_checkpoint_that_does_not_fit_its_model_is_one_line(checkpoint, videos, tmp_path, capsys):
    path = _rewrite(checkpoint, tmp_path, _wider)
    with pytest.raises(CheckpointError) as info:
        Predictor.from_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"checkpoint {str(path)!r} does not fit the model its metadata describes ('c2d_r18'): "
        f"shape differs: "
    )
    assert _predict_ckpt(path, videos["short"]) == 2
    assert _error(capsys) == message
    assert main(["export", "--ckpt", str(path), "--format", "onnx", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert err == f"octvideo export: error: {message}\n"


def _fewer_classes(saved):
    meta = saved["hyper_parameters"]["meta"]
    meta["classes"] = meta["classes"][:-1]
    return saved


def test_a_checkpoint_refusal_reaches_main_with_its_field(checkpoint, videos, tmp_path):
    path = _rewrite(checkpoint, tmp_path, _fewer_classes)
    for argv in (
        ["predict", "--ckpt", str(path), str(videos["short"])],
        ["export", "--ckpt", str(path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
    ):
        args = build_parser().parse_args(argv)
        with pytest.raises(CheckpointError) as info:
            args.func(args)
        assert info.value.field is not None, argv  # not a UsageError rebuilt from its text


def test_a_bugs_value_error_while_loading_is_not_called_the_users(checkpoint, videos, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("an internal shape that does not add up")

    monkeypatch.setattr(cli_inference.Predictor, "from_checkpoint", broken)
    with pytest.raises(ValueError, match="internal shape"):
        _predict_ckpt(checkpoint, videos["short"])


@pytest.mark.parametrize(("payload", "kind"), [([1, 2, 3], "list"), (torch.zeros(3), "Tensor")])
def test_checkpoint_holding_no_dict_is_one_line(videos, tmp_path, capsys, payload, kind):
    path = tmp_path / "odd.ckpt"
    atomic_save(payload, path)
    assert _predict_ckpt(path, videos["short"]) == 2
    message = _error(capsys)  # one line naming the file and what it holds
    assert message.startswith(f"checkpoint {str(path)!r} holds a {kind}, not ")
    assert "'octvideo train'" in message


# ----------------------------------------------------------------------------------- topk and quiet


def test_render_draws_topk_classes_and_quiet_prints_nothing(checkpoint, videos, tmp_path, capsys):
    one, three = tmp_path / "one.mp4", tmp_path / "three.mp4"
    assert _predict_ckpt(checkpoint, videos["long"], "--render", one, "--topk", "1", "--quiet") == 0
    assert (
        _predict_ckpt(checkpoint, videos["long"], "--render", three, "--topk", "3", "--quiet") == 0
    )
    assert capsys.readouterr().out == "1 of 1 inputs predicted\n" * 2  # no "rendered ..."
    # the label box is 12 rows a class + 6, black right of the text: rows 20-40 with 3 classes
    rows_one = decode(one)[:, 20:40, 60:].float().mean()
    rows_three = decode(three)[:, 20:40, 60:].float().mean()
    assert rows_three < 5 < 15 < rows_one


def test_q_is_short_for_quiet(checkpoint, videos, capsys):
    assert _predict_ckpt(checkpoint, videos["short"], "-q") == 0
    captured = capsys.readouterr()
    assert captured.out == "1 of 1 inputs predicted\n"
    assert "predict 1/1" not in captured.err


# -------------------------------------------------------------------------------------- input lists


def test_input_list_that_is_not_utf8_is_one_line(checkpoint, videos, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{videos['short']}\n".encode() + b"caf\xe9.mp4\n")
    message = f"input list {listing}:2: not UTF-8 text (byte 0xe9); save it as UTF-8"
    with pytest.raises(ValueError, match="not UTF-8 text"):
        expand_inputs([listing])
    assert _predict_ckpt(checkpoint, listing) == 2
    assert _error(capsys) == message


def test_cli_jsonl_one_record_per_window_and_failures_reported(
    checkpoint, videos, tmp_path, capsys
):
    out = tmp_path / "preds.jsonl"
    inputs = [str(videos["long"]), str(videos["corrupt"]), str(videos["odd"])]
    code = main(
        [
            "predict",
            "--ckpt",
            str(checkpoint),
            *inputs,
            "--window",
            "2s",
            "--stride",
            "1s",
            "--out",
            str(out),
            "--topk",
            "2",
            "--quiet",
        ]
    )
    assert code == 1  # one input failed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_path: dict[str, list[dict]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    long_rows = by_path[inputs[0]]
    info = probe(videos["long"])
    n_windows = len(window_times(info.num_frames / info.fps, 2.0, 1.0))
    assert [r["type"] for r in long_rows] == ["window"] * n_windows + ["video"]
    assert long_rows[-1]["ok"] and long_rows[-1]["num_windows"] == n_windows
    assert all(len(r["top"]) == 2 for r in long_rows)
    bad = by_path[inputs[1]]
    assert len(bad) == 1 and bad[0]["ok"] is False and "DecodeError" in bad[0]["error"]
    assert by_path[inputs[2]][-1]["ok"]
    assert "2 of 3 inputs predicted, 1 failed" in capsys.readouterr().out


def test_cli_csv_and_exit_zero_when_all_succeed(checkpoint, videos, tmp_path):
    out = tmp_path / "new" / "preds.csv"  # its folder made by the write
    code = main(
        ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(out), "--quiet"]
    )
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert (
        len(rows) == 1
        and rows[0]["type"] == "video"
        and rows[0]["label1"] in ("left", "right", "still")
    )


def test_cli_table_output(checkpoint, videos, capsys):
    assert main(["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--topk", "3"]) == 0
    out = capsys.readouterr().out
    assert str(videos["short"]) in out
    assert "  1. " in out and "  3. " in out


def test_cli_bad_arguments_are_one_line_errors(checkpoint, videos, capsys):
    assert main(["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--views", "ten"]) == 2
    assert "--views 'ten': views must be 'center', 'multi', 'NxC' (e.g. '10x3')" in (
        capsys.readouterr().err
    )
    assert main(["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--stride", "1s"]) == 2
    assert "--stride needs --window" in capsys.readouterr().err
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--window", "1s"]
    assert main([*args, "--views", "10x3"]) == 2  # it used to run one clip per window silently
    assert "--views '10x3' does not apply with --window: each window is one centre clip" in (
        capsys.readouterr().err
    )
    assert main(["predict", "--ckpt", "missing.ckpt", str(videos["short"])]) == 2
    assert "missing.ckpt" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_keeps_the_records_of_the_inputs_done_and_says_how_many(
    checkpoint, videos, tmp_path, capsys, monkeypatch, workers
):
    out = tmp_path / "preds.jsonl"
    out.write_bytes(EARLIER)
    written, real = [], cli_inference.records

    def records(result, classes, k):  # the second input's records: SIGTERM arrives
        if written:
            os.kill(os.getpid(), signal.SIGTERM)
        written.append(result.path)
        return real(result, classes, k)

    monkeypatch.setattr(cli_inference, "records", records)
    short = videos["short"]
    code = _predict("--ckpt", checkpoint, short, short, short, "--out", out, "--workers", workers)
    assert code == 143
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == f"1 of 3 inputs predicted; records in {out}"
    assert captured.err.splitlines()[-1] == "octvideo predict: stopped by SIGTERM"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["path"] for line in lines} == {str(short)}
    assert [line["type"] for line in lines].count("video") == 1
    assert sorted(os.listdir(tmp_path)) == ["preds.jsonl"]  # no temporary file left


def _stop(how: str) -> None:
    if how == "SIGTERM":
        os.kill(os.getpid(), signal.SIGTERM)
    raise RuntimeError("a bug")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("where", ["reading", "writing"])
@pytest.mark.parametrize("how", ["SIGTERM", "error"])
def test_a_stop_before_the_first_record_leaves_an_earlier_out_as_it_was(
    checkpoint, videos, tmp_path, capsys, monkeypatch, suffix, where, how
):
    # stopped while the first input is read (a long video under --window) or before its records
    # are written, a run has nothing to put in place of an earlier file: it used to empty it
    out = tmp_path / f"preds{suffix}"
    out.write_bytes(EARLIER)
    if where == "reading":
        real = cli_inference.predict_many

        def predict_many(*args, **kwargs):
            results = real(*args, **kwargs)
            _stop(how)
            yield from results

        monkeypatch.setattr(cli_inference, "predict_many", predict_many)
    else:
        monkeypatch.setattr(cli_inference, "records", lambda *args: _stop(how))
    short = videos["short"]
    args = ("--ckpt", checkpoint, short, short, "--out", out, "--workers", 0)
    if how == "error":
        with pytest.raises(RuntimeError, match="a bug"):
            _predict(*args)
    else:
        assert _predict(*args) == 143
        captured = capsys.readouterr()
        assert captured.out.splitlines()[-1] == f"0 of 2 inputs predicted; {out} is left as it was"
        assert captured.err.splitlines()[-1] == "octvideo predict: stopped by SIGTERM"
    assert out.read_bytes() == EARLIER
    assert sorted(os.listdir(tmp_path)) == [out.name]  # no temporary file left


def test_a_stop_before_the_first_record_writes_no_out(
    checkpoint, videos, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "preds.jsonl"
    monkeypatch.setattr(cli_inference, "records", lambda *args: _stop("SIGTERM"))
    assert _predict("--ckpt", checkpoint, videos["short"], "--out", out, "--workers", 0) == 143
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"0 of 1 inputs predicted; no {out} written"
    )
    assert os.listdir(tmp_path) == []


def test_predict_out_into_a_full_stdout_writes_every_record(
    checkpoint, videos, earlier, capsys, monkeypatch
):
    # ``octvideo predict --out F ... > /dev/full``: it stopped at its first table with status 1
    # and an earlier complete F replaced by the one record done; stdout is a view of the records
    inputs = [str(videos[n]) for n in ("short", "odd", "audio")]
    monkeypatch.setattr("sys.stdout", FullStream())
    assert _predict("--ckpt", checkpoint, *inputs, "--out", earlier, "--workers", 0) == 0
    rows = [json.loads(line) for line in earlier.read_text().splitlines()]
    assert [r["path"] for r in rows if r["type"] == "video"] == inputs
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2].startswith(f"predict 3/3 {inputs[-1]}: ok (")  # the progress on stderr
    assert lines[-1] == (
        "octvideo predict: the lines to stdout from the first that could not be written on were "
        "dropped (No space left on device)"
    )


def test_predict_into_a_full_stdout_stops_with_one_line(checkpoint, videos, capsys, monkeypatch):
    # its records are the tables it prints: nowhere to go, so it stops there
    monkeypatch.setattr("sys.stdout", FullStream())
    assert _predict("--ckpt", checkpoint, videos["short"], videos["odd"], "--workers", 0) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "octvideo predict: stopped: cannot write to stdout or stderr (No space left on device); "
        "the files written are kept"
    )


def test_open_files_are_reserved_for_the_workers_that_start_before_the_model_loads(
    videos, monkeypatch, capsys
):
    # --workers was checked at parse time for its whole count: --workers 8 was refused for one
    # input, where predict starts one worker. A fork-server worker holds 16 + 4 a worker
    monkeypatch.setattr(workers_module, "usable_cores", lambda: 4)
    monkeypatch.setattr(cli_inference, "start_worker_server", lambda: None)
    fake_open_file_limit(monkeypatch, soft=20, hard=20)
    two = [videos["short"], videos["odd"]]
    assert _predict("--ckpt", "missing.ckpt", *two, "--workers", 8) == 2
    assert _error(capsys) == (  # before the checkpoint is looked for
        "the open-file limit 20 is too low for 2 workers (--workers 8); raise `ulimit -n` to at "
        "least 24 or use fewer workers"
    )
    assert _predict("--ckpt", "missing.ckpt", videos["short"], "--workers", 8) == 2
    line = _error(capsys)
    assert "missing.ckpt" in line and "open-file" not in line
