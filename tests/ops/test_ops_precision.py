"""Reduced precision on a CPU: bfloat16 / float16 tensors (``trainer.precision=bf16-true``) and
autocast (``bf16-mixed``) through the octave operators, fast (channels-last) and plain paths."""

from __future__ import annotations

import pytest
import torch

from octvideo.models import create_model
from octvideo.ops import OctConv3d, OctPair, OctPool3d, downsample, low_size

CL = torch.channels_last_3d


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_downsample_in_reduced_precision(dtype, octave, channels_last) -> None:
    """CPU PyTorch has no avg_pool3d for these dtypes; the pool runs in float32 and rounds back,
    gradients included."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 7, 9)  # odd sizes: ceil mode
    if channels_last:
        x = x.contiguous(memory_format=CL)
    x = x.to(dtype).requires_grad_()
    y = downsample(x, octave)
    assert y.dtype == dtype and y.shape[2:] == low_size(x.shape[2:], octave)
    reference = downsample(x.detach().float(), octave)
    assert _relative_error(y.detach(), reference) < 1e-2
    y.float().square().sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype


def test_average_pool_layer_in_bfloat16() -> None:
    pool = OctPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1), mode="avg")
    pair = OctPair(torch.randn(1, 4, 2, 8, 8), torch.randn(1, 4, 2, 4, 4))
    out = pool(OctPair(pair.high.bfloat16(), pair.low.bfloat16()))
    reference = pool(pair)
    for got, want in zip(out, reference, strict=True):
        assert got.dtype == torch.bfloat16 and _relative_error(got, want) < 1e-2


@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
@pytest.mark.parametrize("size", [(8, 8, 8), (7, 7, 9)])
def test_octconv_trains_under_cpu_autocast(octave, size) -> None:
    """The channels-last training node under autocast: its inputs are cast as autocast casts a
    convolution's, so its backward (which autocast does not cover) sees its forward's dtypes.
    Gradients match the plain four-path layer's under the same autocast, within bfloat16.

    At least 3 frames in every group: PyTorch 2.14's bfloat16 CPU weight gradient is wrong for
    2-frame maps under 3-frame kernels (``engine.build.check_training_precision``)."""
    torch.manual_seed(0)
    layer = OctConv3d(16, 16, 3, alpha_in=0.5, alpha_out=0.5, octave=octave)
    x_h = torch.randn(2, 8, *size)
    x_l = torch.randn(2, 8, *low_size(size, octave))
    grads = {}
    for fast in (True, False):
        fmt = CL if fast else torch.contiguous_format
        inputs = [t.contiguous(memory_format=fmt).requires_grad_() for t in (x_h, x_l)]
        layer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(OctPair(*inputs))
        assert y.high.dtype == y.low.dtype == torch.bfloat16
        (y.high.float().square().sum() + y.low.float().square().sum()).backward()
        grads[fast] = [t.grad for t in inputs] + [p.grad for p in layer.parameters()]
    for got, want in zip(grads[True], grads[False], strict=True):
        assert got.dtype == want.dtype == torch.float32  # float32 inputs and parameters
        assert _relative_error(got, want) < 3e-2


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_inference_under_cpu_autocast(channels_last) -> None:
    """Eval-mode inference folds batch norm and, in float32, runs oneDNN on prepacked weights,
    which would bypass autocast; under autocast it runs the autocast convolutions instead."""
    torch.manual_seed(0)
    model = create_model("i3d_r18", alpha=0.5, num_classes=6, width=8).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    if channels_last:
        model, clip = model.to(memory_format=CL), clip.contiguous(memory_format=CL)
    with torch.inference_mode():
        reference = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(clip)
    assert out.dtype == torch.bfloat16 and _relative_error(out, reference) < 5e-2


def test_model_trains_in_bfloat16() -> None:
    """A whole bfloat16 model (``bf16-true``), channels-last and not: the pooling of the plain
    layout and of the temporal octave has no bfloat16 CPU kernel of its own. Gradients are
    checked for presence and dtype, not value: this 4-frame clip reaches 2-frame maps, where
    PyTorch 2.14's bfloat16 CPU weight gradients are wrong (``check_training_precision``)."""
    torch.manual_seed(0)
    for octave in ((1, 2, 2), (2, 2, 2)):
        for fmt in (torch.contiguous_format, CL):
            model = create_model("i3d_r18", alpha=0.5, octave=octave, num_classes=6, width=8)
            model = model.to(dtype=torch.bfloat16, memory_format=fmt)
            clip = torch.randn(2, 3, 4, 32, 32).to(torch.bfloat16).contiguous(memory_format=fmt)
            model(clip).float().logsumexp(1).sum().backward()
            assert all(
                p.grad is not None and p.grad.dtype == torch.bfloat16 for p in model.parameters()
            )
