"""The data section's settings: the default video suffixes are the ones ``data check``,
``data prepare`` and Kinetics count, and ``data.target_fps`` must be positive."""

from __future__ import annotations

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
