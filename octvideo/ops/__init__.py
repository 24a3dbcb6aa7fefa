"""Octave convolution operators for video: the (high, low) pair, OctConv3d, per-group layers,
their analytic cost, the inference fusion step and the size guard a trace records. Depends on
torch only.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049).
"""

from octvideo.ops.capture import guard_traced_size
from octvideo.ops.cost import flops_ratio, low_share, memory_ratio
from octvideo.ops.fusion import FusedOctConv3d, forget_made_weights, fuse_for_inference
from octvideo.ops.layers import (
    FoldedNorm,
    OctAct,
    OctDropout,
    OctMerge,
    OctNorm,
    OctPool3d,
    OctSplit,
    conv_norm_act,
    oct_add,
)
from octvideo.ops.octconv import OctConv3d, conv_output_size
from octvideo.ops.pair import (
    MEMORY_FORMATS,
    SPATIAL_OCTAVE,
    SPATIOTEMPORAL_OCTAVE,
    Octave,
    OctPair,
    as_pair,
    cat_pairs,
    check_pair,
    downsample,
    fit_low,
    is_channels_last,
    low_channels,
    low_size,
    max_pool3d,
    memory_format_for,
    normalize_octave,
    to_memory_format,
    unpair,
    upsample,
)

__all__ = [
    "MEMORY_FORMATS",
    "SPATIAL_OCTAVE",
    "SPATIOTEMPORAL_OCTAVE",
    "FoldedNorm",
    "FusedOctConv3d",
    "OctAct",
    "OctConv3d",
    "OctDropout",
    "OctMerge",
    "OctNorm",
    "OctPair",
    "OctPool3d",
    "OctSplit",
    "Octave",
    "as_pair",
    "cat_pairs",
    "conv_norm_act",
    "check_pair",
    "conv_output_size",
    "downsample",
    "fit_low",
    "forget_made_weights",
    "fuse_for_inference",
    "guard_traced_size",
    "is_channels_last",
    "flops_ratio",
    "low_channels",
    "low_share",
    "low_size",
    "max_pool3d",
    "memory_format_for",
    "memory_ratio",
    "normalize_octave",
    "oct_add",
    "to_memory_format",
    "unpair",
    "upsample",
]
