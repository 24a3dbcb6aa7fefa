"""Octave SlowFast networks: a Slow and a Fast pathway, both built from OctConv3d, with lateral
Fast -> Slow connections.

Reference: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019 (speed ratio
alpha = 4 here called ``slowfast_alpha``, channel ratio beta = 1/8, time-strided lateral
convolutions with 2 x beta C output channels, concatenated into the Slow pathway after the stem and
after res2, res3, res4); Chen et al., "Drop an Octave", ICCV 2019 for the octave convolutions.

Layout (ResNet-50, 8x8: Slow T = 8, Fast alpha T = 32; high-group shapes)::

    slow clip (B, 3, T, H, W)                   fast clip (B, 3, alpha T, H, W)
      stem_slow 1x7x7 (B, 64, T, H/4)             stem_fast 5x7x7 (B, 8, alpha T, H/4)
      <────── fuse_stem: conv 7x1x1 stride (alpha, 1, 1), 8 -> 16 ──────┘
      res2 (in 64 + 16)  (B, 256, ...)           res2 (B, 32, ...)
      <────── fuse_res2: 32 -> 64 ───────────────┘
      res3 (in 256 + 64) (B, 512, ...)           res3 (B, 64, ...)
      <────── fuse_res3: 64 -> 128 ──────────────┘
      res4 (in 512 + 128) (B, 1024, ...)         res4 (B, 128, ...)
      <────── fuse_res4: 128 -> 256 ─────────────┘
      res5 (in 1024 + 256) (B, 2048, ...)        res5 (B, 256, ...)
      global average pool of each pathway (per group), concatenated -> dropout -> fc
        (``head_pool``: PyTorchVideo's fixed-kernel pool per pathway, averaged over its positions)

With an octave, the lateral conv maps the Fast pair to a pair whose low share makes the
concatenated Slow input split exactly as ``low_channels(C_slow + C_fuse, alpha)``: the next
stage's convolutions then see the usual split. The concatenated channel order is
[slow high, lateral high] and [slow low, lateral low].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from octvideo.models._registry import register_model
from octvideo.models.checks import (
    ArgumentError,
    check_clip_tensor,
    check_dropout,
    check_layer_classes,
    check_octave,
    check_odd,
    check_switches,
    check_whole,
)
from octvideo.models.layers import (
    BasicBlock,
    Bottleneck,
    ClassifierHead,
    ClassifierHeadMixin,
    GlobalAvgPool,
    Stem,
    check_window,
    init_weights,
    stage_alphas,
    zero_init_last_norms,
)
from octvideo.models.resnet3d import (
    SLOW_TEMPORAL,
    STAGE_DEPTHS,
    block_for_depth,
    make_stages,
    stage_widths,
)
from octvideo.ops import (
    OctAct,
    OctConv3d,
    OctNorm,
    OctPair,
    as_pair,
    cat_pairs,
    low_channels,
)

# Temporal kernel of conv_a per stage (res2..res5) of the Fast pathway; the Slow pathway is
# Slow-only's (SLOW_TEMPORAL).
SLOWFAST_FAST_TEMPORAL: tuple[tuple[int, ...], ...] = ((3,), (3,), (3,), (3,))
# Where the laterals join the Slow pathway: after its stem and after res2, res3, res4.
_POINTS = ("stem", "res2", "res3", "res4")
_LATERAL_PADS = "the lateral convolutions pad it 'same' in time"


def lateral_alpha(
    slow_chans: int, fuse_chans: int, alpha: float, channel_multiple: int | None = None
) -> float:
    """The lateral output's alpha that makes [slow, lateral] split as ``alpha`` of the total
    (with the same ``channel_multiple`` rounding as the Slow pathway's layers)."""
    m = channel_multiple
    n_low = low_channels(slow_chans + fuse_chans, alpha, m) - low_channels(slow_chans, alpha, m)
    if not 0 <= n_low < fuse_chans:
        raise ValueError(
            f"cannot split a {fuse_chans}-channel lateral to give {n_low} low channels"
        )
    return n_low / fuse_chans


def _lateral_low(slow_chans: int, fuse_chans: int, alpha: float, m: int | None) -> int | None:
    """The low channels a lateral of ``fuse_chans`` gives a Slow pair of ``slow_chans`` split
    as ``alpha`` (``lateral_alpha``), or None where no lateral can: all of them (a lateral keeps
    a high channel) or a count its own ``channel_multiple`` split rounds away."""
    n_low = low_channels(slow_chans + fuse_chans, alpha, m) - low_channels(slow_chans, alpha, m)
    if not 0 <= n_low < fuse_chans:
        return None
    return n_low if low_channels(fuse_chans, n_low / fuse_chans, m) == n_low else None


def check_lateral_splits(
    slow_points: Sequence[int],
    fuse_points: Sequence[int],
    alpha: float | Sequence[float],
    alphas: Sequence[float],
    channel_multiple: int | None,
) -> None:
    """Refuses, before any layer is built, an ``alpha`` (or ``channel_multiple``) that leaves a
    lateral no split: the lateral into res3..res5 gives the [Slow, lateral] concatenation the
    low channels ``alpha`` asks of it, and cannot where that is all its channels (a high
    ``alpha``: 0.992 of res2's 256 + 64) or a count its own rounding moves.

    Args:
        slow_points: Slow channels at the stem and after res2, res3, res4.
        fuse_points: the laterals' output channels there.
        alpha: ``alpha`` as given (one value, or one per stage), for the message.
        alphas: the per-stage alphas it gives (res2..res5).
        channel_multiple: the low groups' rounding, or None.

    Raises:
        ValueError: one line naming ``alpha`` (or ``alpha[i]``) and the value, the lateral, and
            the largest alpha below it (to 4 decimals) that splits it; or ``channel_multiple``.
    """
    m, per_stage = channel_multiple, not isinstance(alpha, numbers.Real)
    for i in range(1, 4):  # the stem's lateral meets a vanilla Slow stem
        a, slow, fuse = alphas[i - 1], slow_points[i], fuse_points[i]
        if _lateral_low(slow, fuse, a, m) is not None:
            continue
        name = f"alpha[{i - 1}]" if per_stage else "alpha"
        reached = [i] if per_stage else [1, 2, 3]  # the laterals this one value splits

        def splits(b: float, reached: list[int] = reached) -> bool:
            return all(
                _lateral_low(slow_points[j], fuse_points[j], b, m) is not None for j in reached
            )

        start = math.ceil(a * 10**4) - 1  # 4 decimals, below a; alpha 0 always splits
        below = next(k / 10**4 for k in range(start, -1, -1) if splits(k / 10**4))
        them = "it" if per_stage else "them"
        largest = f"the largest {name} below {a} that splits {them} is {below}"
        if m is None:  # int(b * (S + F)) - int(b * S) < F for every b <= 1 - 1/F
            safe = math.floor((1 - 1 / min(fuse_points[j] for j in reached)) * 10**4) / 10**4
            largest += f", and every {name} up to {safe} splits {them}"
        n_low = low_channels(slow + fuse, a, m) - low_channels(slow, a, m)
        where = f"SlowFast's {fuse}-channel lateral into res{i + 2} (fuse_{_POINTS[i]})"
        index = i - 1 if per_stage else None
        if n_low >= fuse:
            raise ArgumentError(
                "alpha",
                f"={a} leaves {where} no high channel ({n_low} of the {slow + fuse} "
                f"channels there would be low, {low_channels(slow, a, m)} of them the Slow "
                f"pathway's {slow}); {largest}",
                index=index,
            )
        raise ArgumentError(
            "channel_multiple",
            f"={m} cannot split {where} into the {n_low} low channels {name}={a} asks of it; "
            f"choose another channel_multiple, or {name}: {largest}",
        )


def _pathway_windows(
    head_pool: Sequence[Sequence[int]] | None,
) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """(slow window, fast window) from ``head_pool``, or a ValueError naming it."""
    if head_pool is None:
        return None, None
    try:
        pair = list(head_pool)
    except TypeError:
        pair = []
    if len(pair) != 2 or any(isinstance(w, int | str) for w in pair):
        raise ArgumentError(
            "head_pool",
            lambda show: (
                " of SlowFast needs one (T, H, W) kernel per pathway, Slow first, e.g. "
                f"{show(((8, 7, 7), (32, 7, 7)))}; got {show(head_pool)}"
            ),
        )
    return check_window(pair[0], "head_pool", 0), check_window(pair[1], "head_pool", 1)


class FuseFastToSlow(nn.Module):
    """Lateral connection: time-strided conv of the Fast pair, norm, act, concatenated to Slow.

    Args:
        fast_chans: Fast pathway channels.
        slow_chans: Slow pathway channels at the same point.
        fusion_ratio: lateral output channels per Fast channel (2 in the paper).
        kernel_t: temporal kernel (7 for SlowFast R50 in the model zoo, 5 for R101); odd.
        speed: frame-rate ratio (the temporal stride).
        fast_alpha: low share of the Fast pair.
        slow_alpha: low share the Slow pair has (and the concatenation must have).
        octave: (T, H, W) octave factor.
        norm_layer: normalisation class.
        act_layer: activation class.
        channel_multiple: the low groups' rounding (``octvideo.ops.low_channels``); None for the
            paper's split.
    """

    def __init__(
        self,
        fast_chans: int,
        slow_chans: int,
        *,
        fusion_ratio: int = 2,
        kernel_t: int = 7,
        speed: int = 4,
        fast_alpha: float = 0.0,
        slow_alpha: float = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        channel_multiple: int | None = None,
    ) -> None:
        super().__init__()
        fusion_ratio = check_whole("fusion_ratio", fusion_ratio)  # numpy's as Python's
        kernel_t, speed = (
            check_odd("kernel_t", kernel_t, _LATERAL_PADS),
            check_whole("speed", speed),
        )
        out = fast_chans * fusion_ratio
        m = channel_multiple
        alpha_out = lateral_alpha(slow_chans, out, slow_alpha, m)
        self.out_chans = out
        self.conv = OctConv3d(
            fast_chans,
            out,
            (kernel_t, 1, 1),
            stride=(speed, 1, 1),
            alpha_in=fast_alpha,
            alpha_out=alpha_out,
            octave=octave,
            channel_multiple=m,
        )
        want = round(alpha_out * out)
        if self.conv.out_low != want:  # the lateral's rounding must not move the split
            raise ArgumentError(
                "channel_multiple",
                f"={m} cannot split a {out}-channel lateral into {want} low channels; choose "
                "another channel_multiple",
            )
        self.bn = OctNorm(out, alpha=alpha_out, norm_layer=norm_layer, channel_multiple=m)
        self.act = OctAct(act_layer)

    def forward(self, slow: OctPair, fast: OctPair) -> tuple[OctPair, OctPair]:
        fuse = self.act(self.bn(self.conv(fast)))  # (B, 2 beta C, T, H, W) per group
        fuse = as_pair(fuse)
        if fuse.low is None and slow.low is not None:
            # A tiny alpha can leave the lateral no low channel while Slow has some.
            high = torch.cat([slow.high, fuse.high], dim=1)  # (B, C_h + 2 beta C, T, H, W)
            return OctPair(high, slow.low), fast
        return cat_pairs([slow, fuse]), fast  # (B, C + 2 beta C, T, H, W) per group


class Pathway(nn.Module):
    """Stem and four residual stages of one pathway (run step by step by ``SlowFast``)."""

    def __init__(self, stem: Stem, stages: Sequence[nn.Sequential]) -> None:
        super().__init__()
        self.stem = stem
        self.res2, self.res3, self.res4, self.res5 = stages


def _pathway(
    block: type[Bottleneck] | type[BasicBlock],
    depths: Sequence[int],
    *,
    stem_kernel: tuple[int, int, int],
    width: int,
    ins: Sequence[int],
    mids: Sequence[int],
    temporal: Sequence[Sequence[int]],
    alphas_in: Sequence[float],
    alphas: Sequence[float],
    stride_in_1x1: bool,
    **layer_kw: Any,
) -> Pathway:
    """One pathway: a vanilla stem of ``width`` channels, then res2..res5, whose first blocks
    take ``ins`` channels split as ``alphas_in``. ``layer_kw`` (octave, norm_layer, act_layer,
    channel_multiple) goes to the stem and every stage."""
    stem = Stem(3, width, stem_kernel, **layer_kw)
    stages = make_stages(
        block,
        depths,
        ins,
        mids,
        temporal_kernels=temporal,
        alphas_in=alphas_in,
        alphas=alphas,
        stride_in_1x1=stride_in_1x1,
        **layer_kw,
    )
    return Pathway(stem, stages)


class SlowFast(ClassifierHeadMixin, nn.Module):
    """Octave SlowFast ResNet (see the module docstring for the layout).

    Input: ``[slow (B, 3, T, H, W), fast (B, 3, slowfast_alpha * T, H, W)]``.

    Args:
        depth: 50, 101 or 152 (bottleneck ResNets).
        num_classes: classifier outputs.
        slowfast_alpha: speed ratio between the pathways' frame rates.
        beta_inv: channel ratio 1/beta (Fast has 1/8 of Slow's channels); 1 to 64 (the Fast
            stem has 64 // beta_inv channels).
        fusion_ratio: lateral output channels per Fast channel.
        fusion_kernel: temporal kernel of the lateral convs; odd (padded "same").
        alpha: Slow pathway's low share: one value (res2..res4) or one per stage. A lateral
            keeps a high channel, so an alpha near 1 that would make one all low is refused
            (``check_lateral_splits``: every alpha up to 1 - 1/64 splits the default widths).
        fast_alpha: Fast pathway's low share (same form); defaults to ``alpha``.
        octave: (T, H, W) octave factor of both pathways (three factors).
        stride_in_1x1: stride on conv_a instead of conv_b.
        dropout: dropout before the classifier.
        norm_layer: normalisation class.
        act_layer: activation class.
        zero_init_final_bn: zero scale for each residual block's last norm (PySlowFast's
            ``ZERO_INIT_FINAL_BN``): every block starts as its shortcut.
        channel_multiple: round every low group of both pathways to the nearest multiple of
            this (``octvideo.ops.low_channels``); None (the default) keeps the paper's split.
        head_pool: one (T, H, W) kernel per pathway, Slow first, in res5 cells, of
            PyTorchVideo's head: average-pool each pathway with its kernel at stride 1 and
            average the positions (``GlobalAvgPool``), e.g. ((8, 7, 7), (32, 7, 7)) for the
            zoo's SlowFast 8x8; None (the default): global average pooling.

    Attributes:
        min_frames: the fewest frames a slow clip (of a fast one ``slowfast_alpha`` x as long)
            may have: 2 where an octave in time reaches a lateral's low input at a speed above 2,
            else 1.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        num_classes: int = 400,
        slowfast_alpha: int = 4,
        beta_inv: int = 8,
        fusion_ratio: int = 2,
        fusion_kernel: int = 7,
        alpha: float | Sequence[float] = 0.0,
        fast_alpha: float | Sequence[float] | None = None,
        octave: Sequence[int] = (1, 2, 2),
        stride_in_1x1: bool = False,
        dropout: float = 0.5,
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        zero_init_final_bn: bool = False,
        channel_multiple: int | None = None,
        head_pool: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        depth = check_whole("depth", depth)  # numbers and switches as Python's (``checks``)
        if depth not in STAGE_DEPTHS or depth < 50:
            raise ValueError(f"SlowFast depth must be 50, 101 or 152, got {depth}")
        num_classes = check_whole("num_classes", num_classes)
        slowfast_alpha = check_whole("slowfast_alpha", slowfast_alpha)
        why = " (the Fast stem has 64 // beta_inv channels)"
        beta_inv = check_whole("beta_inv", beta_inv, high=64, why=why)
        fusion_ratio = check_whole("fusion_ratio", fusion_ratio)
        fusion_kernel = check_odd("fusion_kernel", fusion_kernel, _LATERAL_PADS)
        if channel_multiple is not None:
            channel_multiple = check_whole("channel_multiple", channel_multiple)
        stride_in_1x1, zero_init_final_bn = check_switches(
            stride_in_1x1=stride_in_1x1, zero_init_final_bn=zero_init_final_bn
        )
        check_layer_classes(norm_layer=norm_layer, act_layer=act_layer)
        check_dropout(dropout)  # before any layer is built; ClassifierHead checks it again
        windows = _pathway_windows(head_pool)  # before building
        self.slowfast_alpha = slowfast_alpha
        self.octave = check_octave(octave)
        self.alphas = stage_alphas(alpha)
        self.fast_alphas = (
            self.alphas if fast_alpha is None else stage_alphas(fast_alpha, name="fast_alpha")
        )
        block = block_for_depth(depth)
        depths = STAGE_DEPTHS[depth]
        width, fast_width = 64, 64 // beta_inv
        layer_kw = {
            "octave": self.octave,
            "norm_layer": norm_layer,
            "act_layer": act_layer,
            "channel_multiple": channel_multiple,
        }
        mids = stage_widths(width)
        fast_mids = tuple(m // beta_inv for m in mids)
        outs = tuple(m * block.expansion for m in mids)
        fast_outs = tuple(m * block.expansion for m in fast_mids)

        # Channels the Fast pathway has at each fusion point, and those the Slow pathway has.
        fast_points = (fast_width, *fast_outs[:3])
        slow_points = (width, *outs[:3])
        slow_alpha_points = (0.0, *self.alphas[:3])
        fast_alpha_points = (0.0, *self.fast_alphas[:3])
        fuse_points = tuple(c * fusion_ratio for c in fast_points)
        check_lateral_splits(slow_points, fuse_points, alpha, self.alphas, channel_multiple)
        fuses = [
            FuseFastToSlow(
                fast_points[i],
                slow_points[i],
                fusion_ratio=fusion_ratio,
                kernel_t=fusion_kernel,
                speed=slowfast_alpha,
                fast_alpha=fast_alpha_points[i],
                slow_alpha=slow_alpha_points[i],
                **layer_kw,
            )
            for i in range(4)
        ]
        self.fuse_stem, self.fuse_res2, self.fuse_res3, self.fuse_res4 = fuses
        # With an octave in time a lateral strides time by pooling the Fast pair (its low group
        # has half the frames, rounded up), and a pool takes one frame or a whole window.
        pools = [f.conv.pool_factor[0] for f in fuses]
        low_pools = [p for p, f in zip(pools, fuses, strict=True) if f.conv.in_low]
        self._time_pools = (max(pools), max(low_pools, default=1))  # (high, low)
        self.min_frames = 1 if self._pools_take(slowfast_alpha) else 2  # 2 alpha always do
        slow_ins = tuple(slow_points[i] + fuses[i].out_chans for i in range(4))

        self.slow = _pathway(
            block,
            depths,
            stem_kernel=(1, 7, 7),
            width=width,
            ins=slow_ins,
            mids=mids,
            temporal=SLOW_TEMPORAL,
            alphas_in=slow_alpha_points,
            alphas=self.alphas,
            stride_in_1x1=stride_in_1x1,
            **layer_kw,
        )
        self.fast = _pathway(
            block,
            depths,
            stem_kernel=(5, 7, 7),
            width=fast_width,
            ins=fast_points,
            mids=fast_mids,
            temporal=SLOWFAST_FAST_TEMPORAL,
            alphas_in=fast_alpha_points,
            alphas=self.fast_alphas,
            stride_in_1x1=stride_in_1x1,
            **layer_kw,
        )
        self.num_features = outs[3] + fast_outs[3]
        self.slow_pool = GlobalAvgPool(windows[0], octave=self.octave)
        self.fast_pool = GlobalAvgPool(windows[1], octave=self.octave)
        self.head = ClassifierHead(self.num_features, num_classes, dropout)
        init_weights(self)
        if zero_init_final_bn:
            zero_init_last_norms(self)

    def octave_input_order(self) -> dict[str, Tensor]:
        """Vanilla input-channel order of the convs that read a [Slow, lateral] concatenation.

        The vanilla network concatenates [slow (S), lateral (F)]; the octave pair holds
        [slow high, lateral high] and [slow low, lateral low], so slicing a vanilla weight into
        OctConv3d blocks must first reorder its input channels (``octavise_state_dict`` does).
        """
        orders: dict[str, Tensor] = {}
        points = (
            ("res2", self.slow.res2, self.fuse_stem),
            ("res3", self.slow.res3, self.fuse_res2),
            ("res4", self.slow.res4, self.fuse_res3),
            ("res5", self.slow.res5, self.fuse_res4),
        )
        for stage_name, stage, fuse in points:
            conv_a = stage[0].conv_a
            n_fuse, lf = fuse.out_chans, fuse.conv.out_low
            n_slow = conv_a.in_channels - n_fuse
            ls = conv_a.in_low - lf
            order = torch.cat(
                [
                    torch.arange(0, n_slow - ls),
                    torch.arange(n_slow, n_slow + n_fuse - lf),
                    torch.arange(n_slow - ls, n_slow),
                    torch.arange(n_slow + n_fuse - lf, n_slow + n_fuse),
                ]
            )
            orders[f"slow.{stage_name}.0.conv_a"] = order
            if stage[0].downsample is not None:
                orders[f"slow.{stage_name}.0.downsample.conv"] = order
        return orders

    def _check_clips(self, x: Sequence[Tensor]) -> None:
        """Raises one line naming the mismatch unless ``x`` is a [slow, fast] pair of clips,
        each a tensor its pathway's stem takes (``check_clip_tensor``), whose frame counts the
        lateral convolutions can join. Under ``torch.jit.trace`` it checks nothing, as the
        octave layers do; a symbolic size passes the size checks."""
        if torch.jit.is_tracing():
            return
        if isinstance(x, Tensor) or not isinstance(x, Sequence):
            got = f"one tensor {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(
                f"SlowFast takes a list [slow clip, fast clip] of (B, 3, T, H, W) tensors, got "
                f"{got}; octvideo.data.transforms.pack_pathways makes the pair from one clip"
            )
        if len(x) != 2:
            got = f"a {type(x).__name__} of {len(x)}"
            raise ValueError(f"SlowFast takes a list [slow clip, fast clip], got {got}")
        slow, fast = x
        for clip, name, pathway in ((slow, "slow", self.slow), (fast, "fast", self.fast)):
            conv = pathway.stem.conv
            dtype = conv.conv_hh.weight.dtype
            what = f"{name} clips"
            check_clip_tensor(clip, "SlowFast", channels=conv.in_channels, dtype=dtype, what=what)
        shapes = f"slow {tuple(slow.shape)}, fast {tuple(fast.shape)}"
        if slow.shape[0] != fast.shape[0] or slow.shape[3:] != fast.shape[3:]:
            raise ValueError(
                f"SlowFast's slow and fast clips need the same batch size and frame size, "
                f"got {shapes}"
            )
        sizes = (*slow.shape[2:], *fast.shape[2:])
        concrete = all(isinstance(n, int) for n in sizes)  # tensors under torch.jit.trace
        if concrete and min(sizes) < 1:
            raise ValueError(f"SlowFast takes clips of 1 or more frames and pixels, got {shapes}")
        want = self.fuse_stem.conv.output_size((fast.shape[2], 1, 1))[0]
        if slow.shape[2] != want:
            a = self.slowfast_alpha
            raise ValueError(
                f"SlowFast's fast clip has {fast.shape[2]} frames, so the lateral connections "
                f"(temporal stride {a}) need a slow clip of {want} frames, got {shapes}; take "
                f"a fast clip of a multiple of {a} frames and every {a}th of them as the slow one "
                f"(fast[:, :, ::{a}])"
            )
        if concrete and not self._pools_take(fast.shape[2]):
            a = self.slowfast_alpha
            raise ValueError(
                f"SlowFast with an octave in time takes a slow clip of {self.min_frames} or more "
                f"frames and a fast one {a}x as long (its laterals pool the fast clip, and its "
                f"low group of half the frames, {a}x in time); got {shapes}"
            )

    def _pools_take(self, fast_frames: int) -> bool:
        """Whether the laterals' time pools take a fast clip of ``fast_frames``: each pools one
        frame, or a whole window of them."""
        high, low = self._time_pools
        return not (1 < fast_frames < high or 1 < -(-fast_frames // 2) < low)

    def forward_features(self, x: Sequence[Tensor]) -> Tensor:
        """Pooled features of both pathways: [slow, fast] clips -> (B, C_slow + C_fast)."""
        self._check_clips(x)
        s, f = self.slow.stem(x[0]), self.fast.stem(x[1])  # (B, 64, T, H/4, W/4), (B, 8, aT, ...)
        s, f = self.fuse_stem(s, f)  # (B, 80, T, H/4, W/4) per group
        s, f = self.slow.res2(s), self.fast.res2(f)  # (B, 256, ...), (B, 32, ...)
        s, f = self.fuse_res2(s, f)  # (B, 320, ...) per group
        s, f = self.slow.res3(s), self.fast.res3(f)  # (B, 512, T, H/8, W/8), (B, 64, ...)
        s, f = self.fuse_res3(s, f)  # (B, 640, ...) per group
        s, f = self.slow.res4(s), self.fast.res4(f)  # (B, 1024, T, H/16, W/16), (B, 128, ...)
        s, f = self.fuse_res4(s, f)  # (B, 1280, ...) per group
        s, f = self.slow.res5(s), self.fast.res5(f)  # (B, 2048, T, H/32, W/32), (B, 256, ...)
        return torch.cat([self.slow_pool(s), self.fast_pool(f)], dim=1)  # (B, 2304)

    def forward(self, x: Sequence[Tensor]) -> Tensor:
        return self.forward_head(self.forward_features(x))  # (B, num_classes)


@register_model
def slowfast_r50(**kwargs: object) -> SlowFast:
    """SlowFast 8x8 ResNet-50 (alpha 4, beta 1/8, 7x1x1 laterals as in the PyTorchVideo zoo);
    keyword arguments override (4x16: ``slowfast_alpha=8, fusion_kernel=5``)."""
    return SlowFast(50, **{"fusion_kernel": 7, **kwargs})  # type: ignore[arg-type]


@register_model
def slowfast_r101(**kwargs: object) -> SlowFast:
    """SlowFast 8x8 ResNet-101 (5x1x1 laterals as in the PyTorchVideo zoo)."""
    return SlowFast(101, **{"fusion_kernel": 5, **kwargs})  # type: ignore[arg-type]
