"""Argument and clip checks the model classes share.

The model constructors run the argument checks before any layer is built; their ``forward`` runs
``check_clip_tensor`` before the stem, except under ``torch.jit.trace``. An argument they refuse
raises an ``ArgumentError``, which names the argument as a field, so that the config says the same
of ``model.extra.stem_kernel``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from octvideo.ops.pair import is_whole, normalize_octave


def as_yaml(value: object) -> str:
    """``value`` as YAML writes it in a config: a tuple or list as ``[5, 7, 7]`` (YAML reads
    ``(5, 7, 7)`` as text), anything else as Python writes it."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(as_yaml(v) for v in value) + "]"
    return repr(value)


# A refusal's words after the argument's name, given how to write a value: ``repr`` for Python's
# words, ``as_yaml`` for a config's
Words = Callable[[Callable[[object], str]], str]


class ArgumentError(ValueError):
    """A constructor argument a model refuses, with what the message says of it, so that a
    caller that passes it under another name (the config's ``model.extra.stem_kernel``) says the
    same in its own name and writes its values as its users do (``message``).

    Attributes:
        argument: the keyword as the model takes it (``stem_kernel``, ``alpha``).
        index: the item of a per-stage or per-pathway argument at fault (``alpha[0]``), or None.
        problem: the rest of the message, after the name (`` must be ..., got ...``), its values
            as Python writes them.
    """

    def __init__(self, argument: str, problem: str | Words, *, index: int | None = None) -> None:
        self._words: Words = problem if callable(problem) else (lambda _show: problem)
        self.argument, self.problem, self.index = argument, self._words(repr), index
        super().__init__(self.message(argument))

    def message(self, name: str, show: Callable[[object], str] = repr) -> str:
        """The one-line refusal with the argument called ``name``, its examples and the value
        given written by ``show`` (``as_yaml`` for a config: ``[5, 7, 7]``)."""
        at = "" if self.index is None else f"[{self.index}]"
        return f"{name}{at}{self._words(show)}"


# One rule for every number and switch of a model's constructor: a whole number is any
# ``numbers.Integral`` (``np.int64`` from an array, not a bool) and a switch True, False or a numpy
# bool, each taken as its Python value; a float, a string or a bool for a number is refused.


def _numpy_bool(value: object) -> bool:
    """Whether ``value`` is a numpy bool (``np.True_``), told without importing numpy."""
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")


def check_switches(**switches: object) -> tuple[bool, ...]:
    """The switches as Python bools, in the order given; refuses one that is not True, False
    or a numpy bool (a string "no" is truthy), as ``OctConv3d`` refuses ``bias``.

    Raises:
        ArgumentError: ``{name} must be True or False, got ...``.
    """
    for name, value in switches.items():
        if not isinstance(value, bool) and not _numpy_bool(value):
            raise ArgumentError(name, f" must be True or False, got {value!r}")
    return tuple(bool(value) for value in switches.values())


def check_whole(
    name: str, value: object, low: int = 1, high: int | None = None, why: str = ""
) -> int:
    """``value`` as a Python int: a whole number (``ops.pair.is_whole``: any
    ``numbers.Integral``, not a bool) of at least ``low`` and, where ``high`` is given, at most
    ``high``; ``why`` (e.g. " (...)") says what the bound comes from.

    Raises:
        ArgumentError: ``{name} must be a whole number of at least {low}, got ...``, or ``from
            {low} to {high}`` where ``high`` is given.
    """
    if not is_whole(value) or value < low or (high is not None and value > high):
        bound = f"of at least {low}" if high is None else f"from {low} to {high}"
        raise ArgumentError(name, f" must be a whole number {bound}{why}, got {value!r}")
    return int(value)


def _is_listed(value: object) -> bool:
    """A list or tuple of values (a sequence that is not text)."""
    return isinstance(value, Sequence) and not isinstance(value, str)


def _is_odd_whole(value: object) -> bool:
    return is_whole(value) and value >= 1 and value % 2 == 1


def check_odd(name: str, value: object, why: str) -> int:
    """``value`` as a Python int: an odd whole number, as every kernel the models pad "same"
    (``why`` says which); an even kernel has no "same" padding and would shorten the clip.

    Raises:
        ArgumentError: ``{name} must be an odd whole number ({why}), got ...``.
    """
    if not _is_odd_whole(value):
        raise ArgumentError(name, f" must be an odd whole number ({why}), got {value!r}")
    return int(value)


def check_kernel(name: str, value: object, example: object, of: str = "") -> tuple[int, int, int]:
    """A (T, H, W) kernel the models pad "same": three odd whole numbers, or one for all three;
    ``example`` is one the message shows (``(5, 7, 7)``), ``of`` what it is that of (``I3D``).

    Raises:
        ArgumentError: ``{name} must be three odd whole numbers (T, H, W) ..., got ...``.
    """
    items = (value,) * 3 if is_whole(value) else value
    if not _is_listed(items) or len(items) != 3 or not all(_is_odd_whole(k) for k in items):
        for_ = f" for {of}" if of else ""
        raise ArgumentError(
            name,
            lambda show: (
                f" must be three odd whole numbers (T, H, W), e.g. {show(example)}{for_}: an even "
                f"kernel has no 'same' padding and would shorten the clip; got {show(value)}"
            ),
        )
    return tuple(int(k) for k in items)  # type: ignore[return-value]


def check_temporal_kernels(value: object) -> tuple[tuple[int, ...], ...]:
    """``temporal_kernels``: per stage (res2..res5), a non-empty list of odd whole numbers,
    conv_a's temporal kernels cycled over the stage's blocks.

    Raises:
        ArgumentError: one line naming ``temporal_kernels``, what it takes and the value.
    """
    if not (
        _is_listed(value)
        and len(value) == 4
        and all(_is_listed(s) and len(s) > 0 and all(_is_odd_whole(k) for k in s) for s in value)
    ):
        raise ArgumentError(
            "temporal_kernels",
            lambda show: (
                " must be one list per stage (res2..res5) of odd whole numbers, conv_a's temporal "
                "kernels cycled over the stage's blocks, e.g. "
                f"{show(((3,), (3, 1), (3, 1), (1, 3)))}; got {show(value)}"
            ),
        )
    return tuple(tuple(int(k) for k in s) for s in value)


def check_octave(octave: object) -> tuple[int, int, int]:
    """A model's ``octave``: three factors (T, H, W), as the config's ``model.octave`` takes it;
    one number for all three axes is refused, so that Python and a config take the same values.

    Raises:
        ArgumentError: ``octave must be three factors (T, H, W) ..., got ...``.
    """
    if _is_listed(octave) and len(octave) == 3:
        try:
            return normalize_octave(octave)
        except ValueError:
            pass
    raise ArgumentError(
        "octave",
        lambda show: (
            f" must be three factors (T, H, W), each 1 or 2: {show((1, 2, 2))} for the spatial "
            f"octave, {show((2, 2, 2))} for the spatio-temporal one; got {show(octave)}"
        ),
    )


def check_layer_classes(**factories: object) -> None:
    """Refuses a layer factory (``norm_layer``, ``act_layer``) that is a built layer or not
    callable: the models build each layer from it, as timm injects layers (classes, never
    instances).

    Raises:
        TypeError: one line naming the argument and the class to pass.
    """
    for name, factory in factories.items():
        if isinstance(factory, nn.Module):
            cls = type(factory).__name__
            raise TypeError(
                f"{name} must be a class that builds a layer, got a built {cls}: pass the "
                f"class ({name}={cls}), not an instance"
            )
        if not callable(factory):
            raise TypeError(
                f"{name} must be a class that builds a layer (e.g. nn.BatchNorm3d, nn.ReLU), "
                f"got {factory!r}"
            )


def check_dropout(p: object) -> float:
    """A dropout probability: a real number (not a bool or text) in [0, 1).

    Raises:
        ArgumentError: ``dropout must be a number in [0, 1), got ...``.
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ArgumentError("dropout", f" must be a number in [0, 1), got {p!r}")
    return float(p)


def _layout_hint(shape: tuple[int, ...], channels: int) -> str:
    """How to reorder ``shape`` into (B, C, T, H, W) where its layout is a common mistake."""
    rank = len(shape)
    if rank == 5 and shape[4] == channels:
        return ": channels-last frames (B, T, H, W, C)? clip.permute(0, 4, 1, 2, 3)"
    if rank == 5 and shape[2] == channels:
        return ": (B, T, C, H, W) frames? clip.transpose(1, 2)"
    if rank == 4 and shape[3] == channels:
        return ": one clip of frames (T, H, W, C)? clip.permute(3, 0, 1, 2).unsqueeze(0)"
    if rank == 4 and shape[0] == channels:
        return ": one (C, T, H, W) clip? add the batch axis, clip.unsqueeze(0)"
    return ""


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _autocast_takes(x: Tensor) -> bool:
    """Whether autocast is on for ``x``'s device and casts ``x`` at the convolutions (float16,
    bfloat16 and float32; it leaves float64 alone)."""
    device = x.device.type
    return (
        x.dtype in (torch.float16, torch.bfloat16, torch.float32)
        and torch.amp.is_autocast_available(device)
        and torch.is_autocast_enabled(device)
    )


def check_clip_tensor(
    x: object, net: str, *, channels: int, dtype: torch.dtype, what: str = "clips"
) -> None:
    """Raises one line naming ``net`` unless ``x`` is a (B, ``channels``, T, H, W) tensor of
    ``dtype``, the model's parameters' (under autocast, float32, float16 and bfloat16 too).
    Rank, channel axis and dtype only: the model checks the sizes it takes. A layout that is a
    common mistake (channels last, frames from a decoder) is named with the fix. Cheap: no
    tensor op; callers skip it under ``torch.jit.trace`` (``torch.jit.is_tracing()``).

    Raises:
        TypeError: ``x`` is not a tensor (a numpy array, a list).
        ValueError: another rank, channel count or dtype.
    """
    layout = f"(B, {channels}, T, H, W)"
    if not isinstance(x, Tensor):
        got = type(x).__name__
        if type(x).__module__ == "numpy":
            got += " (torch.from_numpy makes one)"
        raise TypeError(f"{net} takes {what} as torch.Tensor {layout}, got {got}")
    shape = tuple(x.shape)
    if x.dim() != 5 or shape[1] != channels:
        raise ValueError(
            f"{net} takes {layout} {what}, channels second; got {shape}"
            f"{_layout_hint(shape, channels)}"
        )
    if x.dtype == dtype or _autocast_takes(x):
        return
    want, got = _dtype_name(dtype), _dtype_name(x.dtype)
    fix = (
        f"convert the clip (clip.to(torch.{want})) or the model (model.to(torch.{got}))"
        if x.is_floating_point()
        else "normalise the frames to float first (e.g. Predictor.preprocess)"
    )
    raise ValueError(f"{net} takes float {what} of the model's dtype ({want}), got {got}: {fix}")
