"""Soft targets with label smoothing, and mixup / CutMix: targets mixed as the clips are, one
CutMix box for every pathway."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvideo.engine.mixing import mix_batch, soft_targets


def test_soft_targets_with_smoothing():
    t = soft_targets(torch.tensor([2, 0]), 4, smoothing=0.2)
    assert t.sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert t[0].tolist() == pytest.approx([0.05, 0.05, 0.85, 0.05])


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.8, 0.0), (0.0, 1.0)])
def test_mixing_keeps_targets_consistent(mixup, cutmix):
    rng = np.random.default_rng(0)
    video = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 2, 8, 8)
    targets = soft_targets(torch.tensor([0, 1, 2, 3]), 4)
    mixed, mixed_targets, lam = mix_batch(
        video, targets, mixup_alpha=mixup, cutmix_alpha=cutmix, rng=rng
    )
    assert mixed.shape == video.shape
    assert mixed_targets.sum(1).tolist() == pytest.approx([1.0] * 4)
    eye = torch.eye(4)
    for i in range(4):
        if cutmix:
            # The share of clip i's own pixels is its own label's weight (1 if paired with itself).
            own = float((mixed[i] == i).float().mean())
            assert float(mixed_targets[i, i]) == pytest.approx(own, abs=1e-6)
        else:
            # Every pixel is lam * i + (1 - lam) * j: recover the partner j, check the target.
            j = round((float(mixed[i].flatten()[0]) - lam * i) / (1.0 - lam))
            expected = lam * eye[i] + (1.0 - lam) * eye[j]
            torch.testing.assert_close(mixed_targets[i], expected)
    assert 0.0 < lam < 1.0


def test_cutmix_box_is_shared_by_pathways():
    rng = np.random.default_rng(3)
    slow = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 2, 8, 8)
    fast = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 8, 8, 8)
    (ms, mf), _, _ = mix_batch(
        [slow, fast], soft_targets(torch.arange(4), 4), mixup_alpha=0, cutmix_alpha=1.0, rng=rng
    )
    assert torch.equal(ms[:, :, 0], mf[:, :, 0])
