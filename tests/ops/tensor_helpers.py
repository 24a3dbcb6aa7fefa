"""Helpers of the reduced-precision and memory-layout tests of the ops and the models."""

from __future__ import annotations

import torch

CL = torch.channels_last_3d


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / |b|`` over the whole tensor, computed in float64."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())
