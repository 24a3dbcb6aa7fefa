"""Mixup and CutMix for video clips, with soft (optionally smoothed) targets.

Mixup: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018. CutMix: Yun et al.,
"CutMix", ICCV 2019. For video the CutMix box is spatial and spans all frames; a SlowFast input
(list of pathways) gets the same permutation, weight and relative box in every pathway.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

Clip = Tensor | list[Tensor]


def soft_targets(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """One-hot targets with label smoothing: (B,) -> (B, K)."""
    off = smoothing / num_classes
    out = torch.full((labels.numel(), num_classes), off, device=labels.device)
    out.scatter_(1, labels.view(-1, 1), 1.0 - smoothing + off)
    return out


def _box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, ...]:
    """A box covering about 1 - lam of the frame, clipped at the borders."""
    ratio = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return y0, y1, x0, x1


def mix_batch(
    video: Clip,
    targets: Tensor,
    *,
    mixup_alpha: float,
    cutmix_alpha: float,
    rng: np.random.Generator,
) -> tuple[Clip, Tensor, float]:
    """Mix a batch with a permutation of itself.

    Args:
        video: (B, 3, T, H, W) or a list of such pathways.
        targets: (B, K) soft targets.
        mixup_alpha: Beta(a, a) parameter of mixup; 0 = not used.
        cutmix_alpha: Beta(a, a) parameter of CutMix; 0 = not used. With both on, each batch
            uses one of them with equal chance.
        rng: draws the permutation, the weight and the box.

    Returns:
        The mixed clip, the mixed targets (B, K) and the weight of the unpermuted batch.
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        raise ValueError("mix_batch needs mixup_alpha > 0 or cutmix_alpha > 0")
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    pathways = video if isinstance(video, list) else [video]
    perm = torch.from_numpy(rng.permutation(pathways[0].shape[0])).to(pathways[0].device)
    if use_cutmix:
        height, width = pathways[0].shape[-2:]
        y0, y1, x0, x1 = _box(height, width, lam, rng)
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
        mixed = []
        for clip in pathways:  # (B, 3, T, H', W'): the box scaled to each pathway's size
            sy, sx = clip.shape[-2] / height, clip.shape[-1] / width
            ys = slice(int(y0 * sy), int(y1 * sy))
            xs = slice(int(x0 * sx), int(x1 * sx))
            out = clip.clone()
            out[..., ys, xs] = clip[perm][..., ys, xs]
            mixed.append(out)
    else:
        mixed = [clip * lam + clip[perm] * (1.0 - lam) for clip in pathways]
    mixed_targets = targets * lam + targets[perm] * (1.0 - lam)
    return (mixed if isinstance(video, list) else mixed[0]), mixed_targets, lam
