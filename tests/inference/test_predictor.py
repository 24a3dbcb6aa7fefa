"""Predictor: windows (over variable frame rates too, and at the trained ``data.target_fps``
stride), equality with the model, multi-view averages, inputs, failures, and a long video opened
once for all its windows."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from octvideo.data import decoding as decoding_module
from octvideo.data.decoding import VideoInfo, decode, probe
from octvideo.data.open_files import open_file_limit
from octvideo.data.sampling import center_clip_indices, clip_indices
from octvideo.engine.evaluate import ViewOutputs, aggregate_views
from octvideo.errors import CheckpointError, DecodeError, RunStopped, TooManyWindows
from octvideo.inference import Predictor, window_times
from octvideo.inference import predictor as predictor_module
from octvideo.inference.pipeline import predict_many
from octvideo.inference.predictor import (
    MIN_WINDOW_SECONDS,
    Prediction,
    parse_seconds,
    parse_views,
    window_seconds,
)
from octvideo.network import build_network
from tests.conftest import META
from tests.data.media_helpers import no_free_files
from tests.data.test_decoding import cut_at, cut_between_frames, encode_seconds
from tests.inference.media_helpers import encode_timed, faststart, overflowing_checkpoint


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, batch_size=3)


@pytest.mark.parametrize("duration", [0.4, 1.0, 2.0, 2.01, 9.5, 10.0, 61.3])
@pytest.mark.parametrize(("window", "stride"), [(2.0, 1.0), (2.0, 2.0), (1.5, 0.5), (3.0, 4.0)])
def test_window_times_cover_the_video_at_the_stride(duration, window, stride):
    times = window_times(duration, window, stride)
    assert times[0][0] == 0.0
    assert times[-1][1] == pytest.approx(duration)
    for k, (start, end) in enumerate(times):
        assert start == pytest.approx(k * stride)
        assert end == pytest.approx(min(start + window, duration))
    # no gap between consecutive windows when stride <= window, and no window past the end
    if stride <= window:
        assert all(b[0] <= a[1] + 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert all(start < duration for start, _ in times)


@pytest.mark.parametrize("stride", [2e10, 1e300])
def test_window_times_give_the_first_window_for_a_stride_far_past_the_end(stride):
    assert window_times(12.0, 1.0, stride) == [(0.0, 1.0)]


def test_parse_seconds():
    assert parse_seconds("2s") == 2.0
    assert parse_seconds("500ms") == 0.5
    assert parse_seconds("1.5") == 1.5
    with pytest.raises(ValueError, match="cannot read 'two' as a duration"):
        parse_seconds("two")
    with pytest.raises(ValueError, match="must be positive"):
        parse_seconds("0s")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400s", "NaNms"])
def test_durations_that_are_not_finite_are_refused(text):
    with pytest.raises(ValueError, match=f"must be a finite number of seconds, got {text!r}"):
        parse_seconds(text)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2 s", 2.0), (".5S", 0.5), ("1e3ms", 1.0), ("+3", 3.0)]
)
def test_durations_are_decimals_as_yaml_writes_them_with_a_unit(text, seconds):
    assert parse_seconds(text) == seconds


# float() reads the first three as 20, 90 and 2 (the Arabic-Indic digit)
@pytest.mark.parametrize("text", ["2_0s", "9_0", "\u0662s", "0x2s", "two"])
def test_durations_in_other_forms_are_refused(text):
    with pytest.raises(ValueError, match=re.escape(f"cannot read {text!r} as a duration")):
        parse_seconds(text)


@pytest.mark.parametrize("text", ["1e-9s", "0.05", "99ms"])
def test_windows_and_strides_under_a_tenth_of_a_second_are_refused(predictor, videos, text):
    assert window_seconds("100ms") == 0.1
    with pytest.raises(ValueError, match=rf"^stride '{text}': give at least 0.1s"):
        window_seconds(text, "stride")
    with pytest.raises(ValueError, match=rf"^window '{text}': give at least 0.1s"):
        predictor.predict(videos["short"], window=text)
    with pytest.raises(ValueError, match=rf"^stride '{text}': give at least 0.1s"):
        predictor.predict(videos["short"], window="1s", stride=text)


def test_a_window_with_a_line_break_is_quoted_in_a_one_line_error():
    # "window 1\n2: cannot read ..." broke the command's one-line error in two
    with pytest.raises(ValueError) as refused:
        window_seconds("1\n2")
    assert str(refused.value).startswith("window '1\\n2': cannot read '1\\n2' as a duration")


def test_window_count_is_bounded_before_any_window_is_made():
    assert len(window_times(100.0, 1.0, 10.0, limit=10)) == 10
    with pytest.raises(TooManyWindows, match="make 11, more than 10 a video; use a stride of at"):
        window_times(100.0, 1.0, 9.5, limit=10)


@pytest.mark.parametrize(
    ("duration", "window", "stride"),
    [(math.inf, 1.0, 1.0), (math.nan, 1.0, 1.0), (10.0, math.nan, 1.0), (10.0, 1.0, math.inf)],
)
def test_window_times_refuse_numbers_that_are_not_finite(duration, window, stride):
    with pytest.raises(ValueError, match="finite"):
        window_times(duration, window, stride)


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (("10", 1.0, 1.0), {}, "duration must be a number of seconds, got '10'"),
        ((None, 1.0, 1.0), {}, "duration must be a number of seconds, got None"),
        ((10.0, "2s", 1.0), {}, "window must be a number of seconds, got '2s'"),
        ((10.0, 1.0, True), {}, "stride must be a number of seconds, got True"),
        ((10.0, 1.0, 1.0), {"last_frame": "9"}, "last_frame must be a number of seconds"),
        ((10.0, 1.0, 1.0), {"limit": "10"}, "limit must be a whole number, got '10'"),
        ((10.0, 1.0, 1.0), {"limit": 10.5}, "limit must be a whole number, got 10.5"),
    ],
)
def test_window_times_refuse_what_is_no_number_naming_the_argument(args, kwargs, named):
    with pytest.raises(TypeError, match=f"^window_times: {re.escape(named)}"):
        window_times(*args, **kwargs)
    assert window_times(np.float32(2.0), np.float64(1.0), 1, limit=np.int64(5)) == [
        (0.0, 1.0),
        (1.0, 2.0),
    ]


@pytest.mark.parametrize("path", [None, 3, ["best.ckpt"]])
def test_from_checkpoint_refuses_what_is_no_path_in_one_line(path):
    with pytest.raises(TypeError, match=r"^Predictor.from_checkpoint takes a checkpoint's path"):
        Predictor.from_checkpoint(path)


@pytest.mark.parametrize("fps", [math.nan, math.inf, 0.0, -10.0, 0.001, 0.099, 1000.5])
def test_frames_at_a_rate_beyond_the_video_frame_rates_are_refused(predictor, fps):
    frames = torch.zeros(6, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(ValueError) as caught:
        predictor.predict(frames, fps=fps, window="1s")
    assert str(caught.value) == (
        f"fps must be a frame rate from 0.1 to 1000 frames per second, got {fps!r}"
    )


def _one_frame_warning(name: str, stride: float, frames: int, seconds: float, frame: float):
    return (
        "octvideo.inference.predictor",
        logging.WARNING,
        f"{name}: windows {stride:g}s apart would be under one frame ({frames} frames over "
        f"{seconds:g}s): they are taken one frame, {frame:g}s, apart",
    )


def _spans_more(name: str, seconds: float, fps: float, window: float) -> str:
    """The start of the warning for a clip (the tiny model's: 7 frames) longer than a window."""
    return (
        f"{name}: the model's clip spans 7 frames, {seconds:g}s at {fps:g} fps, more than a "
        f"{window:g}s window: each window's clip reads frames outside it"
    )


def _clip_starts(plan: list[np.ndarray], frames: int) -> list[int]:
    """The first frame of each clip but those held at the video's ends (the clip's length)."""
    last = max(int(p[0]) for p in plan)
    return [int(p[0]) for p in plan if 0 < int(p[0]) < last]


@pytest.mark.parametrize(
    ("fps", "stride", "frame"), [(2.0, "0.2s", 0.5), (1.0, "0.5s", 1.0), (5.0, "0.15s", 0.2)]
)
def test_frames_get_windows_one_frame_apart_for_a_stride_under_one_frame(
    predictor, caplog, fps, stride, frame
):
    # 40 frames at 0.1 fps are 400 s: 1 s windows would run the same few clips 400 times
    frames = torch.randint(0, 256, (40, 8, 8, 3), dtype=torch.uint8)
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(frames, fps=fps, window="1s", stride=stride)
    asked = float(stride[:-1]) if stride else 1.0
    assert caplog.record_tuples[0] == _one_frame_warning("<frames>", asked, 40, 40 / fps, frame)
    assert len(caplog.messages) == 2  # and the 7-frame clip spans more than a 1 s window
    assert caplog.messages[1].startswith(_spans_more("<frames>", 7 / fps, fps, 1.0))
    assert result.ok and 1 < len(result.windows) <= 40
    # up to the first window that holds the last frame
    expected = window_times(40 / fps, 1.0, frame, last_frame=39 / fps)
    assert [(w.start, w.end) for w in result.windows] == expected


@pytest.mark.parametrize(
    ("stride", "asked", "raised", "used"),
    [
        (None, "windows of 1s", "long and apart", 10.0),  # the stride follows the window
        ("5s", "windows of 1s, 5s apart,", "long and apart", 10.0),
        ("30s", "windows of 1s", "long", 30.0),  # a stride longer than the window, as given
    ],
)
def test_a_window_under_one_frame_is_one_frame_and_a_stride_not_given_follows_it(
    predictor, caplog, stride, asked, raised, used
):
    # 40 frames at 0.1 fps are 400 s: 1 s windows 10 s apart would leave 9 s of every 10 in none
    frames = torch.randint(0, 256, (40, 8, 8, 3), dtype=torch.uint8)
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(frames, fps=0.1, window="1s", stride=stride)
    assert caplog.record_tuples[0] == (
        "octvideo.inference.predictor",
        logging.WARNING,
        f"<frames>: {asked} would be under one frame (40 frames over 400s): they are taken "
        f"one frame, 10s, {raised}",
    )
    assert len(caplog.messages) == 2  # and the 7-frame clip spans more than a 10 s window
    assert caplog.messages[1].startswith(_spans_more("<frames>", 70.0, 0.1, 10.0))
    assert result.ok and [(w.start, w.end) for w in result.windows] == window_times(
        400.0, 10.0, used
    )


def test_windows_of_one_frame_each_are_taken(predictor, caplog):
    frames = torch.zeros(40, 8, 8, 3, dtype=torch.uint8)
    result = predictor.predict(frames, fps=1, window="1s")
    assert result.ok and len(result.windows) == 40
    assert not any("under one frame" in message for message in caplog.messages)


def test_a_file_with_a_stride_under_one_frame_gets_windows_one_frame_apart(
    predictor, tmp_path, caplog
):
    from tests.inference.media_helpers import encode

    five = encode(tmp_path / "five.mp4", 50, rate=5)  # 10 s: a 0.15 s stride is under a frame
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(five, window="2s", stride="0.15s")
    assert caplog.record_tuples == [_one_frame_warning(str(five), 0.15, 50, 10.0, 0.2)]
    assert result.ok and 1 < len(result.windows) <= 50
    starts = [w.start for w in result.windows]
    assert starts == pytest.approx([k * 0.2 for k in range(len(starts))])
    assert starts[-1] + 2.0 >= 10.0 - 1e-9  # the last reaches the end


@pytest.mark.parametrize("fps", [0.1, 1.0, 5.0, 7.0, 29.97])
@pytest.mark.parametrize("window", [0.15, 0.5, 1.0, 2.0, 3.3])
@pytest.mark.parametrize("frames", [1, 2, 17, 50])
def test_windows_never_outnumber_the_frames_and_each_gets_its_own_clip(
    predictor, fps, window, frames
):
    info = VideoInfo(frames, fps, 64, 48, "pyav")
    plan, times = predictor._clip_plan(info, "center", window, MIN_WINDOW_SECONDS, name="v.mp4")
    assert 1 <= len(times) == len(plan) <= frames
    starts = _clip_starts(plan, frames)  # clips held at the video's ends aside
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, -1.0, 0.0])
def test_windows_given_as_numbers_are_held_to_the_bounds_of_text(predictor, seconds):
    # a number is named as it is (window nan), text quoted (window 'nan')
    with pytest.raises(ValueError, match=rf"^window {seconds}: a duration must be "):
        window_seconds(seconds)
    frames = torch.zeros(6, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=rf"^stride {seconds}: a duration must be "):
        predictor.predict(frames, window=1.0, stride=seconds)


def test_frames_without_a_frame_are_refused(predictor):
    with pytest.raises(ValueError, match=r"^frames must hold at least 1 frame, got 0$"):
        predictor.predict(torch.zeros(0, 40, 48, 3, dtype=torch.uint8))


@pytest.mark.parametrize("batch_size", [0, -1, 513, 10**9, 2.5, True, "8"])
def test_a_batch_size_outside_the_cli_bounds_is_refused_before_the_checkpoint_is_read(
    predictor, checkpoint, monkeypatch, batch_size
):
    message = f"batch_size must be a whole number from 1 to 512, got {batch_size!r}"
    reads = []
    monkeypatch.setattr(predictor_module, "_read", lambda *args: reads.append(args))
    with pytest.raises(ValueError) as caught:
        Predictor.from_checkpoint(checkpoint, batch_size=batch_size)
    assert str(caught.value) == message and not reads
    with pytest.raises(ValueError) as caught:  # was max(1, int(batch_size))
        Predictor(predictor.model, predictor.classes, predictor.protocol, batch_size=batch_size)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("device", "gpus", "message"),
    [
        ("meta", 1, "device 'meta': use cpu, cuda or cuda:N"),
        ("mps", 1, "device 'mps': use cpu, cuda or cuda:N"),
        ("gpu", 1, "device 'gpu' is no torch device: use cpu, cuda or cuda:N"),
        ("cuda", 0, "device 'cuda': no CUDA device is available; use cpu"),
        ("cuda:1", 1, "device 'cuda:1': this machine has 1 CUDA device(s), cuda:0 to cuda:0"),
    ],
)
def test_from_checkpoint_takes_the_devices_predict_takes(
    checkpoint, monkeypatch, device, gpus, message
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(ValueError) as caught:  # "meta" failed later, in predict
        Predictor.from_checkpoint(checkpoint, device=device)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("decoder", "FOO", "decoder must be 'decord', 'pyav' or 'auto', got 'FOO'"),
        ("fps", "30", "fps must be a frame rate from 0.1 to 1000 frames per second, got '30'"),
        ("fps", True, "fps must be a frame rate from 0.1 to 1000 frames per second, got True"),
        ("on_batch", 5, "on_batch must be callable or None, got int"),
    ],
)
def test_each_predict_argument_is_bounded_for_frames_as_for_a_file(
    predictor, videos, argument, value, message
):
    frames = torch.zeros(6, 8, 8, 3, dtype=torch.uint8)
    for source in (frames, videos["short"]):
        with pytest.raises(ValueError) as caught:
            predictor.predict(source, **{argument: value})
        assert str(caught.value) == message


def test_a_source_that_is_no_path_or_frames_and_a_crop_out_of_range_are_one_line(predictor):
    with pytest.raises(ValueError) as caught:
        predictor.predict(5)
    assert str(caught.value) == (
        "source must be a video file's path or uint8 frames (T, H, W, 3), a tensor or a numpy "
        "array; got int"
    )
    with pytest.raises(ValueError) as caught:
        predictor.preprocess(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), crop=3)
    assert str(caught.value) == (
        "crop must be 0, 1 or 2 (left or top, centre, right or bottom), got 3"
    )


NOT_CLASS_NAMES = "classes must be a list or tuple of class names, name i for output i; got "


@pytest.mark.parametrize(
    ("classes", "shown"),
    [
        ("abc", "str 'abc'"),  # not split into letters
        ({"a"}, "set {'a'}"),  # a set's order differs from one process to the next
        (iter(["a", "b", "c"]), "list_iterator <list_iterator object at 0x"),
        (None, "NoneType None"),
        (["a", "b", 3], "list ['a', 'b', 3]"),
        (b"abc", "bytes b'abc'"),
    ],
)
def test_class_names_not_in_a_list_or_tuple_of_text_are_one_line(monkeypatch, classes, shown):
    fused = []
    monkeypatch.setattr(predictor_module, "fuse_for_inference", fused.append)
    with pytest.raises(ValueError) as caught:
        Predictor(build_network(META.model), classes, META.clip)
    assert str(caught.value).startswith(NOT_CLASS_NAMES + shown) and not fused


def test_class_names_in_a_tuple_are_taken_in_their_order(monkeypatch):
    monkeypatch.setattr(predictor_module, "fuse_for_inference", lambda model, *_: model)
    predictor = Predictor(build_network(META.model), ("c", "a", "b"), META.clip)
    assert predictor.classes == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ({"num_frames": "4"}, "protocol.num_frames is '4' (str), not a whole number of 1 or more"),
        (
            {"test_short_side": 100_000, "test_crop_size": 100_000},
            "protocol.test_short_side 100000 is beyond the limit of 2048 pixels "
            "(octvideo.config.LIMITS data.test_short_side)",
        ),
        (
            {"num_frames": 256, "test_short_side": 1024, "test_crop_size": 1024},
            "protocol.num_frames 256 x protocol.test_crop_size 1024^2 is beyond the limit of "
            "16,777,216 pixels a clip (octvideo.config.MAX_CLIP_PIXELS)",
        ),
    ],
)
def test_a_protocol_beyond_a_checkpoints_bounds_is_one_line_before_any_work(
    monkeypatch, clip, message
):
    # built in code, not read from a checkpoint: its first clip would allocate 120 GB
    fused = []
    monkeypatch.setattr(predictor_module, "fuse_for_inference", fused.append)
    protocol = dataclasses.replace(META.clip, **clip)
    with pytest.raises(ValueError) as caught:
        Predictor(build_network(META.model), list(META.classes), protocol)
    assert str(caught.value) == message and not fused


def test_a_cuda_device_on_a_machine_without_one_is_refused_by_the_constructor(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as caught:  # was torch's "Found no NVIDIA driver" at .to()
        Predictor(build_network(META.model), list(META.classes), META.clip, device="cuda")
    assert str(caught.value) == "device 'cuda': no CUDA device is available; use cpu"


def test_a_model_that_fits_predicts_as_from_its_checkpoint_and_is_left_as_it_was(
    predictor, videos, checkpoint
):
    from octvideo.engine.checkpoint import load_checkpoint, model_state_dict

    network = build_network(META.model)
    network.load_state_dict(model_state_dict(load_checkpoint(checkpoint)))
    own = Predictor(network, list(META.classes), META.clip, batch_size=3)
    assert network.training and all(p.device.type == "cpu" for p in network.parameters())
    assert torch.equal(
        own.predict(videos["long"], window="2s").video.probs,
        predictor.predict(videos["long"], window="2s").video.probs,
    )


def test_views_spelled_n_x_c_are_the_n_clips_by_c_crops(predictor, videos):
    assert parse_views("10x3") == (10, 3)
    assert parse_views([5, 1]) == (5, 1)
    spelled = predictor.predict(videos["odd"], views="2x3")
    assert torch.equal(
        spelled.video.probs, predictor.predict(videos["odd"], views=(2, 3)).video.probs
    )


@pytest.mark.parametrize(
    ("views", "message"),
    [
        (
            "bogus",
            "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips, crops), got 'bogus'",
        ),
        (
            (2, 3, 1),
            "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips, crops), got (2, 3, 1)",
        ),
        (
            (2.0, 3),
            "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips, crops), got (2.0, 3)",
        ),
        (
            "\u0662x\u0661",  # the Arabic-Indic 2 and 1, which re's \\d matches
            "views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips, crops), "
            "got '\u0662x\u0661'",
        ),
        ("2x2", "views must be N temporal clips (1 to 100) x 1 or 3 crops, got 2x2"),
        ("0x1", "views must be N temporal clips (1 to 100) x 1 or 3 crops, got 0x1"),
        (
            "99999999999x3",
            "views must be N temporal clips (1 to 100) x 1 or 3 crops, got 1000000000x3",
        ),
    ],
)
def test_views_that_are_no_view_protocol_are_refused_in_one_line(predictor, views, message):
    frames = torch.zeros(20, 40, 48, 3, dtype=torch.uint8)
    with pytest.raises(ValueError) as caught:
        predictor.predict(frames, views=views)
    assert str(caught.value) == message
    with pytest.raises(ValueError, match=re.escape(message)):  # checked with windows too
        predictor.predict(frames, views=views, window="1s")


def test_a_checkpoint_whose_weights_hold_nan_is_refused_naming_the_tensor(tmp_path):
    from octvideo.engine.checkpoint import atomic_save

    state = {f"model.{k}": v for k, v in build_network(META.model).state_dict().items()}
    state["model.res3.0.conv_b.conv_hh.weight"][0, 0, 0, 0, 0] = float("nan")
    path = tmp_path / "diverged.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": META.to_dict()}}, path)
    with pytest.raises(CheckpointError) as caught:
        Predictor.from_checkpoint(path)
    assert str(caught.value) == (
        f"checkpoint {str(path)!r}: weight model.res3.0.conv_b.conv_hh.weight holds 1 NaN; the "
        "checkpoint is broken (a diverged run, or a damaged file): use an earlier checkpoint of "
        "the run, or get the file again"
    )


def _expected_probs(predictor, path, indices, crop=1):
    frames = decode(path, indices)
    clip = predictor.preprocess(frames, crop)
    with torch.no_grad():
        return predictor.model(clip[None]).double().softmax(-1)[0]  # as test takes it


def test_centre_clip_prediction_equals_model_on_same_frames(predictor, videos):
    path = videos["long"]
    result = predictor.predict(path)
    assert result.ok and not result.windows
    info = probe(path)
    indices = center_clip_indices(info.num_frames, 4, 2)
    torch.testing.assert_close(result.video.probs, _expected_probs(predictor, path, indices))
    assert result.video.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_windows_equal_model_on_window_clips(predictor, videos):
    path = videos["long"]
    result = predictor.predict(path, window="2s", stride="1s")
    info = probe(path)
    duration = info.num_frames / info.fps
    assert [(w.start, w.end) for w in result.windows] == window_times(duration, 2.0, 1.0)
    span = (4 - 1) * 2
    for w in result.windows:
        centre = (w.start + w.end) / 2 * info.fps
        first = min(max(math.floor(centre - span / 2 + 0.5 + 1e-6), 0), info.num_frames - 1 - span)
        indices = clip_indices(first, 4, 2, info.num_frames)
        torch.testing.assert_close(w.probs, _expected_probs(predictor, path, indices))
    mean = torch.stack([w.probs for w in result.windows]).mean(0)
    torch.testing.assert_close(result.video.probs, mean)


def test_multiview_averages_clips_and_crops(predictor, videos):
    path = videos["audio"]
    result = predictor.predict(path, views=(2, 3))
    info = probe(path)
    from octvideo.data.sampling import multiview_clip_indices

    expected = torch.stack(
        [
            _expected_probs(predictor, path, idx, crop)
            for idx in multiview_clip_indices(info.num_frames, 4, 2, 2)
            for crop in (0, 1, 2)
        ]
    ).mean(0)
    torch.testing.assert_close(result.video.probs, expected)


def test_frames_tensor_input(predictor, videos):
    frames = decode(videos["short"])
    result = predictor.predict(frames, fps=10.0, window="0.3s")
    assert result.ok and result.path == "<frames>" and result.from_frames
    with pytest.raises(ValueError, match=r"^cannot read it: this result was predicted from fra"):
        result.source_file("read it")
    from_file = predictor.predict(videos["short"])
    assert not from_file.from_frames and from_file.source_file("read it") == str(videos["short"])
    assert result.duration == pytest.approx(frames.shape[0] / 10.0)
    assert result.windows[-1].end == pytest.approx(result.duration)
    from_array = predictor.predict(frames.numpy(), fps=10.0, window="0.3s")  # as decoders give
    assert from_array.ok and torch.equal(from_array.video.probs, result.video.probs)


def test_numpy_frames_of_any_strides_are_taken(predictor, videos):
    """``frames[..., ::-1]`` (OpenCV's BGR to RGB) and ``frames[::-1]`` have negative strides,
    which ``torch.from_numpy`` refuses: they are copied, and score as the same frames would."""
    frames = decode(videos["short"]).numpy()
    for view in (frames[..., ::-1], frames[::-1], frames[:, ::-1, ::2]):
        result = predictor.predict(view, fps=10.0)
        assert result.ok, result.error
        expected = predictor.predict(torch.from_numpy(np.ascontiguousarray(view)), fps=10.0)
        assert torch.equal(result.video.probs, expected.video.probs)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, object])
def test_numpy_frames_of_another_dtype_are_one_line(predictor, dtype):
    frames = np.zeros((2, 8, 8, 3), dtype=dtype)  # object: torch.from_numpy's TypeError
    with pytest.raises(ValueError) as caught:
        predictor.predict(frames)
    assert str(caught.value) == (
        f"frames must be uint8 (T, H, W, 3), got {np.dtype(dtype)} (2, 8, 8, 3)"
    )


def test_a_path_given_as_bytes_is_read_as_its_name(predictor, videos):
    result = predictor.predict(os.fsencode(videos["short"]))
    assert result.ok, result.error
    assert result.path == str(videos["short"])
    assert torch.equal(result.video.probs, predictor.predict(videos["short"]).video.probs)


def test_top_gives_the_k_most_probable_classes_and_all_for_a_larger_k():
    pred = Prediction(torch.tensor([0.2, 0.5, 0.3]), 0.0, 1.0)
    assert pred.top(["a", "b", "c"], 2) == [("b", 0.5), ("c", pytest.approx(0.3))]
    assert [name for name, _ in pred.top(("a", "b", "c"), np.int64(5))] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("classes", "k", "message"),
    [
        (["a", "b", "c"], 0, "k must be a whole number of 1 or more, got 0"),
        (["a", "b", "c"], -1, "k must be a whole number of 1 or more, got -1"),
        (["a", "b", "c"], 2.5, "k must be a whole number of 1 or more, got 2.5"),
        (["a", "b", "c"], True, "k must be a whole number of 1 or more, got True"),
        (
            ["a"],
            3,
            "classes has 1 names for 3 classes: give one name per class, by index "
            "(Predictor.classes)",
        ),
        (
            ["a", "b", "c", "d"],
            1,
            "classes has 4 names for 3 classes: give one name per class, "
            "by index (Predictor.classes)",
        ),
        ("abc", 1, NOT_CLASS_NAMES + "str 'abc'"),
        ({"a", "b", "c"}, 1, NOT_CLASS_NAMES + "set {"),
    ],
)
def test_top_refuses_a_k_or_class_list_that_does_not_fit_in_one_line(classes, k, message):
    pred = Prediction(torch.tensor([0.2, 0.5, 0.3]), 0.0, 1.0)
    with pytest.raises(ValueError) as caught:
        pred.top(classes, k)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("name", ["short", "long", "odd", "audio", "vfr"])
def test_every_kind_of_video_gets_windows_over_its_whole_length(predictor, videos, name):
    result = predictor.predict(videos[name], window="1s", stride="0.5s")
    assert result.ok, result.error
    assert result.windows[0].start == 0.0
    assert result.windows[-1].end == pytest.approx(result.duration)
    assert len(result.windows) == max(1, math.ceil((result.duration - 1.0) / 0.5 - 1e-9) + 1)
    assert all(torch.isfinite(w.probs).all() for w in result.windows)


def test_an_input_whose_name_is_too_long_to_look_at_fails_alone(predictor, tmp_path):
    long = tmp_path / ("a" * 300 + ".mp4")
    result = predictor.predict(long)
    assert not result.ok and result.error.endswith("(File name too long), not a video file")


def test_missing_and_directory_inputs_fail_cleanly(predictor, videos, tmp_path):
    missing = predictor.predict(tmp_path / "nope.mp4")
    # the reason alone: a class name ("FileNotFoundError" for a pipe too) only misled
    assert not missing.ok and missing.error == f"video {tmp_path / 'nope.mp4'} does not exist"
    folder = tmp_path / "clip.mp4"
    folder.mkdir()
    result = predictor.predict(folder)
    assert not result.ok and result.error == f"{folder} is a directory, not a video file"
    os.mkfifo(tmp_path / "fifo.mp4")
    pipe = predictor.predict(tmp_path / "fifo.mp4")
    assert not pipe.ok and pipe.error == f"{tmp_path / 'fifo.mp4'} is a pipe, not a video file"


@pytest.mark.parametrize("decoder", ["decord", "pyav", "auto"])
def test_a_decoder_out_of_open_files_stops_predict_naming_the_limit_not_the_video(
    predictor, videos, decoder
):
    # the decoder's EMFILE was the video's result.error: a failed video that decodes, and a caller
    # predicting a list one video at a time failed every video after it
    path = str(videos["short"])
    assert predictor.predict(path, decoder=decoder).ok  # decoders loaded before the files run out
    with no_free_files():
        limit = open_file_limit()
        with pytest.raises(RunStopped) as caught:
            predictor.predict(path, decoder=decoder)
    assert str(caught.value) == (
        f"decoding {path} ran out of open files (the open-file limit is {limit}); raise "
        "`ulimit -n` or use fewer workers"
    )
    assert predictor.predict(path, decoder=decoder).ok  # the video was fine


def imported(path: Path) -> Path:
    """The checkpoint at ``path`` made an import's: its metadata names the source file."""
    from octvideo.engine.checkpoint import atomic_save

    saved = torch.load(path, weights_only=True)
    source = {"from": "pytorchvideo", "file": "SLOW_8x8_R50.pyth", "sha256": "0" * 64}
    saved["hyper_parameters"]["meta"]["source"] = source
    atomic_save(saved, path)
    return path


@pytest.mark.parametrize(
    ("origin", "advice"),
    [
        ("run", "use an earlier checkpoint of the run, or get the file again"),
        ("import", "get 'SLOW_8x8_R50.pyth' again and import it anew"),  # no run to go back to
    ],
)
def test_an_input_whose_logits_are_nan_fails_with_no_scores(
    checkpoint, videos, tmp_path, origin, advice
):
    # every probability was NaN, yet the input was "ok" and its records held a bare NaN
    huge = overflowing_checkpoint(checkpoint, tmp_path / "huge.ckpt")
    huge = Predictor.from_checkpoint(imported(huge) if origin == "import" else huge)
    assert huge.broken_advice == advice
    for result, clips in (
        (huge.predict(videos["odd"]), 1),
        (huge.predict(videos["long"], window="1s"), 10),
        (*predict_many(huge, [videos["long"]], window="1s", workers=0), 10),
    ):
        assert not result.ok and result.video is None and result.windows == []
        assert result.error == (
            f"NonFiniteLogits: the model gives NaN or infinite logits for {clips} of its {clips} "
            "clips (weights so large that its activations overflow float32: a diverged run?); "
            f"the checkpoint is broken: {advice}"
        )
        assert result.num_frames > 0  # the input was read: only its scores are refused


def test_render_writes_a_playable_video(predictor, videos, tmp_path):
    from octvideo.inference.render import render

    result = predictor.predict(videos["odd"], window="1s")
    out = render(result, predictor.classes, tmp_path / "out.mp4")
    rendered = decode(out)
    assert rendered.shape[0] == probe(videos["odd"]).num_frames
    assert rendered.shape[1:3] == (36, 52)  # even sizes for yuv420p
    # the label box is drawn: the top rows are darker than the source's
    assert rendered[:, :3].float().mean() < decode(videos["odd"])[:, :3].float().mean()


def test_checkpoint_without_metadata_is_refused(tmp_path):
    from octvideo.engine.checkpoint import atomic_save

    path = tmp_path / "bare.ckpt"
    atomic_save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(
        CheckpointError, match="has no model, classes, clip, normalization metadata"
    ):
        Predictor.from_checkpoint(path)


def test_windows_are_batched(predictor, videos):
    calls = []
    result = predictor.predict(videos["long"], window="1s", stride="0.5s", on_batch=calls.append)
    assert sum(calls) == len(result.windows)
    assert max(calls) <= predictor.batch_size
    assert np.isclose(result.windows[-1].end, result.duration)


# ------------------------------------------------------------------------------------------ windows


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


@pytest.mark.parametrize("decoder", ["auto", "decord", "pyav"])
def test_windows_decode_from_one_open_file(predictor, videos, monkeypatch, decoder):
    opened = []
    open_file = decoding_module._open

    def counting(path, name, *rest):  # rest: what else the decoding module hands its readers
        opened.append(name)
        return open_file(path, name, *rest)

    monkeypatch.setattr(decoding_module, "_open", counting)
    batches = []
    result = predictor.predict(
        videos["long"], window="0.5s", decoder=decoder, on_batch=batches.append
    )
    assert result.ok, result.error
    assert len(result.windows) == 19 and len(batches) == 7  # 9.5 s, 3 clips a batch
    assert opened == ["pyav" if decoder == "pyav" else "decord"]


# 12 frames 250 ms apart (0-2.75 s), then 12 frames 50 ms apart (2.8-3.35 s)
PTS_MS = [250 * i for i in range(12)] + [2800 + 50 * i for i in range(12)]


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_timed(tmp_path_factory.mktemp("vfr") / "vfr.mp4", PTS_MS)


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_window_clips_lie_in_their_windows(predictor, vfr_video, monkeypatch, decoder):
    plans = []
    run = Predictor._clip_probs

    def spy(self, opened, *args):
        plans.append(opened.plan)
        return run(self, opened, *args)

    monkeypatch.setattr(Predictor, "_clip_probs", spy)
    result = predictor.predict(vfr_video, window="1s", decoder=decoder)
    assert result.ok, result.error
    assert len(result.windows) >= 3
    for window, indices in zip(result.windows, plans[0], strict=True):
        # the clip's middle (4 frames, 2 apart: between its 2nd and 3rd) at the window's middle
        middle = (PTS_MS[indices[1]] + PTS_MS[indices[2]]) / 2000
        assert window.start <= middle <= window.end, (window.start, window.end, indices)


@pytest.mark.parametrize(
    "pts_ms",
    [
        PTS_MS,  # frames / average fps: 3.85 s, after the last frame (3.35 s)
        [100 * i for i in range(10)] + [1000 + 500 * i for i in range(10)],  # 4.8 s, before 5.5 s
    ],
    ids=["long-gaps-first", "long-gaps-last"],
)
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_windows_end_at_the_last_frame(predictor, tmp_path, decoder, pts_ms):
    path = encode_timed(tmp_path / "vfr.mp4", pts_ms)
    result = predictor.predict(path, window="1s", stride="0.5s", decoder=decoder)
    assert result.ok, result.error
    last = (pts_ms[-1] - pts_ms[0]) / 1000
    assert result.windows[-1].end == pytest.approx(last, abs=1e-6)
    assert result.windows[-2].end < last  # only the last window reaches it
    assert result.duration == pytest.approx(last, abs=1e-6)
    assert result.video.end == result.duration


NTSC, FILM = 30000 / 1001, 24000 / 1001  # 29.97 and 23.976 fps: no whole frames a second


def test_window_times_end_at_the_first_window_that_holds_the_last_frame():
    # 60 frames at 29.97 fps are 2.002 s; the last is shown from 1.969 s: [2, 2.002] holds none
    assert window_times(2.002, 2.0, 2.0) == [(0.0, 2.0), (2.0, 2.002)]
    assert window_times(2.002, 2.0, 2.0, last_frame=59 / NTSC) == [(0.0, 2.0)]
    assert window_times(2.002, 2.0, 1.0, last_frame=59 / NTSC) == [(0.0, 2.0)]
    # a frame at 2 s is shown over [2, 2.033]: the window from 2 s holds it
    assert window_times(61 / 30, 2.0, 2.0, last_frame=2.0) == [(0.0, 2.0), (2.0, 61 / 30)]
    assert window_times(12.0, 1.0, 5.0, last_frame=10.0) == [(0.0, 1.0), (5.0, 6.0), (10.0, 11.0)]
    assert window_times(12.0, 1.0, 5.0, last_frame=9.9) == [(0.0, 1.0), (5.0, 6.0)]


@pytest.mark.parametrize(
    ("fps", "frames", "window", "stride", "count"),
    [
        (NTSC, 60, 2.0, None, 1),  # 2.002 s: one window long
        (NTSC, 60, 2.0, 1.0, 1),  # [1, 2.002] holds no frame past [0, 2]
        (NTSC, 300, 2.0, None, 5),  # 10.01 s
        (FILM, 240, 5.0, None, 2),  # 10.01 s
        (30.0, 61, 2.0, None, 2),  # the 61st frame, at 2 s, is the second window's
        (1.0, 40, 1.0, None, 40),  # a window a frame
    ],
)
def test_every_window_holds_a_frame_of_its_own(predictor, fps, frames, window, stride, count):
    video = torch.randint(0, 256, (frames, 8, 8, 3), dtype=torch.uint8)
    result = predictor.predict(video, fps=fps, window=window, stride=stride)
    assert result.ok and result.duration == pytest.approx(frames / fps)
    step = window if stride is None else stride
    expected = [(k * step, min(k * step + window, frames / fps)) for k in range(count)]
    np.testing.assert_allclose([(w.start, w.end) for w in result.windows], expected)
    # a frame's own: one shown in it (from its time to the next frame's) past the window before
    times = np.arange(frames) / fps
    ends = [0.0] + [w.end for w in result.windows[:-1]]
    for w, before in zip(result.windows, ends, strict=True):
        assert ((times >= max(w.start, before) - 1e-9) & (times < w.end - 1e-9)).any() or (
            w is result.windows[-1] and times[-1] >= max(w.start, before) - 1e-9
        )


def test_a_2_002_s_video_gets_one_2_s_window_and_its_scores(predictor, tmp_path):
    from fractions import Fraction

    from tests.inference.media_helpers import encode

    path = encode(tmp_path / "ntsc.mp4", 60, rate=Fraction(30000, 1001))
    result = predictor.predict(path, window="2s")
    assert result.ok and result.duration == pytest.approx(2.002)
    assert [(w.start, w.end) for w in result.windows] == [(0.0, 2.0)]
    torch.testing.assert_close(result.video.probs, result.windows[0].probs)


# 20 frames 50 ms apart (0-0.95 s), no frame for 9 s, 20 frames 50 ms apart (10-10.95 s): a
# motion-triggered camera, a screen recorder that writes no frame while nothing changes
PAUSE_MS = [50 * i for i in range(20)] + [10_000 + 50 * i for i in range(20)]


@pytest.fixture(scope="module")
def paused_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_timed(tmp_path_factory.mktemp("pause") / "pause.mp4", PAUSE_MS)


def test_windows_of_a_pause_are_not_made_and_clips_come_from_their_windows(
    predictor, paused_video, caplog
):
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(paused_video, window="1s")
    assert caplog.messages == [
        f"{paused_video}: 9 of 11 windows hold no frame; the video has no frame for 9.050s "
        "from 0.950s: they get no records"
    ]
    assert result.ok and len(result.windows) == 2
    np.testing.assert_allclose([(w.start, w.end) for w in result.windows], [(0, 1), (10, 10.95)])
    opened = predictor.open_input(paused_video, "center", 1.0, None)
    for (start, end), clip in zip(opened.times, opened.plan, strict=True):
        seconds = [PAUSE_MS[i] / 1000 for i in clip]  # 20 frames a window: 7 are enough
        assert start <= min(seconds) and max(seconds) <= end, (start, end, clip)
    torch.testing.assert_close(
        result.video.probs, torch.stack([w.probs for w in result.windows]).mean(0)
    )


# 60 frames 50 ms apart (0-2.95 s), no frame for 0.65 s, 48 frames 50 ms apart (3.6-5.95 s):
# a phone or dashcam that drops frames for a moment
DROP_MS = [50 * i for i in range(60)] + [3600 + 50 * i for i in range(48)]


def test_a_window_holding_frames_is_made_however_few_lie_past_the_window_before(
    predictor, tmp_path, caplog
):
    path = encode_timed(tmp_path / "drop.mp4", DROP_MS)
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(path, window="2s", stride="0.5s")
    assert caplog.messages == []
    # [1.5, 3.5] holds the 30 frames from 1.5 s to 2.95 s, none past [1, 3]'s end
    expected = window_times(5.95, 2.0, 0.5, last_frame=5.95)
    assert len(expected) == 9 and expected[3] == (1.5, 3.5)
    assert result.ok
    np.testing.assert_allclose([(w.start, w.end) for w in result.windows], expected)
    opened = predictor.open_input(path, "center", 2.0, 0.5)
    for (start, end), clip in zip(opened.times, opened.plan, strict=True):
        seconds = [DROP_MS[i] / 1000 for i in clip]
        assert start <= min(seconds) and max(seconds) <= end, (start, end, clip)
    assert not np.array_equal(opened.plan[3], opened.plan[2])  # its clip is its own
    once = [w.probs for k, w in enumerate(result.windows) if k not in opened.header().repeats]
    torch.testing.assert_close(result.video.probs, torch.stack(once).mean(0))


def test_overlapping_windows_at_the_edges_of_a_pause_are_made(predictor, paused_video, caplog):
    # 1 s windows 0.5 s apart: [0.5, 1.5] and [9.5, 10.5] hold frames; the 17 between hold none
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(paused_video, window="1s", stride="0.5s")
    assert caplog.messages == [
        f"{paused_video}: 17 of 21 windows hold no frame; the video has no frame for 9.050s "
        "from 0.950s: they get no records"
    ]
    assert result.ok
    np.testing.assert_allclose(
        [(w.start, w.end) for w in result.windows],
        [(0, 1), (0.5, 1.5), (9.5, 10.5), (10, 10.95)],
    )


def test_one_frame_is_the_median_step_between_frames_not_the_mean_over_a_pause(
    predictor, paused_video, tmp_path, caplog
):
    # frames 50 ms apart: a 0.1 s window is two frames, however long the pause (mean 0.28 s)
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(paused_video, window="0.1s")
    assert not any("under one frame" in message for message in caplog.messages)
    assert result.ok and (result.windows[0].start, result.windows[0].end) == (0.0, 0.1)
    caplog.clear()
    # frames 200 ms apart, a 3.2 s pause: the mean step, 0.358 s, is no frame's
    path = encode_timed(
        tmp_path / "slow.mp4", [200 * i for i in range(10)] + [5000 + 200 * i for i in range(10)]
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(path, window="0.1s")
    assert caplog.messages[0] == (
        f"{path}: windows of 0.1s would be under one frame (20 frames over 6.8s; one frame is "
        "the median step between them): they are taken one frame, 0.2s, long and apart"
    )
    assert result.ok and (result.windows[0].start, result.windows[0].end) == pytest.approx((0, 0.2))


def test_a_clip_longer_than_the_window_is_said_once_and_counted_once_in_the_video(
    predictor, caplog
):
    # at 1 fps the tiny model's 7 frames span 7 s: 2 s windows 1.5 s apart share clips
    frames = torch.randint(0, 256, (20, 8, 8, 3), dtype=torch.uint8)
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(frames, fps=1.0, window="2s", stride="1.5s")
    messages = caplog.messages
    plan = predictor.open_input(frames, "center", 2.0, 1.5, fps=1.0).plan
    repeated = [k for k in range(1, len(plan)) if np.array_equal(plan[k], plan[k - 1])]
    assert len(result.windows) == 13 and repeated == [1, 11, 12]  # held at the ends
    assert messages == [
        f"{_spans_more('<frames>', 7.0, 1.0, 2.0)}, and 3 of 13 windows repeat the clip of the "
        "window before (the video's scores count it once); use a window of at least 7s, or a "
        "model trained with data.target_fps set (its clip then spans the same seconds at any "
        "frame rate)"
    ]
    probs = torch.stack([w.probs for w in result.windows])
    once = probs[[k for k in range(len(plan)) if k not in repeated]].mean(0)
    torch.testing.assert_close(result.video.probs, once)
    assert not torch.allclose(result.video.probs, probs.mean(0), rtol=0, atol=1e-6)


def test_windows_whose_own_clips_span_more_than_them_are_counted_at_a_variable_rate(
    predictor, tmp_path, caplog
):
    # 30 fps, but 2 fps from 2 s to 12 s: the median step (1/30 s) puts the 7-frame clip at
    # 0.23 s, while the clips of the windows in the slow stretch span 2.5 to 3.5 s
    fast = [round(1000 * i / 30) for i in range(60)]
    path = encode_timed(
        tmp_path / "slow_stretch.mp4",
        fast + [2000 + 500 * i for i in range(20)] + [12000 + ms for ms in fast],
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(path, window="2s")
    assert result.ok and len(result.windows) == 7
    assert caplog.messages == [
        f"{path}: the model's clip spans 7 frames, up to 3.5s at this video's variable frame "
        "rate, more than a 2s window: the clips of 5 of 7 windows read frames outside them; use "
        "a window of at least 3.5s"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(path, window="3.5s")
    assert result.ok and caplog.messages == []


@pytest.mark.parametrize(("window", "warned"), [("0.6s", True), ("0.7s", False), ("2s", False)])
def test_a_constant_rate_file_is_warned_of_only_where_the_clip_spans_more_than_the_window(
    predictor, tmp_path, caplog, window, warned
):
    # 10 fps: the 7-frame clip spans exactly 0.7 s, no more than a 0.7 s window
    path = encode_timed(tmp_path / "steady.mp4", [100 * i for i in range(40)])
    with caplog.at_level(logging.WARNING, logger="octvideo.inference.predictor"):
        result = predictor.predict(path, window=window)
    assert result.ok and len(result.windows) > 1
    if warned:
        assert len(caplog.messages) == 1
        assert caplog.messages[0].startswith(_spans_more(str(path), 0.7, 10.0, 0.6))
    else:
        assert caplog.messages == []


def test_crop_positions_are_the_centre_with_a_window_else_those_of_the_views(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.crop_positions("center", None) == (1,)
    assert predictor.crop_positions("multi", None) == (0, 1, 2)  # the checkpoint's 3 x 3
    assert predictor.crop_positions("10x1", None) == (1,)
    assert predictor.crop_positions((2, 3), None) == (0, 1, 2)
    assert predictor.crop_positions("multi", 2.0) == (1,)
    predictor.protocol = dataclasses.replace(predictor.protocol, test_num_clips=1000)
    with pytest.raises(ValueError, match=r"^views must be N temporal clips \(1 to 100\)"):
        predictor.crop_positions("multi", None)
    assert predictor.crop_positions("multi", 2.0) == (1,)  # windows run one centre clip


@pytest.mark.parametrize(
    ("target", "fps", "stride"), [(None, 60.0, 2), (30.0, 60.0, 4), (30.0, 30.0, 2)]
)
def test_predict_windows_use_the_trained_stride(checkpoint, target, fps, stride):
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.protocol.sampling_rate == 2
    predictor.protocol = dataclasses.replace(predictor.protocol, target_fps=target)
    info = VideoInfo(int(10 * fps), fps, 64, 48, "pyav")
    for views in ("center", "multi"):
        plan, _ = predictor._clip_plan(info, views, None, None)
        assert all(np.diff(p).tolist() == [stride] * (len(p) - 1) for p in plan)
    plan, times = predictor._clip_plan(info, "center", 2.0, 1.0)
    assert len(times) == 9 and all(np.diff(p).tolist() == [stride] * (len(p) - 1) for p in plan)


# ---------------------------------------------------------------------------------- cut short


@pytest.fixture(scope="module")
def cut_short(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A recording cut short (its index first, its last tenth of bytes gone: a camera whose card
    filled), the recording whole, and the first frame of the cut one that cannot be decoded."""
    root = tmp_path_factory.mktemp("cut")
    whole = faststart(root / "whole.mp4")
    cut = root / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.9)])
    with pytest.raises(DecodeError) as err:
        decode(cut, [probe(cut).num_frames - 1])
    return cut, whole, err.value.frame


@pytest.mark.parametrize("decoder", ["auto", "pyav"])
def test_windows_before_a_frame_that_cannot_be_decoded_keep_their_scores(
    predictor, cut_short, decoder
):
    cut, whole, bad = cut_short
    total = probe(cut).num_frames  # 10 fps
    plan = predictor.open_input(cut, "center", 1.0, None, decoder=decoder).plan
    kept = sum(int(clip.max()) < bad for clip in plan)
    assert 0 < kept < len(plan)  # the last window's clip reaches past the cut
    result = predictor.predict(cut, window="1s", decoder=decoder)
    assert not result.ok  # reported: a window was dropped
    assert result.error == (
        f"DecodeError: {cut}: frames {bad} to {total - 1} of {total} (from {bad / 10:.1f} s) "
        f"cannot be decoded and the file's index lists 60 frames (6.0 s), {60 - total} of them "
        f"missing: the file is truncated; {kept} of {len(plan)} windows predicted, the last "
        f"{len(plan) - kept} dropped"
    )
    # the windows before it are those of the whole recording, and the video's score their mean
    full = predictor.predict(whole, window="1s", decoder=decoder)
    assert len(result.windows) == kept
    for window, same in zip(result.windows, full.windows[:kept], strict=False):
        assert (window.start, window.end) == (same.start, same.end)
        torch.testing.assert_close(window.probs, same.probs)
    mean = torch.stack([w.probs for w in result.windows]).mean(0)
    torch.testing.assert_close(result.video.probs, mean)
    # the video's numbers are those of the centre clip's path, which never reaches the cut (and
    # is still cut short: the file holds less than its index lists)
    centre = predictor.predict(cut, decoder=decoder)
    assert centre.video is not None
    assert centre.error.endswith("the file is truncated; 1 of 1 clips predicted, none dropped")
    assert (result.num_frames, result.duration) == (centre.num_frames, centre.duration)


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_partial_download_whose_frames_all_decode_is_cut_short(predictor, tmp_path, container):
    # every frame it holds decoded: predict called it a whole, shorter video
    if container == "mp4":  # its index first, cut between two frames: 40 of 60 frames
        whole = faststart(tmp_path / "whole.mp4")
        cut = cut_between_frames(whole, tmp_path / "cut.mp4", 40)
        reason = "the file's index lists 60 frames (6.0 s), 20 of them missing"
    else:  # its index last, cut at 60 % of its bytes
        whole = encode_seconds(tmp_path / "whole.mkv", "libx264", "yuv420p")  # 8.0 s, 12 fps
        cut = cut_at(whole, tmp_path / "cut.mkv")
        missing = 8.0 - probe(cut).num_frames / 12
        reason = f"the file's header lists 8.0 s, {missing:.1f} s of it missing"
    result = predictor.predict(cut, window="1s")
    n = len(result.windows)
    assert n > 1 and not result.ok
    assert result.error == (
        f"DecodeError: {cut}: {reason}: the file is truncated; {n} of {n} windows predicted, "
        f"none dropped"
    )
    full = predictor.predict(whole, window="1s")  # its windows are the whole file's first ones
    assert full.ok and len(full.windows) > n  # (the last ends at the frames it holds)
    for window, same in zip(result.windows[:-1], full.windows, strict=False):
        assert (window.start, window.end) == (same.start, same.end)
        torch.testing.assert_close(window.probs, same.probs)
    centre = predictor.predict(cut)  # one centre clip, of the part it holds: said too
    assert not centre.ok and centre.video is not None
    assert centre.error == (
        f"DecodeError: {cut}: {reason}: the file is truncated; 1 of 1 clips predicted, none dropped"
    )


def _cut_at(bad: int, frame_of, source):
    """A reader of ``source`` frames that cannot decode frame ``bad`` or any after it; its error
    names the frame ``frame_of(bad, indices)`` (None: no frame)."""

    def frames_of(indices):
        if int(indices.max()) >= bad:
            raise DecodeError("v.mp4", "cut", frame=frame_of(bad, indices))
        return source(indices)

    return frames_of


@pytest.mark.parametrize(
    "frame_of",
    [lambda bad, _: bad, lambda _, indices: int(indices.max())],
    ids=["first-bad-frame", "frame-asked-for"],  # the second is found again with fewer clips
)
def test_reading_stops_at_the_first_frame_that_cannot_be_decoded(predictor, videos, frame_of):
    frames = decode(videos["long"])  # 95 frames
    opened = predictor.open_input(frames, "center", 0.5, None, fps=10.0)
    clips = len(opened.plan)
    opened.frames_of = _cut_at(60, frame_of, opened.frames_of)
    read = torch.cat(list(predictor.read_views(opened, 4)))
    kept = sum(
        int(clip.max()) < 60
        for clip in predictor.open_input(frames, "center", 0.5, None, fps=10.0).plan
    )
    assert len(read) == len(opened.plan) == len(opened.times) == kept
    assert opened.cut.startswith("DecodeError: v.mp4: cut; ")
    assert opened.cut.endswith(
        f"{kept} of {clips} windows predicted, the last {clips - kept} dropped"
    )


def test_views_past_a_frame_that_cannot_be_decoded_are_dropped_as_windows_are(predictor, videos):
    frames = decode(videos["long"])  # 95 frames
    opened = predictor.open_input(frames, (10, 3), None, None, fps=10.0)
    kept = sum(int(clip.max()) < 60 for clip in opened.plan)
    opened.frames_of = _cut_at(60, lambda b, _: b, opened.frames_of)
    read = torch.cat(list(predictor.read_views(opened, 4)))
    assert len(read) == 3 * kept and len(opened.plan) == kept and opened.times == []
    assert opened.cut.endswith(f"; {kept} of 10 clips predicted, the last {10 - kept} dropped")


@pytest.mark.parametrize("bad", [0, 3], ids=["first-frame", "in-the-first-clip"])
def test_an_input_that_cannot_be_decoded_from_its_first_clip_fails_whole(predictor, videos, bad):
    frames = decode(videos["long"])
    opened = predictor.open_input(frames, "center", 0.5, None, fps=10.0)
    opened.frames_of = _cut_at(bad, lambda b, _: b, opened.frames_of)
    with pytest.raises(DecodeError, match="^v.mp4: cut$"):
        list(predictor.read_views(opened, 4))
    assert opened.cut is None


def test_a_decoding_error_that_names_no_frame_fails_the_input_whole(predictor, videos):
    frames = decode(videos["long"])
    opened = predictor.open_input(frames, "center", 0.5, None, fps=10.0)
    opened.frames_of = _cut_at(60, lambda *_: None, opened.frames_of)
    with pytest.raises(DecodeError, match="^v.mp4: cut$"):
        list(predictor.read_views(opened, 4))
    assert opened.cut is None


def test_top_ranks_tied_classes_as_test_does():
    """Equal probabilities (a zeroed classifier): the lower class index first, the class
    ``octvideo test`` predicts for the same scores (torch's topk would name index 3 first)."""
    from octvideo.engine.evaluate import VideoScores

    probs = torch.full((6,), 1 / 6, dtype=torch.float64)
    pred = Prediction(probs, 0.0, 1.0)
    assert [name for name, _ in pred.top(list("abcdef"), 3)] == ["a", "b", "c"]
    scores = VideoScores(torch.tensor([0]), torch.tensor([0]), probs[None], torch.tensor([1]), [])
    assert pred.top(list("abcdef"), 1)[0][0] == "abcdef"[int(scores.preds[0])]
    partly = Prediction(torch.tensor([0.1, 0.3, 0.3, 0.0, 0.3]), 0.0, 1.0)
    assert [name for name, _ in partly.top(list("vwxyz"), 4)] == ["w", "x", "z", "v"]


class _LogitsByClip(nn.Module):
    """Logits ``logits[0]`` for a clip whose first frame is black, ``logits[1]`` for a white one."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, T, S, S) -> (N, K)
        white = x[:, 0, 0].mean(dim=(1, 2)) > 0  # (N,) normalised black is negative
        return torch.where(white.unsqueeze(1), self.logits[1], self.logits[0])


def test_predict_names_the_class_test_names_where_float32_would_tie_two():
    # the softmax means of classes 0 and 1 differ in the 8th digit: float32 rounds them into
    # one value (class 0 first), float64 keeps class 1 ahead, and both commands fuse in float64
    logits = torch.tensor(
        [
            [
                -0.9782823324203491,
                1.1564147472381592,
                -1.4223285913,
                -0.0025716694,
                0.4294094443,
                -1.3259016275,
            ],
            [
                1.1564147472381592,
                -0.9782820343971252,
                -1.4223285913,
                -0.0025716694,
                0.4294094443,
                -1.3259016275,
            ],
        ]
    )
    float32 = logits.softmax(-1).mean(0)
    assert float32[0] == float32[1]
    classes = ["a", "b", "c", "d", "e", "f"]
    predictor = Predictor(_LogitsByClip(logits), classes, META.clip)
    frames = torch.zeros(27, 8, 8, 3, dtype=torch.uint8)  # span 7: clip 2 of 2 starts at 10
    frames[10:] = 255
    result = predictor.predict(frames, views=(2, 1))
    views = ViewOutputs(
        video_index=torch.zeros(2, dtype=torch.long),
        temporal_index=torch.arange(2),
        spatial_index=torch.zeros(2, dtype=torch.long),
        labels=torch.ones(2, dtype=torch.long),
        ok=torch.ones(2, dtype=torch.bool),
        logits=logits,
    )
    scores = aggregate_views(views)
    assert scores.preds.tolist() == [1]
    assert [name for name, _ in result.video.top(classes, 2)] == ["b", "a"]
    torch.testing.assert_close(result.video.probs, scores.probs[0], rtol=0, atol=1e-15)
