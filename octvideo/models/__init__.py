"""Octave video backbones (C2D, I3D, Slow, SlowFast ResNets), their registry and weight tools.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049), video half (Table 8).

Importing this package needs only torch; fvcore and pytorchvideo are imported inside the functions
that use them.
"""

from octvideo.models._registry import (
    create_model,
    is_model,
    list_models,
    model_class,
    register_model,
    unknown_model_hint,
)
from octvideo.models.layers import (
    BasicBlock,
    Bottleneck,
    ClassifierHead,
    GlobalAvgPool,
    Stem,
    stage_alphas,
)
from octvideo.models.non_local import NonLocal3d
from octvideo.models.resnet3d import ResNet3D
from octvideo.models.slowfast import FuseFastToSlow, SlowFast

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ClassifierHead",
    "FuseFastToSlow",
    "GlobalAvgPool",
    "NonLocal3d",
    "ResNet3D",
    "SlowFast",
    "Stem",
    "create_model",
    "is_model",
    "list_models",
    "model_class",
    "register_model",
    "stage_alphas",
    "unknown_model_hint",
]
