"""``zero_init_final_bn``: every residual block starts as its shortcut (PySlowFast's
``ZERO_INIT_FINAL_BN``), in both frequency groups, for bottleneck and basic blocks."""

from __future__ import annotations

import pytest
import torch

from octvideo.models import create_model
from octvideo.models.layers import BasicBlock, Bottleneck
from octvideo.ops import OctPair


@pytest.mark.parametrize("name", ["i3d_r18", "i3d_r50", "slowfast_r50"])
def test_each_block_starts_as_its_shortcut(name):
    torch.manual_seed(0)
    model = create_model(name, alpha=0.25, num_classes=5, zero_init_final_bn=True).eval()
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck | BasicBlock)]
    assert blocks
    block = blocks[1]  # an identity shortcut
    last = block.bn_c if isinstance(block, Bottleneck) else block.bn_b
    assert block.downsample is None and last.low is not None
    c, c_low = last.high.num_features, last.low.num_features
    x = OctPair(torch.randn(1, c, 2, 8, 8), torch.randn(1, c_low, 2, 4, 4))
    with torch.no_grad():
        y = block(x)
    torch.testing.assert_close(y.high, x.high.relu())
    torch.testing.assert_close(y.low, x.low.relu())
    default = create_model(name, alpha=0.25, num_classes=5)  # off by default: unit scales
    scales = [m.weight for m in default.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert all(bool((w == 1).all()) for w in scales)
