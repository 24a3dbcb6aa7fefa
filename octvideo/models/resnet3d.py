"""Octave 3D ResNets for video: C2D, I3D and Slow-only, with optional Non-local blocks.

References:
    Wang et al., "Non-local Neural Networks", CVPR 2018: the video ResNet-50 (C2D, I3D with 3x1x1
        inflation in every res2 block, res3 blocks 1 and 3, res4 blocks 1, 3, 5, res5 block 2;
        temporal max-pool after res2; Non-local blocks after every other block of res3 and res4).
    Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019: Slow-only (3x1x1
        in res4 and res5 only, no temporal pooling).
    Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): Oct-C2D / Oct-I3D (Table 8):
        OctConv in res2-res4 with a spatial octave; stem and res5 vanilla.

Layout (8 x 224 x 224 clip, ResNet-50; shapes of the high group)::

    clip (B, 3, 8, 224, 224)
      stem: conv kT x 7 x 7 stride (1, 2, 2) -> bn -> relu -> max-pool 1x3x3 stride (1, 2, 2)
                                                                 (B, 64, 8, 56, 56)   vanilla
      res2: 3 blocks                                             (B, 256, 8, 56, 56)  alpha[0]
      pool2: temporal max-pool 2x1x1 (C2D, I3D)                  (B, 256, 4, 56, 56)
      res3: 4 blocks, stride (1, 2, 2)      [+ NL after 1, 3]    (B, 512, 4, 28, 28)  alpha[1]
      res4: 6 blocks, stride (1, 2, 2)      [+ NL after 1, 3, 5] (B, 1024, 4, 14, 14) alpha[2]
      res5: 3 blocks, stride (1, 2, 2)      (block 0 merges)     (B, 2048, 4, 7, 7)   alpha[3] = 0
      global average pool (per group) -> dropout -> fc           (B, num_classes)
        (``head_pool``: PyTorchVideo's fixed-kernel pool, averaged over its positions)

With an octave every feature map is a pair (high, low): the low group holds
``low_channels(C, alpha)`` channels one octave down (half H and W, and half T for the
spatio-temporal octave). The split happens in res2's first block (its conv_a and shortcut take the
vanilla stem output), the merge in res5's first block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from octvideo.models._registry import register_model
from octvideo.models.checks import (
    ArgumentError,
    check_clip_tensor,
    check_dropout,
    check_kernel,
    check_layer_classes,
    check_octave,
    check_switches,
    check_temporal_kernels,
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
from octvideo.models.non_local import NonLocal3d
from octvideo.ops import OctPair, OctPool3d
from octvideo.ops.pair import is_whole

# Temporal kernel of conv_a per stage (res2..res5), cycled over the stage's blocks.
C2D_TEMPORAL: tuple[tuple[int, ...], ...] = ((1,), (1,), (1,), (1,))
I3D_TEMPORAL: tuple[tuple[int, ...], ...] = ((3,), (3, 1), (3, 1), (1, 3))
SLOW_TEMPORAL: tuple[tuple[int, ...], ...] = ((1,), (1,), (3,), (3,))
# Non-local blocks after these blocks (0-based) of res2..res5: every other block of res3 and res4.
NL_RES34: tuple[tuple[int, ...], ...] = ((), (1, 3), (1, 3, 5), ())

STAGE_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
# (T, H, W) stride of each stage's first block, res2..res5.
STAGE_STRIDES: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2))


def stage_widths(width: int) -> tuple[int, int, int, int]:
    """Bottleneck (mid) channels of res2..res5 after a stem of ``width``: doubled per stage."""
    return (width, width * 2, width * 4, width * 8)


def block_for_depth(depth: int) -> type[Bottleneck] | type[BasicBlock]:
    return BasicBlock if depth < 50 else Bottleneck


def make_stage(
    block: type[Bottleneck] | type[BasicBlock],
    depth: int,
    in_chans: int,
    mid_chans: int,
    *,
    stride: tuple[int, int, int],
    temporal_kernels: Sequence[int],
    nonlocal_after: Sequence[int] = (),
    alpha_in: float,
    alpha: float,
    octave: Sequence[int],
    stride_in_1x1: bool,
    norm_layer: type[nn.Module],
    act_layer: type[nn.Module],
    channel_multiple: int | None = None,
) -> nn.Sequential:
    """One residual stage: ``depth`` blocks named "0".."depth-1", Non-local blocks named "nl<i>"
    after block i, so adding Non-local blocks leaves the residual blocks' keys unchanged."""
    listed = isinstance(nonlocal_after, Sequence) and not isinstance(nonlocal_after, str)
    if not listed or not all(is_whole(i) and 0 <= i < depth for i in nonlocal_after):
        # a float or a bool would match a block (1.0 == 1) or none (1.5) without a word
        raise ArgumentError(
            "nonlocal_blocks",
            f" takes, per stage, the blocks that a Non-local block follows: whole numbers from 0 "
            f"to {depth - 1} in a stage of {depth} blocks; got {nonlocal_after!r}",
        )
    after = {int(i) for i in nonlocal_after}
    out_chans = mid_chans * block.expansion
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(depth):
        layers[str(i)] = block(
            in_chans if i == 0 else out_chans,
            mid_chans,
            out_chans,
            temporal_kernel=temporal_kernels[i % len(temporal_kernels)],
            stride=stride if i == 0 else (1, 1, 1),
            stride_in_1x1=stride_in_1x1,
            alpha_in=alpha_in if i == 0 else alpha,
            alpha=alpha,
            octave=octave,
            norm_layer=norm_layer,
            act_layer=act_layer,
            channel_multiple=channel_multiple,
        )
        if i in after:
            layers[f"nl{i}"] = NonLocal3d(
                out_chans,
                alpha=alpha,
                octave=octave,
                norm_layer=norm_layer,
                channel_multiple=channel_multiple,
            )
    return nn.Sequential(layers)


def make_stages(
    block: type[Bottleneck] | type[BasicBlock],
    depths: Sequence[int],
    ins: Sequence[int],
    mids: Sequence[int],
    *,
    temporal_kernels: Sequence[Sequence[int]],
    nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
    alphas_in: Sequence[float],
    alphas: Sequence[float],
    **stage_kw: Any,
) -> list[nn.Sequential]:
    """res2..res5 (``make_stage`` each, with ``STAGE_STRIDES``): stage i has ``depths[i]`` blocks
    of ``mids[i]`` mid channels, and its first block takes ``ins[i]`` channels split as
    ``alphas_in[i]``. ``stage_kw``: the rest of ``make_stage``'s keywords, for every stage."""
    return [
        make_stage(
            block,
            depths[i],
            ins[i],
            mids[i],
            stride=STAGE_STRIDES[i],
            temporal_kernels=temporal_kernels[i],
            nonlocal_after=nonlocal_blocks[i],
            alpha_in=alphas_in[i],
            alpha=alphas[i],
            **stage_kw,
        )
        for i in range(4)
    ]


class ResNet3D(ClassifierHeadMixin, nn.Module):
    """Octave video ResNet (C2D, I3D, Slow-only), see the module docstring for the layout.

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_classes: classifier outputs.
        in_chans: input channels.
        stem_kernel: (T, H, W) stem conv kernel: (1, 7, 7) C2D / Slow, (5, 7, 7) I3D; odd
            numbers (padded "same").
        temporal_kernels: per stage (res2..res5), conv_a temporal kernels cycled over the
            blocks; odd numbers (padded "same").
        temporal_pool: max-pool 2x1x1 after res2 (C2D, I3D) or not (Slow).
        nonlocal_blocks: per stage, the blocks (0-based) followed by a Non-local block.
        alpha: one low share (res2..res4, res5 vanilla) or one per stage (res2..res5).
        octave: (T, H, W) octave: (1, 2, 2) spatial, (2, 2, 2) spatio-temporal (three factors).
        oct_stem: give the stem an octave (alpha of res2) instead of keeping it vanilla.
        stride_in_1x1: spatial stride on the 1x1 conv_a (Caffe2 MSRA style) instead of the 3x3
            conv_b (torchvision / PyTorchVideo). The default (conv_b) is the layout whose
            multiply-adds reproduce the OctConv paper's Table 8 (19.49 / 28.41 GFLOPs for C2D /
            I3D; stride on conv_a gives 18.57 / 26.25).
        width: stem width (64).
        dropout: dropout before the classifier.
        norm_layer: normalisation class.
        act_layer: activation class.
        zero_init_final_bn: zero scale for each residual block's last norm (PySlowFast's
            ``ZERO_INIT_FINAL_BN``): every block starts as its shortcut.
        channel_multiple: round every low group to the nearest multiple of this
            (``octvideo.ops.low_channels``), so that no group is a size the convolution kernels
            pad; None (the default) keeps the paper's split ``int(alpha * C)``.
        head_pool: (T, H, W) kernel, in res5 cells, of PyTorchVideo's head: average-pool with it
            at stride 1 and average the positions (``GlobalAvgPool``), e.g. (8, 7, 7) for the
            zoo's Slow 8x8, which differs from a global pool on crops larger than the training
            crop; None (the default): global average pooling.

    Attributes:
        min_frames: the fewest frames a clip may have: 2 with the temporal pool, else 1.
    """

    def __init__(
        self,
        depth: int = 50,
        *,
        num_classes: int = 400,
        in_chans: int = 3,
        stem_kernel: tuple[int, int, int] = (1, 7, 7),
        temporal_kernels: Sequence[Sequence[int]] = C2D_TEMPORAL,
        temporal_pool: bool = True,
        nonlocal_blocks: Sequence[Sequence[int]] = ((), (), (), ()),
        alpha: float | Sequence[float] = 0.0,
        octave: Sequence[int] = (1, 2, 2),
        oct_stem: bool = False,
        stride_in_1x1: bool = False,
        width: int = 64,
        dropout: float = 0.5,
        norm_layer: type[nn.Module] = nn.BatchNorm3d,
        act_layer: type[nn.Module] = nn.ReLU,
        zero_init_final_bn: bool = False,
        channel_multiple: int | None = None,
        head_pool: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        depth = check_whole("depth", depth)  # numbers and switches as Python's (``checks``)
        if depth not in STAGE_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
        stem_kernel = check_kernel("stem_kernel", stem_kernel, (5, 7, 7), "I3D")
        temporal_kernels = check_temporal_kernels(temporal_kernels)
        if not isinstance(nonlocal_blocks, Sequence) or len(nonlocal_blocks) != 4:
            raise ArgumentError(
                "nonlocal_blocks", f" needs one entry per stage (4), got {nonlocal_blocks!r}"
            )
        num_classes = check_whole("num_classes", num_classes)
        in_chans, width = check_whole("in_chans", in_chans), check_whole("width", width)
        if channel_multiple is not None:
            channel_multiple = check_whole("channel_multiple", channel_multiple)
        temporal_pool, oct_stem, stride_in_1x1, zero_init_final_bn = check_switches(
            temporal_pool=temporal_pool,
            oct_stem=oct_stem,
            stride_in_1x1=stride_in_1x1,
            zero_init_final_bn=zero_init_final_bn,
        )
        check_layer_classes(norm_layer=norm_layer, act_layer=act_layer)
        check_dropout(dropout)  # before any layer is built; ClassifierHead checks it again
        window = None if head_pool is None else check_window(head_pool)  # before building
        self.octave = check_octave(octave)
        self.alphas = stage_alphas(alpha)
        self.depth = depth
        block = block_for_depth(depth)
        depths = STAGE_DEPTHS[depth]
        stem_alpha = self.alphas[0] if oct_stem else 0.0
        common = {
            "octave": self.octave,
            "stride_in_1x1": stride_in_1x1,
            "norm_layer": norm_layer,
            "act_layer": act_layer,
            "channel_multiple": channel_multiple,
        }

        self.stem = Stem(
            in_chans,
            width,
            stem_kernel,
            alpha=stem_alpha,
            octave=self.octave,
            norm_layer=norm_layer,
            act_layer=act_layer,
            channel_multiple=channel_multiple,
        )
        mids = stage_widths(width)
        outs = tuple(m * block.expansion for m in mids)
        ins = (width, *outs[:3])
        self.res2, self.res3, self.res4, self.res5 = make_stages(
            block,
            depths,
            ins,
            mids,
            temporal_kernels=temporal_kernels,
            nonlocal_blocks=nonlocal_blocks,
            alphas_in=(stem_alpha, *self.alphas[:3]),
            alphas=self.alphas,
            **common,
        )
        self.pool2 = (
            OctPool3d((2, 1, 1), (2, 1, 1), mode="max", octave=self.octave)
            if temporal_pool
            else None
        )
        # pool2's 2x1x1 window needs two frames; every other layer pads or keeps time
        self.min_frames = 2 if temporal_pool else 1
        self.num_features = outs[3]
        self.global_pool = GlobalAvgPool(window, octave=self.octave)
        self.head = ClassifierHead(self.num_features, num_classes, dropout)
        init_weights(self)
        if zero_init_final_bn:
            zero_init_last_norms(self)
        # init_weights overwrote the Non-local blocks' own init (N(0, 0.01), zero output norm)
        for m in self.modules():
            if isinstance(m, NonLocal3d):
                m.reset_parameters()

    def _check_clip(self, x: Tensor) -> None:
        """Raises one line naming this network unless ``x`` is a (B, C, T, H, W) tensor of the
        stem's channels and its weights' dtype (``check_clip_tensor``) with ``min_frames``
        frames and a pixel a side or more. Under ``torch.jit.trace`` it checks nothing, as the
        octave layers do: a trace records no Python branch, so a check would guard the example
        alone. A symbolic frame size passes: the check costs no graph op."""
        if torch.jit.is_tracing():
            return
        conv = self.stem.conv
        net = f"ResNet3D-{self.depth}"
        check_clip_tensor(x, net, channels=conv.in_channels, dtype=conv.conv_hh.weight.dtype)
        if not all(isinstance(n, int) for n in x.shape[2:]):
            return
        t, h, w = x.shape[2:]
        if t < self.min_frames or min(h, w) < 1:
            pool = "" if self.pool2 is None else " (it pools time 2x after res2, as C2D and I3D do)"
            raise ValueError(
                f"{net} takes (B, C, T, H, W) clips of {self.min_frames} or more "
                f"frames{pool} and 1x1 pixels or more; got {tuple(x.shape)}"
            )

    def forward_stages(self, x: Tensor) -> OctPair:
        """Stem and the four stages: (B, 3, T, H, W) -> pair of res5 features."""
        self._check_clip(x)
        x = self.stem(x)  # (B, 64, T, H/4, W/4)
        x = self.res2(x)  # (B, 256, T, H/4, W/4) per group
        if self.pool2 is not None:
            x = self.pool2(x)  # (B, 256, T/2, H/4, W/4) per group
        x = self.res3(x)  # (B, 512, T', H/8, W/8) per group
        x = self.res4(x)  # (B, 1024, T', H/16, W/16) per group
        return self.res5(x)  # (B, 2048, T', H/32, W/32) per group

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features: (B, 3, T, H, W) -> (B, num_features)."""
        return self.global_pool(self.forward_stages(x))  # (B, 2048)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))  # (B, num_classes)


# ---------------------------------------------------------------------------------- variants


# Recipes: the keyword arguments of each family; a variant's own keyword arguments override them.
_C2D: dict[str, object] = {"stem_kernel": (1, 7, 7), "temporal_kernels": C2D_TEMPORAL}
_I3D: dict[str, object] = {"stem_kernel": (5, 7, 7), "temporal_kernels": I3D_TEMPORAL}
_SLOW: dict[str, object] = {
    "stem_kernel": (1, 7, 7),
    "temporal_kernels": SLOW_TEMPORAL,
    "temporal_pool": False,
}


def _create_resnet3d(depth: int, recipe: dict[str, object], **kwargs: object) -> ResNet3D:
    """ResNet3D of ``depth`` built with ``recipe``, ``kwargs`` overriding it."""
    return ResNet3D(depth, **{**recipe, **kwargs})  # type: ignore[arg-type]


@register_model
def c2d_r18(**kwargs: object) -> ResNet3D:
    """C2D ResNet-18 (basic blocks, no temporal kernels)."""
    return _create_resnet3d(18, _C2D, **kwargs)


@register_model
def c2d_r34(**kwargs: object) -> ResNet3D:
    """C2D ResNet-34."""
    return _create_resnet3d(34, _C2D, **kwargs)


@register_model
def c2d_r50(**kwargs: object) -> ResNet3D:
    """C2D ResNet-50 (Non-local paper baseline; Oct-C2D in the OctConv paper, Table 8)."""
    return _create_resnet3d(50, _C2D, **kwargs)


@register_model
def c2d_r101(**kwargs: object) -> ResNet3D:
    """C2D ResNet-101."""
    return _create_resnet3d(101, _C2D, **kwargs)


@register_model
def c2d_r152(**kwargs: object) -> ResNet3D:
    """C2D ResNet-152."""
    return _create_resnet3d(152, _C2D, **kwargs)


@register_model
def i3d_r18(**kwargs: object) -> ResNet3D:
    """I3D ResNet-18 (3x3x3 conv_a in the inflated blocks)."""
    return _create_resnet3d(18, _I3D, **kwargs)


@register_model
def i3d_r34(**kwargs: object) -> ResNet3D:
    """I3D ResNet-34."""
    return _create_resnet3d(34, _I3D, **kwargs)


@register_model
def i3d_r50(**kwargs: object) -> ResNet3D:
    """I3D ResNet-50 (Non-local paper's 3x1x1 inflation; Oct-I3D in the OctConv paper)."""
    return _create_resnet3d(50, _I3D, **kwargs)


@register_model
def i3d_r101(**kwargs: object) -> ResNet3D:
    """I3D ResNet-101."""
    return _create_resnet3d(101, _I3D, **kwargs)


@register_model
def i3d_r152(**kwargs: object) -> ResNet3D:
    """I3D ResNet-152."""
    return _create_resnet3d(152, _I3D, **kwargs)


@register_model
def i3d_nl_r50(**kwargs: object) -> ResNet3D:
    """I3D ResNet-50 + 5 Non-local blocks (after blocks 1, 3 of res3 and 1, 3, 5 of res4).

    On octave features the Non-local block attends at full resolution with embeddings read from
    both groups and the response written back to both (see ``octvideo.models.non_local``).
    """
    return _create_resnet3d(50, {**_I3D, "nonlocal_blocks": NL_RES34}, **kwargs)


@register_model
def i3d_nl_r101(**kwargs: object) -> ResNet3D:
    """I3D ResNet-101 + Non-local blocks after every other block of res3 and res4."""
    nonlocal_blocks = ((), (1, 3), tuple(range(1, 23, 2)), ())
    return _create_resnet3d(101, {**_I3D, "nonlocal_blocks": nonlocal_blocks}, **kwargs)


@register_model
def slow_r50(**kwargs: object) -> ResNet3D:
    """Slow-only ResNet-50 (SlowFast paper; 3x1x1 conv_a in res4 and res5, no temporal pool)."""
    return _create_resnet3d(50, _SLOW, **kwargs)


@register_model
def slow_r101(**kwargs: object) -> ResNet3D:
    """Slow-only ResNet-101."""
    return _create_resnet3d(101, _SLOW, **kwargs)
