"""Clip transforms: uint8 frames (T, H, W, 3) -> normalised float video (3, T, H, W).

Built from ``torchvision.transforms.v2`` on ``tv_tensors.Video`` (T, 3, H, W), so every frame of a
clip gets the same scale, crop and flip (``pytorchvideo.transforms`` does not import with current
torchvision).

    train_transform(cfg)                short side ~ U{jitter_lo..jitter_hi}, random crop, flip,
                                        [0, 1], normalise                       (Non-local recipe)
    val_transform(cfg)                  short side = jitter_lo, centre crop of val_crop_size
    eval_transform(cfg, spatial_index)  short side = test_short_side, one of three crops of
                                        test_crop_size along the long side: 0 = left / top,
                                        1 = centre, 2 = right / bottom (test_num_crops == 1 uses 1)
    pack_pathways(video, alpha)         SlowFast input [slow, fast]: the slow pathway keeps
                                        T // alpha frames evenly spaced (pytorchvideo's PackPathway)

Randomness comes from torch's global generator; the datasets fork and seed it per item.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from octvideo.data.config import DataConfig

ClipTransform = Callable[[torch.Tensor], torch.Tensor]


class _ToVideo(torch.nn.Module):
    """uint8 (T, H, W, 3) -> tv_tensors.Video (T, 3, H, W)."""

    def forward(self, frames: torch.Tensor) -> tv_tensors.Video:
        return tv_tensors.Video(frames.permute(0, 3, 1, 2))  # (T, 3, H, W)


class _ToCTHW(torch.nn.Module):
    """(T, 3, H, W) -> plain Tensor (3, T, H, W), the layout the models take."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()  # (3, T, H, W)


class RandomShortSide(torch.nn.Module):
    """Resize so that the short side is a size drawn uniformly from ``[low, high]``, exactly.

    ``v2.RandomShortestSize`` scales both sides by a float ratio and truncates, which lands one
    pixel short for some frame sizes (190x300 to short side 224 gives 223x353), and the random
    crop that follows then fails when the crop equals the lower scale."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, video: tv_tensors.Video) -> tv_tensors.Video:
        size = int(torch.randint(self.low, self.high + 1, ()))
        return v2.functional.resize(video, size, antialias=True)


class PositionCrop(torch.nn.Module):
    """Square crop at the start, centre or end of the long side (the three test crops).

    Args:
        size: crop side in pixels.
        position: 0 = left / top, 1 = centre, 2 = right / bottom.
    """

    def __init__(self, size: int, position: int) -> None:
        super().__init__()
        if position not in (0, 1, 2):
            raise ValueError(f"crop position must be 0, 1 or 2, got {position}")
        self.size = size
        self.position = position

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        height, width = video.shape[-2:]
        if min(height, width) < self.size:
            raise ValueError(f"cannot crop {self.size} from a {height}x{width} video")
        if height > width:  # portrait: the crops move down the long (vertical) side
            top, left = (height - self.size) * self.position // 2, (width - self.size) // 2
        else:
            top, left = (height - self.size) // 2, (width - self.size) * self.position // 2
        return v2.functional.crop(video, top, left, self.size, self.size)  # (T, 3, S, S)


def _finish(cfg: DataConfig) -> list[torch.nn.Module]:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.mean), std=list(cfg.std)),
        _ToCTHW(),
    ]


def train_transform(cfg: DataConfig) -> ClipTransform:
    """Scale jitter + random crop + horizontal flip + normalisation."""
    low, high = cfg.train_jitter_scales
    steps: list[torch.nn.Module] = [
        _ToVideo(),
        RandomShortSide(low, high),
        v2.RandomCrop(cfg.train_crop_size),
    ]
    if cfg.random_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _finish(cfg))


def val_transform(cfg: DataConfig) -> ClipTransform:
    """Short side = lower jitter scale, centre crop of ``val_crop_size``, normalisation."""
    return v2.Compose(
        [
            _ToVideo(),
            v2.Resize(cfg.train_jitter_scales[0], antialias=True),
            PositionCrop(cfg.val_crop_size, 1),  # the centre rounded down, as test and predict
            *_finish(cfg),
        ]
    )


def eval_transform(cfg: DataConfig, spatial_index: int = 1) -> ClipTransform:
    """Short side = ``test_short_side`` then the crop at ``spatial_index`` (0, 1, 2)."""
    return v2.Compose(
        [
            _ToVideo(),
            v2.Resize(cfg.test_short_side, antialias=True),
            PositionCrop(cfg.test_crop_size, spatial_index),
            *_finish(cfg),
        ]
    )


def pack_pathways(video: torch.Tensor, alpha: int) -> list[torch.Tensor]:
    """Split a clip into SlowFast pathways.

    Args:
        video: (3, T, H, W).
        alpha: speed ratio; the slow pathway keeps T // alpha frames.

    Returns:
        [slow (3, T // alpha, H, W), fast (3, T, H, W)].
    """
    num = video.shape[1]
    index = torch.linspace(0, num - 1, max(num // alpha, 1)).long()
    return [video.index_select(1, index), video]
