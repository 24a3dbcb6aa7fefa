"""The (high, low) pair helpers: how many channels are low-frequency, what counts as a pair, and
``downsample``: the mean of each cell at any size, in reduced precision (bfloat16 / float16 on a
CPU) and under ``torch.compile``; memory layouts read from strides, under ``vmap`` too."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from octvideo.ops import (
    OctPair,
    as_pair,
    check_pair,
    downsample,
    fit_low,
    is_channels_last,
    low_channels,
    low_size,
)
from octvideo.ops.pair import has_channels_last_strides, is_contiguous_as, max_pool3d
from tests.ops.tensor_helpers import CL, ceil_mean_pool, relative_error


def test_paper_split_stays_the_default():
    assert low_channels(64, 0.1) == low_channels(64, 0.1, None) == 6
    assert low_channels(256, 0.1) == 25


@pytest.mark.parametrize(
    ("channels", "alpha", "multiple", "low"),
    [
        (256, 0.1, 16, 32),  # 25.6 -> nearest multiple
        (512, 0.1, 16, 48),  # 51.2
        (1024, 0.1, 16, 96),  # 102.4
        (64, 0.125, 16, 16),  # 8: halves round up
        (64, 0.1, 16, 16),  # 6.4 rounds to 0: the low group keeps one multiple
        (64, 0.9, 16, 48),  # 57.6 rounds to 64: the high group keeps channels
        (40, 0.9, 16, 32),  # not a multiple: the low group is, the high group keeps 8
        (24, 0.5, 16, 16),  # room for one multiple only
        (16, 0.5, 16, 8),  # too narrow for a multiple and a high channel: the paper's split
        (64, 0.0, 16, 0),  # alpha 0 stays vanilla
        (64, 0.3, 1, 19),  # 19.2 -> nearest whole channel (the paper floors: also 19)
        (64, 0.29, 1, 19),  # 18.56 -> 19 (the paper floors to 18)
    ],
)
def test_aligned_split_is_the_nearest_multiple(channels, alpha, multiple, low):
    assert low_channels(channels, alpha, multiple) == low


@pytest.mark.parametrize("channels", [32, 48, 64, 128, 256, 1024])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.125, 0.25, 0.5, 0.75, 0.95])
def test_aligned_groups_are_multiples_and_never_empty(channels, alpha):
    low = low_channels(channels, alpha, 16)
    assert low % 16 == 0 and (channels - low) % 16 == 0
    assert 0 < low < channels


@pytest.mark.parametrize("bad", [0, -16, 2.5, True, "16"])
def test_bad_channel_multiple_is_refused(bad):
    with pytest.raises(ValueError, match="channel_multiple must be a whole number"):
        low_channels(64, 0.25, bad)


def test_channel_multiple_takes_numpy_whole_numbers_as_the_channel_count_does():
    low = low_channels(np.int64(64), 0.1, np.int64(16))
    assert low == 16 and type(low) is int


def test_two_tensor_sequences_become_pairs():
    high, low = torch.zeros(1, 2, 1, 2, 2), torch.zeros(1, 1, 1, 1, 1)
    for given in ((high, low), [high, low], (high, None)):
        pair = as_pair(given)
        assert isinstance(pair, OctPair)
        assert pair.high is high and pair.low is given[1]
    assert as_pair(high) == OctPair(high, None)


@pytest.mark.parametrize(
    "bad", [(torch.zeros(1),), (torch.zeros(1), torch.zeros(1), torch.zeros(1)), (None, None), 3]
)
def test_anything_else_is_refused_in_one_type_error(bad):
    with pytest.raises(TypeError, match=r"a \(high, low\) pair of tensors"):
        as_pair(bad)


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
    assert relative_error(y.detach(), reference) < 1e-2
    y.float().square().sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype


@pytest.mark.parametrize(
    ("size", "factor"),
    [
        ((3, 7, 9), (1, 2, 2)),  # odd: a last, partial cell
        ((3, 7, 9), (2, 2, 2)),
        ((1, 2, 5), (1, 3, 3)),  # an axis shorter than its factor: one cell of all it holds
        ((2, 3, 2), (4, 4, 4)),
        ((4, 1, 1), (2, 2, 2)),  # size 1 stays
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_downsample_cells_are_the_means_of_what_they_hold(size, factor, channels_last) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    y = downsample(x, factor)
    assert y.shape[2:] == tuple(-(-n // f) for n, f in zip(size, factor, strict=True))
    torch.testing.assert_close(y, ceil_mean_pool(x, factor), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("octave", "channels_last"), [((1, 2, 2), False), ((1, 2, 2), True), ((2, 2, 2), False)]
)
def test_compiled_downsample_gives_the_eager_gradient_at_odd_sizes(octave, channels_last) -> None:
    """A last, partial cell passes its gradient to the elements it holds, each its share of
    them, under ``torch.compile`` as in eager (torch 2.14's Inductor backward of a ceil-mode
    average pool divides by the whole kernel unless ``count_include_pad`` is False)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 7, 9, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    upstream = torch.randn(2, 3, *low_size(x.shape, octave), dtype=torch.float64)
    results = []
    for fn in (downsample, torch.compile(lambda t: downsample(t, octave), backend="inductor")):
        leaf = x.detach().clone().requires_grad_()
        y = fn(leaf, octave) if fn is downsample else fn(leaf)
        (y * upstream).sum().backward()
        results.append((y, leaf.grad))
    (y_eager, g_eager), (y_compiled, g_compiled) = results
    torch.testing.assert_close(y_compiled, y_eager, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_compiled, g_eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("channels", "alpha", "message"),
    [
        (8.5, 0.5, "channels must be a whole number of 1 or more, got 8.5"),
        (True, 0.5, "channels must be a whole number of 1 or more, got True"),
        (0, 0.5, "channels must be a whole number of 1 or more, got 0"),
        (8, "0.5", "alpha must be a number in [0, 1), got '0.5'"),
        (8, True, "alpha must be a number in [0, 1), got True"),
        (8, 1.0, "alpha must be a number in [0, 1), got 1.0"),
    ],
)
def test_low_channels_refuses_other_than_a_whole_count_and_a_share(channels, alpha, message):
    with pytest.raises(ValueError) as caught:
        low_channels(channels, alpha)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "octave",
    [True, (True, 2, 2), (1, 2, 3), (2, 2), 2.0, (1, 2.0, 2), (1, 2.5, 2), torch.tensor(2), "122"],
)
def test_an_octave_of_other_than_three_factors_of_1_or_2_is_refused(octave):
    from octvideo.ops.pair import normalize_octave

    with pytest.raises(ValueError) as caught:
        normalize_octave(octave)
    assert str(caught.value).startswith("octave must be three factors of 1 or 2 for (T, H, W)")
    assert str(caught.value).endswith(f"got {octave!r}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("octave", "want"),
    [(2, (2, 2, 2)), (np.int64(1), (1, 1, 1)), ((1, np.int64(2), np.int32(2)), (1, 2, 2))],
)
def test_an_octave_of_numpy_whole_numbers_is_three_python_ints(octave, want):
    from octvideo.ops.pair import normalize_octave

    got = normalize_octave(octave)
    assert got == want
    assert all(type(o) is int for o in got)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((1, 2.0, 2),), "kernel_size must be a whole number of 1 or more"),
        ((2, True), "stride must be a whole number of 1 or more"),
        ((2, 2, -1), "padding must be a whole number of 0 or more"),
    ],
)
def test_max_pool3d_refuses_other_than_whole_sizes(args, message):
    with pytest.raises(ValueError, match=message):
        max_pool3d(torch.zeros(1, 2, 4, 4, 4), *args)


def test_max_pool3d_takes_numpy_whole_sizes():
    x = torch.randn(1, 2, 4, 4, 4)
    got = max_pool3d(x, (1, np.int64(2), 2), np.int64(2))
    assert torch.equal(got, F.max_pool3d(x, (1, 2, 2), 2))


@pytest.mark.parametrize("size", [(4, 8, 8), (3, 7, 7), (1, 1, 1)])
@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
def test_check_pair_takes_a_batched_pair_whose_low_group_is_the_high_one_over_the_octave(
    size, octave
):
    check_pair(
        OctPair(torch.zeros(2, 3, *size), torch.zeros(2, 5, *low_size(size, octave))), octave
    )
    check_pair(OctPair(torch.zeros(2, 3, *size), None), octave)
    check_pair(OctPair(torch.zeros(2, 3, *size), torch.zeros(2, 5, 9, 9, 9)))  # size unchecked


@pytest.mark.parametrize(
    ("high", "low", "octave", "message"),
    [
        (
            (3, 4, 8, 8),
            None,
            None,
            "layer expects (B, C, T, H, W) input, got a 4-D tensor of shape (3, 4, 8, 8)",
        ),
        (
            (2, 3, 4, 8, 8),
            (5, 4, 4, 4),
            (1, 2, 2),
            "layer expects (B, C, T, H, W) low input, got a 4-D tensor of shape (5, 4, 4, 4)",
        ),
        (
            (2, 3, 4, 8, 8),
            (1, 5, 4, 4, 4),
            None,
            "layer expects a low group of the high group's batch (2) beside a high group of shape "
            "(2, 3, 4, 8, 8), got (1, 5, 4, 4, 4)",
        ),
        (
            (2, 3, 4, 8, 8),
            (2, 5, 2, 4, 4),
            (1, 2, 2),
            "layer expects a low group of shape (2, 5, 4, 4, 4) (the same batch, the high "
            "(T, H, W) divided by octave (1, 2, 2), rounded up) beside a high group of shape "
            "(2, 3, 4, 8, 8), got (2, 5, 2, 4, 4)",
        ),
    ],
    ids=["unbatched", "unbatched-low", "batch", "size"],
)
def test_check_pair_refuses_in_one_line_naming_the_layer(high, low, octave, message):
    x = OctPair(torch.zeros(high), None if low is None else torch.zeros(low))
    with pytest.raises(ValueError) as caught:
        check_pair(x, octave, "layer")
    assert str(caught.value) == message


def _strided_layouts():
    """5D tensors of every axis order, with size-1 and empty axes, and sliced (gapped) ones."""
    g = torch.Generator().manual_seed(0)
    for sizes in [(2, 3, 2, 4, 5), (1, 3, 1, 4, 1), (2, 1, 3, 1, 2), (0, 3, 2, 2, 2)]:
        for order in itertools.permutations(range(5)):
            stored = torch.randn([sizes[d] for d in order], generator=g)
            yield stored.permute([order.index(d) for d in range(5)])
        yield torch.randn([2 * s for s in sizes], generator=g)[::2, ::2, ::2, ::2, ::2]
    yield torch.randn(2, 3, 4, 5)  # 4D: never channels-last 3D


def test_is_contiguous_as_agrees_with_torch_for_4d_and_5d_and_answers_under_vmap():
    views = [*_strided_layouts(), *(x[:, :, 0] for x in _strided_layouts() if x.dim() == 5)]
    formats = (torch.contiguous_format, torch.channels_last, CL)
    for x, fmt in itertools.product(views, formats):
        assert is_contiguous_as(x, fmt) == x.is_contiguous(memory_format=fmt), (x.shape, fmt)
    # torch.func.vmap refuses the query; each sample here is a 4D (N, C, H, W) tensor, NHWC
    frames = torch.randn(3, 2, 5, 5, 4).permute(0, 1, 4, 2, 3)
    seen = torch.func.vmap(lambda x: torch.tensor(is_contiguous_as(x, torch.channels_last)))
    assert seen(frames).tolist() == [True] * 3
    assert seen(frames.contiguous()).tolist() == [False] * 3


def test_channels_last_strides_agree_with_torch_and_answer_under_vmap():
    for x in _strided_layouts():
        want = x.dim() == 5 and x.is_contiguous(memory_format=CL)
        assert has_channels_last_strides(x) == want, (tuple(x.shape), x.stride())
        assert is_channels_last(x) == (want and not x.is_contiguous())
    # torch.func.vmap refuses a memory-format query; the per-sample tensors here are NDHWC
    clips = torch.randn(3, 2, 4, 2, 5, 5).permute(0, 1, 3, 4, 5, 2).contiguous()
    clips = clips.permute(0, 1, 5, 2, 3, 4)
    seen = torch.func.vmap(lambda x: torch.tensor(is_channels_last(x)))(clips)
    assert seen.tolist() == [True] * 3


class _Calls(torch.nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


def _onnx_runs(fn, *inputs: torch.Tensor) -> np.ndarray:
    """``fn(*inputs)`` exported as ``octvideo export`` does (batch axis free) and run in ONNX
    Runtime on ``inputs``."""
    onnxruntime = pytest.importorskip("onnxruntime")
    names = [f"x{i}" for i in range(len(inputs))]
    buffer = io.BytesIO()
    torch.onnx.export(
        _Calls(fn),
        inputs,
        buffer,
        dynamo=False,
        opset_version=17,
        input_names=names,
        dynamic_axes={n: {0: "batch"} for n in names},
    )
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return session.run(None, {n: x.numpy() for n, x in zip(names, inputs, strict=True)})[0]


@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
def test_an_onnx_graph_crops_the_low_group_to_ceil_of_the_traced_size(octave):
    """``torch.onnx.export`` records a traced size's ``//`` as ONNX's truncating division: the
    low group's ceil(high / octave), written ``-(-n // o)``, became floor(high / octave) in the
    graph, a 9-wide group's low group 4 wide where eager has 5."""
    high = torch.randn(1, 2, 5, 9, 9)
    # one too large along every octave axis, as a low group a floor-mode pool left
    low = torch.randn(1, 3, 5 if octave[0] == 1 else 4, 6, 6)
    got = _onnx_runs(lambda lo, hi: fit_low(lo, hi, octave), low, high)
    want = fit_low(low, high, octave)
    assert tuple(got.shape) == tuple(want.shape) == (1, 3, *low_size(high.shape, octave))
    np.testing.assert_array_equal(got, want.numpy())


def test_an_onnx_graph_pools_an_axis_shorter_than_its_factor():
    """An axis shorter than its factor pools with a kernel of its own size, which a trace took
    from the traced size: a graph value, which ``torch.onnx.export`` refused as a kernel."""
    x = torch.randn(1, 2, 1, 5, 5)
    got = _onnx_runs(lambda v: downsample(v, (2, 2, 2)), x)
    np.testing.assert_allclose(got, downsample(x, (2, 2, 2)).numpy(), rtol=0, atol=1e-6)
