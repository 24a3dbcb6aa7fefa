"""3D Octave Convolution as the paper writes it: the four paths, weight slicing to and from a
vanilla convolution, and the layer's cost. Channels-last inputs take the same paths with less
work (``octvideo.ops.fast``); inference fusion is one explicit step (``octvideo.ops.fusion``).

Reference: Chen et al., "Drop an Octave: Reducing Spatial Redundancy in Convolutional Neural
Networks with Octave Convolution", ICCV 2019 (arXiv 1904.05049), Section 3. A stride pools both
inputs, then the four stride-1 paths (the cost the paper's GFLOPs count); the official MXNet code
instead convolves the unpooled low group for L->H at a stride (docs/operator.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from octvideo.ops import fast
from octvideo.ops.capture import guard_traced_size, tracing
from octvideo.ops.pair import (
    Octave,
    OctPair,
    _Size3,
    as_pair,
    ceil_div,
    check_pair,
    check_share,
    downsample,
    is_channels_last,
    is_whole,
    low_channels,
    low_size,
    normalize_octave,
    unpair,
    upsample,
    whole_triple,
)


def conv_output_size(
    size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, int, int]:
    """Output (T, H, W) of a plain strided convolution, as ``nn.Conv3d`` computes it (any number
    of axes, one value of each argument per axis).

    Raises:
        ValueError: the arguments do not give one value per axis each.
    """
    lengths = [len(v) for v in (size, kernel_size, stride, padding, dilation)]
    if len(set(lengths)) != 1:
        raise ValueError(
            "conv_output_size needs one value per axis in each of size, kernel_size, stride, "
            f"padding and dilation, got {', '.join(map(str, lengths))} values"
        )
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(size, kernel_size, stride, padding, dilation, strict=True)
    )  # type: ignore[return-value]


def _input_size(size: Sequence[int]) -> tuple[int, int, int]:
    """An input's (T, H, W) as the cost methods take it: three whole numbers of 1 or more. A
    shape read under ``torch.jit.trace`` (ONNX and TorchScript export) holds tensors, which pass
    as they are, so that the trace records the arithmetic on them."""
    if not (
        isinstance(size, Sequence)
        and not isinstance(size, str)
        and len(size) == 3
        and all(isinstance(s, torch.Tensor) or (is_whole(s) and s >= 1) for s in size)
    ):
        raise ValueError(
            f"size must be the input's (T, H, W), three whole numbers of 1 or more; got {size!r}"
        )
    return tuple(s if isinstance(s, torch.Tensor) else int(s) for s in size)  # type: ignore[return-value]


class OctaveModule(nn.Module):
    """The base of octvideo's octave layers (``OctConv3d`` and those of ``octvideo.ops.layers``),
    which take a plain tensor or an ``OctPair`` and check them in Python: none can be scripted,
    and scripting one, or a model holding one, stops in one line that says what to use."""

    def __prepare_scriptable__(self) -> OctaveModule:
        """``torch.jit.script`` calls this on every submodule before it compiles one: an octave
        layer cannot be scripted (its forward takes a tensor or a pair, checks them in Python,
        and ``OctConv3d`` passes itself to ``octvideo.ops.fast``), so the error is one line that
        says what to use.

        Raises:
            RuntimeError: always.
        """
        raise RuntimeError(
            f"torch.jit.script cannot compile {type(self).__name__} (octvideo's octave layers "
            f"are not scriptable); record the model with torch.jit.trace(model, clip), once per "
            f"clip size, or export it with `octvideo export --format torchscript`"
        )


class OctConv3d(OctaveModule):
    """A 3D convolution over a (high, low) octave pair.

    For input (X_H, X_L) and output (Y_H, Y_L)::

        X_H ──┬───────────── conv_hh ────────────────────── + ──> Y_H
              │                                             ^
              └─ avgpool ─── conv_hl ──────────── + ──> Y_L |
                                                  ^         |
        X_L ──┬───────────── conv_ll ─────────────┘         |
              └───────────── conv_lh ─── nearest upsample ──┘

    ``avgpool`` and ``nearest upsample`` go one octave down and up (factor ``octave`` per axis, 2
    on octave axes); the upsample is cropped to Y_H's exact size, so odd sizes work. A stride > 1
    along an octave axis average-pools both inputs by the stride, then convolves with stride 1
    (the official code's L->H path instead convolves the unpooled low group, docs/operator.md);
    along an axis both groups share (factor 1, e.g. time under the spatial octave) the
    convolution strides natively. With ``alpha_in = alpha_out = 0``
    only ``conv_hh`` exists and the layer is exactly ``nn.Conv3d`` (native stride and padding).

    The four weights are the four blocks of a vanilla weight W[out, in] split at the high/low
    channel boundary, so the parameter count equals the vanilla convolution's (``from_conv`` and
    ``to_conv`` move between the two). Paths that would read or write zero channels are None.
    Depthwise layers (``groups == in_channels == out_channels``) keep only H->H and L->L.

    The arguments are ``nn.Conv3d``'s, in its order, with ``bias`` False by default and these
    differences: ``padding`` defaults to "same", ``dilation * (kernel - 1) // 2`` at both ends
    (not 0); "same" also takes a stride but needs an odd kernel (an even one, which would
    shorten the output, is refused unless the padding is numeric); ``padding_mode`` is "zeros"
    only; the input is batched, (B, C, T, H, W). Each argument out of its bounds is one ValueError
    line naming it.

    Args:
        in_channels: input channels, both groups together.
        out_channels: output channels, both groups together.
        kernel_size: (T, H, W) kernel.
        stride: (T, H, W) stride.
        padding: (T, H, W) zero padding, one number for all three, "valid" (0) or "same"; None
            is "same": ``dilation * (kernel - 1) // 2`` at both ends, the only padding that
            keeps the two groups aligned when an octave is present. "same" takes a stride (each
            axis gives ceil(size / stride)), which ``nn.Conv3d`` refuses, and needs
            ``dilation * (kernel - 1)`` even along every axis (an odd kernel), where
            ``nn.Conv3d`` pads the end of an axis one more; an even kernel needs numeric
            padding. ``self.padding`` holds the numbers.
        dilation: (T, H, W) dilation.
        groups: convolution groups (a positive integer), applied on every path.
        bias: learnable bias on each output group (carried by H->H and by L->L, or H->L where
            L->L is absent).
        padding_mode: "zeros" only.
        device: where the weights are made, as in ``nn.Conv3d``.
        dtype: the weights' dtype, as in ``nn.Conv3d``.
        alpha_in: share of input channels in the low group; 0 means a plain tensor comes in.
        alpha_out: share of output channels in the low group; 0 means a plain tensor comes out,
            as does a share that leaves the low group empty (``low_channels``: 0.1 of 8).
        octave: per-axis (T, H, W) factor between the groups: (1, 2, 2) spatial, (2, 2, 2)
            spatio-temporal.
        channel_multiple: round each low group to a multiple of this (``low_channels``), so
            that no group is a size the convolution kernels pad; None for the paper's split.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size3,
        stride: _Size3 = 1,
        padding: _Size3 | str | None = None,
        dilation: _Size3 = 1,
        groups: int = 1,
        bias: bool = False,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        alpha_in: float = 0.0,
        alpha_out: float = 0.0,
        octave: _Size3 = (1, 2, 2),
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not is_whole(n) or n < 1:
                raise ValueError(f"{name} must be a whole number of 1 or more, got {n!r}")
        if not is_whole(groups) or groups < 1:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        check_share(alpha_in, "alpha_in"), check_share(alpha_out, "alpha_out")
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
        if padding_mode != "zeros":
            raise ValueError(
                f"padding_mode must be 'zeros' (OctConv3d pads with zeros only), got "
                f"{padding_mode!r}"
            )
        self.kernel_size = whole_triple(kernel_size, "kernel_size", 1)
        self.stride = whole_triple(stride, "stride", 1)
        self.dilation = whole_triple(dilation, "dilation", 1)
        span = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation, strict=True)]
        same = tuple(s // 2 for s in span)
        text = padding if isinstance(padding, str) else None
        if padding is None or text == "same":
            self.padding = same
        elif text == "valid":
            self.padding = (0, 0, 0)
        elif text is not None:
            raise ValueError(
                f"padding must be 'same', 'valid', a whole number of 0 or more or three of them "
                f"(T, H, W); got {padding!r}"
            )
        else:
            self.padding = whole_triple(padding, "padding", 0)
        self.octave: Octave = normalize_octave(octave)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.groups = int(groups)
        self.alpha_in, self.alpha_out = float(alpha_in), float(alpha_out)
        self.in_low = low_channels(self.in_channels, alpha_in, channel_multiple)
        self.out_low = low_channels(self.out_channels, alpha_out, channel_multiple)
        # checked by low_channels; kept as Python ints, as every size above (numpy's are taken)
        self.channel_multiple = None if channel_multiple is None else int(channel_multiple)
        self.in_high = self.in_channels - self.in_low
        self.out_high = self.out_channels - self.out_low
        self.has_octave = self.in_low > 0 or self.out_low > 0
        self.depthwise = groups > 1 and groups == in_channels == out_channels

        even = any(s % 2 for s in span)  # "same" would pad one side more than the other
        if even and (padding is None or text == "same"):  # the default is "same" too
            raise ValueError(
                f"OctConv3d pads 'same' (its default) only an odd kernel: got kernel "
                f"{self.kernel_size}, dilation {self.dilation}, whose dilation * (kernel - 1) is "
                f"odd along an axis, so the output would be shorter (nn.Conv3d pads such an axis "
                f"one more at the end, OctConv3d pads both ends alike); give an odd kernel, or "
                f"numeric padding without an octave"
            )
        if self.has_octave and (even or self.padding != same):
            raise ValueError(
                f"OctConv3d with an octave needs an odd kernel and 'same' padding {same} so "
                f"both groups stay aligned; got kernel {self.kernel_size}, padding "
                f"{self.padding}, dilation {self.dilation}"
            )
        if self.depthwise and self.in_low != self.out_low:
            raise ValueError(
                f"depthwise OctConv3d needs alpha_in == alpha_out, got {alpha_in} and {alpha_out}"
            )
        if not self.depthwise:
            for name, n in (
                ("high input", self.in_high),
                ("low input", self.in_low),
                ("high output", self.out_high),
                ("low output", self.out_low),
            ):
                if n % groups:
                    raise ValueError(
                        f"groups={groups} does not divide the {name} channels ({n}) at "
                        f"alpha_in={alpha_in}, alpha_out={alpha_out}; choose channels or alphas "
                        f"whose groups split evenly"
                    )
        # With an octave, a stride along an octave axis is pool-then-convolve, so
        # both groups shrink in step; along an axis the groups share (octave factor 1) and in a
        # plain layer the convolution strides natively, so alpha 0 is exactly nn.Conv3d.
        if self.has_octave:
            pairs = list(zip(self.stride, self.octave, strict=True))
            self.pool_factor = tuple(s if o == 2 else 1 for s, o in pairs)
            conv_stride = tuple(1 if o == 2 else s for s, o in pairs)
        else:
            self.pool_factor, conv_stride = (1, 1, 1), self.stride
        self.pool_stride = self.pool_factor != (1, 1, 1)

        def make(cin: int, cout: int, with_bias: bool) -> nn.Conv3d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv3d(
                cin,
                cout,
                self.kernel_size,
                stride=conv_stride,
                padding=self.padding,
                dilation=self.dilation,
                groups=cin if self.depthwise else self.groups,
                bias=with_bias,
                device=device,
                dtype=dtype,
            )

        cross = not self.depthwise
        self.conv_hh = make(self.in_high, self.out_high, bias)
        self.conv_hl = (
            make(self.in_high, self.out_low, bias and self.in_low == 0) if cross else None
        )
        self.conv_lh = make(self.in_low, self.out_high, False) if cross else None
        self.conv_ll = make(self.in_low, self.out_low, bias)

    def forward(self, x: Tensor | OctPair) -> Tensor | OctPair:
        x_h, x_l = self._prepare(x)
        if is_channels_last(x_h):  # the same result with less work (octvideo.ops.fast)
            return unpair(fast.forward_fast(self, x_h, x_l))
        return unpair(self.forward_paths(x_h, x_l))

    def _prepare(self, x: Tensor | OctPair) -> tuple[Tensor, Tensor | None]:
        """Checks the input (``check_pair``, then its channel counts; under ``torch.jit.trace``,
        ``guard_traced_size`` instead) and applies any stride pooling."""
        x_h, x_l = x = as_pair(x)  # (B, C_h, T, H, W), (B, C_l, T/o, H/o, W/o) or None
        if tracing():
            x_h = guard_traced_size(x_h, "OctConv3d")
        else:
            self._check_input(x)
        if self.pool_stride:
            x_h = downsample(x_h, self.pool_factor)
            x_l = None if x_l is None else downsample(x_l, self.pool_factor)
        return x_h, x_l

    def _check_input(self, x: OctPair) -> None:
        check_pair(x, self.octave, "OctConv3d")
        x_h, x_l = x
        if x_h.shape[1] != self.in_high or (x_l is None) != (self.in_low == 0):
            got = (x_h.shape[1], None if x_l is None else x_l.shape[1])
            raise ValueError(
                f"OctConv3d expects (high, low) channels ({self.in_high}, {self.in_low or None}) "
                f"at alpha_in={self.alpha_in}, got {got}"
            )
        if x_l is not None and x_l.shape[1] != self.in_low:
            raise ValueError(f"OctConv3d expects {self.in_low} low channels, got {x_l.shape[1]}")

    def forward_paths(self, x_h: Tensor, x_l: Tensor | None) -> OctPair:
        """The four paths as the paper writes them, one convolution each (after any stride pool).

        This is the reference the fast path is tested against, and the path taken for
        contiguous (NCDHW) inputs.
        """
        y_h = self.conv_hh(x_h)  # (B, out_h, T', H', W')
        if self.conv_lh is not None:
            y_h = y_h + upsample(self.conv_lh(x_l), y_h.shape, self.octave)

        y_l: Tensor | None = None
        if self.conv_ll is not None:
            y_l = self.conv_ll(x_l)  # (B, out_l, T'/o, H'/o, W'/o)
        if self.conv_hl is not None:
            from_high = self.conv_hl(downsample(x_h, self.octave))
            y_l = from_high if y_l is None else y_l + from_high
        return OctPair(y_h, y_l)

    # ------------------------------------------------------------------ vanilla <-> octave weights

    def _blocks(self) -> list[tuple[nn.Conv3d | None, slice, slice]]:
        """Each path with the (output, input) slice of the vanilla weight it holds."""
        if not self.has_octave:  # one path holds the whole weight, whatever the groups
            return [(self.conv_hh, slice(None), slice(None))]
        hi_o, lo_o = slice(0, self.out_high), slice(self.out_high, self.out_channels)
        hi_i, lo_i = slice(0, self.in_high), slice(self.in_high, self.in_channels)
        if self.depthwise:  # weight (C, 1, k...): input slice is the group's single channel
            return [(self.conv_hh, hi_o, slice(0, 1)), (self.conv_ll, lo_o, slice(0, 1))]
        return [
            (self.conv_hh, hi_o, hi_i),
            (self.conv_hl, lo_o, hi_i),
            (self.conv_lh, hi_o, lo_i),
            (self.conv_ll, lo_o, lo_i),
        ]

    def _check_sliceable(self) -> None:
        if self.has_octave and self.groups != 1 and not self.depthwise:
            raise ValueError(
                "slicing a vanilla weight into octave blocks needs groups=1 or a depthwise "
                f"layer; this layer has groups={self.groups}"
            )

    @torch.no_grad()
    def load_vanilla_weight(self, weight: Tensor, bias: Tensor | None = None) -> None:
        """Fills the four paths from a vanilla ``nn.Conv3d`` weight (out, in/groups, kT, kH, kW).

        Each path takes its block of ``weight``; a bias goes to the path that carries each output
        group's bias (``conv_hh`` for high, ``conv_ll`` or ``conv_hl`` for low).
        """
        self._check_sliceable()
        expected = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        for name, value, shape in (("weight", weight, expected), ("bias", bias, expected[:1])):
            if value is None:
                continue
            if not isinstance(value, Tensor):
                raise ValueError(f"vanilla {name} must be a tensor, got {type(value).__name__}")
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"vanilla {name} of shape {tuple(value.shape)} does not fit an OctConv3d "
                    f"expecting {shape}"
                )
        has_bias = self.conv_hh.bias is not None
        if has_bias and bias is None:
            raise ValueError("this OctConv3d has a bias but the vanilla weights have none")
        if bias is not None and not has_bias:
            raise ValueError(
                "the vanilla weights have a bias but this OctConv3d has none; make it with "
                "bias=True"
            )
        for conv, out_sl, in_sl in self._blocks():
            if conv is None:
                continue
            conv.weight.copy_(weight[out_sl, in_sl])
            if conv.bias is not None:
                conv.bias.copy_(bias[out_sl])

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv3d,
        *,
        alpha_in: float,
        alpha_out: float,
        octave: _Size3 = (1, 2, 2),
        channel_multiple: int | None = None,
    ) -> OctConv3d:
        """An OctConv3d with ``conv``'s hyper-parameters and its weight sliced into four blocks,
        on its device and in its dtype."""
        if not isinstance(conv, nn.Conv3d):
            raise ValueError(f"from_conv takes an nn.Conv3d, got {type(conv).__name__}")
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
            alpha_in=alpha_in,
            alpha_out=alpha_out,
            octave=octave,
            channel_multiple=channel_multiple,
        )
        layer.load_vanilla_weight(conv.weight, conv.bias)
        return layer

    @torch.no_grad()
    def vanilla_weight(self) -> tuple[Tensor, Tensor | None]:
        """The vanilla (weight, bias) that holds this layer's four blocks; the inverse of slicing.

        Paths that an octave layer drops (cross paths of depthwise layers) are zero; absent paths
        of a layer with alpha 0 at one side are simply not there, so their block is empty.
        """
        self._check_sliceable()
        ref = self.conv_hh.weight
        weight = ref.new_zeros(
            self.out_channels, self.in_channels // self.groups, *self.kernel_size
        )
        bias = ref.new_zeros(self.out_channels) if self.conv_hh.bias is not None else None
        for conv, out_sl, in_sl in self._blocks():
            if conv is None:
                continue
            weight[out_sl, in_sl] = conv.weight
            if conv.bias is not None and bias is not None:
                bias[out_sl] = conv.bias
        return weight, bias

    def to_conv(self) -> nn.Conv3d:
        """The vanilla ``nn.Conv3d`` with this layer's weights (native stride and padding)."""
        weight, bias = self.vanilla_weight()
        conv = nn.Conv3d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=bias is not None,
        ).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        return conv

    # ------------------------------------------------------------------------------ analytic cost

    def output_size(self, size: Sequence[int]) -> tuple[int, int, int]:
        """(T, H, W) of the high output for a high input of ``size`` (T, H, W).

        Raises:
            ValueError: ``size`` is not three whole numbers of 1 or more, or is smaller than the
                kernel of a layer without an octave, which gives no output for it.
        """
        size = _input_size(size)
        if self.has_octave:  # "same" padding: every axis gives ceil(size / stride)
            return tuple(ceil_div(s, st) for s, st in zip(size, self.stride, strict=True))  # type: ignore[return-value]
        out = conv_output_size(size, self.kernel_size, self.stride, self.padding, self.dilation)
        if all(isinstance(o, int) for o in out) and min(out) < 1:
            raise ValueError(
                f"an input of (T, H, W) {size} is smaller than the kernel {self.kernel_size} "
                f"(dilation {self.dilation}, padding {self.padding}): the layer gives no output "
                f"for it"
            )
        return out

    def flops(self, size: Sequence[int]) -> int:
        """Multiply-adds of one sample through the four convolutions, for a high input of ``size``.

        Pooling, upsampling and the additions are not counted (fvcore counts none of them either);
        they are O(activations), small beside the convolutions.
        """
        out_hi = self.output_size(size)
        out_lo = low_size(out_hi, self.octave)
        k = math.prod(self.kernel_size)
        total = 0
        for conv, grid in (
            (self.conv_hh, out_hi),
            (self.conv_lh, out_lo),
            (self.conv_hl, out_lo),
            (self.conv_ll, out_lo),
        ):
            if conv is not None:
                total += conv.out_channels * (conv.in_channels // conv.groups) * k * math.prod(grid)
        return total

    def activation_memory(self, size: Sequence[int]) -> int:
        """Elements of one sample's output (both groups) for a high input of ``size``."""
        out_hi = self.output_size(size)
        out_lo = low_size(out_hi, self.octave)
        return self.out_high * math.prod(out_hi) + self.out_low * math.prod(out_lo)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"alpha_in={self.alpha_in}, alpha_out={self.alpha_out}, octave={self.octave}"
            + (
                ""
                if self.channel_multiple is None
                else f", channel_multiple={self.channel_multiple}"
            )
        )
