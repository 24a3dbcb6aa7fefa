"""What octvideo knows of the PyTorchVideo model zoo's recipes, for ``octvideo import`` and for
``octvideo train model.pretrained=`` of a zoo file alike.

- the zoo's Kinetics test protocol (frames counted at 30 fps, mean 0.45 / std 0.225) and its
  8x8 default clip;
- the head pool a zoo model was trained with (``zoo_head_pool``);
- a SlowFast's speed ratio from its clip's stride (``speed_ratio``), and the zoo recipe a
  SlowFast R50's weights show by their lateral kernel (``zoo_recipe``), which train checks a
  pretrained file against (``lateral_kernel_problem``, ``warn_other_speed``).

Reference: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019, and its
PySlowFast / PyTorchVideo code (the TEST and DATA sections of the zoo's configs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from torch import Tensor, nn

from octvideo.models.weights import convert_pytorchvideo_state_dict

logger = logging.getLogger(__name__)

# The PyTorchVideo zoo's Kinetics test protocol (PySlowFast's TEST and DATA sections): frames
# counted at 30 fps, 10 temporal clips x 3 spatial crops of 256 at short side 256.
ZOO_FPS = 30.0
ZOO_MEAN = (0.45, 0.45, 0.45)
ZOO_STD = (0.225, 0.225, 0.225)
DEFAULT_CLIP = (8, 8)  # T x tau of every zoo model's 8x8 recipe and the paper's
# The zoo's heads average-pool a fixed window, the res5 map of a 224 training crop (7 x 7 cells
# at the ResNets' stride of 32), at stride 1 and average the positions' logits (PyTorchVideo's
# hub: (8, 7, 7) for Slow 8x8, (4, 7, 7) for C2D / I3D 8x8, ((8, 7, 7), (32, 7, 7)) for SlowFast
# 8x8); imports set the same ``head_pool``, so that 256 crops score as they do in PyTorchVideo.
ZOO_TRAIN_CROP = 224
RES5_STRIDE = 32
FAST_STRIDE = 2  # the zoo's SlowFast Fast pathways take every 2nd frame (alpha = tau / 2)


def speed_ratio(tau: int) -> int:
    """The SlowFast speed ratio (``slowfast_alpha``) of a clip of stride ``tau``: its Fast pathway
    takes every ``FAST_STRIDE``th frame, so alpha = tau / 2, and at least 1."""
    return max(1, tau // FAST_STRIDE)


def zoo_head_pool(model: str, t: int, tau: int) -> list[int] | list[list[int]]:
    """The ``head_pool`` of a zoo model trained on T x tau clips: its res5 map at the zoo's
    training crop, in cells (T halved by the temporal pool after res2 of C2D and I3D; for
    SlowFast one kernel per pathway, the Fast one of alpha x T frames, alpha = tau / 2)."""
    side = ZOO_TRAIN_CROP // RES5_STRIDE
    if model.startswith("slowfast"):
        return [[t, side, side], [t * speed_ratio(tau), side, side]]
    frames = max(1, t // 2) if model.startswith(("c2d_", "i3d_")) else t
    return [frames, side, side]


class ZooRecipe(NamedTuple):
    """The zoo recipe a SlowFast's weights show: its clip, its name, and the lateral kernel
    that shows it."""

    clip: tuple[int, int]
    name: str  # "SlowFast R50 4x16"
    kernel: int


# The one clip setting a zoo SlowFast's weights keep is its lateral (fusion) kernel: 7 frames in
# PySlowFast's SLOWFAST_8x8_R50 and 5 in SLOWFAST_4x16_R50, whose Fast pathway runs 8 times as
# fast (alpha = tau / 2). The R101s have 5 at 8x8 and at 16x8, both at alpha 4: no clip to tell.
_SLOWFAST_RECIPES = {
    ("slowfast_r50", 7): ((8, 8), "SlowFast R50 8x8"),
    ("slowfast_r50", 5): ((4, 16), "SlowFast R50 4x16"),
}


def lateral_kernel(vanilla: Mapping[str, Tensor]) -> int | None:
    """The temporal kernel of a SlowFast's first lateral connection (alpha-0 keys); None where
    the state has none."""
    fuse = vanilla.get("fuse_stem.conv.conv_hh.weight")
    return int(fuse.shape[2]) if fuse is not None and fuse.ndim == 5 else None


def zoo_recipe(model: str, kernel: int | None) -> ZooRecipe | None:
    """The zoo recipe whose lateral kernel ``kernel`` is, where ``model`` has one of that kernel."""
    known = _SLOWFAST_RECIPES.get((model, kernel))
    return None if known is None or kernel is None else ZooRecipe(*known, kernel)


def pytorchvideo_vanilla(raw: Mapping[str, Tensor], model: str) -> dict[str, Tensor] | None:
    """A PyTorchVideo state dict under ``model``'s alpha-0 keys; None where its layout (one
    pathway or two) is not ``model``'s."""
    try:
        return convert_pytorchvideo_state_dict(raw, slowfast=model.startswith("slowfast"))
    except ValueError:
        return None


def _pretrained_kernel(name: str, raw: Mapping[str, Tensor]) -> int | None:
    """The lateral kernel of a PyTorchVideo state dict ``raw`` that is a SlowFast's of ``name``'s
    layout; None for any other."""
    vanilla = pytorchvideo_vanilla(raw, name) if name.startswith("slowfast") else None
    return lateral_kernel(vanilla or {})


def lateral_kernel_problem(name: str, raw: Mapping[str, Tensor], model: nn.Module) -> str | None:
    """Why a PyTorchVideo SlowFast state dict ``raw`` that ``train model.pretrained=`` loads does
    not fit ``model``, the network ``name`` builds, as import would name it: a lateral kernel
    other than the model's, naming the settings that fit (its zoo recipe's where it shows one).
    None where the kernels agree, or ``raw`` is no such file."""
    kernel = _pretrained_kernel(name, raw)
    if kernel is None or kernel == lateral_kernel(model.state_dict()):
        return None
    fit = f"model.extra.fusion_kernel={kernel}"
    recipe = zoo_recipe(name, kernel)
    if recipe is None:
        return f"its weights' lateral kernel is {kernel} frames: set {fit}"
    t, tau = recipe.clip
    alpha = speed_ratio(tau)
    return (
        f"its weights' lateral kernel of {kernel} frames is the zoo's {recipe.name}'s: set {fit} "
        f"model.extra.slowfast_alpha={alpha} with its clip, data.num_frames={t * alpha} "
        f"data.sampling_rate={FAST_STRIDE} data.slowfast_alpha={alpha}, or import it "
        "('octvideo import', docs/zoo.md), whose run config sets them"
    )


def warn_other_speed(path: str, name: str, raw: Mapping[str, Tensor], model: nn.Module) -> None:
    """Warns where ``model`` runs at another speed ratio than the zoo recipe the lateral kernel
    of ``raw`` (a PyTorchVideo SlowFast file ``path``) shows, as import's ``--clip`` of the
    other recipe warns; the ratio is the user's choice, so this is no refusal."""
    recipe = zoo_recipe(name, _pretrained_kernel(name, raw))
    speed = getattr(model, "slowfast_alpha", None)
    if recipe is None or speed is None:
        return
    trained = speed_ratio(recipe.clip[1])
    if speed == trained:
        return
    logger.warning(
        "model.extra.slowfast_alpha=%d: the lateral kernel of %s, %d frames, is the zoo's "
        "%s's, trained at slowfast_alpha %d; training at %d as asked",
        speed,
        path,
        recipe.kernel,
        recipe.name,
        trained,
        speed,
    )
