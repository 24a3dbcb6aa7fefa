"""The channels-last fast path of ``OctConv3d``: the same four paths with less work, for training
and inference. ``OctConv3d.forward`` takes it for channels-last (NDHWC) inputs; a float64 test
holds it equal to ``OctConv3d.forward_paths``.

- H->L and L->L become one convolution over ``cat(pool(X_H), X_L)`` with the two weight blocks
  side by side: one larger convolution runs faster than two small ones.
- In training the layer is one autograd node (``_OctConvTrain``): its backward recomputes
  ``pool(X_H)`` and the concatenation from X_H and X_L, which autograd keeps anyway, instead of
  saving them, and adds the pooled path's input gradient into H->H's in place. It runs under
  torch.func (grad, jacrev, vmap); ``torch.jit.trace`` records the inference arrangement
  instead, in either grad mode.
- Kernels of temporal size 1 run as 2D convolutions on a (B*T, C, H, W) view, and kernels of
  spatial size 1 (the I3D 3x1x1) on a (B, C, T, H*W) view when no backward follows; in
  channels-last memory both views are free, and on CPU the 2D kernels are up to 4x faster than
  the 3D one in inference (the 3D backward is the faster one in training).
- The L->H upsample is added in place through a broadcast view when sizes divide evenly, so the
  upsampled tensor is never written out.

Inference fusion (batch norm folded, weights packed for oneDNN, residual and ReLU fused) builds on
these pieces in ``octvideo.ops.fusion``. Public PyTorch API only.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049), Section 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from octvideo.ops.capture import scripting_or_tracing
from octvideo.ops.pair import (
    Octave,
    OctPair,
    _pools_in_float32,
    downsample,
    from_frames,
    has_channels_last_strides,
    is_channels_last,
    pool_factor,
    to_frames,
    upsample,
)

if TYPE_CHECKING:
    from octvideo.ops.octconv import OctConv3d


class PathWeights(NamedTuple):
    """Weights of an OctConv3d's four paths and the bias of each output group (None: absent)."""

    hh: Tensor
    hl: Tensor | None
    lh: Tensor | None
    ll: Tensor | None
    bias_h: Tensor | None
    bias_l: Tensor | None


def path_weights(layer: OctConv3d) -> PathWeights:
    """``layer``'s four paths' weights and the bias of each output group (None where absent):
    the high bias sits on H->H, the low one on L->L, or on H->L where L->L is absent."""

    def weight(conv) -> Tensor | None:
        return None if conv is None else conv.weight

    bias_l = None
    if layer.conv_ll is not None:
        bias_l = layer.conv_ll.bias
    elif layer.conv_hl is not None:
        bias_l = layer.conv_hl.bias
    return PathWeights(
        weight(layer.conv_hh),
        weight(layer.conv_hl),
        weight(layer.conv_lh),
        weight(layer.conv_ll),
        None if layer.conv_hh is None else layer.conv_hh.bias,
        bias_l,
    )


def forward_fast(layer: OctConv3d, x_h: Tensor, x_l: Tensor | None) -> OctPair:
    """``layer.forward_paths(x_h, x_l)`` for channels-last inputs (after any stride pooling).

    Under ``torch.jit.trace`` it runs standard operators whatever the grad mode:
    a TorchScript graph cannot hold ``_OctConvTrain``, and a trace's check reruns it under
    ``no_grad`` and compares the graphs."""
    w = path_weights(layer)
    cross = w.hl is not None or w.lh is not None
    if cross and records(x_h, x_l, *w) and not scripting_or_tracing():
        return _forward_train(layer, x_h, x_l, w)
    y_h = conv(layer, x_h, w.hh, w.bias_h)  # (B, out_h, T', H', W')
    if w.lh is not None:
        y_h = add_upsampled(y_h, conv(layer, x_l, w.lh, None), layer.octave)
    y_l: Tensor | None = None
    if w.hl is not None and (w.ll is None or layer.groups == 1):
        weight = low_weight(w.hl, w.ll)
        x_in = low_input(x_h, None if w.ll is None else x_l, layer.octave)
        y_l = conv(layer, x_in, weight, w.bias_l)  # (B, out_l, T'/o, H'/o, W'/o)
    elif w.hl is not None:  # grouped: cat(pool(X_H), X_L) would mix groups
        y_l = conv(layer, x_l, w.ll, w.bias_l)
        y_l = y_l + conv(layer, low_input(x_h, None, layer.octave), w.hl, None)
    elif w.ll is not None:
        y_l = conv(layer, x_l, w.ll, w.bias_l)
    return OctPair(y_h, y_l)


def _forward_train(layer: OctConv3d, x_h: Tensor, x_l: Tensor | None, w: PathWeights) -> OctPair:
    """``forward_fast`` when autograd records and the layer has a cross path: the layer is one
    autograd node (``_OctConvTrain``), L->L inside it where the layer is not grouped."""
    merged = w.ll is not None and w.hl is not None and layer.groups == 1
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
    # the meta device (a shape-only run) has no autocast to ask about
    if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device):
        # As autocast treats a convolution: its inputs cast to the autocast dtype (the casts
        # differentiable, outside the node), the node itself run without autocast, so that its
        # backward, which autocast does not cover, sees the dtypes its forward saw.
        dtype = torch.get_autocast_dtype(device)
        args = [None if t is None else t.to(dtype) for t in args]
        with torch.autocast(device, enabled=False):
            y = _OctConvTrain.apply(*args, layer)
    else:
        y = _OctConvTrain.apply(*args, layer)
    y_h, y_l = (y, None) if w.hl is None else y
    if w.ll is not None and not merged:  # grouped: cat(pool(X_H), X_L) would mix groups
        y_ll = conv(layer, x_l, w.ll, w.bias_l)
        y_l = y_ll if y_l is None else y_l + y_ll
    return OctPair(y_h, y_l)


def records(*tensors: Tensor | None) -> bool:
    """Whether autograd records a call on these tensors."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# ------------------------------------------------------------------ convolutions as 2D views


class Geometry(NamedTuple):
    """How a convolution runs: as 3D, or as 2D on a free channels-last view.

    ``view`` is "frames" (temporal kernel 1: (B*T, C, H, W)), "tubes" (spatial kernel 1:
    (B, C, T, H*W)) or "3d".
    """

    view: str
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


# oneDNN's 2D 1x1 backward-weights kernel (``jit_1x1``, PyTorch 2.14 on x86 CPUs) runs a
# spatially strided channels-last convolution on a unit-stride copy of its input, and writes past
# that copy when the input has fewer channels than the kernel's block of 16 (oneDNN issue 6035):
# the process dies with "double free or corruption" or a segfault, as c2d_r18 at width 8 did in
# its first strided shortcut (8 -> 16 channels, 56x56). oneDNN runs the 3D convolution on another
# kernel (jit:avx512_core), whose weight gradient matches float64 for 1 to 24 input channels.
_STRIDED_1X1_MIN_CHANNELS = 16


def strided_1x1_too_narrow(layer: OctConv3d) -> bool:
    """Whether ``layer`` has a 1x1 spatial kernel with a spatial stride and a path that reads
    fewer than ``_STRIDED_1X1_MIN_CHANNELS`` channels per group: as a 2D convolution, its weight
    gradient would meet oneDNN's strided 1x1 fault."""
    c = layer.conv_hh
    if c.kernel_size[1:] != (1, 1) or c.stride[1:] == (1, 1):
        return False
    paths = (layer.conv_hh, layer.conv_hl, layer.conv_lh, layer.conv_ll)
    narrowest = min(p.in_channels // p.groups for p in paths if p is not None)
    return narrowest < _STRIDED_1X1_MIN_CHANNELS


def geometry(layer: OctConv3d, backward: bool = False) -> Geometry:
    """How ``layer``'s convolutions run: "frames" (1 x k x k kernels as 2D convolutions on
    (B*T, C, H, W) views), "tubes" (k x 1 x 1 kernels on (B, C, T, H*W) views; only where no
    backward follows: oneDNN's 2D backward is 1.2-2.6x slower than its 3D one on these) or "3d".
    A strided 1x1 kernel on fewer than 16 channels runs as "3d" where a backward follows
    (``strided_1x1_too_narrow``).
    """
    c = layer.conv_hh
    k, st, pad, dil = c.kernel_size, c.stride, c.padding, c.dilation
    frames = k[0] == 1 and st[0] == 1 and pad[0] == 0
    if frames and not (backward and strided_1x1_too_narrow(layer)):
        return Geometry("frames", st[1:], pad[1:], dil[1:])
    if k[1:] == (1, 1) and st[1:] == (1, 1) and pad[1:] == (0, 0) and not backward:
        return Geometry("tubes", (st[0], 1), (pad[0], 0), (dil[0], 1))
    return Geometry("3d", st, pad, dil)


def to_2d(x: Tensor, view: str) -> Tensor:
    if view == "frames":  # (B, C, T, H, W) -> (B*T, C, H, W), a view in channels-last memory
        return to_frames(x)
    if view == "tubes":  # (B, C, T, H, W) -> (B, C, T, H*W), a view in channels-last memory
        return x.flatten(3)
    return x


def from_2d(y: Tensor, view: str, like: Tensor) -> Tensor:
    """The 5D result of a 2D convolution on ``to_2d(like)``."""
    if view == "frames":  # (B*T, C', H', W') -> (B, C', T, H', W')
        return from_frames(y, like.shape[0], like.shape[2])
    if view == "tubes":  # (B, C', T', H*W) -> (B, C', T', H, W)
        return y.unflatten(3, like.shape[3:])
    return y


def weight_2d(weight: Tensor, view: str) -> Tensor:
    if view == "frames":
        return weight.squeeze(2)  # (C', C, kH, kW); its backward is a view (select's fills zeros)
    if view == "tubes":
        return weight.flatten(3)  # (C', C, kT, 1)
    return weight


def conv(layer: OctConv3d, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A convolution with ``layer``'s geometry and the given weight, run as 2D where possible.

    For a channels-last (B, C, T, H, W) tensor, the 2D views (``to_2d``) are free and stay
    channels-last, and so does the result's view back to 5D.
    """
    # one graph in either grad mode: the inference one, crash-safe in training
    if scripting_or_tracing():
        g = geometry(layer, backward=strided_1x1_too_narrow(layer))
    else:
        g = geometry(layer, records(x, weight))
    groups = x.shape[1] // weight.shape[1]  # the path's own groups (depthwise: its channels)
    x2, w2 = to_2d(x, g.view), weight_2d(weight, g.view)
    if g.view == "3d":
        y = F.conv3d(x2, w2, bias, g.stride, g.padding, g.dilation, groups)
    else:
        y = F.conv2d(x2, w2, bias, g.stride, g.padding, g.dilation, groups)
    return from_2d(y, g.view, x)


def low_input(x_h: Tensor, x_l: Tensor | None, octave: Octave) -> Tensor:
    """``cat(pool(X_H), X_L)``: the input of the merged H->L / L->L convolution."""
    pooled = downsample(x_h, octave)
    return pooled if x_l is None else torch.cat([pooled, x_l], dim=1)


def low_weight(w_hl: Tensor, w_ll: Tensor | None) -> Tensor:
    """The merged H->L / L->L weight (H->L alone where L->L is absent or runs apart)."""
    return w_hl if w_ll is None else torch.cat([w_hl, w_ll], dim=1)


def _add(y: Tensor, other: Tensor) -> Tensor:
    return y.add_(other)


def add_upsampled(
    y: Tensor, z: Tensor, octave: Octave, add_: Callable[[Tensor, Tensor], Tensor] = _add
) -> Tensor:
    """``y + upsample(z)``, written into ``y`` (a fresh convolution output) by ``add_(y, other)``
    through a broadcast view when every size divides evenly, so the upsampled tensor is never
    written out. Under autograd only while TorchScript records (``forward_fast``); in training
    it runs inside ``_OctConvTrain.forward``."""
    b, c, t, h, w = y.shape
    ot, oh, ow = octave
    if t % ot or h % oh or w % ow or tuple(z.shape[2:]) != (t // ot, h // oh, w // ow):
        return add_(y, upsample(z, y.shape, octave))
    y8 = y.view(b, c, t // ot, ot, h // oh, oh, w // ow, ow)  # (B, C, t, ot, h, oh, w, ow)
    add_(y8, z[:, :, :, None, :, None, :, None])  # + (B, C, t, 1, h, 1, w, 1)
    return y


# ------------------------------------------------------------------------- training: one node


def _conv_backward(
    layer: OctConv3d, grad_y: Tensor, x: Tensor, weight: Tensor, has_bias: bool, mask: list[bool]
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(grad_x, grad_weight, grad_bias)`` of ``conv(layer, x, weight, bias)`` for ``grad_y``,
    each where ``mask`` asks for it, in the view oneDNN's backward runs fastest."""
    g = geometry(layer, backward=True)
    if grad_y.is_contiguous() and not has_channels_last_strides(grad_y):
        # contiguous(memory_format=channels_last_3d) by permutes, which torch.func.vmap runs
        grad_y = grad_y.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)
    gx2, gw2, gb = torch.ops.aten.convolution_backward(
        to_2d(grad_y, g.view),
        to_2d(x, g.view),
        weight_2d(weight, g.view),
        [weight.shape[0]] if has_bias else None,
        list(g.stride),
        list(g.padding),
        list(g.dilation),
        False,
        [0] * (3 if g.view == "3d" else 2),
        x.shape[1] // weight.shape[1],
        mask,
    )
    gx = None if gx2 is None else from_2d(gx2, g.view, x)
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
    low-resolution tensor) rather than saving it.
    """

    # torch.func.vmap runs forward and backward on batched tensors (per-sample gradients).
    generate_vmap_rule = True

    @staticmethod
    def forward(x_h, x_l, w_hh, w_hl, w_lh, w_ll, bias_h, bias_l, layer: OctConv3d):  # type: ignore[override]
        y_h = conv(layer, x_h, w_hh, bias_h)
        if w_lh is not None:
            y_h = add_upsampled(y_h, conv(layer, x_l, w_lh, None), layer.octave)
        y_l = None
        if w_hl is not None:
            x_in = low_input(x_h, x_l if w_ll is not None else None, layer.octave)
            y_l = conv(layer, x_in, low_weight(w_hl, w_ll), bias_l)
        return y_h if y_l is None else (y_h, y_l)  # no None output: dynamo cannot trace one

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        # Apart from forward, as torch.func (grad, jacrev, vjp) requires of a Function.
        x_h, x_l, w_hh, w_hl, w_lh, w_ll, bias_h, bias_l, layer = inputs
        ctx.save_for_backward(x_h, x_l, w_hh, w_hl, w_lh, w_ll)
        ctx.set_materialize_grads(False)
        ctx.layer = layer
        ctx.has_bias = (bias_h is not None, bias_l is not None)

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
            x_in = low_input(x_h, x_l if merged else None, layer.octave)
            mask = [need_xh or (merged and need_xl), need_whl or need_wll, need_bl]
            gx_in, gw_low, gb_l = _conv_backward(
                layer, g_l, x_in, low_weight(w_hl, w_ll), ctx.has_bias[1], mask
            )
            if need_xh:
                gx_h = _add_pool_backward(gx_h, gx_in[:, :n_high], x_h, layer.octave)
            if merged and need_xl:
                gx_l = gx_in[:, n_high:] if gx_l is None else gx_l + gx_in[:, n_high:]
            if gw_low is not None:
                gw_hl = gw_low[:, : w_hl.shape[1]] if need_whl else None
                gw_ll = gw_low[:, w_hl.shape[1] :] if need_wll else None
        return gx_h, gx_l, gw_hh, gw_hl, gw_lh, gw_ll, gb_h, gb_l, None


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
    (so that torch.compile can trace the backward that calls it). Its pools, like
    ``downsample``'s, pass ``count_include_pad=False``: the same numbers in eager, and under
    torch.compile a last, partial cell divided by the elements it holds, not the whole kernel."""
    factor = pool_factor(factor, x.shape[-3:])
    if factor == (1, 1, 1):
        return grad
    if factor[0] == 1 and is_channels_last(x):  # downsample's 2D path on (B*T, C, H, W) views
        k = list(factor[1:])
        out = torch.ops.aten.avg_pool2d_backward(
            to_frames(grad), to_frames(x), k, k, [0, 0], True, False, None
        )
        return from_frames(out, x.shape[0], x.shape[2])
    k3 = list(factor)
    if _pools_in_float32(grad):  # no CPU kernel for float16 / bfloat16, as in ``avg_pool3d``
        g32 = torch.ops.aten.avg_pool3d_backward(
            grad.float(), x.float(), k3, k3, [0, 0, 0], True, False, None
        )
        return g32.to(grad.dtype)
    return torch.ops.aten.avg_pool3d_backward(grad, x, k3, k3, [0, 0, 0], True, False, None)
