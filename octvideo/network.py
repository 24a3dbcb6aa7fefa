"""The network a model section describes: the one place a ``model`` config section becomes
``octvideo.models.create_model``'s keyword arguments, with the ``MAX_PARAMETERS`` guard.

The networks are the registry's video ResNets and SlowFast with octave convolutions (Chen et al.,
"Drop an Octave", ICCV 2019). ``build_network`` is used wherever a section turns into a network:
training and ``octvideo test`` (``engine.build``), resuming and comparing runs (``engine.run``),
``octvideo import`` (``engine.zoo``), ``predict`` and ``export`` from a checkpoint's metadata
(``inference.predictor``) and the predict benchmark (``bench.predict``). ``check_extra_keys`` and
``model_settings`` (``octvideo.config``'s, which checks every section when it loads) say which
``model.extra`` keys a model takes.

This module sits beside ``octvideo.checkpoint_meta``, below ``octvideo.engine`` and
``octvideo.inference``; it imports the config and, inside its functions, the model registry, so
that importing it does not load the models.
"""

from __future__ import annotations

from torch import nn

from octvideo.config import (
    ModelConfig,
    check_extra_keys,
    check_network,
    model_settings,
    network_kwargs,
)

__all__ = ["build_network", "check_extra_keys", "model_settings"]


def build_network(model: ModelConfig) -> nn.Module:
    """The network a model section describes, without pretrained weights: the one place a
    section becomes ``octvideo.models.create_model``'s keyword arguments.

    The section is checked first as a config is when it loads (``octvideo.config.check_network``:
    built on the meta device, shapes only, no memory), so a section read from a checkpoint
    (predict, export) cannot take gigabytes before its weights are compared with the stored ones,
    and a setting the model refuses is named as the config's key.

    Raises:
        ValueError: an unknown model name, keywords in ``extra`` it does not take or refuses,
            or a network over ``MAX_PARAMETERS``.
    """
    from octvideo.models import create_model

    check_network(model)
    return create_model(model.name, **network_kwargs(model))
