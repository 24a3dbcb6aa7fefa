"""The (high, low) frequency pair that flows through octave networks: its checks, its resampling
helpers and the memory layout it runs in. Whether a graph is being captured, and the size guard a
trace records, are ``octvideo.ops.capture``'s.

Reference: Chen et al., "Drop an Octave: Reducing Spatial Redundancy in Convolutional Neural
Networks with Octave Convolution", ICCV 2019 (arXiv 1904.05049).

A feature map with octave alpha keeps ``channels - low_channels(channels, alpha)`` channels at full
resolution (``high``) and ``low_channels(channels, alpha)`` at a lower resolution (``low``), one
octave down along each axis whose ``octave`` factor is 2. The low group's size is always
``ceil(high_size / octave)`` per axis, so odd sizes (7x7, 15x15, 3 frames) stay aligned.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from octvideo.ops.capture import capturing, tracing

Octave = tuple[int, int, int]

SPATIAL_OCTAVE: Octave = (1, 2, 2)
SPATIOTEMPORAL_OCTAVE: Octave = (2, 2, 2)


class OctPair(NamedTuple):
    """Two frequency groups of one feature map, high first.

    Attributes:
        high: (B, C_h, T, H, W) full-resolution group.
        low: (B, C_l, ceil(T/o_t), ceil(H/o_h), ceil(W/o_w)) low-frequency group, or None when the
            feature map has no low group (alpha = 0).
    """

    high: Tensor
    low: Tensor | None


_Size3 = int | Sequence[int]


def is_whole(value: object) -> bool:
    """A whole number (numpy's too), not a bool: ``octvideo.argtypes.is_whole``, which the layers
    above share; ops, the bottom layer, imports nothing of octvideo, so it keeps this copy."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _three(value: object) -> tuple:
    """``value``'s items per axis: a whole number repeated for (T, H, W), or a sequence's items
    (any number of them, for the caller to count); () for anything else (text, a float, a
    tensor)."""
    if is_whole(value):
        return (value,) * 3
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return ()


def whole_triple(value: _Size3, name: str, low: int) -> tuple[int, int, int]:
    """``value`` as (T, H, W): one whole number for all three axes, or three; each ``low`` or
    more (1 for a kernel, stride or dilation, 0 for padding).

    Raises:
        ValueError: one line naming ``name`` and what it takes.
    """
    items = _three(value)
    if len(items) != 3 or not all(is_whole(v) and v >= low for v in items):
        raise ValueError(
            f"{name} must be a whole number of {low} or more, or three of them (T, H, W); "
            f"got {value!r}"
        )
    return tuple(int(v) for v in items)  # type: ignore[return-value]


def is_share(value: object) -> bool:
    """A low-frequency share: a real number (not a bool or text) in [0, 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 1


def check_share(alpha: object, name: str = "alpha") -> float:
    """A low-frequency share (``is_share``).

    Raises:
        ValueError: ``{name} must be a number in [0, 1), got ...``.
    """
    if not is_share(alpha):
        raise ValueError(f"{name} must be a number in [0, 1), got {alpha!r}")
    return float(alpha)


def as_pair(x: Tensor | OctPair | Sequence[Tensor | None]) -> OctPair:
    """Views a plain tensor as a pair without a low group; passes pairs through.

    Any other two-item sequence ``(high, low)`` (a plain tuple or list, with ``low`` a tensor or
    None) becomes an ``OctPair``; anything else is refused with a TypeError.
    """
    if isinstance(x, OctPair):
        return x
    if isinstance(x, Tensor):
        return OctPair(x, None)
    if (
        isinstance(x, tuple | list)
        and len(x) == 2
        and isinstance(x[0], Tensor)
        and (x[1] is None or isinstance(x[1], Tensor))
    ):
        return OctPair(x[0], x[1])
    got = type(x).__name__
    if isinstance(x, tuple | list):
        got = f"a {got} of {len(x)} ({', '.join(type(v).__name__ for v in x)})"
    raise TypeError(
        f"expected a tensor, an OctPair or a (high, low) pair of tensors (low may be None), "
        f"got {got}"
    )


def unpair(x: OctPair) -> Tensor | OctPair:
    """Returns the plain tensor for a pair without a low group, else the pair itself."""
    return x.high if x.low is None else x


def low_channels(channels: int, alpha: float, multiple: int | None = None) -> int:
    """Number of low-frequency channels for a layer of ``channels`` channels at octave ``alpha``.

    The one place a split is decided. By default it is the paper's: the official OctConv code
    takes ``int(alpha * channels)``; the small epsilon keeps float error (0.29 * 100 = 28.999...)
    from dropping a channel. With ``multiple`` (the models' ``channel_multiple``), the count is
    ``alpha * channels`` rounded to the nearest multiple of ``multiple`` (halves round up), so
    that the low group, and the high group where ``channels`` is a multiple too, is a size a CPU
    or GPU convolution does not pad: 0.1 of 256 channels gives 32 + 224 at a multiple of 16
    instead of the paper's 25 + 231: where alpha is above 0 the low group keeps at least one
    multiple and the high group at least one channel. A layer too narrow to hold a multiple in its
    low group and a channel in its high one (``channels <= multiple``) keeps the paper's split.

    The high group is never empty; the low group is empty at alpha 0 and wherever the paper's
    split applies and ``alpha * channels < 1`` (0.1 of 8 channels).

    Args:
        channels: total channel count.
        alpha: share of channels in the low group, in [0, 1).
        multiple: round the low group to a multiple of this; None for the paper's split.

    Returns:
        The low-group channel count; the high group always keeps at least one channel.
    """
    alpha = check_share(alpha)
    if not is_whole(channels) or channels < 1:
        raise ValueError(f"channels must be a whole number of 1 or more, got {channels!r}")
    paper = min(channels - 1, math.floor(alpha * channels + 1e-6))
    if multiple is None:
        return paper
    if not is_whole(multiple) or multiple < 1:  # numpy's whole numbers too, as ``channels``
        raise ValueError(f"channel_multiple must be a whole number of 1 or more, got {multiple!r}")
    multiple = int(multiple)  # a count of plain ints, never numpy's
    if alpha == 0.0 or channels <= multiple:
        return paper
    nearest = math.floor(alpha * channels / multiple + 0.5 + 1e-6) * multiple
    most = (channels - 1) // multiple * multiple  # leaves the high group at least one channel
    return min(max(nearest, multiple), most)


def normalize_octave(octave: int | Sequence[int]) -> Octave:
    """An octave factor as three Python ints (T, H, W): one factor for all three axes, or three;
    each 1 or 2 and a whole number by ``whole_triple``'s rule (numpy's too; a float such as 2.0,
    a bool or a tensor is refused, as for a kernel size), so that no float reaches a pool.

    Raises:
        ValueError: one line naming ``octave`` and what it takes.
    """
    items = _three(octave)
    if len(items) != 3 or not all(is_whole(o) and o in (1, 2) for o in items):
        raise ValueError(
            f"octave must be three factors of 1 or 2 for (T, H, W), or one for all three, as "
            f"whole numbers: (1, 2, 2) for the spatial octave or (2, 2, 2) for the "
            f"spatio-temporal one; got {octave!r}"
        )
    return tuple(int(o) for o in items)  # type: ignore[return-value]


def ceil_div(n: int, d: int) -> int:
    """``ceil(n / d)`` for a size ``n`` of 0 or more and a factor ``d`` of 1 or more.

    Written with non-negative operands only: ``torch.onnx.export`` records a traced size's
    ``//`` as ONNX's truncating division, so ``-(-n // d)`` would give ``floor(n / d)`` in the
    exported graph (a 9-wide high group's low group cropped to 4 instead of 5).
    """
    return (n + d - 1) // d


def low_size(size: tuple[int, ...], octave: Octave) -> tuple[int, int, int]:
    """Size (T, H, W) of the low group for a high group of ``size`` (T, H, W)."""
    t, h, w = size[-3:]
    return (ceil_div(t, octave[0]), ceil_div(h, octave[1]), ceil_div(w, octave[2]))


# Dtypes for which PyTorch has no CPU avg_pool3d kernel (torch 2.14: "avg_pool3d_out_frame" not
# implemented for 'BFloat16' / 'Half'); avg_pool2d, max_pool3d and convolutions have one.
_NO_CPU_AVG_POOL3D = (torch.float16, torch.bfloat16)


def _pools_in_float32(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _NO_CPU_AVG_POOL3D


def avg_pool3d(
    x: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """``F.avg_pool3d``; for float16 and bfloat16 on CPU, which it has no kernel for (a model in
    ``trainer.precision=bf16-true``, or the plain layout under autocast), pooled in float32 and
    rounded back: what a kernel in that dtype accumulating in float32 would give."""
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if _pools_in_float32(x):
        return F.avg_pool3d(x.float(), *args).to(x.dtype)
    return F.avg_pool3d(x, *args)


def pool_factor(factor: Sequence[int], size: Sequence[int]) -> Octave:
    """``factor`` cut to ``size`` (T, H, W) along every axis smaller than it: such an axis pools
    to one cell, the mean of all it holds, as a ceil-mode window would (a stride of 3 on 2 cells
    gives ceil(2 / 3) = 1), where pooling refuses a kernel larger than its input; an axis of
    size 1 stays as it is.

    Each factor is a Python int: under ``torch.jit.trace`` a size is a tensor, and a kernel
    taken from it is a graph value that ``torch.onnx.export`` refuses ("not constant"); a trace
    keeps the example's sizes in any case (``guard_traced_size``)."""
    return tuple(min(f, int(s)) for f, s in zip(factor, size, strict=True))  # type: ignore[return-value]


def to_frames(x: Tensor) -> Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W): a view of a channels-last clip, its frames as a batch."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def from_frames(y: Tensor, b: int, t: int) -> Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W), the inverse of ``to_frames``: a view.

    At T = 1 the reshape would give the time axis the channel stride (C instead of H*W*C): a
    size-1 axis can take any stride, and the tensor still counts as channels-last, but PyTorch
    2.14's CPU batch-norm backward returns wrong input, weight and bias gradients for such an
    input when its output gradient is NCDHW. ``unsqueeze`` gives the standard stride.
    """
    if t == 1:
        return y.unsqueeze(2)
    return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)


def downsample(
    x: Tensor, factor: tuple[int, int, int], divisor_override: int | None = None
) -> Tensor:
    """Average-pools (B, C, T, H, W) by ``factor`` with ceil mode: odd sizes round up, and the
    last cell along such an axis is the mean of the elements it holds.

    An axis smaller than its factor pools to one cell (``pool_factor``); one of size 1 stays as
    it is. ``divisor_override=1`` sums each cell instead (the gradient of ``upsample``).

    ``count_include_pad=False`` gives eager PyTorch's numbers either way (without padding, a
    partial window is divided by the elements it holds), and ``torch.compile`` the same: torch
    2.14's Inductor backward divides a partial window by the whole kernel unless it is False.
    """
    factor = pool_factor(factor, x.shape[-3:])
    if factor == (1, 1, 1):
        return x
    if factor[0] == 1 and is_channels_last(x):
        # avg_pool3d returns NCDHW; the 2D pool on the (B*T, C, H, W) view keeps channels-last.
        k = factor[1:]
        y2 = F.avg_pool2d(to_frames(x), k, k, 0, True, False, divisor_override)
        return from_frames(y2, x.shape[0], x.shape[2])
    return avg_pool3d(x, factor, factor, 0, True, False, divisor_override)


def max_pool3d(
    x: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
) -> Tensor:
    """``F.max_pool3d`` of (B, C, T, H, W); without autograd, windows that do not overlap (stride
    = kernel, no padding along an axis) are reduced with elementwise maxima of strided views.

    ``F.max_pool3d`` always computes the argmax indices as well (an int64 tensor twice the size
    of its result, for backward); on channels-last maps the strided maxima keep the layout and
    run 2-4x faster (I3D's temporal 2x1x1 pool). Overlapping windows (a 3x3 stride-2 pool), any
    call that autograd records, and tracing, scripting and ``torch.compile`` (an exported graph
    keeps its one MaxPool node) go to ``F.max_pool3d``. NaN propagates as it does there.
    """
    k3 = whole_triple(kernel_size, "kernel_size", 1)
    s3 = k3 if stride is None else whole_triple(stride, "stride", 1)
    p3 = whole_triple(padding, "padding", 0)
    grad = torch.is_grad_enabled() and x.requires_grad
    graph = capturing()
    overlap = any(k != s or p for k, s, p in zip(k3, s3, p3, strict=True))
    size = x.shape[2:] if x.dim() == 5 else (0, 0, 0)  # unbatched 4D: F.max_pool3d's own
    out = [ceil_div(n, k) if ceil_mode else n // k for n, k in zip(size, k3, strict=True)]
    if grad or graph or overlap or 0 in out:
        return F.max_pool3d(x, k3, s3, p3, ceil_mode=ceil_mode)
    y = x
    for dim, n, k, m in zip((2, 3, 4), size, k3, out, strict=True):
        if k == 1:
            continue
        step = (slice(None),) * dim + (slice(None, None, k),)
        # element j of each of the m windows along dim (in ceil mode the last may lack it)
        counts = [min(m, ceil_div(n - j, k)) for j in range(min(k, n))]
        taps = [y.narrow(dim, j, (c - 1) * k + 1)[step] for j, c in enumerate(counts)]
        if len(taps) > 1 and counts[1] == m:  # two full taps: the first maximum allocates
            z, rest = torch.maximum(taps[0], taps[1]), taps[2:]
        else:
            z, rest = taps[0].clone(), taps[1:]
        for t in rest:
            part = z.narrow(dim, 0, t.shape[dim])
            torch.maximum(part, t, out=part)
        y = z
    return x.clone() if y is x else y


def is_channels_last(x: Tensor) -> bool:
    """True for a 5D tensor laid out channels-last (NDHWC) and not also plain contiguous."""
    return not x.is_contiguous() and has_channels_last_strides(x)


def has_channels_last_strides(x: Tensor) -> bool:
    """``x.is_contiguous(memory_format=torch.channels_last_3d)`` (``is_contiguous_as``)."""
    return is_contiguous_as(x, torch.channels_last_3d)


_INNERMOST_FIRST = {torch.channels_last: (1, 3, 2, 0), torch.channels_last_3d: (1, 4, 3, 2, 0)}


def is_contiguous_as(x: Tensor, fmt: torch.memory_format) -> bool:
    """``x.is_contiguous(memory_format=fmt)``, for a channels-last ``fmt`` read from its strides
    as PyTorch does: ``torch.func.vmap`` refuses that query (``NYI: querying is_contiguous
    inside of vmap``) but answers ``stride()``, so the layers, fused or not, run under it."""
    order = _INNERMOST_FIRST.get(fmt)
    if order is None:
        return x.is_contiguous(memory_format=fmt)
    if x.dim() != len(order):
        return False
    if tracing():  # a traced shape is tensors: each comparison below would warn
        return x.is_contiguous(memory_format=fmt)
    expected = 1
    for d in order:  # C, (W, H, T,) B: innermost first
        if x.shape[d] != 1:
            if x.stride(d) != expected:
                return False
            expected *= x.shape[d]
    return True


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def memory_format_for(device: torch.device | str, setting: str = "auto") -> torch.memory_format:
    """The memory format a model and its clips run in on ``device``.

    ``channels_last`` (NDHWC) is where OctConv3d takes its fast path; ``contiguous`` (NCDHW) runs
    the paper's four convolutions in training. ``auto`` is channels-last on CPU, where a training
    step on 224-pixel clips takes 0.69-0.89 of the contiguous time and inference the same (on
    64-pixel clips 1.05-1.11; BENCHMARKS.md, seventh pass), and contiguous on other devices,
    where it has not been measured.
    """
    if setting not in MEMORY_FORMATS:
        raise ValueError(f"memory format {setting!r} is not one of {', '.join(MEMORY_FORMATS)}")
    if setting == "auto":
        setting = "channels_last" if torch.device(device).type == "cpu" else "contiguous"
    return torch.channels_last_3d if setting == "channels_last" else torch.contiguous_format


def to_memory_format(
    clip: Tensor | list[Tensor], fmt: torch.memory_format
) -> Tensor | list[Tensor]:
    """A (B, 3, T, H, W) clip, or a list of them (SlowFast's pathways), in memory format ``fmt``."""
    if isinstance(clip, (list, tuple)):
        return [c.contiguous(memory_format=fmt) for c in clip]
    return clip.contiguous(memory_format=fmt)


def upsample(x: Tensor, size: tuple[int, ...], octave: Octave) -> Tensor:
    """Nearest-upsamples a low group (B, C, t, h, w) by ``octave`` and crops to ``size`` (T, H, W).

    Repeating each element (index i of the result reads i // 2) keeps the crop exact for odd sizes,
    which a resize to the odd target size does not guarantee.
    """
    t, h, w = size[-3:]
    if octave == (1, 1, 1):
        return x
    b, c, lt, lh, lw = x.shape
    ot, oh, ow = octave
    x = x.reshape(b, c, lt, 1, lh, 1, lw, 1).expand(b, c, lt, ot, lh, oh, lw, ow)
    x = x.reshape(b, c, lt * ot, lh * oh, lw * ow)  # (B, C, t*ot, h*oh, w*ow)
    if (lt * ot, lh * oh, lw * ow) != (t, h, w):
        x = x[:, :, :t, :h, :w]
    return x


def check_pair(x: OctPair, octave: Octave | None = None, name: str = "check_pair") -> None:
    """Checks the groups an octave layer takes, by their shapes only (no data is read): each
    group batched (B, C, T, H, W), and a low group of the high group's batch and, where
    ``octave`` is given, of the high (T, H, W) divided by it, rounded up. Channel counts are the
    layer's to check.

    Under ``torch.jit.trace`` it checks nothing (``tracing``).

    ``nn.Conv3d`` and the pooling layers also take an unbatched (C, T, H, W) tensor, but refusing
    it keeps a wrong rank from passing for a channel count; and a low group of another batch
    would broadcast into a sum of the two groups' paths, giving every sample the first one's.

    Args:
        x: the pair (``low`` None: the high group alone is checked).
        octave: the pair's (T, H, W) octave factor; None where the layer does not know it (a
            per-group norm or activation), which checks the batch but not the size.
        name: the layer the messages name.

    Raises:
        ValueError: one line naming ``name``, what it expects and the shapes it got.
    """
    if tracing():
        return
    for group, tensor in (("", x.high), (" low", x.low)):
        if tensor is not None and tensor.ndim != 5:
            raise ValueError(
                f"{name} expects (B, C, T, H, W){group} input, got a {tensor.ndim}-D tensor of "
                f"shape {tuple(tensor.shape)}"
            )
    if x.low is None:
        return
    high, low = tuple(x.high.shape), tuple(x.low.shape)
    if octave is None:
        if low[0] != high[0]:
            raise ValueError(
                f"{name} expects a low group of the high group's batch ({high[0]}) beside a high "
                f"group of shape {high}, got {low}"
            )
        return
    want = (high[0], low[1], *low_size(high, octave))
    if low != want:
        raise ValueError(
            f"{name} expects a low group of shape {want} (the same batch, the high (T, H, W) "
            f"divided by octave {octave}, rounded up) beside a high group of shape {high}, "
            f"got {low}"
        )


def fit_low(low: Tensor, high: Tensor, octave: Octave) -> Tensor:
    """Crops a low group that came out one step too large (floor vs ceil rounding) to its pair size.

    Pooling layers with floor rounding can leave the low group one element larger than
    ceil(high / octave) on odd sizes; the extra border row carries no information the high group
    lacks.
    """
    t, h, w = low_size(tuple(high.shape), octave)
    if tuple(low.shape[-3:]) == (t, h, w):
        return low
    if low.shape[-3] < t or low.shape[-2] < h or low.shape[-1] < w:
        raise ValueError(
            f"low group {tuple(low.shape[-3:])} smaller than its pair size {(t, h, w)} "
            f"for high group {tuple(high.shape[-3:])}"
        )
    return low[:, :, :t, :h, :w]


def cat_pairs(pairs: list[OctPair], dim: int = 1) -> OctPair:
    """Concatenates pairs group by group along ``dim`` (channels by default)."""
    high = torch.cat([p.high for p in pairs], dim=dim)
    lows = [p.low for p in pairs if p.low is not None]
    if lows and len(lows) != len(pairs):
        raise ValueError("cannot concatenate pairs with and without a low group")
    return OctPair(high, torch.cat(lows, dim=dim) if lows else None)
