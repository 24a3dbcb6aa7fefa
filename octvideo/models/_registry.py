"""One flat model registry: ``register_model``, ``create_model``, ``list_models``.

Each public variant is a short function decorated with ``@register_model``; the engine and the CLI
build models by name with plain keyword arguments, never with config objects.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import typing
import warnings
from collections.abc import Callable, Sequence

from torch import nn

from octvideo.ops import OctConv3d

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Registers a variant function under its own name; a duplicate name is an error."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered variants, optionally filtered by a shell-style pattern."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    return name in _MODELS


def model_class(name: str) -> type[nn.Module] | None:
    """The class the registered variant ``name`` builds (its function's return annotation); None
    for an unknown name or a function without one."""
    variant = _MODELS.get(name)
    if variant is None:
        return None
    cls = typing.get_type_hints(variant).get("return")
    return cls if isinstance(cls, type) else None


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    alpha: float | Sequence[float] = 0.0,
    octave: Sequence[int] = (1, 2, 2),
    dropout: float = 0.5,
    **kwargs: object,
) -> nn.Module:
    """Builds a registered variant by name.

    Args:
        name: a name from ``list_models()``.
        num_classes: classifier outputs.
        alpha: low-frequency share, one value (res2-res4; res5 stays vanilla) or one per stage
            (res2, res3, res4, res5).
        octave: (T, H, W) octave: (1, 2, 2) spatial (the paper), (2, 2, 2) spatio-temporal;
            three factors, as the config's ``model.octave`` takes it (one number is refused).
        dropout: dropout before the classifier.
        **kwargs: passed to the model class (e.g. ``stride_in_1x1``, ``oct_stem``).

    Every option is checked by the model class before any layer is built: a value no layer can
    take (an even kernel, a SlowFast ``alpha`` that leaves a lateral no high channel) is one
    ValueError line naming the option, the value and what it takes.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: for an unknown name, naming the closest registered ones; an option the
            model cannot take, naming it.

    Warns:
        UserWarning: an alpha above 0 leaves no layer a low-frequency channel, so the network
            is the vanilla one (``warn_without_octave``). A warning, not a refusal: checkpoints
            trained so still load.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"create_model takes a model name (a str), got {type(name).__name__} {name!r}; "
            f"known: {', '.join(list_models())}"
        )
    if name not in _MODELS:
        hint = unknown_model_hint(name)
        raise ValueError(f"unknown model {name!r}{hint} (known: {', '.join(list_models())})")
    model = _MODELS[name](
        num_classes=num_classes, alpha=alpha, octave=octave, dropout=dropout, **kwargs
    )
    width = f" and width={kwargs['width']!r}" if "width" in kwargs else ""
    warn_without_octave(model, f"{name} with alpha={alpha!r}{width}")
    return model


def unknown_model_hint(name: str) -> str:
    """``"; did you mean a, b?"``, naming up to three registered models close to ``name``, or
    ``""`` where none is."""
    close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def warn_without_octave(model: nn.Module, what: str) -> None:
    """Warns of a network that was asked for an octave (some ``OctConv3d`` with an alpha above 0)
    and has no low-frequency channel anywhere: it would run as the vanilla network.

    A layer of C channels gets ``int(alpha * C)`` low channels (``low_channels``), so at a small
    width or alpha some layers have none, as in the paper's own split; only a network left with
    none at all is named.

    Warns:
        UserWarning: one line naming ``what``, the widest layer asked for an octave and the
            smallest alpha, or the ``channel_multiple``, that gives it a low group.
    """
    asked = [
        c for c in model.modules() if isinstance(c, OctConv3d) and max(c.alpha_in, c.alpha_out) > 0
    ]
    if not asked or any(c.has_octave for c in asked):
        return
    widest = max(
        max(c.in_channels * (c.alpha_in > 0), c.out_channels * (c.alpha_out > 0)) for c in asked
    )
    least = math.ceil(1e4 / widest) / 1e4  # 1 / widest, rounded up: int(least * widest) = 1
    warnings.warn(
        f"{what} has no low-frequency channel: a layer of C channels gets int(alpha * C), and "
        f"its widest layer with an alpha above 0 has {widest} channels; give alpha {least} "
        f"(1/{widest}) or more, or a channel_multiple below {widest}",
        stacklevel=3,
    )
