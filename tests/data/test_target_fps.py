"""``data.target_fps``: a clip's stride counted at one frame rate, so a clip spans the same seconds
in a 60 fps video as in a 30 fps one (PySlowFast's DATA.TARGET_FPS); None keeps the video's own
frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from octvideo.data.annotations import VideoRecord
from octvideo.data.datasets import VideoDataset
from octvideo.data.decoding import VideoInfo
from octvideo.data.sampling import center_clip_indices, clip_indices, clip_stride, clip_window
from tests.data.media_helpers import small_config


def test_stride_is_counted_at_the_target_rate():
    assert clip_stride(8, 60.0, 30.0) == 16.0
    assert clip_stride(8, 25.0, 30.0) == pytest.approx(8 * 25 / 30)
    assert clip_stride(8, 60.0, None) == 8  # the video's own frames
    assert clip_stride(8, 0.0, 30.0) == 8  # fps unknown: as is
    # a fractional stride rounds each frame, and an integer one is exactly as before
    assert clip_indices(10, 4, 8 * 25 / 30, 1000).tolist() == [10, 17, 23, 30]
    assert clip_indices(10, 4, 8, 1000).tolist() == [10, 18, 26, 34]
    assert clip_window(8, 8 * 25 / 30) == 48 and clip_window(8, 8) == 57
    assert center_clip_indices(100, 4, 2.5).tolist() == [45, 47, 50, 53]  # window 9, start 45


def _chosen(cfg, mode: str, fps: float) -> list[np.ndarray]:
    """The frame indices each item of a one-video dataset asks of a 300-frame video at fps."""
    dataset = VideoDataset([VideoRecord("v.mp4", 0)], cfg, mode)
    chosen = []

    def decode(video_index, choose):
        indices = choose(VideoInfo(300, fps, 64, 48, "pyav"))
        chosen.append(indices)
        return torch.zeros(len(indices), 48, 64, 3, dtype=torch.uint8)

    dataset._decode = decode
    for i in range(len(dataset) if mode != "train" else 1):
        dataset[(i, 0) if mode == "train" else i]
    return chosen


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_every_mode_spans_the_same_seconds_at_any_frame_rate(mode):
    cfg = small_config(sampling_rate=3, target_fps=30.0, test_num_crops=1)
    for fps, stride in ((30.0, 3), (60.0, 6), (15.0, 1.5)):
        for indices in _chosen(cfg, mode, fps):
            steps = np.diff(indices)
            assert np.abs(steps - stride).max() <= 0.5, (fps, indices)
    own = dataclasses.replace(cfg, target_fps=None)
    for indices in _chosen(own, mode, 60.0):
        assert np.diff(indices).tolist() == [3, 3, 3]


@pytest.mark.parametrize("value", [0, -30, float("nan")])
def test_target_fps_must_be_positive(value):
    with pytest.raises(ValueError, match="data.target_fps must be > 0 or null"):
        small_config(target_fps=value)
