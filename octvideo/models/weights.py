"""Moving weights between checkpoints and octave models.

- PyTorchVideo model-zoo checkpoints (``slow_r50``, ``c2d_r50``, ``i3d_r50``, ``slowfast_r50``
  and their depth variants) map key by key onto the alpha-0 octvideo model;
- any vanilla (alpha-0) state dict initialises an alpha > 0 model by slicing each convolution
  into its four OctConv3d blocks and each norm into its high and low channels ("octavising");
- a 2D torchvision ResNet state dict inflates into C2D or I3D the I3D way (Carreira & Zisserman,
  CVPR 2017): each 2D kernel is repeated over the temporal kernel and divided by its length.

Reference: Chen et al., "Drop an Octave", ICCV 2019: the four OctConv weights are the blocks of a
vanilla weight, so the parameter count is unchanged and a vanilla checkpoint slices in.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from octvideo.ops import OctConv3d, OctNorm

_PTV_BLOCK = {
    "branch1_conv": "downsample.conv.conv_hh",
    "branch1_norm": "downsample.bn.high",
    "branch2.conv_a": "conv_a.conv_hh",
    "branch2.norm_a": "bn_a.high",
    "branch2.conv_b": "conv_b.conv_hh",
    "branch2.norm_b": "bn_b.high",
    "branch2.conv_c": "conv_c.conv_hh",
    "branch2.norm_c": "bn_c.high",
}
_PTV_STEM = {"conv": "conv.conv_hh", "norm": "bn.high"}
_PTV_FUSE = {"conv_fast_to_slow": "conv.conv_hh", "norm": "bn.high"}
_RESBLOCK = re.compile(
    r"res_blocks\.(\d+)\.(branch1_conv|branch1_norm|branch2\.\w+?_[abc])\.(\w+)$"
)


def _split_module(rest: str, table: Mapping[str, str]) -> str:
    module, _, leaf = rest.rpartition(".")
    if module not in table:
        raise KeyError(rest)
    return f"{table[module]}.{leaf}"


def _res_block(rest: str) -> str:
    m = _RESBLOCK.match(rest)
    if m is None:
        raise KeyError(rest)
    return f"{m.group(1)}.{_PTV_BLOCK[m.group(2)]}.{m.group(3)}"


def with_batch_counts(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with a ``num_batches_tracked`` of 0 beside each batch norm's ``running_mean``
    that lacks one, as torch's ``BatchNorm`` fills it when it loads such a dict (PyTorchVideo and
    torchvision load them strictly); the count plays no part in inference, nor in training at a
    set momentum."""
    out = dict(state)
    for key in state:
        if key.endswith(".running_mean"):
            count = f"{key.removesuffix('running_mean')}num_batches_tracked"
            out.setdefault(count, torch.tensor(0, dtype=torch.long))
    return out


def convert_pytorchvideo_state_dict(
    state_dict: Mapping[str, Tensor], *, slowfast: bool
) -> dict[str, Tensor]:
    """Renames a PyTorchVideo ResNet / SlowFast state dict to the alpha-0 octvideo model's keys,
    with the batch counts it lacks (``with_batch_counts``).

    Args:
        state_dict: ``model.state_dict()`` of a ``pytorchvideo.models.hub`` model (or the
            ``"model_state"`` entry of a zoo ``.pyth`` file).
        slowfast: the two-pathway layout of a SlowFast, else the one pathway of a C2D, I3D
            or Slow ResNet.

    Raises:
        ValueError: naming every key that has no octvideo counterpart.
    """
    state_dict = with_batch_counts(state_dict)
    blocks = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.")})
    stage_blocks = sorted(
        {int(k.split(".")[1]) for k in state_dict if ".res_blocks." in k}
    )  # the residual stages, in order, skipping pooling blocks
    stage_name = {b: f"res{i + 2}" for i, b in enumerate(stage_blocks)}
    head_block = blocks[-1] if blocks else -1
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        parts = key.split(".")
        try:
            if parts[0] != "blocks":
                raise KeyError(key)
            b, rest = int(parts[1]), ".".join(parts[2:])
            if b == head_block and rest in ("proj.weight", "proj.bias"):
                new = f"head.fc.{parts[-1]}"
            elif not slowfast and b == 0:
                new = f"stem.{_split_module(rest, _PTV_STEM)}"
            elif not slowfast and b in stage_name:
                new = f"{stage_name[b]}.{_res_block(rest)}"
            elif slowfast and rest.startswith("multipathway_fusion."):
                point = "stem" if b == 0 else f"res{b + 1}"
                new = f"fuse_{point}.{_split_module(rest.split('.', 1)[1], _PTV_FUSE)}"
            elif slowfast and rest.startswith("multipathway_blocks."):
                _, path, inner = rest.split(".", 2)
                pathway = ("slow", "fast")[int(path)]
                if b == 0:
                    new = f"{pathway}.stem.{_split_module(inner, _PTV_STEM)}"
                else:
                    new = f"{pathway}.res{b + 1}.{_res_block(inner)}"
            else:
                raise KeyError(key)
        except (KeyError, ValueError):
            unknown.append(key)
            continue
        out[new] = value
    if unknown:
        raise ValueError(
            f"{len(unknown)} PyTorchVideo keys have no octvideo "
            f"{'SlowFast' if slowfast else 'ResNet'} counterpart: "
            f"{_few(unknown)}"
        )
    return out


class NonFinite(NamedTuple):
    """A tensor of a state dict that holds NaN or infinite values, and how many of each."""

    key: str
    nan: int
    inf: int

    def __str__(self) -> str:
        held = [f"{self.nan} NaN"] if self.nan else []
        if self.inf:
            held.append(f"{self.inf} infinite value{'s' if self.inf > 1 else ''}")
        return f"weight {self.key} holds {' and '.join(held)}"


def non_finite_tensors(state_dict: Mapping[str, object]) -> list[NonFinite]:
    """Every floating-point tensor of ``state_dict`` that holds a NaN or an infinity, in order.

    No network computes with such weights (one NaN reaches every logit after it), so a
    checkpoint that holds them is broken. Values other than tensors, and integer tensors
    (``num_batches_tracked``), are skipped.
    """
    found = (_non_finite(key, value) for key, value in state_dict.items())
    return [f for f in found if f is not None]


def _non_finite(key: str, value: object) -> NonFinite | None:
    if not isinstance(value, Tensor) or not (value.is_floating_point() or value.is_complex()):
        return None
    if bool(torch.isfinite(value.sum())):  # a NaN or an infinity makes the sum one
        return None
    nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
    return NonFinite(key, nan, inf) if nan or inf else None  # else a large sum overflowed


# state-dict leaves that no training makes negative, and what each value is: a batch norm's
# running variance (an average of variances; precise BN clamps its own at 0) and its count
_NEVER_NEGATIVE = {
    "running_var": "negative variance",
    "num_batches_tracked": "negative batch count",
}


class Impossible(NamedTuple):
    """A tensor of a state dict that holds values no training writes, and how many
    (``what``: "negative variance")."""

    key: str
    count: int
    what: str

    def __str__(self) -> str:
        return f"weight {self.key} holds {self.count} {self.what}{'s' if self.count > 1 else ''}"


def impossible_tensors(state_dict: Mapping[str, object]) -> list[Impossible]:
    """Every tensor of ``state_dict`` that holds values no training writes, in order: a batch
    norm's negative running variance or negative ``num_batches_tracked`` (a damaged or edited
    file). Only such certain invariants: a finite weight of any size is a network's own."""
    found = (_impossible(key, value) for key, value in state_dict.items())
    return [f for f in found if f is not None]


def _impossible(key: str, value: object) -> Impossible | None:
    what = _NEVER_NEGATIVE.get(key.rpartition(".")[2])
    if what is None or not isinstance(value, Tensor) or value.is_complex():
        return None
    count = int((value < 0).sum())  # NaN is not below 0: non_finite_tensors names it
    return Impossible(key, count, what) if count else None


def broken_tensors(state_dict: Mapping[str, object]) -> list[NonFinite | Impossible]:
    """Every tensor of ``state_dict`` that no network can hold, in order: NaN or infinite values
    (``non_finite_tensors``), else values no training writes (``impossible_tensors``)."""
    found = (
        _non_finite(key, value) or _impossible(key, value) for key, value in state_dict.items()
    )
    return [f for f in found if f is not None]


def first_non_finite(broken: Sequence[NonFinite | Impossible], noun: str) -> str:
    """The first of ``broken`` (``non_finite_tensors``, ``broken_tensors``), and how many more
    ``noun``s are broken: "weight w holds 1 NaN (and 2 more tensors)"."""
    first, *others = broken
    if not others:
        return str(first)
    return f"{first} (and {len(others)} more {noun}{'s' if len(others) > 1 else ''})"


def _few(keys: Sequence[str]) -> str:
    """The first three of ``keys``, then how many more: ``a, b, c and 4 more``."""
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return f"{', '.join(keys[:3])}{more}"


class StateMismatch(NamedTuple):
    """How a state dict misses the one a model has: its keys whose shapes differ, each with
    (the dict's shape, the model's); the model's keys it lacks; its keys the model lacks.

    ``str()`` is one line, a few keys of each kind then how many more:
    ``shape differs: head.fc.weight (6, 512) here (400, 512); missing: ...; unexpected: ...``.
    """

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]
    missing: list[str]
    unexpected: list[str]

    def renamed(self, name: Callable[[str], str]) -> StateMismatch:
        """The same differences under the names ``name`` gives the keys (a source file's)."""
        return StateMismatch(
            {name(k): shapes for k, shapes in self.shapes.items()},
            [name(k) for k in self.missing],
            [name(k) for k in self.unexpected],
        )

    def __str__(self) -> str:
        shapes = [f"{k} {theirs} here {ours}" for k, (theirs, ours) in self.shapes.items()]
        groups = (
            ("shape differs", shapes),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
        )
        return "; ".join(f"{what}: {_few(keys)}" for what, keys in groups if keys)


def state_mismatch(model: nn.Module, state: Mapping[str, Tensor]) -> StateMismatch | None:
    """Why ``state`` does not load into ``model`` strictly; None if it does."""
    own = model.state_dict()
    diff = StateMismatch(
        {
            k: (tuple(v.shape), tuple(own[k].shape))
            for k, v in state.items()
            if k in own and own[k].shape != v.shape
        },
        [k for k in own if k not in state],
        [k for k in state if k not in own],
    )
    return diff if any(diff) else None


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """``load_state_dict(strict=True)`` with a one-line error that names what does not fit.

    Raises:
        ValueError: naming the keys of other shapes, the missing and the unexpected ones
            (``StateMismatch``).
    """
    diff = state_mismatch(model, state_dict)
    if diff:
        raise ValueError(f"state dict does not fit {type(model).__name__}: {diff}")
    model.load_state_dict(state_dict, strict=True)


def is_alpha0_state(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` has no octave cross or low-frequency paths: an alpha-0 network's, which
    ``octavise_state_dict`` slices into an octave one."""
    return not any(
        k.endswith(("conv_hl.weight", "conv_lh.weight", "conv_ll.weight")) for k in state
    )


def octavise_state_dict(
    vanilla_sd: Mapping[str, Tensor],
    model: nn.Module,
    *,
    keep_own: Iterable[str] = (),
) -> dict[str, Tensor]:
    """A state dict for ``model`` (any alpha) from the state dict of its alpha-0 twin.

    Every ``OctConv3d`` takes the four blocks of its vanilla weight (``<name>.conv_hh.weight`` in
    the vanilla dict); every ``OctNorm`` splits its vanilla statistics and affine parameters into
    the first (high) and last (low) channels; everything else is copied. At alpha 0 this is the
    identity.

    Args:
        vanilla_sd: state dict of the same variant built with alpha 0.
        model: the octave model (its own weights are not changed).
        keep_own: module-name prefixes whose weights are taken from ``model`` itself (e.g. a new
            classifier, Non-local blocks absent from the source).

    Raises:
        ValueError: naming vanilla keys that are missing or left over, or the first layer whose
            vanilla weight has another shape.
    """
    keep = tuple(keep_own)
    target = copy.deepcopy(model)
    orders = model.octave_input_order() if hasattr(model, "octave_input_order") else {}
    used: set[str] = set()
    missing: list[str] = []

    def take(key: str) -> Tensor | None:
        if key not in vanilla_sd:
            missing.append(key)
            return None
        used.add(key)
        return vanilla_sd[key]

    with torch.no_grad():
        for name, m in target.named_modules():
            if keep and name.startswith(keep):
                continue
            if isinstance(m, OctConv3d):
                weight = take(f"{name}.conv_hh.weight")
                bias = take(f"{name}.conv_hh.bias") if m.conv_hh.bias is not None else None
                if weight is None:
                    continue
                try:
                    if name in orders:
                        weight = weight[:, orders[name]]
                    m.load_vanilla_weight(weight, bias)
                except (ValueError, IndexError, RuntimeError) as err:
                    raise ValueError(f"layer {name}: {err}") from err
            elif isinstance(m, OctNorm):
                n_high = m.high.num_features
                n_all = n_high + (m.low.num_features if m.low is not None else 0)
                for leaf, own in m.high.state_dict().items():
                    value = take(f"{name}.high.{leaf}")
                    if value is None:
                        continue
                    if value.ndim != 0 and tuple(value.shape) != (n_all,):
                        raise ValueError(
                            f"layer {name}: vanilla {leaf} of shape {tuple(value.shape)} does "
                            f"not fit an OctNorm of {n_all} channels"
                        )
                    if value.ndim == 0:  # num_batches_tracked
                        own.copy_(value)
                        if m.low is not None:
                            m.low.state_dict()[leaf].copy_(value)
                        continue
                    own.copy_(value[:n_high])
                    if m.low is not None:
                        m.low.state_dict()[leaf].copy_(value[n_high:])
        out = target.state_dict()
        octave_owned = tuple(
            f"{n}." for n, m in target.named_modules() if isinstance(m, OctConv3d | OctNorm)
        )
        for key in out:
            if key.startswith(octave_owned) or (keep and key.startswith(keep)):
                continue
            value = take(key)
            if value is not None:
                out[key] = value.to(out[key].dtype).clone()
    extra = sorted(k for k in vanilla_sd if k not in used and not (keep and k.startswith(keep)))
    if missing or extra:
        raise ValueError(
            f"vanilla state dict does not fit {type(model).__name__}: "
            f"{StateMismatch({}, missing, extra)}"
        )
    return out


_TV_BLOCK = {
    "conv1": "conv_a.conv_hh",
    "bn1": "bn_a.high",
    "conv2": "conv_b.conv_hh",
    "bn2": "bn_b.high",
    "conv3": "conv_c.conv_hh",
    "bn3": "bn_c.high",
    "downsample.0": "downsample.conv.conv_hh",
    "downsample.1": "downsample.bn.high",
}


def inflate_resnet2d(
    state_dict_2d: Mapping[str, Tensor], model: nn.Module, *, with_classifier: bool = False
) -> dict[str, Tensor]:
    """A state dict for a C2D / I3D ``ResNet3D`` (any alpha, any depth) from a torchvision ResNet.

    Each 2D kernel (O, I, kH, kW) becomes (O, I, kT, kH, kW): repeated kT times and divided by kT,
    so a clip of identical frames gives the 2D network's activations (exactly so for C2D, and away
    from the temporal borders for I3D). The classifier is the model's own (ImageNet's classes are
    not a video data set's, even where there are 1000 of each); Non-local blocks keep their own
    initialisation. Missing batch counts are filled (``with_batch_counts``).

    Args:
        state_dict_2d: torchvision ``resnet{18,34,50,101,152}`` layout (conv1, bn1, layer1..4, fc).
        model: the target ``ResNet3D``.
        with_classifier: copy the 2D classifier too (the model has 1000 outputs), so that the
            3D network gives the 2D one's logits.

    Raises:
        ValueError: naming 2D keys with no 3D counterpart, 3D weights left without a source, or
            the kind of network a wide ResNet or a ResNeXt is, which octvideo does not build.
    """
    state_dict_2d = with_batch_counts(state_dict_2d)
    check_resnet2d(state_dict_2d)
    kernels = {name: m.kernel_size for name, m in model.named_modules() if isinstance(m, OctConv3d)}
    vanilla: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict_2d.items():
        module, _, leaf = key.rpartition(".")
        if module in ("conv1", "bn1"):
            new = f"stem.{_PTV_STEM['conv' if module == 'conv1' else 'norm']}.{leaf}"
        elif module == "fc":
            new = f"head.fc.{leaf}"
        elif (m := re.match(r"layer(\d)\.(\d+)\.(.+)$", module)) and m.group(3) in _TV_BLOCK:
            new = f"res{int(m.group(1)) + 1}.{m.group(2)}.{_TV_BLOCK[m.group(3)]}.{leaf}"
        else:
            unknown.append(key)
            continue
        conv = new.rsplit(".conv_hh.", 1)[0]
        if value.ndim == 4 and conv in kernels:
            kt = kernels[conv][0]
            value = value.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        vanilla[new] = value
    if unknown:
        raise ValueError(f"{len(unknown)} 2D keys have no 3D counterpart: {_few(unknown)}")
    keep = [n for n, m in model.named_modules() if type(m).__name__ == "NonLocal3d"]
    if not with_classifier:
        vanilla.pop("head.fc.weight", None)
        vanilla.pop("head.fc.bias", None)
        keep.append("head.fc")
    return octavise_state_dict(vanilla, model, keep_own=keep)


def check_resnet2d(state_dict_2d: Mapping[str, Tensor]) -> None:
    """Refuses the torchvision bottleneck networks that are not ResNets, whatever their depth:
    no octvideo model takes them.

    Raises:
        ValueError: naming the kind of network a wide ResNet or a ResNeXt is.
    """
    variant = _resnet2d_variant(state_dict_2d)
    if variant:
        raise ValueError(
            f"the 2D network is {variant}, which octvideo does not build (its ResNets' "
            "bottlenecks are as wide as the stem, without groups): inflate a torchvision "
            "resnet18, 34, 50, 101 or 152"
        )


def _resnet2d_variant(state_dict_2d: Mapping[str, Tensor]) -> str | None:
    """What a torchvision bottleneck network other than a ResNet is (ResNeXt: grouped 3x3
    convolutions; wide ResNet: bottlenecks wider than the stem), or None."""
    stem = state_dict_2d.get("conv1.weight")
    conv_a = state_dict_2d.get("layer1.0.conv1.weight")
    conv_b = state_dict_2d.get("layer1.0.conv2.weight")
    bottleneck = "layer1.0.conv3.weight" in state_dict_2d
    if not bottleneck or any(w is None for w in (stem, conv_a, conv_b)):
        return None  # not a bottleneck network: the conversion names what does not fit
    groups = int(conv_b.shape[0]) // max(1, int(conv_b.shape[1]))
    if groups > 1:
        return f"a ResNeXt ({groups} groups of {int(conv_b.shape[1])} channels)"
    if conv_a.shape[0] != stem.shape[0]:
        return (
            f"a wide ResNet (bottlenecks of {int(conv_a.shape[0])} channels after a stem of "
            f"{int(stem.shape[0])})"
        )
    return None


def convert_pytorchvideo(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """A PyTorchVideo state dict renamed and sliced for ``model`` (any alpha); the engine's entry.

    A classifier of another shape is passed through as is (the caller keeps its own).
    """
    slowfast = hasattr(model, "slowfast_alpha")
    return octavise_state_dict(
        convert_pytorchvideo_state_dict(state_dict, slowfast=slowfast), model
    )
