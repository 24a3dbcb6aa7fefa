"""Building blocks of the octave video ResNets: stem, residual blocks, shortcut, pooling, head.

Reference: He et al., "Deep Residual Learning", CVPR 2016; Wang et al., "Non-local Neural
Networks", CVPR 2018 (the video ResNet-50 layout: 1x7x7 / 5x7x7 stem, 3x1x1 inflation in conv_a);
Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): every convolution is an OctConv3d,
normalisation and activation are per group, residual additions are group by group.

Every convolution here is an ``OctConv3d``, also where alpha is 0 (there it is exactly
``nn.Conv3d`` and its only path is ``conv_hh``), so the state-dict keys of a layer do not depend on
whether it carries an octave, only the low-group entries (``conv_hl``, ``conv_lh``, ``conv_ll``,
``.low``) come and go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from octvideo.models.checks import ArgumentError, check_dropout, check_whole
from octvideo.ops import (
    OctAct,
    OctConv3d,
    OctMerge,
    OctNorm,
    OctPair,
    OctPool3d,
    OctSplit,
    as_pair,
    conv_norm_act,
)
from octvideo.ops.pair import is_share, normalize_octave, whole_triple

_Size3 = tuple[int, int, int]


def stage_alphas(
    alpha: float | Sequence[float], num_stages: int = 4, name: str = "alpha"
) -> tuple[float, ...]:
    """Per-stage alphas (res2..res5) from one value or one per stage; ``name`` is the argument
    it came as (``fast_alpha``), which a refusal names.

    One value covers res2..res4 and leaves res5 vanilla, as the official OctConv code does (a 3x3
    conv on the 3.5x3.5 low-frequency map of res5 at 224 does not make sense).
    """
    if is_share(alpha):
        return (float(alpha),) * (num_stages - 1) + (0.0,)
    alphas = tuple(alpha) if isinstance(alpha, Sequence) and not isinstance(alpha, str) else ()
    if len(alphas) != num_stages or not all(is_share(a) for a in alphas):
        raise ArgumentError(
            name, f" needs one number in [0, 1) or {num_stages} (one per stage), got {alpha!r}"
        )
    return tuple(float(a) for a in alphas)


class Stem(nn.Module):
    """conv (kT x 7 x 7, stride (1, 2, 2)) -> norm -> act -> max-pool 1x3x3 stride (1, 2, 2).

    Args:
        in_chans: input channels (3 for RGB).
        out_chans: stem width.
        kernel_size: (T, H, W) conv kernel: (1, 7, 7) for C2D / Slow, (5, 7, 7) for I3D / Fast.
        alpha: low share of the stem output; 0 (vanilla stem) by default in the models.
        octave: (T, H, W) octave factor.
        norm_layer: normalisation class.
        act_layer: activation class.
        channel_multiple: the low groups' rounding (``octvideo.ops.low_channels``); None for the
            paper's split.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: _Size3,
        *,
        alpha: float = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        m = channel_multiple
        self.conv = OctConv3d(
            in_chans,
            out_chans,
            kernel_size,
            stride=(1, 2, 2),
            alpha_out=alpha,
            octave=octave,
            channel_multiple=m,
        )
        self.bn = OctNorm(out_chans, alpha=alpha, norm_layer=norm_layer, channel_multiple=m)
        self.act = OctAct(act_layer)
        self.pool = OctPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1), mode="max", octave=octave)

    def forward(self, x: Tensor) -> OctPair:
        x = conv_norm_act(self.conv, self.bn, self.act, x)  # (B, C, T, H/2, W/2) or a pair
        return as_pair(self.pool(x))  # (B, C, T, H/4, W/4) or a pair


class Shortcut(nn.Module):
    """Projection shortcut: 1x1x1 OctConv3d with the block's stride, then norm (per group)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        stride: _Size3,
        *,
        alpha_in: float,
        alpha_out: float,
        octave: Sequence[int],
        norm_layer: type[nn.Module],
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        m = channel_multiple
        self.conv = OctConv3d(
            in_chans,
            out_chans,
            1,
            stride,
            alpha_in=alpha_in,
            alpha_out=alpha_out,
            octave=octave,
            channel_multiple=m,
        )
        self.bn = OctNorm(out_chans, alpha=alpha_out, norm_layer=norm_layer, channel_multiple=m)

    def forward(self, x: OctPair) -> Tensor | OctPair:
        return conv_norm_act(self.conv, self.bn, None, x)  # (B, C_out, T/st, H/ss, W/ss) or pair


class Resplit(nn.Module):
    """Parameter-free shortcut between two splits of the same channels: merge, then split again.

    Used where a block keeps its width and stride but changes alpha (the first block of a
    ResNet-18/34 res2 after a vanilla stem), so no projection is added that the vanilla network
    does not have.
    """

    def __init__(
        self,
        channels: int,
        *,
        alpha: float,
        octave: Sequence[int],
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        self.merge = OctMerge(octave=octave)
        self.split = OctSplit(
            channels, alpha=alpha, octave=octave, channel_multiple=channel_multiple
        )

    def forward(self, x: Tensor | OctPair) -> OctPair:
        return self.split(self.merge(x))  # (B, C, T, H, W) -> pair with the new split


def make_shortcut(
    in_chans: int,
    out_chans: int,
    stride: _Size3,
    alpha_in: float,
    alpha_out: float,
    *,
    octave: Sequence[int],
    norm_layer: type[nn.Module],
    channel_multiple: int | None = None,
) -> nn.Module | None:
    """The shortcut a block needs: None (identity), a re-split, or a projection."""
    # one whole number or three, as the block's convolutions take it (2 is (2, 2, 2))
    if in_chans != out_chans or whole_triple(stride, "stride", 1) != (1, 1, 1):
        return Shortcut(
            in_chans,
            out_chans,
            stride,
            alpha_in=alpha_in,
            alpha_out=alpha_out,
            octave=octave,
            norm_layer=norm_layer,
            channel_multiple=channel_multiple,
        )
    if alpha_in != alpha_out:
        return Resplit(out_chans, alpha=alpha_out, octave=octave, channel_multiple=channel_multiple)
    return None


class Bottleneck(nn.Module):
    """Bottleneck residual block on octave pairs::

        x ──> conv_a (kT x 1 x 1) -> bn_a -> act ──> conv_b (1 x 3 x 3) -> bn_b -> act
          │                                           ──> conv_c (1 x 1 x 1) -> bn_c ──> + -> act
          └──────────────── shortcut (identity, or 1x1x1 conv + bn) ────────────────────┘

    ``conv_a`` carries the temporal kernel (kT = 3 for the I3D inflation, 1 for C2D). The spatial
    stride sits on ``conv_b`` (torchvision / PyTorchVideo layout, whose cost matches the paper) or
    on ``conv_a`` (``stride_in_1x1=True``, Caffe2 MSRA style). ``conv_a`` and the shortcut take
    the incoming alpha; all outputs have the block's alpha, so the first block of a stage changes
    the split (and the first block of a vanilla res5 merges the two groups).

    Args:
        in_chans: input channels.
        mid_chans: bottleneck width.
        out_chans: output channels (4 x ``mid_chans`` in ResNet-50).
        temporal_kernel: kT of ``conv_a``.
        stride: (T, H, W) stride of the block.
        stride_in_1x1: put the stride on ``conv_a`` instead of ``conv_b``.
        alpha_in: low share of the input.
        alpha: low share of the block's features and output.
        octave: (T, H, W) octave factor.
        norm_layer: normalisation class.
        act_layer: activation class.
        channel_multiple: the low groups' rounding (``octvideo.ops.low_channels``); None for the
            paper's split.
    """

    expansion = 4

    def __init__(
        self,
        in_chans: int,
        mid_chans: int,
        out_chans: int,
        *,
        temporal_kernel: int = 1,
        stride: _Size3 = (1, 1, 1),
        stride_in_1x1: bool = False,
        alpha_in: float = 0.0,
        alpha: float = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        stride_a, stride_b = (stride, (1, 1, 1)) if stride_in_1x1 else ((1, 1, 1), stride)
        m = channel_multiple
        oct_kw = {"alpha_out": alpha, "octave": octave, "channel_multiple": m}
        norm_kw = {"alpha": alpha, "norm_layer": norm_layer, "channel_multiple": m}
        self.conv_a = OctConv3d(
            in_chans, mid_chans, (temporal_kernel, 1, 1), stride_a, alpha_in=alpha_in, **oct_kw
        )
        self.bn_a = OctNorm(mid_chans, **norm_kw)
        self.conv_b = OctConv3d(mid_chans, mid_chans, (1, 3, 3), stride_b, alpha_in=alpha, **oct_kw)
        self.bn_b = OctNorm(mid_chans, **norm_kw)
        self.conv_c = OctConv3d(mid_chans, out_chans, 1, alpha_in=alpha, **oct_kw)
        self.bn_c = OctNorm(out_chans, **norm_kw)
        self.act = OctAct(act_layer)
        self.downsample = make_shortcut(
            in_chans,
            out_chans,
            stride,
            alpha_in,
            alpha,
            octave=octave,
            norm_layer=norm_layer,
            channel_multiple=m,
        )

    def forward(self, x: OctPair) -> OctPair:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = conv_norm_act(self.conv_a, self.bn_a, self.act, x)  # (B, mid, T, H', W') per group
        y = conv_norm_act(self.conv_b, self.bn_b, self.act, y)  # (B, mid, T, H', W') per group
        # act(bn_c(conv_c(y)) + shortcut): (B, out, T, H', W') per group
        return as_pair(conv_norm_act(self.conv_c, self.bn_c, self.act, y, shortcut))


class BasicBlock(nn.Module):
    """Basic residual block (ResNet-18/34) on octave pairs::

        x ──> conv_a (kT x 3 x 3, stride) -> bn_a -> act -> conv_b (1 x 3 x 3) -> bn_b ──> + -> act
          └──────────────── shortcut (identity, or 1x1x1 conv + bn) ─────────────────────┘

    Same arguments as ``Bottleneck``; ``mid_chans`` equals ``out_chans`` and ``stride_in_1x1`` has
    no effect (the stride is on ``conv_a``, as in torchvision).
    """

    expansion = 1

    def __init__(
        self,
        in_chans: int,
        mid_chans: int,
        out_chans: int,
        *,
        temporal_kernel: int = 1,
        stride: _Size3 = (1, 1, 1),
        stride_in_1x1: bool = False,
        alpha_in: float = 0.0,
        alpha: float = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        del stride_in_1x1  # one strided conv only
        m = channel_multiple
        oct_kw = {"alpha_out": alpha, "octave": octave, "channel_multiple": m}
        norm_kw = {"alpha": alpha, "norm_layer": norm_layer, "channel_multiple": m}
        self.conv_a = OctConv3d(
            in_chans, mid_chans, (temporal_kernel, 3, 3), stride, alpha_in=alpha_in, **oct_kw
        )
        self.bn_a = OctNorm(mid_chans, **norm_kw)
        self.conv_b = OctConv3d(mid_chans, out_chans, (1, 3, 3), alpha_in=alpha, **oct_kw)
        self.bn_b = OctNorm(out_chans, **norm_kw)
        self.act = OctAct(act_layer)
        self.downsample = make_shortcut(
            in_chans,
            out_chans,
            stride,
            alpha_in,
            alpha,
            octave=octave,
            norm_layer=norm_layer,
            channel_multiple=m,
        )

    def forward(self, x: OctPair) -> OctPair:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = conv_norm_act(self.conv_a, self.bn_a, self.act, x)  # (B, C, T, H', W') per group
        # act(bn_b(conv_b(y)) + shortcut): (B, C, T, H', W') per group
        return as_pair(conv_norm_act(self.conv_b, self.bn_b, self.act, y, shortcut))


def check_window(
    window: Sequence[int], what: str = "head_pool", index: int | None = None
) -> _Size3:
    """A (T, H, W) pooling window as Python ints: three whole numbers of 1 or more, each by
    ``check_whole``'s rule (``np.int64`` taken, a bool or a float refused).

    ``index``: the pathway's item of ``what`` that ``window`` is (``head_pool[0]``), or None.

    Raises:
        ArgumentError: ``{what} must be three whole numbers of 1 or more (T, H, W), got ...``.
    """

    def problem(show: Callable[[object], str]) -> str:
        return f" must be three whole numbers of 1 or more (T, H, W), got {show(window)}"

    refused = ArgumentError(what, problem, index=index)
    try:
        size = tuple(window)
    except TypeError:
        raise refused from None
    if len(size) != 3:
        raise refused
    try:
        return tuple(check_whole(what, k) for k in size)  # type: ignore[return-value]
    except ValueError:
        raise refused from None  # the whole window named, not one of its numbers


def window_mean(x: Tensor, window: _Size3 | None) -> Tensor:
    """(B, C, T, H, W) -> (B, C): the mean over every position of a stride-1 average pool of
    ``window`` cells, each dimension's window cut to the map; the global mean without a window,
    or where the map is no larger than it."""
    if window is not None:
        size = tuple(min(k, n) for k, n in zip(window, x.shape[2:], strict=True))
        if size != tuple(x.shape[2:]):
            x = F.avg_pool3d(x, size, stride=1)  # (B, C, T-kT+1, H-kH+1, W-kW+1)
    return x.mean(dim=(2, 3, 4))  # (B, C)


class GlobalAvgPool(nn.Module):
    """Global average pool of each group, concatenated: pair -> (B, C_h + C_l).

    With a ``window``, the pool of PyTorchVideo's heads (``ResNetBasicHead`` and SlowFast's
    ``PoolConcatPathway``): an average pool of that fixed kernel (sized for the training crop,
    e.g. (8, 7, 7) for Slow 8x8 at 224) at stride 1, whose positions the head projects and then
    averages (``output_pool``). The projection is linear and dropout is off at inference, so
    averaging the positions' features before the one projection gives the same logits for a
    fraction of the work. On a 256 crop the 8 x 8 map has 2 x 2 positions, and the centre cells,
    which every window covers, weigh more than a global mean gives them. Where the map is no
    larger than the window (the training crop), this is the global mean.

    Args:
        window: (T, H, W) kernel in cells of the high group's map; None: global pooling.
        octave: (T, H, W) octave factor; the low group's window is the kernel divided by it,
            rounded up, so that it covers the same part of the clip.
    """

    def __init__(
        self, window: Sequence[int] | None = None, *, octave: Sequence[int] = (1, 2, 2)
    ) -> None:
        super().__init__()
        self.window = None if window is None else check_window(window)
        octave = normalize_octave(octave)  # checked with or without a window
        self.low_window = (
            None
            if self.window is None
            else tuple(-(-k // o) for k, o in zip(self.window, octave, strict=True))
        )

    def forward(self, x: Tensor | OctPair) -> Tensor:
        high, low = as_pair(x)
        pooled = window_mean(high, self.window)  # (B, C_h)
        if low is None:
            return pooled
        return torch.cat([pooled, window_mean(low, self.low_window)], dim=1)  # (B, C_h + C_l)

    def extra_repr(self) -> str:
        return "" if self.window is None else f"window={self.window}"


class ClassifierHead(nn.Module):
    """Dropout then a linear classifier on pooled features: (B, C) -> (B, num_classes)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        dropout = check_dropout(dropout)
        in_features = check_whole("in_features", in_features)
        num_classes = check_whole("num_classes", num_classes)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.drop(x))  # (B, num_classes)


class ClassifierHeadMixin:
    """timm's classifier methods for a model whose ``head`` is a ``ClassifierHead`` on
    ``num_features`` pooled features: ``forward_head``, ``get_classifier``, ``reset_classifier``.
    Listed before ``nn.Module`` in the bases; the model sets ``head`` and ``num_features``."""

    head: ClassifierHead
    num_features: int

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head(features)  # (B, num_classes)

    def get_classifier(self) -> nn.Linear:
        return self.head.fc

    def reset_classifier(self, num_classes: int, dropout: float | None = None) -> None:
        """A new, freshly initialised classifier (for fine-tuning on another label set), on the
        old one's device and dtype; ``dropout`` None keeps the old rate."""
        p = self.head.drop.p if dropout is None else dropout
        self.head = ClassifierHead(self.num_features, num_classes, p).to(self.head.fc.weight)


def zero_init_last_norms(model: nn.Module) -> None:
    """Zero scale for the last norm of every residual block (``bn_c`` of a bottleneck, ``bn_b``
    of a basic block), both groups: each block starts as its shortcut. Goyal et al. 2017;
    PySlowFast's ``ZERO_INIT_FINAL_BN``, which its Kinetics ResNet configs set."""
    for m in model.modules():
        last = (
            m.bn_c if isinstance(m, Bottleneck) else m.bn_b if isinstance(m, BasicBlock) else None
        )
        for norm in () if last is None else last.modules():
            if (
                isinstance(norm, nn.BatchNorm3d | nn.GroupNorm | nn.LayerNorm)
                and norm.weight is not None
            ):
                nn.init.zeros_(norm.weight)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan out) convolutions, unit/zero norms: the ResNet initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d | nn.GroupNorm | nn.LayerNorm) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
