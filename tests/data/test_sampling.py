"""Clip sampling: training starts, multi-view starts, short videos, and the stride counted at
``data.target_fps``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvideo.data.sampling import (
    center_clip_indices,
    clip_indices,
    clip_stride,
    clip_window,
    multiview_clip_indices,
    random_clip_indices,
)


def test_random_clip_is_strided_inside_the_video_and_reproducible():
    starts = set()
    for seed in range(1000):
        idx = random_clip_indices(100, 8, 4, torch.Generator().manual_seed(seed))
        assert idx.shape == (8,)
        assert (np.diff(idx) == 4).all() and idx[0] >= 0 and idx[-1] <= 99
        starts.add(int(idx[0]))
        again = random_clip_indices(100, 8, 4, torch.Generator().manual_seed(seed))
        assert (idx == again).all()
    assert clip_window(8, 4) == 29
    assert min(starts) == 0 and max(starts) == 100 - 29  # both ends reachable
    assert len(starts) > 40


def test_multiview_starts_split_the_video_evenly():
    clips = multiview_clip_indices(100, 8, 8, 10)
    assert len(clips) == 10
    # start_i = floor(i * (100 - 57) / 10), PySlowFast's test rule
    assert [int(c[0]) for c in clips] == [i * 43 // 10 for i in range(10)]
    assert all((np.diff(c) == 8).all() for c in clips)
    assert center_clip_indices(100, 8, 8)[0] == 43 // 2


def test_one_test_clip_is_the_centre_clip_validation_takes():
    (only,) = multiview_clip_indices(100, 8, 8, 1)
    assert only.tolist() == center_clip_indices(100, 8, 8).tolist()
    assert only[0] == 21  # not the first clip, which the N-clip rule gives at N = 1


def test_short_video_repeats_its_last_frame():
    clip = random_clip_indices(5, 8, 2, torch.Generator().manual_seed(0))
    assert clip.tolist() == [0, 2, 4, 4, 4, 4, 4, 4]
    views = multiview_clip_indices(5, 8, 2, 3)
    assert all(v.tolist() == [0, 2, 4, 4, 4, 4, 4, 4] for v in views)


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
