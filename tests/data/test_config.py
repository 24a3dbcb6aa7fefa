"""The data section's settings: the default video suffixes are the ones ``data check``,
``data prepare`` and Kinetics count, ``data.target_fps`` must be positive, and a field refuses a
value of another type than its own (a bool for a frame count, a str for the suffixes), naming it."""

from __future__ import annotations

import numpy as np
import pytest

from octvideo.data import DataConfig
from octvideo.data.annotations import VIDEO_EXTENSIONS
from tests.data.media_helpers import small_config


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


def test_whole_numbers_of_numpy_ints_floats_and_lists_for_tuples_are_taken_unchanged():
    cfg = small_config(
        num_frames=np.int64(4),
        mean=[0, 0.5, 1],
        target_fps=30,
        video_extensions=[".mp4"],
        train_jitter_scales=[40, 48],
        decode_short_side=None,
    )
    assert cfg.num_frames == 4 and type(cfg.num_frames) is np.int64
    assert cfg.mean == [0, 0.5, 1] and cfg.target_fps == 30
    assert cfg.video_extensions == [".mp4"] and cfg.train_jitter_scales == [40, 48]
