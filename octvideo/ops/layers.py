"""Per-group layers for octave pairs: normalisation, activation, pooling, dropout, residual add,
and the split and merge points where one tensor becomes two and two become one.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): each frequency group keeps
its own batch-norm statistics and activation, and residual additions are made group by group.

Every layer here takes what ``OctConv3d`` takes, a plain tensor, an ``OctPair`` or a plain
``(high, low)`` tuple (``as_pair``), and returns a plain tensor for a plain tensor and an
``OctPair`` otherwise, so a block written for pairs also runs at alpha 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from octvideo.ops.capture import guard_traced_size, tracing
from octvideo.ops.octconv import OctaveModule, OctConv3d
from octvideo.ops.pair import (
    Octave,
    OctPair,
    as_pair,
    avg_pool3d,
    check_pair,
    downsample,
    fit_low,
    low_channels,
    max_pool3d,
    normalize_octave,
    upsample,
    whole_triple,
)


def _map(x: Tensor | OctPair, fn: Callable[[Tensor], Tensor], name: str) -> Tensor | OctPair:
    if isinstance(x, Tensor):
        return fn(x)
    x = as_pair(x)
    check_pair(x, None, name)
    return OctPair(fn(x.high), None if x.low is None else fn(x.low))


class OctNorm(OctaveModule):
    """A normalisation layer per group, each with its own statistics.

    Its input's (high, low) channel counts must be those it was built for (a plain tensor: the
    high count, where the split leaves no low group); others are one ValueError line with both.

    Args:
        num_features: channels of both groups together.
        alpha: share of channels in the low group.
        norm_layer: the normalisation class, built as ``norm_layer(channels, **norm_kwargs)``.
        channel_multiple: the split's rounding (``low_channels``); None for the paper's split.
        **norm_kwargs: passed to ``norm_layer`` (eps, momentum, ...).
    """

    def __init__(
        self,
        num_features: int,
        *,
        alpha: float = 0.0,
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        channel_multiple: int | None = None,
        **norm_kwargs: float,
    ) -> None:
        super().__init__()
        n_low = low_channels(num_features, alpha, channel_multiple)
        self.num_features, self.alpha = int(num_features), float(alpha)  # numpy's as Python's
        num_features = self.num_features
        self.channels = (num_features - n_low, n_low or None)  # (high, low); None: no low group
        self.high = norm_layer(num_features - n_low, **norm_kwargs)
        self.low = norm_layer(n_low, **norm_kwargs) if n_low else None

    def forward(self, x: Tensor | OctPair) -> Tensor | OctPair:
        plain = isinstance(x, Tensor)
        high, low = x = as_pair(x)  # (B, C_h, T, H, W), (B, C_l, T/o, H/o, W/o) or None
        if not tracing():
            self._check_input(x, plain)
        y = OctPair(self.high(high), None if low is None else self.low(low))
        return y.high if plain else y

    def _check_input(self, x: OctPair, plain: bool) -> None:
        if not plain:
            check_pair(x, None, "OctNorm")
        high, low = x
        got = (high.shape[1] if high.ndim > 1 else None, None if low is None else low.shape[1])
        if got != self.channels:
            raise ValueError(
                f"OctNorm expects (high, low) channels {self.channels} (alpha={self.alpha} of "
                f"{self.num_features}), got {got}"
            )


class OctAct(OctaveModule):
    """One stateless activation applied to each group.

    Args:
        act_layer: the activation class, built as ``act_layer(**act_kwargs)``.
        **act_kwargs: passed to ``act_layer`` (e.g. ``inplace=True``).
    """

    def __init__(self, act_layer: type[nn.Module] = nn.ReLU, **act_kwargs: bool) -> None:
        super().__init__()
        self.act = act_layer(**act_kwargs)

    def forward(self, x: Tensor | OctPair) -> Tensor | OctPair:
        return _map(x, self.act, "OctAct")


class OctDropout(OctaveModule):
    """Dropout applied to each group independently.

    Args:
        p: probability of an element to be zeroed, a number in [0, 1] (as ``nn.Dropout``); any
            other value is one ValueError line when the layer is built.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"OctDropout p must be a number in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x: Tensor | OctPair) -> Tensor | OctPair:
        return _map(x, lambda t: F.dropout(t, self.p, self.training), "OctDropout")


class OctPool3d(OctaveModule):
    """Max or average pooling applied to each group, keeping the pair aligned.

    The low group is pooled with ceil rounding and cropped to ceil(high / octave), so a floor-mode
    pool of an odd-sized high group cannot leave the two groups one step apart. An input pair
    must be batched, with a low group of the high one's batch and of ceil(high / octave) already
    (``check_pair``). A kernel and stride that leave the pooled low group smaller than that for
    the input's size (kernel 2, stride 1 on an even size) raise a ValueError naming them, and so
    does a group that no window fits (for average pooling, one shorter than the kernel).

    Args:
        kernel_size: (T, H, W) window.
        stride: (T, H, W) stride; defaults to ``kernel_size``.
        padding: (T, H, W) padding, at most ``kernel_size // 2`` per axis (as ``nn.MaxPool3d``).
        mode: "max" or "avg".
        octave: the pair's (T, H, W) octave factor.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        *,
        mode: str = "max",
        octave: int | Sequence[int] = (1, 2, 2),
    ) -> None:
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"pooling mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode
        self.kernel_size = whole_triple(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else whole_triple(stride, "stride", 1)
        self.padding = whole_triple(padding, "padding", 0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"OctPool3d padding must be at most kernel_size // 2 per axis "
                f"({tuple(k // 2 for k in self.kernel_size)}), got {padding!r}"
            )
        self.octave: Octave = normalize_octave(octave)

    def _pool(self, x: Tensor, ceil_mode: bool) -> Tensor:
        k, s, p = self.kernel_size, self.stride, self.padding
        if self.mode == "max":
            return max_pool3d(x, k, s, p, ceil_mode=ceil_mode)
        if not ceil_mode:  # every window lies within the padded input
            return avg_pool3d(x, k, s, p)
        if not any(p):  # a last, partial window: see ``downsample``
            return avg_pool3d(x, k, s, 0, True, False)
        if torch.compiler.is_compiling():
            return _ceil_avg_pool_compiled(x, k, s, p)
        return avg_pool3d(x, k, s, p, True)

    def _check_fits(self, x: Tensor, group: str, ceil_mode: bool) -> None:
        """Refuses a group that no window fits in one line, where torch would stop inside its
        pool: max pooling needs one window in the padded group (a ceil-mode one may end past
        it), average pooling a group at least the kernel along every axis."""
        size = tuple(x.shape[-3:])
        k, s, p = self.kernel_size, self.stride, self.padding
        if self.mode == "avg":
            fits, needs = all(n >= w for n, w in zip(size, k, strict=True)), "the kernel"
        else:
            fits = min(map(_pooled_length, size, k, s, p, (ceil_mode,) * 3)) >= 1
            needs = "the kernel less twice the padding"
        if not fits:
            raise ValueError(
                f"OctPool3d ({self.mode}) with kernel_size {k}, stride {s} and padding {p} cannot "
                f"pool the {group} of (T, H, W) {size}: it needs {needs} along every axis; give a "
                f"larger input or a smaller kernel_size"
            )

    def forward(self, x: Tensor | OctPair) -> Tensor | OctPair:
        if isinstance(x, Tensor):
            if not tracing() and x.ndim == 5:
                self._check_fits(x, "input", False)
            return self._pool(guard_traced_size(x, "OctPool3d"), False)
        x = as_pair(x)
        check_pair(x, self.octave, "OctPool3d")
        x = OctPair(guard_traced_size(x.high, "OctPool3d"), x.low)
        if not tracing():
            self._check_fits(x.high, "high group", False)
            if x.low is not None:
                self._check_fits(x.low, "low group", True)
        high = self._pool(x.high, False)
        if x.low is None:
            return OctPair(high, None)
        low = self._pool(x.low, True)
        try:
            return OctPair(high, fit_low(low, high, self.octave))
        except ValueError:
            raise ValueError(
                f"OctPool3d with kernel_size {self.kernel_size} and stride {self.stride} cannot "
                f"keep a pair with high (T, H, W) {tuple(x.high.shape[-3:])} aligned: it pools "
                f"the low group to {tuple(low.shape[-3:])}, smaller than the pooled high "
                f"{tuple(high.shape[-3:])} needs; choose another kernel_size and stride (a "
                f"stride equal to kernel_size, without padding, keeps every size aligned)"
            ) from None

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, octave={self.octave}"
        )


def _pooled_length(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Windows a pool puts along an axis of ``size``, as PyTorch counts them: in ceil mode the
    last may end past the padding but must start inside the input or its left padding."""
    n = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (n - 1) * stride >= size + padding:
        n -= 1
    return n


def _ceil_avg_pool_compiled(
    x: Tensor, kernel_size: Octave, stride: Octave, padding: Octave
) -> Tensor:
    """``avg_pool3d(x, kernel_size, stride, padding, ceil_mode=True)`` for ``torch.compile``.

    A window that ends past the padding holds fewer cells than the kernel: eager PyTorch divides
    it by the cells it holds, padding included, torch 2.14's Inductor backward by the kernel. With
    the padding written out as zeros and ``count_include_pad=False``, both divide by those cells
    (``downsample``); PyTorch drops a last window that would start in the right padding, and so
    does the crop.
    """
    pads = [n for p in reversed(padding) for n in (p, p)]  # (W, W, H, H, T, T)
    y = avg_pool3d(F.pad(x, pads), kernel_size, stride, 0, True, False)  # (B, C, T', H', W')
    sizes = zip(x.shape[2:], kernel_size, stride, padding, strict=True)
    t, h, w = (_pooled_length(n, k, s, p, True) for n, k, s, p in sizes)
    return y[:, :, :t, :h, :w]


def _check_same_shapes(a: OctPair, b: OctPair) -> None:
    for side in (a, b):
        check_pair(side, None, "oct_add")
    shapes = [tuple(None if t is None else tuple(t.shape) for t in side) for side in (a, b)]
    if shapes[0] != shapes[1]:  # another octave or split would broadcast, or fail inside torch
        raise ValueError(
            f"oct_add expects two pairs of the same (high, low) shapes, got {shapes[0]} and "
            f"{shapes[1]}"
        )


def oct_add(a: Tensor | OctPair, b: Tensor | OctPair) -> Tensor | OctPair:
    """Residual addition, group by group; both sides must have groups of the same shapes (two
    plain tensors are added as ``a + b``; shapes are not checked under ``torch.jit.trace``)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a + b
    a, b = as_pair(a), as_pair(b)
    if not tracing():
        _check_same_shapes(a, b)
    return OctPair(a.high + b.high, None if a.low is None else a.low + b.low)


class OctSplit(OctaveModule):
    """Where one tensor becomes two: the last ``low_channels`` channels go one octave down.

    It takes one (B, ``channels``, T, H, W) tensor; another rank or channel count is one
    ValueError line, a pair (split already) or any other type one TypeError line.

    Args:
        channels: channels of the incoming tensor.
        alpha: share of channels that go to the low group.
        octave: (T, H, W) octave factor.
        channel_multiple: the split's rounding (``low_channels``); None for the paper's split.
    """

    def __init__(
        self,
        channels: int,
        *,
        alpha: float,
        octave: int | Sequence[int] = (1, 2, 2),
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        self.n_low = low_channels(channels, alpha, channel_multiple)
        self.channels = int(channels)  # a whole number (low_channels): numpy's as Python's
        self.octave: Octave = normalize_octave(octave)

    def forward(self, x: Tensor) -> OctPair:
        if not isinstance(x, Tensor):
            got = "a pair, which is split already" if isinstance(x, tuple | list) else None
            raise TypeError(
                f"OctSplit takes a (B, {self.channels}, T, H, W) tensor, got "
                f"{got or type(x).__name__}"
            )
        if x.ndim != 5 or (not tracing() and x.shape[1] != self.channels):
            raise ValueError(
                f"OctSplit expects (B, {self.channels}, T, H, W) input, got a {x.ndim}-D tensor "
                f"of shape {tuple(x.shape)}"
            )
        x = guard_traced_size(x, "OctSplit")
        n_high = self.channels - self.n_low
        if self.n_low == 0:
            return OctPair(x, None)
        # (B, C_h, T, H, W), (B, C_l, T/o, H/o, W/o)
        return OctPair(x[:, :n_high], downsample(x[:, n_high:], self.octave))


class OctMerge(OctaveModule):
    """Where two become one: the low group is upsampled to the high size and concatenated.

    Args:
        octave: (T, H, W) octave factor of the incoming pair.
    """

    def __init__(self, *, octave: int | Sequence[int] = (1, 2, 2)) -> None:
        super().__init__()
        self.octave: Octave = normalize_octave(octave)

    def forward(self, x: Tensor | OctPair) -> Tensor:
        x = as_pair(x)
        check_pair(x, self.octave, "OctMerge")
        high, low = guard_traced_size(x.high, "OctMerge"), x.low
        if low is None:
            return high
        # (B, C_h + C_l, T, H, W)
        return torch.cat([high, upsample(low, high.shape, self.octave)], dim=1)


class FoldedNorm(nn.Identity):
    """Stands where a normalisation was folded into the convolution before it
    (``octvideo.ops.fuse_for_inference``): ``conv_norm_act`` then hands the residual and the ReLU
    to that convolution."""


def conv_norm_act(
    conv: OctConv3d,
    norm: nn.Module,
    act: OctAct | None,
    x: Tensor | OctPair,
    residual: Tensor | OctPair | None = None,
) -> Tensor | OctPair:
    """``act(norm(conv(x)) + residual)``, the unit every residual block is made of.

    After ``fuse_for_inference`` (``norm`` a ``FoldedNorm``, ``conv`` a ``FusedOctConv3d``), the
    convolution adds the residual and applies a ReLU on its own output.

    Args:
        conv: the convolution.
        norm: its normalisation (an ``OctNorm``, per group).
        act: the activation, or None.
        x: input tensor or pair.
        residual: added after the normalisation and before the activation, or None.
    """
    if isinstance(norm, FoldedNorm):
        from octvideo.ops.fusion import hooked  # fusion imports this module

        # a hook on the activation would not see a ReLU run inside the convolution
        relu = act is not None and type(act.act) is nn.ReLU and not hooked(act)
        y = conv(x, residual=residual, relu=relu)
        return y if act is None or relu else act(y)
    y = norm(conv(x))
    if residual is not None:
        y = oct_add(y, residual)
    return y if act is None else act(y)
