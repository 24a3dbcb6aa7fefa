"""Clip transforms: the jittered short side is exact, one scale, crop and flip per clip, the three
test crops along the long side."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from octvideo.data import DataConfig
from octvideo.data.transforms import (
    RandomShortSide,
    eval_transform,
    train_transform,
    val_transform,
)


def _config(**overrides) -> DataConfig:
    base = dict(
        train_jitter_scales=(224, 224),
        train_crop_size=224,
        val_crop_size=224,
        test_short_side=224,
        test_crop_size=224,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    return DataConfig(**{**base, **overrides})


def _columns(t: int, h: int, w: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) frames whose every pixel holds its column index (mod 256)."""
    cols = (torch.arange(w) % 256).to(torch.uint8)
    return cols.view(1, 1, w, 1).expand(t, h, w, 3).contiguous()


@pytest.mark.parametrize("size", [(190, 300), (187, 280), (110, 175), (300, 190)])
def test_the_jittered_short_side_is_exactly_the_drawn_size(size):
    h, w = size
    video = tv_tensors.Video(torch.zeros(2, 3, h, w, dtype=torch.uint8))
    for low, high in ((224, 224), (100, 140)):
        torch.manual_seed(0)
        out = RandomShortSide(low, high)(video)
        assert low <= min(out.shape[-2:]) <= high, (size, out.shape)
    clip = train_transform(_config())(_columns(2, h, w))  # a crop as large as the lower scale
    assert clip.shape == (3, 2, 224, 224)


def test_every_frame_of_a_clip_gets_the_same_scale_crop_and_flip():
    frames = _columns(6, 48, 96)
    cfg = _config(train_jitter_scales=(40, 64), train_crop_size=32, val_crop_size=32)
    flipped = 0
    for seed in range(20):
        torch.manual_seed(seed)
        clip = train_transform(cfg)(frames)  # (3, T, 32, 32)
        assert all(torch.equal(clip[:, 0], clip[:, t]) for t in range(1, 6))
        row = clip[0, 0, 0]
        flipped += bool(row[0] > row[-1])  # columns run right to left
    assert 0 < flipped < 20


@pytest.mark.parametrize(("h", "w"), [(32, 64), (64, 32)])
def test_the_three_test_crops_run_along_the_long_side(h, w):
    # pixel value = its coordinate along the long side (columns, or rows for a portrait video)
    frames = _columns(2, h, w) if w > h else _columns(2, w, h).transpose(1, 2).contiguous()
    cfg = _config(test_short_side=32, test_crop_size=32, test_num_crops=3)
    starts = []
    for position in (0, 1, 2):
        clip = eval_transform(cfg, position)(frames)
        assert clip.shape == (3, 2, 32, 32)
        starts.append(round(float(clip[0, 0, 0, 0]) * 255))  # the crop's first coordinate
    assert starts == [0, 16, 32]


@pytest.mark.parametrize(("h", "w"), [(32, 67), (67, 32)])
def test_the_validation_crop_is_the_test_centre_crop(h, w):
    # an odd margin (35 pixels): the centre is rounded down, as test and predict round it;
    # pixel value = its coordinate along the long side
    frames = _columns(2, h, w) if w > h else _columns(2, w, h).transpose(1, 2).contiguous()
    sizes = dict(train_crop_size=32, val_crop_size=32, test_short_side=32, test_crop_size=32)
    cfg = _config(train_jitter_scales=(32, 32), **sizes)
    val = val_transform(cfg)(frames)
    assert torch.equal(val, eval_transform(cfg, 1)(frames))
    assert round(float(val[0, 0, 0, 0]) * 255) == 17  # floor(35 / 2)
