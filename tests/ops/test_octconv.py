"""OctConv3d: equivalence with nn.Conv3d and with a written-out reference, shapes, gradients,
training under CPU autocast, and outputs with one frame that carry the standard channels-last
strides."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from octvideo.ops import OctConv3d, OctPair, conv_output_size, low_channels, low_size
from octvideo.ops.pair import downsample
from tests.ops.tensor_helpers import CL, ceil_mean_pool, compiled_and_eager, relative_error


@pytest.fixture(autouse=True)
def _float64():
    """Equivalence checks run in float64; the default is restored for the other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


KERNELS = [(1, 1, 1), (3, 1, 1), (1, 3, 3), (3, 3, 3)]


ALPHAS = [0.0, 0.25, 0.5]


OCTAVES = [(1, 2, 2), (2, 2, 2)]


SIZES = [(4, 8, 8), (3, 7, 7)]  # even and odd


def make_input(channels: int, alpha: float, size, octave, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n_low = low_channels(channels, alpha)
    high = torch.randn(batch, channels - n_low, *size, generator=g)
    if n_low == 0:
        return high
    low_size = [math.ceil(s / o) for s, o in zip(size, octave, strict=True)]
    return OctPair(high, torch.randn(batch, n_low, *low_size, generator=g))


def reference(layer: OctConv3d, x) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The operator written out from the paper with F.conv3d on the vanilla weight's blocks."""
    weight, bias = layer.vanilla_weight()
    x_h, x_l = (x.high, x.low) if isinstance(x, OctPair) else (x, None)
    oh, ih = layer.out_high, layer.in_high

    pairs = list(zip(layer.stride, layer.octave, strict=True))
    pool_factor = tuple(s if o == 2 else 1 for s, o in pairs)
    conv_stride = tuple(1 if o == 2 else s for s, o in pairs)

    def conv(t, w, b=None):
        return F.conv3d(t, w, b, conv_stride, layer.padding, layer.dilation)

    def pool(t, k):  # each cell the mean of what it holds
        return ceil_mean_pool(t, k)

    def up(t, size):
        for dim, o in zip((2, 3, 4), layer.octave, strict=True):
            t = t.repeat_interleave(o, dim=dim)
        return t[:, :, : size[0], : size[1], : size[2]]

    x_h = pool(x_h, pool_factor)
    x_l = None if x_l is None else pool(x_l, pool_factor)
    b_h = None if bias is None else bias[:oh]
    b_l = None if bias is None else bias[oh:]
    y_h = conv(x_h, weight[:oh, :ih], b_h)
    if x_l is not None:
        y_h = y_h + up(conv(x_l, weight[:oh, ih:]), y_h.shape[2:])
    if layer.out_low == 0:
        return y_h, None
    y_l = conv(pool(x_h, layer.octave), weight[oh:, :ih], b_l)
    if x_l is not None:
        y_l = y_l + conv(x_l, weight[oh:, ih:])
    return y_h, y_l


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("stride", [1, 2, (1, 2, 2)])
@pytest.mark.parametrize("bias", [False, True])
def test_alpha_zero_is_nn_conv3d(kernel, stride, bias):
    conv = nn.Conv3d(6, 10, kernel, stride=stride, padding=[k // 2 for k in kernel], bias=bias)
    layer = OctConv3d(6, 10, kernel, stride=stride, bias=bias, alpha_in=0.0, alpha_out=0.0)
    layer.load_vanilla_weight(conv.weight, conv.bias)
    assert layer.conv_hl is None and layer.conv_lh is None and layer.conv_ll is None
    x = torch.randn(2, 6, 5, 9, 9)
    torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-12)


def test_alpha_zero_keeps_any_padding_and_groups():
    conv = nn.Conv3d(8, 12, (3, 3, 3), stride=(1, 2, 2), padding=0, dilation=(1, 2, 2), groups=4)
    layer = OctConv3d.from_conv(conv, alpha_in=0.0, alpha_out=0.0)
    x = torch.randn(1, 8, 5, 11, 11)
    torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", [(1, 1, 1), (3, 1, 1)])
@pytest.mark.parametrize(
    ("alpha_in", "alpha_out"), [(0.25, 0.25), (0.5, 0.5), (0.0, 0.5), (0.5, 0.0)]
)
@pytest.mark.parametrize("size", SIZES)
def test_sliced_vanilla_weights_give_vanilla_result(kernel, alpha_in, alpha_out, size):
    """A spatial-1 kernel commutes with 2x2 nearest-up and average pooling, so on an input whose
    low channels are constant over each 2x2 block the octave layer reproduces the vanilla one."""
    cin, cout = 8, 12
    conv = nn.Conv3d(cin, cout, kernel, padding=[k // 2 for k in kernel], bias=True)
    layer = OctConv3d.from_conv(conv, alpha_in=alpha_in, alpha_out=alpha_out, octave=(1, 2, 2))
    n_in_low, n_out_low = low_channels(cin, alpha_in), low_channels(cout, alpha_out)
    t, h, w = size
    coarse = torch.randn(2, n_in_low, t, (h + 1) // 2, (w + 1) // 2)
    blocky = coarse.repeat_interleave(2, 3).repeat_interleave(2, 4)[..., :h, :w]
    full = torch.cat([torch.randn(2, cin - n_in_low, t, h, w), blocky], dim=1)
    x = OctPair(full[:, : cin - n_in_low], coarse) if n_in_low else full

    y = layer(x)
    vanilla = conv(full)
    y_h, y_l = (y.high, y.low) if isinstance(y, OctPair) else (y, None)
    torch.testing.assert_close(y_h, vanilla[:, : cout - n_out_low], rtol=0, atol=1e-12)
    if n_out_low:
        pooled = F.avg_pool3d(vanilla[:, cout - n_out_low :], (1, 2, 2), ceil_mode=True)
        torch.testing.assert_close(y_l, pooled, rtol=0, atol=1e-12)
    else:
        assert y_l is None


@pytest.mark.parametrize(
    ("alpha_in", "alpha_out", "kernel", "stride", "size", "octave"),
    list(itertools.product(ALPHAS, ALPHAS, KERNELS, [1, 2], SIZES, OCTAVES)),
)
def test_shapes_and_reference(alpha_in, alpha_out, kernel, stride, size, octave):
    cin, cout = 8, 16
    layer = OctConv3d(
        cin,
        cout,
        kernel,
        stride=stride,
        bias=True,
        alpha_in=alpha_in,
        alpha_out=alpha_out,
        octave=octave,
    )
    x = make_input(cin, alpha_in, size, octave)
    y = layer(x)

    high_size = tuple(math.ceil(s / stride) for s in size)
    low_size = tuple(math.ceil(s / o) for s, o in zip(high_size, octave, strict=True))
    n_low = low_channels(cout, alpha_out)
    y_h, y_l = (y.high, y.low) if isinstance(y, OctPair) else (y, None)
    assert y_h.shape == (2, cout - n_low, *high_size)
    if n_low:
        assert y_l.shape == (2, n_low, *low_size)
    else:
        assert not isinstance(y, OctPair), "alpha_out = 0 must return a plain tensor"

    ref_h, ref_l = reference(layer, x)
    if alpha_in == alpha_out == 0.0 and stride == 2:
        return  # native strided conv, covered by test_alpha_zero_is_nn_conv3d
    torch.testing.assert_close(y_h, ref_h, rtol=1e-10, atol=1e-10)
    if n_low:
        torch.testing.assert_close(y_l, ref_l, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("stride", "size", "octave"),
    [
        ((1, 3, 3), (1, 4, 4), (1, 2, 2)),  # the low group's 2x2 is shorter than the stride
        ((1, 4, 4), (2, 5, 7), (1, 2, 2)),  # 3x4: both axes
        ((3, 3, 3), (4, 2, 5), (2, 2, 2)),  # and time
        ((1, 3, 3), (1, 2, 2), (1, 2, 2)),  # the high group too
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_stride_past_a_groups_size_gives_the_output_size(stride, size, octave, channels_last):
    """An axis shorter than the stride pools to one cell, the mean of all it holds, as a
    ceil-mode window would: the output is ``output_size``'s, and the reference's."""
    layer = OctConv3d(4, 4, 3, stride=stride, alpha_in=0.5, alpha_out=0.5, octave=octave)
    layer = layer.double()
    fmt = CL if channels_last else torch.contiguous_format
    x = OctPair(
        *(t.double().contiguous(memory_format=fmt) for t in make_input(4, 0.5, size, octave))
    )
    y = layer(x)
    assert tuple(y.high.shape[2:]) == layer.output_size(size)
    assert tuple(y.low.shape[2:]) == low_size(layer.output_size(size), octave)
    for got, want in zip(y, reference(layer, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("alpha_in", "alpha_out"), [(0.0, 0.5), (0.5, 0.5), (0.5, 0.0), (0.25, 0.5)]
)
def test_gradients_reach_every_weight(alpha_in, alpha_out):
    layer = OctConv3d(8, 8, (3, 3, 3), bias=True, alpha_in=alpha_in, alpha_out=alpha_out)
    x = make_input(8, alpha_in, (3, 7, 7), (1, 2, 2))
    y = layer(x)
    loss = sum(t.square().sum() for t in (y if isinstance(y, OctPair) else (y,)) if t is not None)
    loss.backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("size", "octave"),
    [
        ((1, 7, 7), (2, 2, 2)),
        ((3, 15, 15), (2, 2, 2)),
        ((1, 112, 112), (1, 2, 2)),
        ((5, 1, 1), (2, 2, 2)),
    ],
)
def test_small_and_odd_sizes(size, octave):
    layers = nn.Sequential(
        OctConv3d(4, 8, 3, alpha_in=0.0, alpha_out=0.5, octave=octave),
        OctConv3d(8, 8, 3, stride=2, alpha_in=0.5, alpha_out=0.5, octave=octave),
        OctConv3d(8, 8, (1, 3, 3), stride=(1, 2, 2), alpha_in=0.5, alpha_out=0.25, octave=octave),
        OctConv3d(8, 4, 1, alpha_in=0.25, alpha_out=0.0, octave=octave),
    )
    y = layers(torch.randn(1, 4, *size))
    t, h, w = size
    assert y.shape == (1, 4, math.ceil(t / 2), math.ceil(h / 4), math.ceil(w / 4))


def test_depthwise_drops_cross_paths():
    layer = OctConv3d(8, 8, (3, 3, 3), groups=8, alpha_in=0.5, alpha_out=0.5)
    assert layer.conv_hl is None and layer.conv_lh is None
    assert layer.conv_hh.groups == 4 and layer.conv_ll.groups == 4
    x = make_input(8, 0.5, (3, 6, 6), (1, 2, 2))
    y = layer(x)
    torch.testing.assert_close(y.high, layer.conv_hh(x.high))
    torch.testing.assert_close(y.low, layer.conv_ll(x.low))
    # round trip through the vanilla depthwise weight
    conv = layer.to_conv()
    again = OctConv3d.from_conv(conv, alpha_in=0.5, alpha_out=0.5)
    torch.testing.assert_close(again(x).high, y.high)


def test_grouped_conv_paths_and_divisibility_error():
    layer = OctConv3d(16, 16, 3, groups=4, alpha_in=0.25, alpha_out=0.25)
    assert all(c.groups == 4 for c in (layer.conv_hh, layer.conv_hl, layer.conv_lh, layer.conv_ll))
    with pytest.raises(ValueError, match=r"groups=4 does not divide the high input channels \(6\)"):
        OctConv3d(8, 16, 3, groups=4, alpha_in=0.25, alpha_out=0.25)


def test_parameter_count_equals_vanilla_and_round_trip():
    conv = nn.Conv3d(12, 20, (3, 3, 3), padding=1, bias=True)
    layer = OctConv3d.from_conv(conv, alpha_in=0.25, alpha_out=0.5)
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in conv.parameters())
    back = layer.to_conv()
    torch.testing.assert_close(back.weight, conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(back.bias, conv.bias, rtol=0, atol=0)


def test_input_mismatch_and_bad_arguments_name_the_problem():
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError, match=r"expects \(high, low\) channels \(4, 4\)"):
        layer(torch.randn(1, 8, 2, 8, 8))
    with pytest.raises(ValueError, match="odd kernel and 'same' padding"):
        OctConv3d(8, 8, 2, padding=0, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError, match="odd kernel and 'same' padding"):
        OctConv3d(8, 8, 3, padding=0, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError, match=r"^alpha_in must be a number in \[0, 1\), got 1.0$"):
        OctConv3d(8, 8, 3, alpha_in=1.0, alpha_out=0.5)
    with pytest.raises(ValueError, match="octave must be three factors"):
        OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5, octave=(1, 3, 3))


@pytest.mark.parametrize(
    ("alpha", "x", "rank"),
    [
        (0.0, torch.randn(4, 5, 9, 9), 4),  # unbatched: taken by nn.Conv3d, not here
        (0.0, torch.randn(4, 4, 6, 6), 4),  # T == C does not make it a channel count
        (0.0, torch.randn(9, 9), 2),
        (0.0, torch.randn(1, 2, 4, 5, 9, 9), 6),
        (0.5, OctPair(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)), 4),
    ],
    ids=["4d", "4d-t-equals-c", "2d", "6d", "4d-pair"],
)
def test_input_that_is_not_five_dimensional_is_refused_by_its_rank(alpha, x, rank):
    layer = OctConv3d(4, 8, 3, alpha_in=alpha, alpha_out=alpha)
    shape = tuple(x.high.shape if isinstance(x, OctPair) else x.shape)
    message = f"OctConv3d expects (B, C, T, H, W) input, got a {rank}-D tensor of shape {shape}"
    with pytest.raises(ValueError) as caught:
        layer(x)
    assert str(caught.value) == message


def test_low_group_that_is_not_five_dimensional_is_refused_by_its_rank():
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError) as caught:
        layer(OctPair(torch.randn(1, 4, 2, 8, 8), torch.randn(4, 2, 4, 4)))
    assert str(caught.value) == (
        "OctConv3d expects (B, C, T, H, W) low input, got a 4-D tensor of shape (4, 2, 4, 4)"
    )


@pytest.mark.parametrize(
    ("alpha_out", "high", "low"),
    [
        (0.5, (2, 4, 4, 8, 8), (1, 4, 4, 4, 4)),  # would broadcast sample 0's low group
        (0.0, (2, 4, 4, 8, 8), (1, 4, 4, 4, 4)),  # only the low-to-high path reads it
        (0.5, (1, 4, 4, 8, 8), (1, 4, 2, 4, 4)),  # T halved under a spatial octave
        (0.5, (1, 4, 4, 8, 8), (1, 4, 4, 3, 3)),
        (0.0, (1, 4, 3, 7, 7), (1, 4, 3, 5, 5)),  # one too large: the upsample crop hid it
        (0.5, (1, 4, 3, 7, 7), (1, 4, 3, 3, 3)),  # odd sizes round up, not down
    ],
    ids=["batch", "batch-low-to-high-only", "frames", "height-width", "too-large", "floor"],
)
def test_a_low_group_out_of_step_with_the_high_one_names_both_shapes(alpha_out, high, low):
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=alpha_out)
    want = (high[0], 4, *low_size(high[2:], (1, 2, 2)))
    with pytest.raises(ValueError) as caught:
        layer(OctPair(torch.randn(high), torch.randn(low)))
    assert str(caught.value) == (
        f"OctConv3d expects a low group of shape {want} (the same batch, the high (T, H, W) "
        f"divided by octave (1, 2, 2), rounded up) beside a high group of shape {high}, got {low}"
    )


@pytest.mark.parametrize("size", [(4, 8, 8), (3, 7, 7), (1, 1, 1), (2, 3, 2)])
@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
def test_a_low_group_of_the_high_size_divided_by_the_octave_rounded_up_is_taken(size, octave):
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5, octave=octave)
    y = layer(OctPair(torch.randn(2, 4, *size), torch.randn(2, 4, *low_size(size, octave))))
    assert tuple(y.high.shape[2:]) == size


@pytest.mark.parametrize("groups", [0, -2, 1.5, True])
def test_groups_must_be_a_positive_integer(groups):
    with pytest.raises(ValueError, match=rf"^groups must be a positive integer, got {groups}$"):
        OctConv3d(8, 8, 3, groups=groups)


@pytest.mark.parametrize(
    ("padding", "nn_padding"), [("same", "same"), ("valid", "valid"), (None, "same")]
)
def test_padding_same_and_valid_are_taken_as_nn_conv3d_takes_them(padding, nn_padding):
    conv = nn.Conv3d(6, 10, (3, 1, 5), padding=nn_padding, dilation=(1, 1, 2), bias=True)
    layer = OctConv3d(6, 10, (3, 1, 5), padding=padding, dilation=(1, 1, 2), bias=True)
    layer.load_vanilla_weight(conv.weight, conv.bias)
    x = torch.randn(2, 6, 5, 9, 11)
    torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-12)
    if padding != "valid":  # "same" keeps the groups aligned, so an octave layer takes it
        octave = OctConv3d(8, 8, (3, 1, 5), padding=padding, alpha_in=0.5, alpha_out=0.5)
        assert octave.padding == (1, 0, 2)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_from_conv_takes_a_conv_with_same_or_valid_padding(padding):
    conv = nn.Conv3d(8, 8, (1, 3, 3), padding=padding)
    alpha = 0.5 if padding == "same" else 0.0
    layer = OctConv3d.from_conv(conv, alpha_in=alpha, alpha_out=alpha)
    torch.testing.assert_close(layer.to_conv().weight, conv.weight, rtol=0, atol=0)
    x = torch.randn(1, 8, 3, 6, 6)
    torch.testing.assert_close(layer.to_conv()(x), conv(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("padding", [None, "same"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_same_padding_of_an_even_kernel_is_refused_rather_than_shortening_the_output(
    padding, alpha
):
    """The default padding is "same" too: an even kernel gave a shorter output at alpha 0
    (8 frames in, 7 out for a 4x6x6 stem) and was refused only with an octave."""
    with pytest.raises(ValueError) as caught:
        OctConv3d(4, 4, (2, 3, 3), padding=padding, alpha_in=alpha, alpha_out=alpha)
    assert str(caught.value) == (
        "OctConv3d pads 'same' (its default) only an odd kernel: got kernel (2, 3, 3), dilation "
        "(1, 1, 1), whose dilation * (kernel - 1) is odd along an axis, so the output would be "
        "shorter (nn.Conv3d pads such an axis one more at the end, OctConv3d pads both ends "
        "alike); give an odd kernel, or numeric padding without an octave"
    )


def test_an_even_kernel_with_numeric_padding_is_nn_conv3d_without_an_octave():
    conv = nn.Conv3d(4, 6, (2, 3, 3), padding=(1, 1, 1), bias=False)
    layer = OctConv3d(4, 6, (2, 3, 3), padding=(1, 1, 1))
    layer.load_vanilla_weight(conv.weight)
    x = torch.randn(1, 4, 8, 6, 6)
    torch.testing.assert_close(layer(x), conv(x), rtol=0, atol=1e-12)  # (1, 6, 9, 6, 6)
    # "same" needs dilation * (kernel - 1) even: a kernel of 2 at dilation 2 spans 3 frames
    assert OctConv3d(4, 4, (2, 3, 3), dilation=(2, 1, 1)).padding == (1, 1, 1)


def test_device_and_dtype_place_every_path_as_nn_conv3d_does():
    layer = OctConv3d(
        8, 8, 3, bias=True, device="meta", dtype=torch.float16, alpha_in=0.5, alpha_out=0.5
    )
    params = list(layer.parameters())
    assert len(params) == 6  # four weights, two biases
    assert all(p.device.type == "meta" and p.dtype == torch.float16 for p in params)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_other_than_zeros_is_refused_also_from_a_conv(mode):
    message = f"padding_mode must be 'zeros' (OctConv3d pads with zeros only), got {mode!r}"
    with pytest.raises(ValueError) as caught:
        OctConv3d(8, 8, 3, padding_mode=mode)
    assert str(caught.value) == message
    with pytest.raises(ValueError) as caught:  # was taken, and padded with zeros
        OctConv3d.from_conv(
            nn.Conv3d(8, 8, 3, padding=1, padding_mode=mode), alpha_in=0, alpha_out=0
        )
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("in_channels", 0, "in_channels must be a whole number of 1 or more, got 0"),
        ("in_channels", 8.0, "in_channels must be a whole number of 1 or more, got 8.0"),
        ("out_channels", True, "out_channels must be a whole number of 1 or more, got True"),
        (
            "kernel_size",
            0,
            "kernel_size must be a whole number of 1 or more, or three of them (T, H, W); got 0",
        ),
        (
            "kernel_size",
            (3, 3),
            "kernel_size must be a whole number of 1 or more, or three of "
            "them (T, H, W); got (3, 3)",
        ),
        (
            "stride",
            (1, 0, 1),
            "stride must be a whole number of 1 or more, or three of them (T, H, W); got (1, 0, 1)",
        ),
        (
            "dilation",
            True,
            "dilation must be a whole number of 1 or more, or three of them (T, H, W); got True",
        ),
        (
            "padding",
            -1,
            "padding must be a whole number of 0 or more, or three of them (T, H, W); got -1",
        ),
        (
            "padding",
            "full",
            "padding must be 'same', 'valid', a whole number of 0 or more or "
            "three of them (T, H, W); got 'full'",
        ),
        ("bias", "yes", "bias must be True or False, got 'yes'"),
        ("alpha_out", "0.5", "alpha_out must be a number in [0, 1), got '0.5'"),
        ("alpha_out", float("nan"), "alpha_out must be a number in [0, 1), got nan"),
    ],
)
def test_each_argument_out_of_its_bounds_is_one_line_naming_it(argument, value, message):
    kwargs = {"in_channels": 8, "out_channels": 8, "kernel_size": 1, argument: value}
    with pytest.raises(ValueError) as caught:
        OctConv3d(**kwargs)
    assert str(caught.value) == message


def test_a_vanilla_bias_for_a_layer_without_one_is_refused_not_dropped():
    layer = OctConv3d(8, 8, 1, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError, match=r"^the vanilla weights have a bias but this OctConv3d"):
        layer.load_vanilla_weight(torch.randn(8, 8, 1, 1, 1), torch.randn(8))
    with_bias = OctConv3d(8, 8, 1, bias=True, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(ValueError) as caught:
        with_bias.load_vanilla_weight(torch.randn(8, 8, 1, 1, 1), torch.randn(6))
    assert str(caught.value) == (
        "vanilla bias of shape (6,) does not fit an OctConv3d expecting (8,)"
    )


def test_low_channels_rule():
    assert low_channels(64, 0.1) == 6  # int(6.4), the official rounding
    assert low_channels(100, 0.29) == 29  # float error must not drop a channel
    assert low_channels(64, 0.0) == 0
    assert low_channels(3, 0.9) == 2  # the high group always keeps a channel
    assert low_channels(1, 0.5) == 0


def test_compiled_matches_eager():
    torch.manual_seed(0)
    layer = OctConv3d(8, 8, 3, stride=2, alpha_in=0.5, alpha_out=0.5).float()
    x = OctPair(
        torch.randn(2, 4, 3, 7, 7, dtype=torch.float32),
        torch.randn(2, 4, 3, 4, 4, dtype=torch.float32),
    )
    compiled = torch.compile(layer)
    eager = layer(x)
    got = compiled(x)
    torch.testing.assert_close(got.high, eager.high, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.low, eager.low, rtol=1e-5, atol=1e-5)


@pytest.mark.heavy
def test_compiled_training_gives_the_eager_gradients_at_odd_sizes():
    """Odd sizes leave a last, partial pooling cell (the stride pool of 7x9, the octave pool of
    4x5): ``torch.compile`` gives eager's output, input gradients and weight gradients."""
    torch.manual_seed(0)
    layer = OctConv3d(8, 8, (1, 3, 3), stride=(1, 2, 2), bias=True, alpha_in=0.25, alpha_out=0.5)
    layer = layer.double()
    x = make_input(8, 0.25, (2, 7, 9), (1, 2, 2))
    x = OctPair(x.high.double(), x.low.double())
    compiled, eager = compiled_and_eager(layer, x, backend="inductor")
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_plain_tuple_input_is_taken_as_a_pair():
    torch.manual_seed(0)
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5)
    x = make_input(8, 0.5, (2, 4, 4), (1, 2, 2))
    expected = layer(x)
    for given in (tuple(x), list(x)):
        y = layer(given)
        assert isinstance(y, OctPair)
        torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_input_that_is_no_pair_is_one_type_error():
    layer = OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5)
    with pytest.raises(TypeError, match=r"\(high, low\) pair of tensors"):
        layer((torch.randn(1, 4, 2, 4, 4),))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel", [(1, 1, 1), (3, 3, 3)])
def test_aligned_layer_equals_unaligned_layer_of_the_same_channel_counts(channels_last, kernel):
    # 0.1 of 64 / 256 channels: 16 / 32 low channels at a multiple of 16 (the paper's: 6 / 25)
    aligned = OctConv3d(64, 256, kernel, alpha_in=0.1, alpha_out=0.1, channel_multiple=16)
    assert (aligned.in_low, aligned.out_low) == (16, 32)
    plain = OctConv3d(64, 256, kernel, alpha_in=16 / 64, alpha_out=32 / 256)
    assert (plain.in_low, plain.out_low) == (16, 32)
    torch.manual_seed(0)
    weight = torch.randn(256, 64, *kernel)
    aligned.load_vanilla_weight(weight)
    plain.load_vanilla_weight(weight)
    assert aligned.state_dict().keys() == plain.state_dict().keys()
    x = make_input(64, 0.25, (2, 6, 6), (1, 2, 2))
    if channels_last:
        x = OctPair(*(t.contiguous(memory_format=torch.channels_last_3d) for t in x))
    x = OctPair(*(t.requires_grad_() for t in x))
    y_a, y_p = aligned(x), plain(x)
    torch.testing.assert_close(y_a, y_p, rtol=1e-12, atol=1e-12)
    g_a = torch.autograd.grad(sum(t.square().sum() for t in y_a), [*x, *aligned.parameters()])
    g_p = torch.autograd.grad(sum(t.square().sum() for t in y_p), [*x, *plain.parameters()])
    for a, p in zip(g_a, g_p, strict=True):
        torch.testing.assert_close(a, p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("octave", [(1, 2, 2), (2, 2, 2)])
@pytest.mark.parametrize("size", [(8, 8, 8), (7, 7, 9)])
def test_octconv_trains_under_cpu_autocast(octave, size) -> None:
    """The channels-last training node under autocast: its inputs are cast as autocast casts a
    convolution's, so its backward (which autocast does not cover) sees its forward's dtypes.
    Gradients match the plain four-path layer's under the same autocast, within bfloat16.

    At least 3 frames in every group: PyTorch 2.14's bfloat16 CPU weight gradient is wrong for
    2-frame maps under 3-frame kernels (``engine.build.check_training_precision``)."""
    # autocast takes float32 tensors and parameters; this module's _float64 fixture made float64
    # the default, and puts the previous default back after the test
    torch.set_default_dtype(torch.float32)
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
        assert relative_error(got, want) < 3e-2


def _standard(shape: torch.Size) -> tuple[int, ...]:
    return torch.empty(shape, memory_format=CL).stride()


# PyTorch 2.14's CPU batch-norm backward returns wrong gradients for an input whose size-1 time
# axis has another stride (the tensor still counts as channels-last) when its output gradient is
# NCDHW: channels-last outputs with a size-1 axis carry the standard strides.
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


@pytest.mark.parametrize(
    "size", [(4, 9), (4, 9, 9, 9), 5, (4.0, 9, 9), (0, 9, 9), (True, 9, 9), "abc"]
)
@pytest.mark.parametrize("method", ["output_size", "flops", "activation_memory"])
def test_cost_methods_name_the_input_size_they_take(method, size):
    layer = OctConv3d(16, 8, 3, alpha_in=0.25, alpha_out=0.25)
    with pytest.raises(ValueError) as caught:
        getattr(layer, method)(size)
    assert str(caught.value) == (
        f"size must be the input's (T, H, W), three whole numbers of 1 or more; got {size!r}"
    )
    assert getattr(layer, method)(torch.Size([4, 9, 9])) == getattr(layer, method)((4, 9, 9))


@pytest.mark.parametrize("method", ["output_size", "flops", "activation_memory"])
def test_an_input_smaller_than_a_plain_kernel_has_no_cost_but_one_line(method):
    layer = OctConv3d(4, 4, 3, padding=0)
    with pytest.raises(ValueError) as caught:
        getattr(layer, method)((2, 9, 9))
    assert str(caught.value) == (
        "an input of (T, H, W) (2, 9, 9) is smaller than the kernel (3, 3, 3) (dilation "
        "(1, 1, 1), padding (0, 0, 0)): the layer gives no output for it"
    )
    assert layer.output_size((3, 9, 9)) == (1, 7, 7)


def test_conv_output_size_needs_one_value_per_axis():
    assert conv_output_size((5, 9), (3, 3), (1, 2), (1, 1), (1, 1)) == (5, 5)
    with pytest.raises(ValueError) as caught:
        conv_output_size((4, 9), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1))
    assert str(caught.value) == (
        "conv_output_size needs one value per axis in each of size, kernel_size, stride, "
        "padding and dilation, got 2, 3, 3, 3, 3 values"
    )


@pytest.mark.parametrize("padding", [None, 0])
def test_output_size_of_a_traced_shape_is_computed_on_its_tensors(padding):
    """``torch.jit.trace`` (ONNX and TorchScript export) gives shapes as tensors; SlowFast reads
    its lateral connection's frames from them while traced."""
    layer = OctConv3d(4, 4, (5, 1, 1), stride=(4, 1, 1), padding=padding)
    frames = layer.output_size((torch.tensor(32), 1, 1))[0]
    assert isinstance(frames, torch.Tensor)
    assert int(frames) == layer.output_size((32, 1, 1))[0]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_layer_runs_under_vmap_as_nn_conv3d_does(layout):
    """torch.func.vmap over OctConv3d: at alpha 0 it gives nn.Conv3d's numbers, at alpha 0.5 a
    loop's, in either per-sample layout."""
    torch.manual_seed(0)
    clips = torch.randn(3, 2, 4, 3, 6, 6)  # (N, B, C, T, H, W)
    if layout == "channels_last":
        clips = clips.permute(0, 1, 3, 4, 5, 2).contiguous().permute(0, 1, 5, 2, 3, 4)
    plain = OctConv3d(4, 5, 3, bias=True)
    torch.testing.assert_close(
        torch.func.vmap(plain)(clips), torch.func.vmap(plain.to_conv())(clips), rtol=0, atol=0
    )
    octave = OctConv3d(4, 5, 3, alpha_out=0.5)
    got = torch.func.vmap(octave)(clips)
    for i, clip in enumerate(clips):
        for g, want in zip(got, octave(clip), strict=True):
            torch.testing.assert_close(g[i], want, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:FutureWarning")
def test_scripting_is_refused_in_one_line_naming_trace():
    from octvideo.ops.octconv import OctaveModule

    # the one refusal every octave layer shares (tests/ops/test_layers.py: the others)
    assert OctConv3d.__prepare_scriptable__ is OctaveModule.__prepare_scriptable__
    for model in (
        OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5),
        nn.Sequential(OctConv3d(3, 8, 1)),
    ):
        with pytest.raises(
            RuntimeError, match=r"^torch\.jit\.script cannot compile OctConv3d"
        ) as err:
            torch.jit.script(model)
        assert "\n" not in str(err.value) and "torch.jit.trace(model, clip)" in str(err.value)


def test_numpy_whole_numbers_are_kept_as_python_ints():
    layer = OctConv3d(
        np.int64(8),
        np.int64(8),
        np.int64(3),
        groups=np.int64(2),
        alpha_in=0.5,
        alpha_out=0.5,
        octave=np.int64(2),
        channel_multiple=np.int64(2),
    )
    sizes = (layer.in_channels, layer.out_channels, layer.groups, layer.channel_multiple)
    sizes += (layer.in_high, layer.out_high, layer.in_low, layer.out_low)
    assert all(type(n) is int for n in (*sizes, *layer.octave, *layer.kernel_size))
    assert layer.octave == (2, 2, 2) and sizes == (8, 8, 2, 2, 4, 4, 4, 4)
    y = layer(OctPair(torch.randn(1, 4, 4, 6, 6), torch.randn(1, 4, 2, 3, 3)))
    assert (y.high.shape, y.low.shape) == ((1, 4, 4, 6, 6), (1, 4, 2, 3, 3))


@pytest.mark.parametrize("octave", [2.0, (1, 2.0, 2), (1, 2.5, 2), torch.tensor(2)])
def test_an_octave_that_is_not_whole_numbers_is_refused_when_built(octave):
    """A float octave (2.0, from a JSON file) was taken and stored, and the first forward
    stopped inside a torch pool; it is refused as a float kernel size is."""
    with pytest.raises(ValueError) as caught:
        OctConv3d(8, 8, 3, alpha_in=0.5, alpha_out=0.5, octave=octave)
    assert str(caught.value).startswith("octave must be three factors of 1 or 2")
    assert str(caught.value).endswith(f"got {octave!r}")
