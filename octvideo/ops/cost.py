"""Analytic cost of octave convolution: closed-form ratios against the vanilla layer.

Per-layer counts are ``OctConv3d.flops`` and ``OctConv3d.activation_memory``.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049), Section 3.3. With rho the
share of positions the low group keeps (1/4 for the spatial octave, 1/8 for the spatio-temporal
one) and alpha_in = alpha_out = alpha, the four paths cost (1-a)^2 + rho * (2a(1-a) + a^2) of the
vanilla multiply-adds, i.e. 1 - (1 - rho) * a * (2 - a); the output holds 1 - (1 - rho) * a of the
vanilla elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from octvideo.ops.pair import check_share, normalize_octave


def low_share(octave: int | Sequence[int]) -> float:
    """rho: the share of positions a low group keeps (1/4 spatial, 1/8 spatio-temporal)."""
    return 1.0 / math.prod(normalize_octave(octave))


def flops_ratio(alpha: float, octave: int | Sequence[int] = (1, 2, 2)) -> float:
    """Multiply-adds of an OctConv (alpha_in = alpha_out = alpha) relative to the vanilla conv."""
    alpha = check_share(alpha)
    return 1.0 - (1.0 - low_share(octave)) * alpha * (2.0 - alpha)


def memory_ratio(alpha: float, octave: int | Sequence[int] = (1, 2, 2)) -> float:
    """Output activation elements of an OctConv relative to the vanilla conv."""
    alpha = check_share(alpha)
    return 1.0 - (1.0 - low_share(octave)) * alpha
