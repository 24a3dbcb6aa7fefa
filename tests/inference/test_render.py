"""``predict --render`` outputs: never through a symbolic link, a real full disk stops the run in
one line with no half video left, a failed render keeps an earlier file, frames are labelled by
their time from the first frame (a clip cut from a longer recording starts at a time other than
0), each frame keeps its source time (a variable frame rate keeps the video's length), and a video
with a display matrix (a phone shot upright) is drawn on as displayed."""

from __future__ import annotations

import os
import random
import types

import av
import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.errors import DecodeError, UsageError
from octvideo.inference import Predictor
from octvideo.inference import render as render_module
from octvideo.inference.predictor import (
    Prediction,
    VideoResult,
    window_times,
)
from octvideo.inference.render import (
    RENDER_EXTENSIONS,
    RENDER_TAG,
    _label_for,
    is_tagged_render,
    render,
)
from tests.data.media_helpers import (
    NUM_FRAMES,
    cover_first,
    cover_only,
    encode_turned,
    frame_index,
    make_frames,
    turned_pattern,
    with_cover,
)
from tests.inference.media_helpers import encode_timed, faststart
from tests.small_disk import fill, small_disk


def test_render_onto_a_symbolic_link_is_refused_and_its_target_kept(
    checkpoint, videos, tmp_path, capsys
):
    target = tmp_path / "holiday.mp4"
    target.write_bytes(b"a video of someone's")
    link = tmp_path / "out.mp4"
    link.symlink_to(target)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--render", str(link)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --render {link} is a symbolic link to {target}; give the real "
        "path or remove the link\n"
    )
    assert target.read_bytes() == b"a video of someone's"


def test_render_itself_refuses_a_symbolic_link(checkpoint, videos, tmp_path):
    predictor = Predictor.from_checkpoint(checkpoint)
    result = predictor.predict(str(videos["short"]))
    target = tmp_path / "holiday.mp4"
    target.write_bytes(b"keep")
    link = tmp_path / "out.mp4"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="is a symbolic link to"):
        render(result, predictor.classes, link)
    assert target.read_bytes() == b"keep" and sorted(os.listdir(tmp_path)) == [
        "holiday.mp4",
        "out.mp4",
    ]


def test_render_on_a_real_full_disk_stops_in_one_line(
    request, checkpoint, videos, tmp_path, capsys
):
    disk = small_disk(request, tmp_path / "disk")
    out = disk / "short.pred.mp4"
    fill(disk, leave=0)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["long"]), "--render", str(out)]
    assert main([*args, "--quiet"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo predict: stopped: cannot write {out} (No space left on device); no part of it "
        "is left; free space there or choose another folder"
    )
    assert sorted(os.listdir(disk)) == ["ballast"]


class _CountedWindow(Prediction):
    """A window that counts the reads of its times."""

    reads = 0

    def __getattribute__(self, name: str):
        if name in ("start", "end"):
            _CountedWindow.reads += 1
        return object.__getattribute__(self, name)


def test_each_frame_finds_its_window_without_reading_every_window(videos, tmp_path):
    # a day at a 1 s stride makes 86 400 windows: reading all of them for each frame made a
    # render of a long video take frames x windows steps
    probs = torch.tensor([0.2, 0.3, 0.5])
    windows = [_CountedWindow(probs, k * 0.01, k * 0.01 + 0.02) for k in range(20_000)]
    result = VideoResult(
        path=str(videos["short"]),
        video=Prediction(probs, 0.0, 0.6),
        windows=windows,
        duration=0.6,
        num_frames=6,
        fps=10.0,
    )
    _CountedWindow.reads = 0
    render(result, ["a", "b", "c"], tmp_path / "out.mp4", k=1)
    assert _CountedWindow.reads <= 2 * len(windows) + 100  # the centres, once
    # and the window found is the one a search of every window finds
    rng = random.Random(0)
    probs = torch.zeros(3)
    for stride, window in [(1.0, 2.0), (0.5, 0.5), (3.0, 1.0), (0.3, 1.7)]:
        times = window_times(20.3, window, stride)
        result = VideoResult(
            path="x.mp4",
            video=Prediction(probs, 0.0, 20.3),
            windows=[Prediction(probs, s, e) for s, e in times],
        )
        centres = sorted({(s + e) / 2 for s, e in times})
        ts = [rng.uniform(-1.0, 21.0) for _ in range(300)] + centres
        ts += [(a + b) / 2 for a, b in zip(centres, centres[1:], strict=False)]  # ties
        for t in ts:
            expected = min(result.windows, key=lambda w: abs((w.start + w.end) / 2 - t))
            assert _label_for(result, t) is expected, (stride, window, t)


def test_a_failed_render_keeps_an_earlier_file(predictor_and_cut, tmp_path):
    predictor, whole, cut = predictor_and_cut
    from octvideo.inference.render import render

    out = tmp_path / "out.pred.mp4"  # named as renders are: an earlier one
    out.write_bytes(b"an earlier render")
    result = predictor.predict(whole)
    assert result.ok
    result.path = str(cut)  # the file cut short after it was predicted: decoding fails part-way
    with pytest.raises(av.FFmpegError):
        render(result, predictor.classes, out)
    assert out.read_bytes() == b"an earlier render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pred.mp4"]


@pytest.mark.parametrize("kind", ["user video", "read-only", "folder"])
def test_render_replaces_only_an_earlier_writable_render(predictor, videos, tmp_path, kind):
    # the Python API as predict --render: render() replaced a user's holiday.mp4 without a word
    result = predictor.predict(str(videos["short"]))
    out = tmp_path / "holiday.mp4"
    if kind == "folder":
        out.mkdir()
        message = f"--render {out} is a folder; give a file name"
    elif kind == "user video":
        out.write_bytes(videos["long"].read_bytes())
        message = (
            f"--render {out} exists and is not a render of predict (a video it wrote, or one "
            "named <name>.pred.mp4): writing it would destroy it; choose another path or remove it"
        )
    else:
        render(result, predictor.classes, out)  # an earlier render, made read-only by its owner
        out.chmod(0o444)
        message = (
            f"--render {out} is read-only: make it writable (chmod u+w) to replace it, or choose "
            "another path"
        )
    before = None if kind == "folder" else out.read_bytes()
    with pytest.raises(UsageError) as caught:
        render(result, predictor.classes, out)
    assert str(caught.value) == message
    assert out.is_dir() if before is None else out.read_bytes() == before
    assert os.listdir(tmp_path) == ["holiday.mp4"]


def test_render_on_a_read_only_mount_says_to_remount(predictor, videos, tmp_path, monkeypatch):
    # it skipped the CLI's folder check: "make it writable (chmod u+w)", which a mount refuses
    result = predictor.predict(str(videos["short"]))
    out = tmp_path / "out.pred.mp4"
    render(result, predictor.classes, out)
    before = out.read_bytes()
    monkeypatch.setattr("octvideo.paths.os.access", lambda *args: False)  # root's too there
    monkeypatch.setattr(
        "octvideo.paths.os.statvfs", lambda path: types.SimpleNamespace(f_flag=os.ST_RDONLY)
    )
    for path in (out, tmp_path / "new.pred.mp4"):
        with pytest.raises(UsageError) as caught:
            render(result, predictor.classes, path)
        assert str(caught.value) == (
            f"--render {path}: cannot write in {tmp_path} (Read-only file system); remount it "
            "read-write or choose another path"
        )
    assert os.listdir(tmp_path) == ["out.pred.mp4"] and out.read_bytes() == before


@pytest.fixture
def predictor_and_cut(checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("cut")
    whole = faststart(root / "whole.mp4")
    cut = root / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    return Predictor.from_checkpoint(checkpoint), whole, cut


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_render_counts_frame_times_from_the_first_frame(predictor, tmp_path, monkeypatch, suffix):
    # 4 s at 10 fps whose first frame is at 10 s
    path = encode_timed(tmp_path / f"cut{suffix}", [10_000 + 100 * i for i in range(40)])
    result = predictor.predict(path, window="1s")
    assert result.ok, result.error
    assert [(w.start, w.end) for w in result.windows] == [(k, k + 1.0) for k in range(4)]
    chosen: list[tuple[float, int]] = []
    label_for = render_module._label_for

    def spy(result, t, *rest):
        window = label_for(result, t, *rest)
        chosen.append((t, [id(w) for w in result.windows].index(id(window))))
        return window

    monkeypatch.setattr(render_module, "_label_for", spy)
    render_module.render(result, predictor.classes, tmp_path / "out.mp4", k=1)
    assert len(chosen) == 40
    assert chosen[0] == (pytest.approx(0.0), 0)
    assert chosen[15] == (pytest.approx(1.5), 1)
    # frame i at i / 10 s lies in window i // 10 (on a boundary, two windows are as near)
    assert all(index == i // 10 for i, (_, index) in enumerate(chosen) if i % 10)


def _plain_result(path) -> VideoResult:
    probs = torch.tensor([0.2, 0.8])
    return VideoResult(path=str(path), video=Prediction(probs, 0.0, 1.0), duration=1.0)


def _times(path) -> tuple[list[float], float]:
    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
        return times, container.duration / 1e6


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_render_keeps_each_frames_time_of_a_variable_frame_rate(tmp_path, suffix):
    # 20 frames 50 ms apart, then 20 frames 500 ms apart: written at the average rate, the 10.5 s
    # video came out 2 s long and the labels no longer played at their times
    pts_ms = [50 * i for i in range(20)] + [1000 + 500 * i for i in range(20)]
    source = encode_timed(tmp_path / "vfr.mkv", pts_ms)
    out = render(_plain_result(source), ["a", "b"], tmp_path / f"out{suffix}", k=1)
    times, duration = _times(out)
    assert times == pytest.approx([t / 1000 for t in pts_ms], abs=1e-3)
    assert duration == pytest.approx(_times(source)[1], abs=0.06)


def test_render_of_a_turned_video_is_drawn_as_displayed(tmp_path):
    # it drew on the stored (sideways) frames and wrote no matrix: the output played sideways
    source = encode_turned(tmp_path / "phone.mp4", (0, 1, -1, 0))  # 90 degrees clockwise
    out = render(_plain_result(source), ["a", "b"], tmp_path / "out.mp4", k=1)
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert "DISPLAYMATRIX" not in frame.side_data
        array = frame.to_ndarray(format="rgb24").astype(np.float32)
    expected = np.rot90(turned_pattern(), -1).astype(np.float32)  # (96, 64, 3)
    assert array.shape == expected.shape
    below_labels = slice(30, None)  # the label box is drawn over the top rows
    assert np.abs(array[below_labels] - expected[below_labels]).mean() < 4.0


def test_render_draws_on_the_movie_not_a_cover_picture_before_it(tmp_path):
    # it rendered the cover, stream 0: a video of one white frame
    source = cover_first(with_cover(tmp_path / "movie.mp4"), tmp_path / "cover_first.mp4")
    out = render(_plain_result(source), ["a", "b"], tmp_path / "out.mp4", k=1)
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    below_labels = slice(30, None)  # the label box is drawn over the top rows
    levels = [frame_index(float(f[below_labels, 8:].mean())) for f in frames]
    assert levels == list(range(NUM_FRAMES))


def test_render_of_a_file_with_only_a_cover_picture_is_one_decode_error(tmp_path):
    source = cover_only(tmp_path / "song.m4a")
    with pytest.raises(DecodeError, match="only a cover picture"):
        render(_plain_result(source), ["a", "b"], tmp_path / "out.mp4", k=1)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("suffix", RENDER_EXTENSIONS)
def test_every_render_carries_its_tag_whatever_its_name(tmp_path, suffix):
    # renders were known only by a <name>.pred.<ext> name: a rerun of --render out.mp4 was
    # refused as "not a render of predict"
    source = encode_timed(tmp_path / "clip.mkv", [100 * i for i in range(5)])
    out = render(_plain_result(source), ["a", "b"], tmp_path / f"annotated{suffix}", k=1)
    assert is_tagged_render(out)
    assert not is_tagged_render(source)  # a video another tool wrote


@pytest.mark.parametrize("data", [b"", b"hello\n", RENDER_TAG.encode()])
def test_a_file_that_is_no_video_is_no_tagged_render(tmp_path, data):
    path = tmp_path / "notes.mp4"
    path.write_bytes(data)
    assert not is_tagged_render(path)


def test_a_result_of_frames_given_is_refused_whatever_file_has_its_name(
    predictor, videos, tmp_path, monkeypatch
):
    # frames have no file to draw on: a video in the current folder named as frames given are
    # named in records ("<frames>") is another video, never to be drawn with their predictions
    frames = torch.from_numpy(make_frames(NUM_FRAMES, 32, 32))
    result = predictor.predict(frames, fps=10.0)
    assert result.ok and result.from_frames
    monkeypatch.chdir(tmp_path)
    for present in (False, True):
        if present:
            (tmp_path / result.path).write_bytes(videos["short"].read_bytes())
        with pytest.raises(ValueError, match=r"^cannot render it: this result was predicted fro"):
            render(result, predictor.classes, tmp_path / "out.mp4")
        assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("result", [None, "video.mp4", {"path": "video.mp4"}])
def test_render_of_anything_but_a_result_is_one_line(result, tmp_path):
    with pytest.raises(TypeError, match=r"^render takes a VideoResult \(what Predictor.predict"):
        render(result, ["a"], tmp_path / "out.mp4")
