"""Non-local block on octave pairs.

Reference: Wang et al., "Non-local Neural Networks", CVPR 2018 (embedded Gaussian instantiation,
bottleneck width C/2, 1x2x2 max-pool subsampling of phi and g, zero-initialised output norm);
Chen et al., "Drop an Octave", ICCV 2019 (Oct-I3D + NL).

Octave design: attention runs once, over the full-resolution positions. The three embeddings read
both groups (1x1x1 OctConv3d with alpha_in = alpha, alpha_out = 0: H->H plus the low group's
contribution computed at low resolution and upsampled), and the output projection writes both
groups (alpha_in = 0, alpha_out = alpha: H->H plus H->L on the pooled response), followed by a
per-group norm and a per-group residual addition. At alpha 0 it is exactly the Non-local block, and
its weights are the four blocks of the vanilla block's 1x1 convs, so a vanilla checkpoint slices in.
Against the vanilla block it saves the low group's share of the embedding and projection
multiply-adds at a quarter of the cost (1 - 0.75 * alpha each); the attention products
(N x N/4 x C/2 per block) are unchanged.

Cost at 8x224x224 (fvcore, convolutions only, as the paper counts): the five blocks of I3D + NL
add 5.14 GFLOPs at alpha 0 (33.55 in all, paper 33.3) and 4.76 at alpha 0.1 (Oct-I3D + NL 30.40,
paper 28.9, +5.2%). The paper's increment over Oct-I3D (28.9 - 25.6 = 3.3) is 63% of the vanilla
blocks' 5.2: no split of these 1x1 convs at alpha 0.1 gets there (octave convs on both sides:
86%, high group only: 81%, this design: 93%); the figure is matched by Non-local blocks in res4
only (3.08 -> 28.7), which the paper does not state, so the Non-local paper's placement is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from octvideo.models.checks import check_whole
from octvideo.ops import (
    Octave,
    OctConv3d,
    OctNorm,
    OctPair,
    as_pair,
    fit_low,
    max_pool3d,
    normalize_octave,
    oct_add,
)
from octvideo.ops.pair import whole_triple


class NonLocal3d(nn.Module):
    """Embedded-Gaussian non-local block::

        x ─┬─ theta ──────────────────────┐
           ├─ max-pool 1x2x2 ─┬─ phi ── softmax(theta^T phi / sqrt(d)) ── @ g ── out ── bn ─> + ─> z
           │                  └─ g ────────────────────────────────────┘                     ^
           └─────────────────────────────────────────────────────────────────────────────────┘

    The max-pool subsamples the input of phi and g (each group, ceil rounding), as the Non-local
    code does, so phi and g cost a quarter of theta.

    Args:
        channels: channels of the incoming pair (both groups).
        alpha: low share of the incoming (and outgoing) pair.
        octave: (T, H, W) octave factor of the pair.
        inner_chans: embedding width d; ``channels // 2`` by default.
        pool_size: (T, H, W) max-pool of phi and g (the Non-local paper's subsampling); None for
            none.
        norm_layer: normalisation class of the output (its scale starts at zero, so a new block
            starts as the identity).
        channel_multiple: the pair's low-group rounding (``octvideo.ops.low_channels``); None
            for the paper's split.
    """

    def __init__(
        self,
        channels: int,
        *,
        alpha: float = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        inner_chans: int | None = None,
        pool_size: Sequence[int] | None = (1, 2, 2),
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        channels = check_whole("channels", channels)  # numpy's whole numbers as Python's
        inner = channels // 2 if inner_chans is None else check_whole("inner_chans", inner_chans)
        self.inner_chans = inner
        m = channel_multiple
        embed = {
            "alpha_in": alpha,
            "alpha_out": 0.0,
            "octave": octave,
            "bias": True,
            "channel_multiple": m,
        }
        self.theta = OctConv3d(channels, inner, 1, **embed)
        self.phi = OctConv3d(channels, inner, 1, **embed)
        self.g = OctConv3d(channels, inner, 1, **embed)
        self.pool_size = None if pool_size is None else whole_triple(pool_size, "pool_size", 1)
        self.octave: Octave = normalize_octave(octave)
        self.out = OctConv3d(
            inner,
            channels,
            1,
            alpha_in=0.0,
            alpha_out=alpha,
            octave=octave,
            bias=True,
            channel_multiple=m,
        )
        self.bn = OctNorm(channels, alpha=alpha, norm_layer=norm_layer, channel_multiple=m)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The Non-local paper's initialisation: N(0, 0.01) convs, zero output-norm scale."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for norm in (self.bn.high, self.bn.low):
            if norm is not None and getattr(norm, "weight", None) is not None:
                nn.init.zeros_(norm.weight)

    def _subsample(self, x: OctPair) -> OctPair:
        if self.pool_size is None:
            return x
        k = self.pool_size
        high = max_pool3d(x.high, k, k, ceil_mode=True)  # (B, C_h, T', H', W')
        if x.low is None:
            return OctPair(high, None)
        low = max_pool3d(x.low, k, k, ceil_mode=True)  # (B, C_l, T'/o, H'/o, W'/o)
        return OctPair(high, fit_low(low, high, self.octave))

    def forward(self, x: OctPair) -> OctPair:
        b = x.high.shape[0]
        t, h, w = x.high.shape[2:]
        theta = self.theta(x)  # (B, d, T, H, W)
        pooled = self._subsample(x)  # (B, C, T', H', W') per group
        phi = self.phi(pooled)  # (B, d, T', H', W')
        g = self.g(pooled)  # (B, d, T', H', W')
        theta = theta.flatten(2).transpose(1, 2)  # (B, N, d)
        phi = phi.flatten(2)  # (B, d, N')
        g = g.flatten(2).transpose(1, 2)  # (B, N', d)
        attn = torch.matmul(theta, phi) * self.inner_chans**-0.5  # (B, N, N')
        attn = F.softmax(attn, dim=-1)
        y = torch.matmul(attn, g)  # (B, N, d)
        y = y.transpose(1, 2).reshape(b, self.inner_chans, t, h, w)  # (B, d, T, H, W)
        z = self.bn(self.out(y))  # (B, C, T, H, W) per group
        return as_pair(oct_add(x, z))
