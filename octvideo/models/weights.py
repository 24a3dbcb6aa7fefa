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
# the octvideo module of each PyTorchVideo one, read backwards to name a key in a file's terms
_PTV_BLOCK_BACK = {ours: theirs for theirs, ours in _PTV_BLOCK.items()}
_PTV_STEM_BACK = {ours: theirs for theirs, ours in _PTV_STEM.items()}
_PTV_FUSE_BACK = {ours: theirs for theirs, ours in _PTV_FUSE.items()}
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
    stage_blocks, head_block = _zoo_blocks(state_dict)
    stage_name = {b: f"res{i + 2}" for i, b in enumerate(stage_blocks)}
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


def _zoo_blocks(state_dict: Mapping[str, Tensor]) -> tuple[list[int], int]:
    """The ``blocks.N`` of a PyTorchVideo state dict's residual stages, in order (pooling blocks
    hold no weights), and the last block, the classifier's (-1 where there is none)."""
    numbers = set()
    stages = set()
    for key in state_dict:
        parts = key.split(".")
        if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
            numbers.add(int(parts[1]))
            if ".res_blocks." in key:
                stages.add(int(parts[1]))
    return sorted(stages), max(numbers, default=-1)


def pytorchvideo_key(key: str, state_dict: Mapping[str, Tensor], *, slowfast: bool) -> str:
    """The PyTorchVideo key that ``convert_pytorchvideo_state_dict`` renames to the octvideo
    ``key``, in the block numbering of ``state_dict`` (a file that lacks the key is told the name
    it would hold it under); ``key`` itself where no PyTorchVideo key becomes it."""
    stages, last = _zoo_blocks(state_dict)
    proj = [k for k in state_dict if re.fullmatch(r"blocks\.\d+\.proj\.\w+", k)]
    head = int(proj[0].split(".")[1]) if proj else last + 1  # the head follows the last stage
    try:
        return _pytorchvideo_key(key, stages, head, slowfast)
    except (KeyError, ValueError, IndexError):
        return key


def _pytorchvideo_key(key: str, stages: Sequence[int], head: int, slowfast: bool) -> str:
    module, _, leaf = key.rpartition(".")
    if module == "head.fc":
        return f"blocks.{head}.proj.{leaf}"
    point, _, rest = module.partition(".")
    if slowfast and point.startswith("fuse_"):
        at = point.removeprefix("fuse_")
        block = 0 if at == "stem" else int(at.removeprefix("res")) - 1
        return f"blocks.{block}.multipathway_fusion.{_PTV_FUSE_BACK[rest]}.{leaf}"
    prefix = "blocks.{}"
    if slowfast:
        prefix += f".multipathway_blocks.{('slow', 'fast').index(point)}"
        point, _, rest = rest.partition(".")
    if point == "stem":
        return f"{prefix.format(0)}.{_PTV_STEM_BACK[rest]}.{leaf}"
    if not point.startswith("res"):
        raise KeyError(key)
    stage = int(point.removeprefix("res"))
    block = stage - 1 if slowfast else stages[stage - 2]
    index, _, inner = rest.partition(".")
    return f"{prefix.format(block)}.res_blocks.{int(index)}.{_PTV_BLOCK_BACK[inner]}.{leaf}"


def in_pytorchvideo_terms(
    diff: StateMismatch, state_dict: Mapping[str, Tensor], *, slowfast: bool
) -> StateMismatch:
    """``diff``, of ``state_dict`` converted, under the keys of the PyTorchVideo ``state_dict``
    (``pytorchvideo_key``), as its file names them."""
    return _held_counts(diff, state_dict).renamed(
        lambda key: pytorchvideo_key(key, state_dict, slowfast=slowfast)
    )


def _held_counts(diff: StateMismatch, source: Mapping[str, Tensor]) -> StateMismatch:
    """``diff`` without the missing batch counts of a source that holds none: each comes beside
    a ``running_mean`` that is missing too (``with_batch_counts`` fills the others)."""
    if any(k.endswith(".num_batches_tracked") for k in source):
        return diff
    return diff._replace(
        missing=[k for k in diff.missing if not k.endswith(".num_batches_tracked")]
    )


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

    ``str()`` is one line, a few keys of each kind then how many more: ``shape differs:
    head.fc.weight (6, 512) in the checkpoint, (400, 512) in the model; missing: ...;
    unexpected: ...`` (missing from the checkpoint; unexpected by the model).
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
        shapes = [
            f"{k} {theirs} in the checkpoint, {ours} in the model"
            for k, (theirs, ours) in self.shapes.items()
        ]
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
        ValueError: naming the vanilla keys missing and those left over, else the first layer
            whose vanilla weight has another shape or cannot be sliced.
    """
    keep = tuple(keep_own)
    diff = vanilla_mismatch(vanilla_sd, model, keep_own=keep)
    if diff and (diff.missing or diff.unexpected):
        keys = diff._replace(shapes={})  # a shape is named with its layer below
        raise ValueError(f"vanilla state dict does not fit {type(model).__name__}: {keys}")
    target = copy.deepcopy(model)
    orders = model.octave_input_order() if hasattr(model, "octave_input_order") else {}
    with torch.no_grad():
        for name, m in target.named_modules():
            if keep and name.startswith(keep):
                continue
            if isinstance(m, OctConv3d):
                weight = vanilla_sd[f"{name}.conv_hh.weight"]
                bias = vanilla_sd[f"{name}.conv_hh.bias"] if m.conv_hh.bias is not None else None
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
                    value = vanilla_sd[f"{name}.high.{leaf}"]
                    if tuple(value.shape) != ((n_all,) if own.ndim else ()):
                        raise ValueError(
                            f"layer {name}: vanilla {leaf} of shape {tuple(value.shape)} does "
                            f"not fit an OctNorm of {n_all} channels"
                        )
                    low = m.low.state_dict()[leaf] if m.low is not None else None
                    if value.ndim == 0:  # num_batches_tracked
                        own.copy_(value)
                        if low is not None:
                            low.copy_(value)
                        continue
                    own.copy_(value[:n_high])
                    if low is not None:
                        low.copy_(value[n_high:])
        out = target.state_dict()
        for key, shape in _vanilla_shapes(model, keep).items():
            if shape is None:  # not an octave layer's: copied as it is
                out[key] = vanilla_sd[key].to(out[key].dtype).clone()
    return out


def vanilla_mismatch(
    vanilla_sd: Mapping[str, Tensor], model: nn.Module, *, keep_own: Iterable[str] = ()
) -> StateMismatch | None:
    """How ``vanilla_sd`` misses the alpha-0 state dict that ``octavise_state_dict`` slices for
    ``model``: its octave layers' weights of another shape, the keys it lacks and those left
    over; None where it fits. Other weights (a classifier) are copied at any shape: a caller
    that replaces them checks them itself. ``keep_own`` as ``octavise_state_dict``'s."""
    keep = tuple(keep_own)
    want = _vanilla_shapes(model, keep)
    diff = StateMismatch(
        {
            k: (tuple(v.shape), shape)
            for k, v in vanilla_sd.items()
            if (shape := want.get(k)) is not None and tuple(v.shape) != shape
        },
        [k for k in want if k not in vanilla_sd],
        sorted(k for k in vanilla_sd if k not in want and not (keep and k.startswith(keep))),
    )
    return diff if any(diff) else None


def _vanilla_shapes(model: nn.Module, keep: tuple[str, ...]) -> dict[str, tuple[int, ...] | None]:
    """The keys of ``model``'s alpha-0 twin (but under ``keep``), each with the shape its
    slicing takes: an ``OctConv3d``'s whole weight, an ``OctNorm``'s whole channels; None for
    the others, which are copied."""
    shapes: dict[str, tuple[int, ...] | None] = {}
    owned = []
    for name, m in model.named_modules():
        if keep and name.startswith(keep):
            continue
        if isinstance(m, OctConv3d):
            out = m.out_channels
            shapes[f"{name}.conv_hh.weight"] = (out, m.in_channels // m.groups, *m.kernel_size)
            if m.conv_hh.bias is not None:
                shapes[f"{name}.conv_hh.bias"] = (out,)
        elif isinstance(m, OctNorm):
            n_all = m.high.num_features + (m.low.num_features if m.low is not None else 0)
            for leaf, own in m.high.state_dict().items():
                shapes[f"{name}.high.{leaf}"] = () if own.ndim == 0 else (n_all,)
        else:
            continue
        owned.append(f"{name}.")
    for key in model.state_dict():
        if not key.startswith(tuple(owned)) and not (keep and key.startswith(keep)):
            shapes[key] = None
    return shapes


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

_TV_BLOCK_BACK = {ours: theirs for theirs, ours in _TV_BLOCK.items()}


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
        ValueError: naming 2D keys with no 3D counterpart, else the 2D keys that are missing
            or of another shape than ``model`` takes, or the kind of network a wide ResNet or a
            ResNeXt is, which octvideo does not build.
    """
    source, state_dict_2d = state_dict_2d, with_batch_counts(state_dict_2d)
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
    diff = vanilla_mismatch(vanilla, model, keep_own=keep)
    if diff:
        theirs = _in_torchvision_terms(diff, source, kernels)
        raise ValueError(f"2D state dict does not fit {type(model).__name__}: {theirs}")
    return octavise_state_dict(vanilla, model, keep_own=keep)


def _in_torchvision_terms(
    diff: StateMismatch, state_dict_2d: Mapping[str, Tensor], kernels: Mapping[str, object]
) -> StateMismatch:
    """``diff``, of the inflated ``state_dict_2d``, under the 2D keys and shapes: a 2D weight's
    own shape, and the shape of the 2D kernel that inflates into the one taken."""
    shapes = {}
    for key, (_, ours) in diff.shapes.items():
        theirs = _torchvision_key(key)
        inflated = key.endswith(".conv_hh.weight") and key.rsplit(".conv_hh.", 1)[0] in kernels
        flat = (*ours[:2], *ours[3:]) if inflated and len(ours) == 5 else ours
        shapes[theirs] = (tuple(state_dict_2d[theirs].shape), flat)
    held = _held_counts(diff, state_dict_2d)
    return StateMismatch(
        shapes,
        [_torchvision_key(k) for k in held.missing],
        [_torchvision_key(k) for k in held.unexpected],
    )


def _torchvision_key(key: str) -> str:
    """The torchvision ResNet key that ``inflate_resnet2d`` renames to the octvideo ``key``;
    ``key`` itself where none does."""
    module, _, leaf = key.rpartition(".")
    named = {"stem.conv.conv_hh": "conv1", "stem.bn.high": "bn1", "head.fc": "fc"}
    if module in named:
        return f"{named[module]}.{leaf}"
    m = re.match(r"res(\d)\.(\d+)\.(.+)$", module)
    if m and m.group(3) in _TV_BLOCK_BACK:
        return f"layer{int(m.group(1)) - 1}.{m.group(2)}.{_TV_BLOCK_BACK[m.group(3)]}.{leaf}"
    return key


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

    Raises:
        ValueError: naming every key with no octvideo counterpart, else the file's keys that
            are missing, left over or of another shape than ``model`` takes.
    """
    slowfast = hasattr(model, "slowfast_alpha")
    vanilla = convert_pytorchvideo_state_dict(state_dict, slowfast=slowfast)
    diff = vanilla_mismatch(vanilla, model)
    if diff:
        theirs = in_pytorchvideo_terms(diff, state_dict, slowfast=slowfast)
        raise ValueError(f"PyTorchVideo state dict does not fit {type(model).__name__}: {theirs}")
    return octavise_state_dict(vanilla, model)
