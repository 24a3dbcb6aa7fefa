"""The data section's settings: the default video suffixes are the ones ``data check``,
``data prepare`` and Kinetics count, ``data.target_fps`` must be positive, and a field refuses a
value of another type than its own (a bool for a frame count, a str for the suffixes), naming it."""

from __future__ import annotations

import numpy as np
import pytest

from octvideo.data import DataConfig
from octvideo.data.annotations import VIDEO_EXTENSIONS
from tests.data.media_helpers import small_config
from tests.scripts import run_code


def test_the_data_section_imports_without_torch():
    done = run_code("import sys, octvideo.data.config; print('torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_default_video_extensions_are_the_annotation_ones():
    assert tuple(DataConfig().video_extensions) == VIDEO_EXTENSIONS
    assert ".m4v" in DataConfig().video_extensions


@pytest.mark.parametrize("value", [0, -30, float("nan")])
def test_target_fps_must_be_positive(value):
    with pytest.raises(ValueError, match="data.target_fps must be > 0 or null"):
        small_config(target_fps=value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_frames", True, "data.num_frames must be a whole number, got True"),
        ("num_frames", "8", "data.num_frames must be a whole number, got '8'"),
        ("num_frames", 8.0, "data.num_frames must be a whole number, got 8.0"),
        (
            "video_extensions",
            ".mp4",
            "data.video_extensions must be a tuple of strings, got '.mp4'",
        ),
        ("video_extensions", (".mp4", 4), "data.video_extensions must be a tuple of strings, got "),
        (
            "train_jitter_scales",
            (40,),
            "data.train_jitter_scales must be a tuple of 2 whole numbers",
        ),
        (
            "mean",
            (0.4, "0.4", 0.4),
            "data.mean must be a tuple of 3 numbers, got (0.4, '0.4', 0.4)",
        ),
        ("target_fps", "30", "data.target_fps must be a number or None, got '30'"),
        ("decode_short_side", 32.0, "data.decode_short_side must be a whole number or None, got"),
        ("random_flip", 1, "data.random_flip must be True or False, got 1"),
        ("train_list", 3, "data.train_list must be text (a str), got 3"),
    ],
)
def test_a_value_of_another_type_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ValueError) as err:
        small_config(**{field: value})
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("frames", "speed", "slow"), [(8, None, 8), (32, 4, 8), (32, 8, 4)])
def test_slow_frames_are_the_slow_pathways_share_of_num_frames(frames, speed, slow):
    # num_frames counts the Fast pathway's frames; an "8x8" SlowFast recipe's 8 is the Slow's
    assert DataConfig(num_frames=frames, slowfast_alpha=speed).slow_frames == slow


def test_whole_numbers_for_numbers_and_lists_for_tuples_are_taken():
    cfg = small_config(
        mean=[0, 0.5, 1],
        target_fps=30,
        video_extensions=[".mp4"],
        train_jitter_scales=[40, 48],
        decode_short_side=None,
    )
    assert cfg.mean == [0, 0.5, 1] and cfg.target_fps == 30
    assert cfg.video_extensions == [".mp4"] and cfg.train_jitter_scales == [40, 48]


def test_paths_and_numpy_numbers_from_python_are_kept_as_plain_values(tmp_path):
    # torchvision's resize refused numpy's whole numbers as sizes, a reader a pathlib.Path
    cfg = DataConfig(
        train_list=tmp_path / "train.txt",
        root=tmp_path,
        batch_size=np.int64(4),
        train_jitter_scales=(np.int64(256), np.int32(320)),
        mean=(np.float32(0.5), 0.5, 0.5),
        target_fps=np.float32(30.0),
        std=(np.float64(0.25), 0.25, 0.25),
    )
    assert cfg.train_list == str(tmp_path / "train.txt") and cfg.root == str(tmp_path)
    assert type(cfg.batch_size) is int and cfg.batch_size == 4
    assert [type(v) for v in cfg.train_jitter_scales] == [int, int]
    assert type(cfg.mean[0]) is float and type(cfg.target_fps) is float
    assert type(cfg.std[0]) is float  # np.float64 is a float a weights_only load refuses
    with pytest.raises(ValueError, match="data.num_frames must be a whole number, got np.True_"):
        DataConfig(num_frames=np.bool_(True))
