"""The network a model section describes: the one place a ``model`` config section becomes
``octvideo.models.create_model``'s keyword arguments, with the ``MAX_PARAMETERS`` guard.

The networks are the registry's video ResNets and SlowFast with octave convolutions (Chen et al.,
"Drop an Octave", ICCV 2019). ``build_network`` is used wherever a section turns into a network:
training and ``octvideo test`` (``engine.build``), resuming and comparing runs (``engine.run``),
``octvideo import`` (``engine.zoo``), ``predict`` and ``export`` from a checkpoint's metadata
(``inference.predictor``) and the predict benchmark (``bench.predict``). ``check_extra_keys`` and
``model_settings`` say which ``model.extra`` keys a model takes.

This module sits beside ``octvideo.checkpoint_meta``, below ``octvideo.engine`` and
``octvideo.inference``; it imports the config and, inside its functions, the model registry, so
that importing it does not load the models.
"""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn

from octvideo.config import EXTRA_RESERVED, MAX_PARAMETERS, ModelConfig


def build_network(model: ModelConfig) -> nn.Module:
    """The network a model section describes, without pretrained weights: the one place a
    section becomes ``octvideo.models.create_model``'s keyword arguments.

    The network is built on the meta device first (shapes only, no memory) and refused when it
    has more than ``MAX_PARAMETERS`` parameters, so a section read from a checkpoint (predict,
    export) cannot take gigabytes before its weights are compared with the stored ones.

    Raises:
        ValueError, TypeError: an unknown model name, keywords in ``extra`` it does not take, or
            a network over ``MAX_PARAMETERS``.
    """
    from octvideo.models import create_model

    check_extra_keys(model)
    alpha = list(model.alpha) if isinstance(model.alpha, list | tuple) else float(model.alpha)
    kwargs = {
        "num_classes": model.num_classes,
        "alpha": alpha,
        "octave": tuple(model.octave),
        "dropout": model.dropout,
        **model.extra,
    }
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the network built below warns, once
        count = sum(p.numel() for p in create_model(model.name, **kwargs).parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"with model.extra={model.extra} it has {count:,} parameters, over the limit of "
            f"{MAX_PARAMETERS:,} (octvideo.config.MAX_PARAMETERS); use a smaller width or depth"
        )
    return create_model(model.name, **kwargs)


def model_settings(name: str) -> list[str] | None:
    """The ``model.extra`` keywords the registered model ``name`` takes: the keyword parameters of
    the class its variant function returns, less those the model section sets
    (``EXTRA_RESERVED``) and the layer classes (``norm_layer``, ...), which YAML cannot give.

    Returns:
        The names in signature order; None for an unknown name or a class that takes
        ``**kwargs`` (anything then goes to the builder, which says what it refuses).
    """
    from octvideo.models import model_class

    cls = model_class(name)
    if cls is None:
        return None
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # less self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name
        for p in params
        if p.kind in named and p.name not in EXTRA_RESERVED and not isinstance(p.default, type)
    ]


def check_extra_keys(model: ModelConfig) -> None:
    """Refuses a ``model.extra`` key that ``model.name``'s model does not take, naming the ones it
    does (the builder's own TypeError names a private function or ``__init__``).

    Raises:
        ValueError: one line: ``model.extra.KEY is not a setting of NAME; it takes: ...``.
    """
    takes = model_settings(model.name)
    if takes is None:
        return
    for key in model.extra:
        if key not in takes:
            raise ValueError(
                f"model.extra.{key} is not a setting of {model.name}; it takes: {', '.join(takes)}"
            )
