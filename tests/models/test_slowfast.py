"""SlowFast: the hardware-aligned channel split option through both pathways and the laterals."""

from __future__ import annotations

import torch

from octvideo.models import create_model
from octvideo.ops import OctConv3d, low_channels


def test_aligned_slowfast_splits_every_layer_and_the_concatenation():
    model = create_model("slowfast_r50", alpha=0.25, channel_multiple=16)
    for name, m in model.named_modules():  # the Fast pathway's 8-channel layers: paper's split
        if isinstance(m, OctConv3d) and not name.startswith("fuse"):
            assert m.in_low == low_channels(m.in_channels, m.alpha_in, 16), name
            assert m.out_low == low_channels(m.out_channels, m.alpha_out, 16), name
    # the [slow, lateral] concatenation splits as the next stage's first conv expects
    for stage, fuse in (("res3", model.fuse_res2), ("res4", model.fuse_res3)):
        conv_a = getattr(model.slow, stage)[0].conv_a
        assert conv_a.in_low == low_channels(conv_a.in_channels, 0.25, 16)
        assert conv_a.in_low % 16 == 0 and fuse.conv.out_low % 16 == 0


def test_aligned_slowfast_runs():
    model = create_model("slowfast_r50", alpha=0.25, channel_multiple=16, num_classes=3).eval()
    with torch.no_grad():
        out = model([torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 8, 32, 32)])
    assert out.shape == (1, 3)
