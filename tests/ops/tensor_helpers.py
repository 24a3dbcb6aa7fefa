"""Helpers of the reduced-precision, memory-layout and compiled tests of the ops and the
models."""

from __future__ import annotations

import torch
from torch import nn

from octvideo.ops import OctPair

CL = torch.channels_last_3d


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / |b|`` over the whole tensor, computed in float64."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def ceil_mean_pool(x: torch.Tensor, factor: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, T, H, W) average-pooled by ``factor`` in ceil mode, written out: each cell the
    mean of the elements it holds (the last along an axis may hold fewer, an axis shorter than
    its factor pools to one), one axis after another."""
    for dim, f in zip((2, 3, 4), factor, strict=True):
        x = torch.cat([part.mean(dim, keepdim=True) for part in x.split(f, dim)], dim)
    return x


def compiled_and_eager(module: nn.Module, x: OctPair, **compile_kwargs) -> tuple[list, list]:
    """What ``torch.compile(module, **compile_kwargs)`` and ``module`` itself give for ``x``,
    each followed by a backward of one fixed random weighting of the outputs: the outputs, the
    gradients of ``x``'s groups and of the parameters, in that order, compiled first."""
    upstream = [torch.randn(t.shape, dtype=t.dtype) for t in module(x)]
    results = []
    for fn in (torch.compile(module, **compile_kwargs), module):
        inputs = OctPair(*(t.detach().clone().requires_grad_() for t in x))
        out = fn(inputs)
        sum((t * u).sum() for t, u in zip(out, upstream, strict=True)).backward()
        results.append([*out, *(t.grad for t in inputs), *(p.grad for p in module.parameters())])
        module.zero_grad(set_to_none=True)
    return results[0], results[1]
