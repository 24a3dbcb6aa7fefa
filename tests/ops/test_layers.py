"""Per-group layers, split/merge, and the pair helpers; average pooling in bfloat16, and batch norm
after a one-frame low group (standard channels-last strides, contiguous gradients)."""

from __future__ import annotations

import ast
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import octvideo.ops
from octvideo.ops import (
    OctAct,
    OctConv3d,
    OctDropout,
    OctMerge,
    OctNorm,
    OctPair,
    OctPool3d,
    OctSplit,
    check_pair,
    is_channels_last,
    max_pool3d,
    memory_format_for,
    oct_add,
    to_memory_format,
    upsample,
)
from tests.ops.tensor_helpers import CL, compiled_and_eager, relative_error


def pair(c_h: int, c_l: int, size, octave, seed: int = 0) -> OctPair:
    g = torch.Generator().manual_seed(seed)
    low = [math.ceil(s / o) for s, o in zip(size, octave, strict=True)]
    return OctPair(
        torch.randn(2, c_h, *size, generator=g, dtype=torch.float64),
        torch.randn(2, c_l, *low, generator=g, dtype=torch.float64),
    )


def test_norm_keeps_separate_statistics():
    norm = OctNorm(8, alpha=0.25).double().train()
    x = pair(6, 2, (2, 4, 4), (1, 2, 2))
    x = OctPair(x.high + 5.0, x.low - 3.0)
    norm(x)
    assert norm.high.num_features == 6 and norm.low.num_features == 2
    torch.testing.assert_close(norm.high.running_mean, 0.1 * x.high.mean(dim=(0, 2, 3, 4)))
    torch.testing.assert_close(norm.low.running_mean, 0.1 * x.low.mean(dim=(0, 2, 3, 4)))


def test_norm_and_act_accept_plain_tensors():
    norm = OctNorm(4, alpha=0.0)
    assert norm.low is None
    x = torch.randn(2, 4, 2, 3, 3)
    torch.testing.assert_close(OctAct(nn.ReLU)(norm(x)), torch.relu(norm(x)))


def test_dropout_is_per_group_and_off_in_eval():
    drop = OctDropout(0.5)
    x = pair(4, 4, (2, 4, 4), (1, 2, 2))
    y = drop(x)
    assert (y.high == 0).any() and (y.low == 0).any()
    drop.eval()
    y = drop(x)
    assert torch.equal(y.high, x.high) and torch.equal(y.low, x.low)


@pytest.mark.parametrize("p", [1.5, -0.1, math.nan, True, "0.5", None])
def test_dropout_refuses_a_bad_p_when_built_as_nn_dropout_does(p):
    with pytest.raises(ValueError, match=r"^OctDropout p must be a number in \[0, 1\], got "):
        OctDropout(p)


def test_dropout_takes_any_real_p_from_0_to_1():
    assert [OctDropout(p).p for p in (0, 1, np.float32(0.25))] == [0.0, 1.0, 0.25]


@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
@pytest.mark.parametrize("t", [1, 2, 3, 5, 6, 8])
@pytest.mark.parametrize("hw", [7, 14, 15, 56, 112])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [((1, 3, 3), (1, 2, 2), (0, 1, 1)), ((2, 1, 1), (2, 1, 1), 0), ((3, 3, 3), 2, 1)],
)
def test_pooling_keeps_pairs_aligned(octave, t, hw, kernel, stride, padding):
    if t < kernel[0] and padding == 0:
        pytest.skip("window longer than the clip")
    x = pair(2, 2, (t, hw, hw), octave)
    pool = OctPool3d(kernel, stride, padding, mode="max", octave=octave)
    y = pool(x)
    check_pair(y, octave)
    assert y.high.shape == nn.MaxPool3d(kernel, stride, padding)(x.high).shape


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(8, 56, 56), (5, 7, 9), (1, 3, 2), (3, 1, 1)])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [
        ((2, 1, 1), None, 0),
        ((1, 2, 2), None, 0),
        ((3, 3, 3), None, 0),
        ((2, 3, 1), (2, 3, 1), 0),
        ((1, 3, 3), (1, 2, 2), (0, 1, 1)),  # overlapping: F.max_pool3d's own path
    ],
)
def test_max_pool_matches_torch_without_autograd(
    size, kernel, stride, padding, channels_last, ceil_mode
):
    """Inference max pooling (strided maxima for windows that do not overlap) returns exactly
    what F.max_pool3d returns, NaN included, in the same memory layout, or raises as it does."""
    g = torch.Generator().manual_seed(sum(size))
    x = torch.randn(2, 3, *size, generator=g, dtype=torch.float64)
    x[1, 2, -1, -1, -1] = float("nan")
    x[0, 1].view(-1)[size[-1] // 2] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    args = (kernel, stride, padding)
    try:
        expected = nn.functional.max_pool3d(x, *args, ceil_mode=ceil_mode)
    except RuntimeError as error:
        with pytest.raises(RuntimeError, match="size"):
            max_pool3d(x, *args, ceil_mode=ceil_mode)
        assert "size" in str(error)
        return
    with torch.inference_mode():
        y = max_pool3d(x, *args, ceil_mode=ceil_mode)
    assert y.shape == expected.shape
    torch.testing.assert_close(y, expected, equal_nan=True, rtol=0, atol=0)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=layout) == expected.is_contiguous(memory_format=layout)
    assert y.data_ptr() != x.data_ptr()


def test_max_pool_under_autograd_has_torch_gradient():
    x = torch.randn(1, 2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 2, 2, 3, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(max_pool3d(x, 2), x, g)
    (expected,) = torch.autograd.grad(nn.functional.max_pool3d(x, 2), x, g)
    torch.testing.assert_close(grad, expected, rtol=0, atol=0)


def test_max_pool_stays_one_op_when_traced() -> None:
    """Export (tracing) keeps F.max_pool3d, which maps to one ONNX MaxPool node."""
    x = torch.randn(1, 2, 4, 6, 6)
    with torch.no_grad():
        traced = torch.jit.trace(lambda t: max_pool3d(t, (2, 1, 1)), x)
    graph = str(traced.graph)
    assert "max_pool3d" in graph and "maximum" not in graph
    torch.testing.assert_close(traced(x), nn.functional.max_pool3d(x, (2, 1, 1)))


class _EveryCheck(nn.Module):
    """Split, convolve (strided), normalise, activate, drop, pool, add and merge: each octave
    layer that checks its input."""

    def __init__(self) -> None:
        super().__init__()
        self.split = OctSplit(8, alpha=0.5)
        self.conv = OctConv3d(8, 8, 3, stride=(1, 2, 2), alpha_in=0.5, alpha_out=0.5)
        self.norm = OctNorm(8, alpha=0.5)
        self.act, self.drop = OctAct(), OctDropout(0.2)
        self.pool = OctPool3d((1, 2, 2))
        self.merge = OctMerge()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.act(self.norm(self.conv(self.split(x)))))
        return self.merge(self.pool(oct_add(y, y)))


def _function_at(path: str, line: int) -> str:
    """The name of the innermost function of the file at ``path`` that holds ``line``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    held = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno
    ]
    return max(held, key=lambda node: node.lineno).name if held else "<module>"


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["contiguous", "channels_last"])
def test_a_trace_warns_only_of_the_shapes_it_keeps_not_of_the_input_checks(fmt):
    """The input checks compare shapes, which ``torch.jit.trace`` gives as tensors: each would
    be a TracerWarning (they were 474 of 728 in an Oct-I3D-18's trace). Under tracing they step
    aside; what warns is where the trace fixes a branch on the example's sizes."""
    net = _EveryCheck().eval().to(memory_format=fmt)
    x = torch.randn(2, 8, 3, 9, 10).contiguous(memory_format=fmt)
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(net, x)
        torch.testing.assert_close(traced(x), net(x))
    ops = Path(octvideo.ops.__file__).parent
    warned = {
        _function_at(w.filename, w.lineno)
        for w in caught
        if issubclass(w.category, torch.jit.TracerWarning) and Path(w.filename).parent == ops
    }
    assert warned <= {"pool_factor", "upsample", "fit_low"}


def test_residual_add():
    a, b = pair(4, 2, (2, 5, 5), (1, 2, 2)), pair(4, 2, (2, 5, 5), (1, 2, 2), seed=1)
    y = oct_add(a, b)
    torch.testing.assert_close(y.high, a.high + b.high)
    torch.testing.assert_close(y.low, a.low + b.low)
    with pytest.raises(ValueError, match="^oct_add expects two pairs of the same"):
        oct_add(a, OctPair(b.high, None))


@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
@pytest.mark.parametrize("size", [(4, 8, 8), (3, 7, 7), (1, 15, 15)])
def test_split_then_merge_round_trips_blocky_input(octave, size):
    """Merging a split recovers the input when the low channels are constant over each block."""
    c, alpha = 8, 0.25
    split, merge = OctSplit(c, alpha=alpha, octave=octave), OctMerge(octave=octave)
    coarse = torch.randn(2, 2, *[math.ceil(s / o) for s, o in zip(size, octave, strict=True)])
    x = torch.cat([torch.randn(2, 6, *size), upsample(coarse, size, octave)], dim=1)
    p = split(x)
    assert p.high.shape[1] == 6 and p.low.shape[1] == 2
    torch.testing.assert_close(p.low, coarse)
    torch.testing.assert_close(merge(p), x)


def test_upsample_is_exact_nearest_for_odd_sizes():
    low = torch.arange(4.0).reshape(1, 1, 1, 1, 4)
    up = upsample(low, (1, 1, 7), (1, 1, 2))
    assert up.flatten().tolist() == [0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(
    ("device", "setting", "want"),
    [
        ("cpu", "auto", torch.channels_last_3d),
        ("cuda", "auto", torch.contiguous_format),
        ("cuda:1", "channels_last", torch.channels_last_3d),
        (torch.device("cpu"), "contiguous", torch.contiguous_format),
    ],
)
def test_memory_format_for(device, setting: str, want: torch.memory_format) -> None:
    assert memory_format_for(device, setting) == want


def test_memory_format_for_names_the_choices() -> None:
    with pytest.raises(ValueError, match="'NDHWC' is not one of auto, channels_last, contiguous"):
        memory_format_for("cpu", "NDHWC")


def test_to_memory_format_converts_clips_and_pathways() -> None:
    clip = torch.randn(2, 3, 4, 6, 6)
    pathways = to_memory_format([clip[:, :, ::4], clip], torch.channels_last_3d)
    assert all(is_channels_last(p) for p in pathways)
    assert torch.equal(pathways[1], clip) and torch.equal(pathways[0], clip[:, :, ::4])
    back = to_memory_format(pathways[1], torch.contiguous_format)
    assert back.is_contiguous() and torch.equal(back, clip)


def test_average_pool_layer_in_bfloat16() -> None:
    pool = OctPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1), mode="avg")
    pair = OctPair(torch.randn(1, 4, 2, 8, 8), torch.randn(1, 4, 2, 4, 4))
    out = pool(OctPair(pair.high.bfloat16(), pair.low.bfloat16()))
    reference = pool(pair)
    for got, want in zip(out, reference, strict=True):
        assert got.dtype == torch.bfloat16 and relative_error(got, want) < 1e-2


# PyTorch 2.14's CPU batch-norm backward returns wrong gradients for an input whose size-1 time
# axis has another stride (the tensor still counts as channels-last) when its output gradient is
# NCDHW: channels-last outputs with a size-1 axis carry the standard strides.
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 0}, "kernel_size must be a whole number of 1 or more"),
        ({"kernel_size": (2, 2)}, "kernel_size must be a whole number of 1 or more"),
        ({"kernel_size": 2, "stride": 0}, "stride must be a whole number of 1 or more"),
        ({"kernel_size": 2, "padding": -1}, "padding must be a whole number of 0 or more"),
        ({"kernel_size": 3, "padding": 2}, r"padding must be at most kernel_size // 2"),
        ({"kernel_size": (1, 3, 3), "padding": (1, 1, 1)}, r"\(0, 1, 1\)\), got \(1, 1, 1\)"),
    ],
)
def test_a_pool_window_other_than_whole_numbers_is_refused_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OctPool3d(**kwargs)


PAIR_LAYERS = {
    "OctNorm": lambda: OctNorm(16, alpha=0.5).double().eval(),
    "OctAct": lambda: OctAct(nn.ReLU),
    "OctDropout": lambda: OctDropout(0.5).eval(),
    "OctPool3d": lambda: OctPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
}


@pytest.mark.parametrize("name", PAIR_LAYERS)
@pytest.mark.parametrize("as_list", [False, True])
def test_per_group_layers_take_a_plain_high_low_tuple_as_octconv_does(name, as_list):
    layer = PAIR_LAYERS[name]()
    x = pair(8, 8, (2, 8, 8), (1, 2, 2))
    given = [x.high, x.low] if as_list else (x.high, x.low)
    y = layer(given)
    assert isinstance(y, OctPair)
    want = layer(x)
    assert torch.equal(y.high, want.high) and torch.equal(y.low, want.low)


def test_residual_add_takes_plain_tuples_group_by_group():
    x = pair(4, 4, (2, 4, 4), (1, 2, 2))
    y = oct_add((x.high, x.low), [x.high, x.low])
    assert isinstance(y, OctPair)
    assert torch.equal(y.high, 2 * x.high) and torch.equal(y.low, 2 * x.low)


@pytest.mark.parametrize("name", PAIR_LAYERS)
def test_per_group_layers_refuse_what_is_not_a_pair_in_one_line(name):
    x = pair(8, 8, (2, 8, 8), (1, 2, 2))
    with pytest.raises(TypeError, match=r"expected a tensor, an OctPair .* tuple of 3"):
        PAIR_LAYERS[name]()((x.high, x.low, x.low))


# every layer that takes a pair, by the name its messages give: (a call on the pair, knows octave)
PAIR_TAKERS = {
    "OctConv3d": (lambda x: OctConv3d(16, 8, 3, alpha_in=0.5, alpha_out=0.5).double()(x), True),
    "OctPool3d": (lambda x: OctPool3d(3, 1, 1)(x), True),
    "OctMerge": (lambda x: OctMerge()(x), True),
    "OctNorm": (lambda x: PAIR_LAYERS["OctNorm"]()(x), False),
    "OctAct": (lambda x: OctAct(nn.ReLU)(x), False),
    "OctDropout": (lambda x: OctDropout(0.5)(x), False),
    "oct_add": (lambda x: oct_add(x, x), False),
}


@pytest.mark.parametrize("name", PAIR_TAKERS)
@pytest.mark.parametrize("group", ["high", "low"])
def test_every_pair_layer_refuses_an_unbatched_group_in_octconvs_words(name, group):
    x = pair(8, 8, (2, 8, 8), (1, 2, 2))
    x = OctPair(x.high[0], x.low) if group == "high" else OctPair(x.high, x.low[0])
    shape = tuple(getattr(x, group).shape)
    with pytest.raises(ValueError) as caught:
        PAIR_TAKERS[name][0](x)
    where = "" if group == "high" else " low"
    assert str(caught.value) == (
        f"{name} expects (B, C, T, H, W){where} input, got a 4-D tensor of shape {shape}"
    )


@pytest.mark.parametrize("name", PAIR_TAKERS)
def test_every_pair_layer_refuses_a_low_group_of_another_batch(name):
    x = pair(8, 8, (2, 8, 8), (1, 2, 2))
    x = OctPair(x.high, x.low[:1])  # would broadcast sample 0's low group in a sum
    take, knows_octave = PAIR_TAKERS[name]
    with pytest.raises(ValueError) as caught:
        take(x)
    if knows_octave:
        want = (
            f"{name} expects a low group of shape (2, 8, 2, 4, 4) (the same batch, the high "
            f"(T, H, W) divided by octave (1, 2, 2), rounded up) beside a high group of shape "
            f"(2, 8, 2, 8, 8), got (1, 8, 2, 4, 4)"
        )
    else:
        want = (
            f"{name} expects a low group of the high group's batch (2) beside a high group of "
            f"shape (2, 8, 2, 8, 8), got (1, 8, 2, 4, 4)"
        )
    assert str(caught.value) == want


@pytest.mark.parametrize("name", ["OctConv3d", "OctPool3d", "OctMerge"])
def test_layers_that_know_the_octave_refuse_a_low_group_of_another_size_alike(name):
    x = pair(8, 8, (2, 8, 8), (1, 2, 2))
    wrong = OctPair(x.high, x.high)  # the low group at the high size
    with pytest.raises(
        ValueError, match=rf"^{name} expects a low group of shape \(2, 8, 2, 4, 4\)"
    ):
        PAIR_TAKERS[name][0](wrong)


def test_pooling_that_cannot_keep_the_pair_aligned_names_its_kernel_and_stride():
    pool = OctPool3d(2, stride=1)
    pool(pair(2, 2, (3, 7, 7), (1, 2, 2)))  # odd sizes stay aligned
    with pytest.raises(ValueError, match=r"kernel_size \(2, 2, 2\) and stride \(1, 1, 1\)"):
        pool(pair(2, 2, (4, 8, 8), (1, 2, 2)))


@pytest.mark.parametrize(
    ("pool", "x", "message"),
    [
        (
            OctPool3d((1, 4, 4), (1, 2, 2), mode="avg"),  # the high 6x6 fits, the low 3x3 not
            OctPair(torch.zeros(1, 2, 1, 6, 6), torch.zeros(1, 2, 1, 3, 3)),
            "OctPool3d (avg) with kernel_size (1, 4, 4), stride (1, 2, 2) and padding (0, 0, 0) "
            "cannot pool the low group of (T, H, W) (1, 3, 3): it needs the kernel along every "
            "axis",
        ),
        (
            OctPool3d((3, 3, 3), mode="max"),
            OctPair(torch.zeros(1, 2, 2, 6, 6), torch.zeros(1, 2, 2, 3, 3)),
            "OctPool3d (max) with kernel_size (3, 3, 3), stride (3, 3, 3) and padding (0, 0, 0) "
            "cannot pool the high group of (T, H, W) (2, 6, 6): it needs the kernel less twice the "
            "padding along every axis",
        ),
        (
            OctPool3d((1, 3, 3), mode="avg"),
            torch.zeros(1, 2, 1, 2, 2),
            "OctPool3d (avg) with kernel_size (1, 3, 3), stride (1, 3, 3) and padding (0, 0, 0) "
            "cannot pool the input of (T, H, W) (1, 2, 2)",
        ),
    ],
)
def test_a_group_no_pooling_window_fits_is_refused_in_one_line(pool, x, message):
    with pytest.raises(ValueError) as caught:
        pool(x)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_ceil_mode_window_past_a_small_low_group_is_taken():
    """Max pooling's ceil-mode window may end past the low group, as in ``nn.MaxPool3d``."""
    x = OctPair(torch.randn(1, 2, 1, 3, 3), torch.randn(1, 2, 1, 2, 2))
    y = OctPool3d((1, 3, 3), (1, 2, 2), mode="max")(x)
    assert y.low.shape[2:] == (1, 1, 1)
    torch.testing.assert_close(y.low, x.low.amax((3, 4), keepdim=True))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "size"),
    [
        ((1, 2, 2), (1, 2, 2), 0, (2, 10, 10)),
        pytest.param((1, 4, 4), (1, 2, 2), (0, 1, 1), (2, 10, 10), marks=pytest.mark.heavy),
    ],
)
def test_compiled_average_pool_gives_the_eager_gradients(kernel, stride, padding, size):
    """The low group's last, partial ceil-mode window (5 cells pooled by 2, a window of 4 on 5
    padded by 1 that ends past the padding) divides by the cells it holds under
    ``torch.compile`` as in eager; torch 2.14's Inductor backward divides by the kernel."""
    torch.manual_seed(0)
    pool = OctPool3d(kernel, stride, padding, mode="avg")
    x = pair(2, 2, size, (1, 2, 2))
    compiled, eager = compiled_and_eager(pool, x, backend="inductor")
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


EXPECTS_16 = "OctSplit expects (B, 16, T, H, W) input, got a"


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            torch.zeros(2, 32, 4, 8, 8),
            ValueError,
            f"{EXPECTS_16} 5-D tensor of shape (2, 32, 4, 8, 8)",
        ),
        (
            torch.zeros(2, 8, 4, 8, 8),
            ValueError,
            f"{EXPECTS_16} 5-D tensor of shape (2, 8, 4, 8, 8)",
        ),
        (torch.zeros(16, 4, 8, 8), ValueError, f"{EXPECTS_16} 4-D tensor of shape (16, 4, 8, 8)"),
        (
            OctPair(torch.zeros(2, 12, 4, 8, 8), None),
            TypeError,
            "OctSplit takes a (B, 16, T, H, W) tensor, got a pair, which is split already",
        ),
        ("clip", TypeError, "OctSplit takes a (B, 16, T, H, W) tensor, got str"),
    ],
    ids=["more channels", "fewer channels", "unbatched", "pair", "text"],
)
def test_split_refuses_another_input_than_it_was_built_for_in_one_line(given, error, message):
    with pytest.raises(error) as caught:
        OctSplit(16, alpha=0.25)(given)
    assert str(caught.value) == message


@pytest.mark.parametrize(("made", "merged"), [((1, 2, 2), (2, 2, 2)), ((2, 2, 2), (1, 2, 2))])
def test_merge_refuses_a_pair_of_another_octave(made, merged):
    x = OctSplit(8, alpha=0.25, octave=made)(torch.randn(2, 8, 4, 8, 8))
    message = f"OctMerge expects a low group of shape (2, 2, {4 // merged[0]}, 4, 4)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        OctMerge(octave=merged)(x)


@pytest.mark.parametrize(
    ("other", "got"),
    [
        ({"octave": (2, 2, 2)}, "((2, 6, 4, 8, 8), (2, 2, 2, 4, 4))"),
        ({"alpha": 0.5}, "((2, 4, 4, 8, 8), (2, 4, 4, 4, 4))"),
        ({"alpha": 0.0}, "((2, 8, 4, 8, 8), None)"),
    ],
    ids=["octave", "split", "no low group"],
)
def test_residual_add_refuses_pairs_of_other_groups_in_one_line(other, got):
    x = torch.randn(2, 8, 4, 8, 8)
    a = OctSplit(8, alpha=0.25)(x)
    b = OctSplit(8, **{"alpha": 0.25, **other})(x)
    b = b if other != {"alpha": 0.0} else b.high
    with pytest.raises(ValueError) as caught:
        oct_add(a, b)
    assert str(caught.value) == (
        f"oct_add expects two pairs of the same (high, low) shapes, got "
        f"((2, 6, 4, 8, 8), (2, 2, 4, 4, 4)) and {got}"
    )


@pytest.mark.parametrize(
    ("given", "built", "got"),
    [
        (pair(16, 16, (2, 4, 4), (1, 2, 2)), 0.25, "(16, 16)"),
        (torch.zeros(2, 32, 2, 4, 4), 0.25, "(32, None)"),
        (torch.zeros(2, 24, 2, 4, 4), 0.25, "(24, None)"),
        (torch.zeros(2, 16, 2, 4, 4), 0.0, "(16, None)"),
    ],
    ids=["pair of another split", "tensor at alpha", "high group alone", "tensor of other width"],
)
def test_norm_refuses_another_split_naming_both(given, built, got):
    norm = OctNorm(32, alpha=built).double()
    want = "(24, 8)" if built else "(32, None)"
    with pytest.raises(ValueError) as caught:
        norm(given.double() if isinstance(given, torch.Tensor) else given)
    assert str(caught.value) == (
        f"OctNorm expects (high, low) channels {want} (alpha={built} of 32), got {got}"
    )


# every octave layer of octvideo.ops.layers, built small (FoldedNorm, an nn.Identity, scripts)
OCTAVE_LAYERS = {
    "OctAct": OctAct,
    "OctDropout": OctDropout,
    "OctMerge": OctMerge,
    "OctNorm": lambda: OctNorm(8, alpha=0.5),
    "OctPool3d": lambda: OctPool3d(2),
    "OctSplit": lambda: OctSplit(8, alpha=0.5),
}


def test_the_scripting_refusal_covers_every_octave_layer():
    from octvideo.ops import layers

    found = {
        name
        for name, value in vars(layers).items()
        if isinstance(value, type)
        and issubclass(value, nn.Module)
        and value.__module__ == layers.__name__
    }
    assert found - {"FoldedNorm"} == set(OCTAVE_LAYERS)


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", sorted(OCTAVE_LAYERS))
def test_scripting_an_octave_layer_is_refused_in_one_line_naming_trace(name):
    from octvideo.ops.octconv import OctaveModule

    layer = OCTAVE_LAYERS[name]()
    # one refusal for every octave layer, OctConv3d's included: none of its own
    assert type(layer).__prepare_scriptable__ is OctaveModule.__prepare_scriptable__
    for model in (layer, nn.Sequential(nn.Identity(), layer)):
        match = rf"^torch\.jit\.script cannot compile {name} "
        with pytest.raises(RuntimeError, match=match) as err:
            torch.jit.script(model)
        assert "\n" not in str(err.value) and "torch.jit.trace(model, clip)" in str(err.value)


def test_split_and_norm_keep_numpy_sizes_as_python_ints():
    split = OctSplit(np.int64(8), alpha=0.5, octave=np.int64(2))
    norm = OctNorm(np.int64(8), alpha=0.5)
    assert type(split.channels) is int and split.octave == (2, 2, 2)
    assert all(type(n) is int for n in (*split.octave, norm.num_features, *norm.channels))
    assert split(torch.randn(1, 8, 2, 4, 4)).low.shape == (1, 4, 1, 2, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda octave: OctPool3d(2, octave=octave),
        lambda octave: OctMerge(octave=octave),
        lambda octave: OctSplit(8, alpha=0.5, octave=octave),
    ],
    ids=["OctPool3d", "OctMerge", "OctSplit"],
)
@pytest.mark.parametrize("octave", [(1, 2.0, 2), 2.0])
def test_an_octave_of_floats_is_refused_when_built(make, octave):
    with pytest.raises(ValueError, match=r"^octave must be three factors of 1 or 2 .* got"):
        make(octave)
