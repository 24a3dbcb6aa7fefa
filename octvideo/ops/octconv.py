"""3D Octave Convolution.

Reference: Chen et al., "Drop an Octave: Reducing Spatial Redundancy in Convolutional Neural
Networks with Octave Convolution", ICCV 2019 (arXiv 1904.05049), Section 3 and the official MXNet
code's handling of stride (pool, then stride-1 convolution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from octvideo.ops.pair import (
    Octave,
    OctPair,
    _pools_in_float32,
    _Size3,
    _triple,
    as_pair,
    downsample,
    from_frames,
    is_channels_last,
    low_channels,
    low_size,
    normalize_octave,
    pool_factor,
    to_frames,
    unpair,
    upsample,
)


def conv_output_size(
    size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, int, int]:
    """Output (T, H, W) of a plain strided convolution, as ``nn.Conv3d`` computes it."""
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(size, kernel_size, stride, padding, dilation, strict=True)
    )  # type: ignore[return-value]


class OctConv3d(nn.Module):
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
    along an octave axis is applied the way the official code does: average-pool both inputs by
    the stride, then convolve with stride 1; along an axis both groups share (factor 1, e.g. time
    under the spatial octave) the convolution strides natively. With ``alpha_in = alpha_out = 0``
    only ``conv_hh`` exists and the layer is exactly ``nn.Conv3d`` (native stride and padding).

    The four weights are the four blocks of a vanilla weight W[out, in] split at the high/low
    channel boundary, so the parameter count equals the vanilla convolution's (``from_conv`` and
    ``to_conv`` move between the two). Paths that would read or write zero channels are None.
    Depthwise layers (``groups == in_channels == out_channels``) keep only H->H and L->L.

    Args:
        in_channels: input channels, both groups together.
        out_channels: output channels, both groups together.
        kernel_size: (T, H, W) kernel.
        stride: (T, H, W) stride.
        padding: (T, H, W) zero padding; None means "same" (``dilation * (kernel - 1) // 2``),
            the only padding that keeps the two groups aligned when an octave is present.
        dilation: (T, H, W) dilation.
        groups: convolution groups, applied on every path.
        bias: learnable bias on each output group (carried by H->H and by L->L, or H->L where
            L->L is absent).
        alpha_in: share of input channels in the low group; 0 means a plain tensor comes in.
        alpha_out: share of output channels in the low group; 0 means a plain tensor comes out.
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
        padding: _Size3 | None = None,
        dilation: _Size3 = 1,
        groups: int = 1,
        bias: bool = False,
        *,
        alpha_in: float = 0.0,
        alpha_out: float = 0.0,
        octave: _Size3 = (1, 2, 2),
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.stride = _triple(stride, "stride")
        self.dilation = _triple(dilation, "dilation")
        same = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation, strict=True))
        self.padding = same if padding is None else _triple(padding, "padding")
        self.octave: Octave = normalize_octave(octave)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.alpha_in, self.alpha_out = float(alpha_in), float(alpha_out)
        self.channel_multiple = channel_multiple
        self.in_low = low_channels(in_channels, alpha_in, channel_multiple)
        self.out_low = low_channels(out_channels, alpha_out, channel_multiple)
        self.in_high = in_channels - self.in_low
        self.out_high = out_channels - self.out_low
        self.has_octave = self.in_low > 0 or self.out_low > 0
        self.depthwise = groups > 1 and groups == in_channels == out_channels

        if self.has_octave:
            even = [
                k for k, d in zip(self.kernel_size, self.dilation, strict=True) if d * (k - 1) % 2
            ]
            if even or self.padding != same:
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
        # With an octave, a stride along an octave axis is pool-then-convolve (official code), so
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
                groups=cin if self.depthwise else groups,
                bias=with_bias,
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
        if is_channels_last(x_h):
            return unpair(self._forward_fast(x_h, x_l))
        return unpair(self.forward_paths(x_h, x_l))

    def forward_with_weights(
        self,
        x: Tensor | OctPair,
        weights: PathWeights,
        *,
        residual: Tensor | OctPair | None = None,
        relu: bool = False,
    ) -> Tensor | OctPair:
        """The fast path with other weights (same shapes as ``path_weights()``), in any memory
        layout; batch-norm folding for inference runs through here.

        ``relu(y + residual)`` is returned when those are given (inference only: they are
        applied in place, or fused into the convolution when ``weights.packed`` allows it).
        """
        if (residual is not None or relu) and torch.is_grad_enabled():
            raise RuntimeError("forward_with_weights: residual/relu epilogues are inference-only")
        r_h, r_l = (None, None) if residual is None else as_pair(residual)
        return unpair(self._forward_fast(*self._prepare(x), weights, r_h, r_l, relu))

    def _prepare(self, x: Tensor | OctPair) -> tuple[Tensor, Tensor | None]:
        """Checks the input's groups and applies any stride pooling."""
        x_h, x_l = as_pair(x)  # (B, C_h, T, H, W), (B, C_l, T/o, H/o, W/o) or None
        if x_h.shape[1] != self.in_high or (x_l is None) != (self.in_low == 0):
            got = (x_h.shape[1], None if x_l is None else x_l.shape[1])
            raise ValueError(
                f"OctConv3d expects (high, low) channels ({self.in_high}, {self.in_low or None}) "
                f"at alpha_in={self.alpha_in}, got {got}"
            )
        if x_l is not None and x_l.shape[1] != self.in_low:
            raise ValueError(f"OctConv3d expects {self.in_low} low channels, got {x_l.shape[1]}")
        if self.pool_stride:
            x_h = downsample(x_h, self.pool_factor)
            x_l = None if x_l is None else downsample(x_l, self.pool_factor)
        return x_h, x_l

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

    def _forward_fast(
        self,
        x_h: Tensor,
        x_l: Tensor | None,
        weights: PathWeights | None = None,
        r_h: Tensor | None = None,
        r_l: Tensor | None = None,
        relu: bool = False,
    ) -> OctPair:
        """Same result as ``forward_paths`` for channels-last (NDHWC) inputs, with less work.

        - H->L and L->L become one convolution over ``cat(pool(X_H), X_L)`` with the two weight
          blocks side by side: one larger convolution runs faster than two small ones.
        - In training the layer is one autograd node (``_OctConvTrain``): its backward
          recomputes ``pool(X_H)`` and the concatenation from X_H and X_L, which autograd keeps
          anyway, instead of saving them, and adds the pooled path's input gradient into H->H's
          in place.
        - Kernels of temporal size 1 run as 2D convolutions on a (B*T, C, H, W) view, and kernels
          of spatial size 1 (the I3D 3x1x1) on a (B, C, T, H*W) view when no backward follows;
          in channels-last memory both views are free, and on CPU the 2D kernels are up to 4x
          faster than the 3D one in inference (the 3D backward is the faster one in training).
        - The L->H upsample is added in place through a broadcast view when sizes divide evenly,
          so the upsampled tensor is never written out.
        - In folded inference, channel-reducing layers with a kernel of 1 along the octave axes
          and a small low share run H->L at full resolution and pool afterwards, two
          convolutions in all (``pools_after``, ``_pool_after``).

        Args:
            x_h: (B, C_h, T, H, W) channels-last high input (after any stride pooling).
            x_l: low input or None.
            weights: the paths' weights and the two output biases; None takes the layer's own.
                Batch-norm folding (``conv_norm_act``) passes scaled copies here.
            r_h, r_l: residuals added to each output group (inference only), or None.
            relu: apply ReLU after the residual (inference only).
        """
        w = self.path_weights() if weights is None else weights
        if (w.hl is not None or w.lh is not None) and _records(x_h, x_l, *w[:6]):
            return self._forward_fast_train(x_h, x_l, w)
        if w.stacked is not None and r_h is None and r_l is None:
            y = _pool_after(self, x_h, x_l, w, relu)
            if y is not None:
                return y
        pack = w.packed
        if w.lh is None:  # Y_H is one convolution: the epilogue can be fused into it
            y_h = _conv(self, x_h, w.hh, w.bias_h, pack, r_h, relu)
        else:
            y_h = _conv(self, x_h, w.hh, w.bias_h, pack)
            if r_h is not None:  # its own pass: as a oneDNN binary post-op, 2-4% slower overall
                y_h.add_(r_h)
            y_h = _add_upsampled(y_h, _conv(self, x_l, w.lh, None, pack), self.octave, relu)

        y_l: Tensor | None = None
        if w.hl is not None and (w.ll is None or self.groups == 1):
            x_low = x_l if w.ll is not None else None
            y_l = _low_conv(self, x_h, x_low, w.hl, w.ll, w.bias_l, w.merged_low, pack, r_l, relu)
        elif w.hl is not None:  # grouped with both low paths: two convolutions
            y_l = _conv(self, x_l, w.ll, w.bias_l, pack)
            y_l = _epilogue(y_l + _low_conv(self, x_h, None, w.hl, None, None), r_l, relu)
        elif w.ll is not None:
            y_l = _conv(self, x_l, w.ll, w.bias_l, pack, r_l, relu)
        return OctPair(y_h, y_l)

    def _forward_fast_train(self, x_h: Tensor, x_l: Tensor | None, w: PathWeights) -> OctPair:
        """``_forward_fast`` when autograd records and the layer has a cross path: the layer is
        one autograd node (``_OctConvTrain``), L->L inside it where the layer is not grouped."""
        merged = w.ll is not None and w.hl is not None and self.groups == 1
        args = [
            x_h,
            x_l,
            w.hh,
            w.hl,
            w.lh,
            w.ll if merged else None,
            w.bias_h,
            w.bias_l if merged or w.ll is None else None,
        ]
        device = x_h.device.type
        if torch.is_autocast_enabled(device):
            # As autocast treats a convolution: its inputs cast to the autocast dtype (the casts
            # differentiable, outside the node), the node itself run without autocast, so that its
            # backward, which autocast does not cover, sees the dtypes its forward saw.
            dtype = torch.get_autocast_dtype(device)
            args = [None if t is None else t.to(dtype) for t in args]
            with torch.autocast(device, enabled=False):
                y = _OctConvTrain.apply(*args, self)
        else:
            y = _OctConvTrain.apply(*args, self)
        y_h, y_l = (y, None) if w.hl is None else y
        if w.ll is not None and not merged:  # grouped: cat(pool(X_H), X_L) would mix groups
            y_ll = _conv(self, x_l, w.ll, w.bias_l)
            y_l = y_ll if y_l is None else y_l + y_ll
        return OctPair(y_h, y_l)

    def path_weights(self) -> PathWeights:
        """The four paths' weights and the bias of each output group (None where absent)."""

        def weight(conv: nn.Conv3d | None) -> Tensor | None:
            return None if conv is None else conv.weight

        bias_l = None
        if self.conv_ll is not None:
            bias_l = self.conv_ll.bias
        elif self.conv_hl is not None:
            bias_l = self.conv_hl.bias
        return PathWeights(
            weight(self.conv_hh),
            weight(self.conv_hl),
            weight(self.conv_lh),
            weight(self.conv_ll),
            None if self.conv_hh is None else self.conv_hh.bias,
            bias_l,
        )

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
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"vanilla weight of shape {tuple(weight.shape)} does not fit an OctConv3d "
                f"expecting {expected}"
            )
        for conv, out_sl, in_sl in self._blocks():
            if conv is None:
                continue
            conv.weight.copy_(weight[out_sl, in_sl])
            if conv.bias is not None:
                if bias is None:
                    raise ValueError("this OctConv3d has a bias but the vanilla weights have none")
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
        """An OctConv3d with ``conv``'s hyper-parameters and its weight sliced into four blocks."""
        if isinstance(conv.padding, str):
            raise ValueError("from_conv needs numeric padding, not padding='same'/'valid'")
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            alpha_in=alpha_in,
            alpha_out=alpha_out,
            octave=octave,
            channel_multiple=channel_multiple,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
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
        """(T, H, W) of the high output for a high input of ``size`` (T, H, W)."""
        size = tuple(size[-3:])
        if self.has_octave:  # "same" padding: every axis gives ceil(size / stride)
            return tuple(-(-s // st) for s, st in zip(size, self.stride, strict=True))  # type: ignore[return-value]
        return conv_output_size(size, self.kernel_size, self.stride, self.padding, self.dilation)

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


class PathWeights(NamedTuple):
    """Weights of an OctConv3d's four paths and the bias of each output group (None: absent)."""

    hh: Tensor
    hl: Tensor | None
    lh: Tensor | None
    ll: Tensor | None
    bias_h: Tensor | None
    bias_l: Tensor | None
    merged_low: Tensor | None = None
    """``cat([hl, ll], dim=1)`` made ahead (folded inference weights), or None: made per call."""
    packed: dict | None = None
    """Where set (folded float32 CPU weights), the weights reordered once into oneDNN's own
    layout, filled per (weight, input shape) on first use; None: plain ``F.conv*`` calls."""
    stacked: tuple[Tensor, Tensor, Tensor | None] | None = None
    """``(cat([hh, hl], 0), cat([lh, ll], 0), cat([bias_h, bias_l]))`` for folded inference
    weights of a layer that runs "pool after" (``pools_after``), else None."""


class _Geometry(NamedTuple):
    """How a convolution runs: as 3D, or as 2D on a free channels-last view.

    ``view`` is "frames" (temporal kernel 1: (B*T, C, H, W)), "tubes" (spatial kernel 1:
    (B, C, T, H*W)) or "3d".
    """

    view: str
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


def _geometry(layer: OctConv3d, backward: bool = False) -> _Geometry:
    """How ``layer``'s convolutions run: "frames" (1 x k x k kernels as 2D convolutions on
    (B*T, C, H, W) views), "tubes" (k x 1 x 1 kernels on (B, C, T, H*W) views; only where no
    backward follows: oneDNN's 2D backward is 1.2-2.6x slower than its 3D one on these) or "3d".
    """
    conv = layer.conv_hh
    k, st, pad, dil = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    if k[0] == 1 and st[0] == 1 and pad[0] == 0:
        return _Geometry("frames", st[1:], pad[1:], dil[1:])
    if k[1:] == (1, 1) and st[1:] == (1, 1) and pad[1:] == (0, 0) and not backward:
        return _Geometry("tubes", (st[0], 1), (pad[0], 0), (dil[0], 1))
    return _Geometry("3d", st, pad, dil)


def _to_2d(x: Tensor, view: str) -> Tensor:
    if view == "frames":  # (B, C, T, H, W) -> (B*T, C, H, W), a view in channels-last memory
        return to_frames(x)
    if view == "tubes":  # (B, C, T, H, W) -> (B, C, T, H*W), a view in channels-last memory
        return x.flatten(3)
    return x


def _from_2d(y: Tensor, view: str, like: Tensor) -> Tensor:
    """The 5D result of a 2D convolution on ``_to_2d(like)``."""
    if view == "frames":  # (B*T, C', H', W') -> (B, C', T, H', W')
        return from_frames(y, like.shape[0], like.shape[2])
    if view == "tubes":  # (B, C', T', H*W) -> (B, C', T', H, W)
        return y.unflatten(3, like.shape[3:])
    return y


def _weight_2d(weight: Tensor, view: str) -> Tensor:
    if view == "frames":
        return weight.squeeze(2)  # (C', C, kH, kW); its backward is a view (select's fills zeros)
    if view == "tubes":
        return weight.flatten(3)  # (C', C, kT, 1)
    return weight


def _conv(
    layer: OctConv3d,
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    pack: dict | None = None,
    residual: Tensor | None = None,
    relu: bool = False,
) -> Tensor:
    """A convolution with ``layer``'s geometry and the given weight, run as 2D where possible,
    then ``relu(y + residual)`` where those are given (inference only).

    For a channels-last (B, C, T, H, W) tensor, the 2D views (``_to_2d``) are free and stay
    channels-last, and so does the result's view back to 5D.

    With ``pack`` (``PathWeights.packed``) and a float32 CPU input, the convolution runs on a
    weight reordered once into oneDNN's layout, with the residual add and the ReLU fused into
    its output pass; ``F.conv*`` reorders the weight on every call, which on the small maps of
    res4/res5 costs 15-40% of the call.
    """
    g = _geometry(layer, torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    groups = x.shape[1] // weight.shape[1]  # the path's own groups (depthwise: its channels)
    x2, w2 = _to_2d(x, g.view), _weight_2d(weight, g.view)
    if pack is not None and _packable(x2, weight):
        r2 = None if residual is None else _to_2d(residual, g.view)
        y = _fused_conv(pack, weight, x2, w2, bias, g, groups, r2, relu)
        if y is not None:
            return _from_2d(y, g.view, x)
    if g.view == "3d":
        y = F.conv3d(x2, w2, bias, g.stride, g.padding, g.dilation, groups)
    else:
        y = F.conv2d(x2, w2, bias, g.stride, g.padding, g.dilation, groups)
    return _epilogue(_from_2d(y, g.view, x), residual, relu)


def _epilogue(y: Tensor, residual: Tensor | None, relu: bool) -> Tensor:
    """``relu(y + residual)`` in place on ``y``, a fresh output (inference only)."""
    if residual is not None:
        return _add_(y, residual, relu)
    return y.relu_() if relu else y


def _add_(y: Tensor, other: Tensor, relu: bool) -> Tensor:
    """``y += other`` (broadcast), then ReLU where asked, in place; in one pass on CPU
    float32/float64 (ATen's ``_add_relu_``), in two elsewhere."""
    if relu and y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64):
        return torch.ops.aten._add_relu_(y, other)
    y.add_(other)
    return y.relu_() if relu else y


def _packable(x: Tensor, weight: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")  # the packed call would bypass its casts
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )


_MAX_PACKED = 32  # packed weights kept per layer (paths x input shapes) before starting over


def _fused_conv(
    pack: dict,
    weight: Tensor,
    x: Tensor,
    w2: Tensor,
    bias: Tensor | None,
    g: _Geometry,
    groups: int,
    residual: Tensor | None,
    relu: bool,
) -> Tensor | None:
    """oneDNN's convolution of ``x`` (the 4D or 5D view ``_conv`` runs) with fused post-ops, on
    ``w2`` (the matching view of ``weight``) reordered once and kept in ``pack``; None where the
    residual's shape or layout does not match the output's (the caller then adds it itself)."""
    if residual is not None:
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        out_fmt = fmt if x.is_contiguous(memory_format=fmt) else torch.contiguous_format
        size = conv_output_size(x.shape[2:], w2.shape[2:], g.stride, g.padding, g.dilation)
        if residual.shape != (x.shape[0], w2.shape[0], *size) or not residual.is_contiguous(
            memory_format=out_fmt
        ):
            return None
    args = (list(g.padding), list(g.stride), list(g.dilation), groups)
    key = (id(weight), tuple(x.shape))  # ``pack`` lives in the PathWeights holding ``weight``
    packed = pack.get(key)
    if packed is None:
        if len(pack) >= _MAX_PACKED:
            pack.clear()
        reorder = (
            torch._C._nn.mkldnn_reorder_conv2d_weight
            if x.dim() == 4
            else torch._C._nn.mkldnn_reorder_conv3d_weight
        )
        packed = pack[key] = reorder(w2.to_mkldnn(), *args, list(x.shape))
    if residual is None:
        unary = "relu" if relu else "none"
        return torch.ops.mkldnn._convolution_pointwise(x, packed, bias, *args, unary, [], "")
    unary_or_none = "relu" if relu else None
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, residual, packed, bias, *args, "add", 1.0, unary_or_none, [], ""
    )


def _low_input(x_h: Tensor, x_l: Tensor | None, octave: Octave) -> Tensor:
    """``cat(pool(X_H), X_L)``: the input of the merged H->L / L->L convolution."""
    pooled = downsample(x_h, octave)
    return pooled if x_l is None else torch.cat([pooled, x_l], dim=1)


def _records(*tensors: Tensor | None) -> bool:
    """Whether autograd records a call on these tensors."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _conv_backward(
    layer: OctConv3d, grad_y: Tensor, x: Tensor, weight: Tensor, has_bias: bool, mask: list[bool]
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(grad_x, grad_weight, grad_bias)`` of ``_conv(layer, x, weight, bias)`` for ``grad_y``,
    each where ``mask`` asks for it, in the view oneDNN's backward runs fastest."""
    g = _geometry(layer, backward=True)
    if grad_y.is_contiguous() and not grad_y.is_contiguous(memory_format=torch.channels_last_3d):
        grad_y = grad_y.contiguous(memory_format=torch.channels_last_3d)
    gx2, gw2, gb = torch.ops.aten.convolution_backward(
        _to_2d(grad_y, g.view),
        _to_2d(x, g.view),
        _weight_2d(weight, g.view),
        [weight.shape[0]] if has_bias else None,
        list(g.stride),
        list(g.padding),
        list(g.dilation),
        False,
        [0] * (3 if g.view == "3d" else 2),
        x.shape[1] // weight.shape[1],
        mask,
    )
    gx = None if gx2 is None else _from_2d(gx2, g.view, x)
    gw = None if gw2 is None else gw2.reshape(weight.shape)
    return gx, gw, gb


class _OctConvTrain(torch.autograd.Function):
    """An OctConv3d's paths in training as one autograd node:
    Y_H = conv(X_H, W_HH) + b_H + upsample(conv(X_L, W_LH)) and
    Y_L = conv(cat(pool(X_H), X_L), cat(W_HL, W_LL)) + b_L (W_LL None: L->L runs outside).

    Against autograd over the separate paths, backward adds the pooled path's input gradient
    into the H->H convolution's input gradient through a broadcast view, in place (autograd
    writes an average-pool backward, a zero fill and a scatter at full resolution, and then
    adds the two full-resolution gradients into a third tensor), and the forward adds the
    L->H result in place. It saves X_H and X_L, which the caller's graph keeps anyway, and
    recomputes the pooled, concatenated input from them (one pooling and one copy of a
    low-resolution tensor) rather than saving it. BENCHMARKS.md, eighth pass, has the gain.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x_h, x_l, w_hh, w_hl, w_lh, w_ll, bias_h, bias_l, layer: OctConv3d
    ):
        y_h = _conv(layer, x_h, w_hh, bias_h)
        if w_lh is not None:
            y_h = _add_upsampled(y_h, _conv(layer, x_l, w_lh, None), layer.octave)
        y_l = None
        if w_hl is not None:
            x_in = _low_input(x_h, x_l if w_ll is not None else None, layer.octave)
            y_l = _conv(layer, x_in, _low_weight(w_hl, w_ll), bias_l)
        ctx.save_for_backward(x_h, x_l, w_hh, w_hl, w_lh, w_ll)
        ctx.set_materialize_grads(False)
        ctx.layer = layer
        ctx.has_bias = (bias_h is not None, bias_l is not None)
        return y_h if y_l is None else (y_h, y_l)  # no None output: dynamo cannot trace one

    @staticmethod
    def backward(ctx, g_h: Tensor | None, g_l: Tensor | None = None):  # type: ignore[override]
        x_h, x_l, w_hh, w_hl, w_lh, w_ll = ctx.saved_tensors
        layer: OctConv3d = ctx.layer
        need_xh, need_xl, need_whh, need_whl, need_wlh, need_wll, need_bh, need_bl, _ = (
            ctx.needs_input_grad
        )
        n_high = x_h.shape[1]
        gx_h = gx_l = gw_hh = gw_hl = gw_lh = gw_ll = gb_h = gb_l = None
        if g_h is not None:  # None: Y_H was not used (grads are not materialised)
            mask = [need_xh, need_whh, need_bh]
            gx_h, gw_hh, gb_h = _conv_backward(layer, g_h, x_h, w_hh, ctx.has_bias[0], mask)
            if w_lh is not None and (need_xl or need_wlh):
                g_z = downsample(g_h, layer.octave, divisor_override=1)  # upsample's grad
                gx_l, gw_lh, _ = _conv_backward(
                    layer, g_z, x_l, w_lh, False, [need_xl, need_wlh, False]
                )
        if g_l is not None:
            merged = w_ll is not None
            x_in = _low_input(x_h, x_l if merged else None, layer.octave)
            mask = [need_xh or (merged and need_xl), need_whl or need_wll, need_bl]
            gx_in, gw_low, gb_l = _conv_backward(
                layer, g_l, x_in, _low_weight(w_hl, w_ll), ctx.has_bias[1], mask
            )
            if need_xh:
                gx_h = _add_pool_backward(gx_h, gx_in[:, :n_high], x_h, layer.octave)
            if merged and need_xl:
                gx_l = gx_in[:, n_high:] if gx_l is None else gx_l + gx_in[:, n_high:]
            if gw_low is not None:
                gw_hl = gw_low[:, : w_hl.shape[1]] if need_whl else None
                gw_ll = gw_low[:, w_hl.shape[1] :] if need_wll else None
        return gx_h, gx_l, gw_hh, gw_hl, gw_lh, gw_ll, gb_h, gb_l, None


def _low_weight(w_hl: Tensor, w_ll: Tensor | None) -> Tensor:
    """The merged H->L / L->L weight (H->L alone where L->L is absent or runs apart)."""
    return w_hl if w_ll is None else torch.cat([w_hl, w_ll], dim=1)


def _add_pool_backward(
    grad: Tensor | None, pooled_grad: Tensor, x: Tensor, octave: Octave
) -> Tensor:
    """``grad`` (None: zero) + the gradient of ``downsample(x, octave)`` for ``pooled_grad``; in
    place on ``grad`` through a broadcast view where every size divides evenly (each cell's
    share is ``pooled_grad / cell size``), else through ``_downsample_backward``."""
    b, c, t, h, w = x.shape
    factor = pool_factor(octave, (t, h, w))
    ot, oh, ow = factor
    if grad is None or t % ot or h % oh or w % ow:
        pool_grad = _downsample_backward(pooled_grad, x, octave)
        return pool_grad if grad is None else grad + pool_grad
    g8 = grad.view(b, c, t // ot, ot, h // oh, oh, w // ow, ow)
    g8.add_(pooled_grad[:, :, :, None, :, None, :, None], alpha=1.0 / math.prod(factor))
    return grad


def _downsample_backward(grad: Tensor, x: Tensor, factor: Octave) -> Tensor:
    """Gradient of ``downsample(x, factor)`` for the output gradient ``grad``, without autograd
    (so that torch.compile can trace the backward that calls it)."""
    factor = pool_factor(factor, x.shape[-3:])
    if factor == (1, 1, 1):
        return grad
    if factor[0] == 1 and is_channels_last(x):  # downsample's 2D path on (B*T, C, H, W) views
        k = list(factor[1:])
        out = torch.ops.aten.avg_pool2d_backward(
            to_frames(grad), to_frames(x), k, k, [0, 0], True, True, None
        )
        return from_frames(out, x.shape[0], x.shape[2])
    k3 = list(factor)
    if _pools_in_float32(grad):  # no CPU kernel for float16 / bfloat16, as in ``avg_pool3d``
        g32 = torch.ops.aten.avg_pool3d_backward(
            grad.float(), x.float(), k3, k3, [0, 0, 0], True, True, None
        )
        return g32.to(grad.dtype)
    return torch.ops.aten.avg_pool3d_backward(grad, x, k3, k3, [0, 0, 0], True, True, None)


def _low_conv(
    layer: OctConv3d,
    x_h: Tensor,
    x_l: Tensor | None,
    w_hl: Tensor,
    w_ll: Tensor | None,
    bias: Tensor | None,
    merged: Tensor | None = None,
    pack: dict | None = None,
    residual: Tensor | None = None,
    relu: bool = False,
) -> Tensor:
    """The merged H->L (+ L->L) convolution where autograd does not record (in training it
    runs inside ``_OctConvTrain``).

    ``merged`` is ``cat([w_hl, w_ll], dim=1)`` when the caller has it ready; ``pack``,
    ``residual`` and ``relu`` are passed on to ``_conv``.
    """
    if w_ll is None:
        weight = w_hl
    elif merged is not None:
        weight = merged
    else:  # made per call: never packed (the cache is keyed by the weight's identity)
        weight, pack = torch.cat([w_hl, w_ll], 1), None
    return _conv(layer, _low_input(x_h, x_l, layer.octave), weight, bias, pack, residual, relu)


def pools_after(layer: OctConv3d) -> bool:
    """Whether ``layer``'s folded inference runs "pool after" (``_pool_after``).

    That is exact where the kernel is 1 (and the convolution's stride 1) along every octave
    axis, so that average pooling commutes with the convolution, and all four paths exist
    ungrouped. It is chosen where it measured faster (``tools/bench_pool_after.py``,
    BENCHMARKS.md tenth pass): channel-reducing layers (C_in >= 2 C_out, the bottlenecks'
    conv_a) with a low output share of at most 0.2, where the paper's split leaves high groups
    such as 58 of 64 channels that a CPU convolution pads to 64 anyway.
    """
    conv = layer.conv_hh
    if any(c is None for c in (conv, layer.conv_hl, layer.conv_lh, layer.conv_ll)):
        return False
    axes = [i for i, o in enumerate(layer.octave) if o == 2]
    return (
        layer.groups == 1
        and all(conv.kernel_size[i] == 1 and conv.stride[i] == 1 for i in axes)
        and layer.in_channels >= 2 * layer.out_channels
        and layer.out_low <= 0.2 * layer.out_channels
    )


def stack_weights(w: PathWeights) -> tuple[Tensor, Tensor, Tensor | None]:
    """``PathWeights.stacked`` for weights ``w`` of a layer that ``pools_after``."""
    bias = None
    if w.bias_h is not None or w.bias_l is not None:
        bias_h = w.hh.new_zeros(w.hh.shape[0]) if w.bias_h is None else w.bias_h
        bias_l = w.hl.new_zeros(w.hl.shape[0]) if w.bias_l is None else w.bias_l
        bias = torch.cat([bias_h, bias_l])
    return torch.cat([w.hh, w.hl], dim=0), torch.cat([w.lh, w.ll], dim=0), bias


def _pool_after(
    layer: OctConv3d, x_h: Tensor, x_l: Tensor, w: PathWeights, relu: bool
) -> OctPair | None:
    """``_forward_fast`` in inference for a layer that ``pools_after``, from ``w.stacked``::

        A = conv(X_H, [W_HH; W_HL]) + [b_H; b_L]    every output channel, high resolution
        B = conv(X_L, [W_LH; W_LL])                 every output channel, low resolution
        Y_H = A[:C_H] + upsample(B[:C_H])
        Y_L = pool(A[C_H:]) + B[C_H:]               (then ReLU where ``relu``)

    Two convolutions instead of three, no pooled or concatenated input, at 4x the H->L
    multiply-adds; None (the caller then runs its usual path) off the CPU or channels-last
    memory, where it has not been measured, and where a size does not divide by the octave.
    """
    w_a, w_b, bias = w.stacked
    b, _, t, h, wd = x_h.shape
    ot, oh, ow = layer.octave
    cpu_cl = x_h.device.type == "cpu" and is_channels_last(x_h)  # x_l may have one channel
    if not cpu_cl or not x_l.is_contiguous(memory_format=torch.channels_last_3d):
        return None
    if t % ot or h % oh or wd % ow or tuple(x_l.shape[2:]) != (t // ot, h // oh, wd // ow):
        return None
    a = _conv(layer, x_h, w_a, bias, w.packed)
    z = _conv(layer, x_l, w_b, None, w.packed)
    n_high = layer.out_high
    a8 = a.view(b, a.shape[1], t // ot, ot, h // oh, oh, wd // ow, ow)
    up = z[:, :n_high, :, None, :, None, :, None]
    if relu and a.dtype in (torch.float32, torch.float64):
        y_h = torch.ops.aten._add_relu(a8[:, :n_high], up)
    else:
        y_h = a8[:, :n_high] + up
        if relu:
            y_h.relu_()
    corners = [
        a8[:, n_high:, :, i, :, j, :, k] for i in range(ot) for j in range(oh) for k in range(ow)
    ]
    y_l = corners[0] + corners[1]
    for corner in corners[2:]:
        y_l.add_(corner)
    y_l = _add_(y_l.mul_(1.0 / len(corners)), z[:, n_high:], relu)
    fmt = torch.channels_last_3d  # both already are (no copy): checked for safety
    y_h = y_h.reshape(b, n_high, t, h, wd).contiguous(memory_format=fmt)
    return OctPair(y_h, y_l.contiguous(memory_format=fmt))


def _add_upsampled(y: Tensor, z: Tensor, octave: Octave, relu: bool = False) -> Tensor:
    """``y + upsample(z)``, written into ``y`` (a fresh convolution output) through a broadcast
    view when every size divides evenly, so the upsampled tensor is never written out, with the
    ReLU (``relu``, inference only) in the same pass on CPU. Never under autograd: in training
    it runs inside ``_OctConvTrain.forward``."""
    b, c, t, h, w = y.shape
    ot, oh, ow = octave
    if t % ot or h % oh or w % ow or tuple(z.shape[2:]) != (t // ot, h // oh, w // ow):
        out = y + upsample(z, y.shape, octave)
        return out.relu_() if relu else out
    y8 = y.view(b, c, t // ot, ot, h // oh, oh, w // ow, ow)  # (B, C, t, ot, h, oh, w, ow)
    _add_(y8, z[:, :, :, None, :, None, :, None], relu)  # + (B, C, t, 1, h, 1, w, 1)
    return y
