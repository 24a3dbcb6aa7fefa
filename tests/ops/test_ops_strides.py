"""Channels-last outputs with a size-1 axis carry the standard strides: PyTorch 2.14's CPU
batch-norm backward returns wrong gradients for an input whose size-1 time axis has another stride
(the tensor still counts as channels-last) when its output gradient is NCDHW."""

from __future__ import annotations

import pytest
import torch

from octvideo.ops import OctConv3d, OctNorm, OctPair
from octvideo.ops.pair import downsample

CL = torch.channels_last_3d


def _standard(shape: torch.Size) -> tuple[int, ...]:
    return torch.empty(shape, memory_format=CL).stride()


@pytest.mark.parametrize("kernel", [1, (1, 3, 3), (3, 1, 1)])
def test_octave_outputs_with_one_frame_have_standard_strides(kernel):
    conv = OctConv3d(8, 16, kernel, alpha_in=0.5, alpha_out=0.5, octave=(2, 2, 2)).double()
    conv = conv.to(memory_format=CL)
    x = OctPair(torch.randn(2, 4, 2, 6, 6), torch.randn(2, 4, 1, 3, 3))
    x = OctPair(*(t.double().contiguous(memory_format=CL).requires_grad_() for t in x))
    y = conv(x)
    for part in y:
        assert part.stride() == _standard(part.shape)
    pooled = downsample(y.high.detach(), (1, 2, 2))
    assert pooled.shape[2] == 2 and pooled.stride() == _standard(pooled.shape)
    one_frame = downsample(torch.randn(2, 4, 1, 6, 6).contiguous(memory_format=CL), (1, 2, 2))
    assert one_frame.stride() == _standard(one_frame.shape)


def test_batch_norm_after_a_one_frame_low_group_gets_the_contiguous_gradients():
    torch.manual_seed(0)
    conv = OctConv3d(32, 64, 1, alpha_in=0.0, alpha_out=0.25, octave=(2, 2, 2), bias=True)
    conv, norm = conv.double(), OctNorm(64, alpha=0.25).double()
    with torch.no_grad():
        norm.low.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 32, 2, 5, 5, dtype=torch.float64)
    g_low = torch.randn(2, 16, 1, 3, 3, dtype=torch.float64)  # an NCDHW gradient, as NL gives
    grads = []
    for fmt in (torch.contiguous_format, CL):
        layer = conv.to(memory_format=fmt)
        xi = x.clone().contiguous(memory_format=fmt).requires_grad_()
        layer.zero_grad()
        norm.zero_grad()
        norm(layer(xi)).low.backward(g_low)
        grads.append([xi.grad, norm.low.weight.grad, norm.low.bias.grad, layer.conv_hl.weight.grad])
    for plain, fast in zip(*grads, strict=True):
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grads[1][2], g_low.sum((0, 2, 3, 4)))  # bias gradient = sum(g)
