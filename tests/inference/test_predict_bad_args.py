"""``octvideo predict`` with bad arguments and outputs: one-line errors before any work, no input or
earlier output overwritten, a render failure reported as that input's failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.data.decoding import decode, probe
from octvideo.engine.checkpoint import atomic_save, load_checkpoint
from octvideo.errors import CheckpointError
from octvideo.inference import Predictor, window_times
from octvideo.inference.predictor import expand_inputs


def _predict(checkpoint, *args: str) -> int:
    return main(["predict", "--ckpt", str(checkpoint), *map(str, args)])


def _error(capsys) -> str:
    """The one line ``main`` printed for a refused command (nothing else on stderr)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.removeprefix("octvideo predict: error: ").removesuffix("\n")


def _faststart(path: Path, n: int = 60) -> Path:
    """An MP4 with its index first, so that a truncated copy still opens and predicts."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(n):
            array = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


# ------------------------------------------------------------------------------ 1. render outputs


@pytest.mark.parametrize("spelling", ["same", "dotdot"])
def test_render_onto_the_input_is_refused_and_the_input_kept(
    checkpoint, videos, tmp_path, capsys, spelling
):
    video = tmp_path / "v.mp4"
    shutil.copy(videos["short"], video)
    before = video.read_bytes()
    target = video if spelling == "same" else tmp_path / "sub" / ".." / "v.mp4"
    (tmp_path / "sub").mkdir()
    assert _predict(checkpoint, video, "--render", target) == 2
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
    code = _predict(checkpoint, videos["short"], earlier, "--render", folder)
    assert code == 2
    assert _error(capsys) == (
        f"--render {earlier} is the input {earlier}: writing it would destroy it; "
        f"choose another path"
    )
    assert earlier.read_bytes() == before


def test_inputs_of_one_name_render_to_distinct_files(checkpoint, videos, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(videos["short"], a / "clip.mp4")
    shutil.copy(videos["odd"], b / "clip.mp4")
    out = tmp_path / "renders"
    assert _predict(checkpoint, a / "clip.mp4", b / "clip.mp4", "--render", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.2.pred.mp4", "clip.pred.mp4"]
    assert probe(out / "clip.pred.mp4").num_frames == probe(videos["short"]).num_frames
    assert probe(out / "clip.2.pred.mp4").num_frames == probe(videos["odd"]).num_frames
    stdout = capsys.readouterr().out
    assert f"  rendered {out / 'clip.pred.mp4'}\n" in stdout
    assert f"  rendered {out / 'clip.2.pred.mp4'}\n" in stdout


# ------------------------------------------------------------------------- 3. render failures


def test_a_render_failure_fails_that_input_and_the_others_go_on(
    checkpoint, videos, tmp_path, capsys
):
    whole = _faststart(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    renders, records = tmp_path / "renders", tmp_path / "preds.jsonl"
    code = _predict(checkpoint, cut, whole, "--render", renders, "--out", records, "--quiet")
    assert code == 1
    assert capsys.readouterr().out == "1 of 2 inputs predicted, 1 failed; records in " + (
        f"{records}\n"
    )
    assert sorted(p.name for p in renders.iterdir()) == ["whole.pred.mp4"]  # no half file
    rows = {r["path"]: r for r in map(json.loads, records.read_text().splitlines())}
    assert rows[str(whole)]["ok"] and rows[str(whole)]["error"] is None
    bad = rows[str(cut)]
    assert bad["ok"] is False and len(bad["top"]) == 3  # the prediction is kept
    assert bad["error"].startswith(f"cannot render {renders / 'cut.pred.mp4'}: InvalidDataError")


def test_a_failed_render_keeps_an_earlier_file(predictor_and_cut, tmp_path):
    predictor, cut = predictor_and_cut
    from octvideo.inference.render import render

    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier render")
    result = predictor.predict(cut)
    assert result.ok
    with pytest.raises(av.FFmpegError):
        render(result, predictor.classes, out)
    assert out.read_bytes() == b"an earlier render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.fixture
def predictor_and_cut(checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("cut")
    whole = _faststart(root / "whole.mp4")
    cut = root / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    return Predictor.from_checkpoint(checkpoint), cut


@pytest.mark.parametrize("name", ["out.txt", "noext"])
def test_render_name_without_a_video_extension_is_refused_first(
    checkpoint, videos, tmp_path, capsys, name
):
    target = tmp_path / name
    assert _predict(checkpoint, videos["short"], "--render", target) == 2
    assert _error(capsys) == f"--render {target}: use a .mp4, .mkv, .mov, .m4v, .avi file name"
    assert not target.exists()


# ------------------------------------------------------------------- 4. and 5. arguments first


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
    out.write_text('{"type": "video"}\n')
    assert _predict(checkpoint, videos["short"], "--out", out, *bad) == 2
    _error(capsys)
    assert out.read_text() == '{"type": "video"}\n'


@pytest.mark.parametrize("views", ["2x2", "0x1", "3x0", "101x1"])
def test_views_the_model_cannot_take_are_one_line_errors(checkpoint, videos, capsys, views):
    assert _predict(checkpoint, videos["short"], "--views", views) == 2
    assert _error(capsys) == (
        f"--views {views}: N temporal clips (1 to 100) x 1 or 3 crops, e.g. 10x3 or 5x1"
    )


# --------------------------------------------------------------------------- 6. output paths


def test_out_paths_that_cannot_be_written_are_one_line_errors(checkpoint, videos, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    cases = {
        "x.txt": "--out x.txt: use a .jsonl or .csv file name",
        f"{tmp_path}/dir/": f"--out {tmp_path}/dir: use a .jsonl or .csv file name",
        str(folder): f"--out {folder} is a folder; give a file name",
        f"{a_file}/x.jsonl": f"--out {a_file}/x.jsonl: {a_file} is a file, not a folder; "
        f"choose another path",
        "/proc/x.jsonl": "--out /proc/x.jsonl: cannot write in /proc (No such file or "
        "directory); choose another path",
    }
    for out, message in cases.items():
        assert _predict(checkpoint, videos["short"], "--out", out) == 2, out
        assert _error(capsys) == message
    assert a_file.read_text() == "kept"


def test_render_inside_a_file_is_a_one_line_error(checkpoint, videos, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    assert _predict(checkpoint, videos["short"], "--render", a_file / "x.mp4") == 2
    assert _error(capsys) == (
        f"--render {a_file}/x.mp4: {a_file} is a file, not a folder; choose another path"
    )
    two = [videos["short"], videos["odd"]]
    assert _predict(checkpoint, *two, "--render", a_file) == 2
    assert _error(capsys) == f"--render {a_file}: {a_file} is a file, not a folder; choose " + (
        "another path"
    )


# ---------------------------------------------------------------------------------- 7. windows


@pytest.mark.parametrize(
    ("window", "stride", "expected"),
    [
        (1.0, 5.0, [(0.0, 1.0), (5.0, 6.0), (10.0, 11.0)]),
        (2.0, 3.0, [(0.0, 2.0), (3.0, 5.0), (6.0, 8.0), (9.0, 11.0)]),
        (2.0, 4.0, [(0.0, 2.0), (4.0, 6.0), (8.0, 10.0)]),
        (5.0, 6.0, [(0.0, 5.0), (6.0, 11.0)]),
        (5.0, 7.0, [(0.0, 5.0), (7.0, 12.0)]),
        (3.0, 3.0, [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 12.0)]),
        (5.0, 2.0, [(0.0, 5.0), (2.0, 7.0), (4.0, 9.0), (6.0, 11.0), (8.0, 12.0)]),
        (20.0, 30.0, [(0.0, 12.0)]),
    ],
)
def test_windows_start_before_the_end_and_have_a_length(window, stride, expected):
    assert window_times(12.0, window, stride) == expected


def test_video_score_averages_only_real_windows(checkpoint, videos):
    predictor = Predictor.from_checkpoint(checkpoint)
    result = predictor.predict(videos["long"], window="1s", stride="5s")  # 9.5 s
    assert [(w.start, w.end) for w in result.windows] == [(0.0, 1.0), (5.0, 6.0)]
    mean = torch.stack([w.probs for w in result.windows]).mean(0)
    torch.testing.assert_close(result.video.probs, mean)


# ------------------------------------------------------------------------------ 8. checkpoints


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
    assert _predict(path, videos["short"]) == 2
    assert _error(capsys) == message
    assert main(["export", "--ckpt", str(path), "--format", "onnx", "--out", "m.onnx"]) == 2
    err = capsys.readouterr().err
    assert err == f"octvideo export: error: {message}\n"


@pytest.mark.parametrize(("payload", "kind"), [([1, 2, 3], "list"), (torch.zeros(3), "Tensor")])
def test_checkpoint_holding_no_dict_is_one_line(videos, tmp_path, capsys, payload, kind):
    path = tmp_path / "odd.ckpt"
    atomic_save(payload, path)
    assert _predict(path, videos["short"]) == 2
    message = _error(capsys)  # one line naming the file and what it holds
    assert message.startswith(f"checkpoint {str(path)!r} holds a {kind}, not ")
    assert "'octvideo train'" in message


# ------------------------------------------------------------------------- 9. topk and quiet


@pytest.mark.parametrize(
    ("option", "value"), [("--topk", "-1"), ("--topk", "0"), ("--batch-size", "0")]
)
def test_counts_below_one_are_refused_by_the_parser(checkpoint, videos, capsys, option, value):
    with pytest.raises(SystemExit) as info:
        _predict(checkpoint, videos["short"], option, value)
    assert info.value.code == 2
    assert f"argument {option}: {value!r}: give 1 or more" in capsys.readouterr().err


def test_render_draws_topk_classes_and_quiet_prints_nothing(checkpoint, videos, tmp_path, capsys):
    one, three = tmp_path / "one.mp4", tmp_path / "three.mp4"
    assert _predict(checkpoint, videos["long"], "--render", one, "--topk", "1", "--quiet") == 0
    assert _predict(checkpoint, videos["long"], "--render", three, "--topk", "3", "--quiet") == 0
    assert capsys.readouterr().out == "1 of 1 inputs predicted\n" * 2  # no "rendered ..."
    # the label box is 12 rows a class + 6, black right of the text: rows 20-40 with 3 classes
    rows_one = decode(one)[:, 20:40, 60:].float().mean()
    rows_three = decode(three)[:, 20:40, 60:].float().mean()
    assert rows_three < 5 < 15 < rows_one


# ---------------------------------------------------------------------------- 10. input lists


def test_input_list_that_is_not_utf8_is_one_line(checkpoint, videos, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{videos['short']}\n".encode() + b"caf\xe9.mp4\n")
    offset = len(f"{videos['short']}\n".encode()) + 3
    message = (
        f"input list {listing} is not UTF-8 text (byte {offset} is b'\\xe9'); save it as UTF-8"
    )
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        expand_inputs([listing])
    assert _predict(checkpoint, listing) == 2
    assert _error(capsys) == message
