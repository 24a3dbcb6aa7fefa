"""How a checkpoint's settings and a config's are compared, and the differences said: one
comparison for ``octvideo test`` and ``train --resume`` of a checkpoint (``check_same_model``,
``check_same_run``, ``check_checkpoint_fits``) and for ``model.pretrained`` weights
(``load_pretrained``), in one wording ("model.extra.width is 8 in the checkpoint, 16 in the
config") with the overrides that build the checkpoint's network again.

Settings are compared flattened (``model.extra.width``); a ``model.extra`` key set on one side
only that builds the same network as the checkpoint's section without it (a key set to its
model's default) is no difference: both networks are built on the meta device and compared.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from octvideo.checkpoint_meta import model_config
from octvideo.config import ModelConfig, flatten, to_dict
from octvideo.network import build_network

UNSET: Any = object()  # a key one side does not have

# model keys that shape no weights (model.dropout, the start the checkpoint's weights replace)
NO_SHAPE = (
    "model.pretrained",
    "model.pretrained_kind",
    "model.dropout",
    "model.extra.zero_init_final_bn",
)

Differences = dict[str, tuple[Any, Any]]  # dotted key: (the checkpoint's value, the config's)


def model_settings(model: ModelConfig, free: Sequence[str] = ()) -> dict[str, Any]:
    """A model section flattened by dotted key (``model.extra.width``), as a checkpoint stores
    and reads it back, without the keys of ``free``."""
    flat = dict(flatten({"model": to_dict(model_config(to_dict(model)))}))
    return {key: value for key, value in flat.items() if key not in free}


def model_differences(
    trained: ModelConfig, cfg: ModelConfig, free: Sequence[str] = NO_SHAPE
) -> Differences:
    """The settings of the model section ``cfg`` that build another network than ``trained``
    (a checkpoint's), less the keys of ``free`` (``differences``)."""
    return differences(model_settings(trained, free), model_settings(cfg, free), trained)


def differences(there: dict[str, Any], here: dict[str, Any], trained: ModelConfig) -> Differences:
    """The keys of two flattened settings whose values differ, in order, each as (``there``'s
    value, ``here``'s; ``UNSET`` for a side without the key). An absent key and an empty mapping
    are the same (``flatten`` keeps an empty ``model.extra: {}`` as a leaf of its own, which a
    config that sets nothing in it has no key for); so is a ``model.extra`` key set on one side
    only that builds ``trained``'s network without it (``temporal_pool: true`` of an I3D;
    ``stride_in_1x1`` of basic blocks, which have no 1x1 convolution)."""
    nothing = (UNSET, {})
    differ = {}
    for key in dict.fromkeys([*there, *here]):
        a, b = there.get(key, UNSET), here.get(key, UNSET)
        if a != b and not (a in nothing and b in nothing):
            differ[key] = (a, b)
    one_sided = [k for k in differ if k.startswith("model.extra.") and UNSET in differ[k]]
    layout = _network_layout(trained) if one_sided else None
    if layout is None:
        return differ
    for key in one_sided:
        extra = {k: v for k, v in trained.extra.items() if f"model.extra.{k}" != key}
        if key in here:
            extra[key.removeprefix("model.extra.")] = here[key]
        if _network_layout(dataclasses.replace(trained, extra=extra)) == layout:
            del differ[key]
    return differ


def said(differ: Differences) -> str:
    """The differences in one wording: "model.extra.width is 8 in the checkpoint, 16 in the
    config; ..."."""
    return "; ".join(
        f"{key} is {shown(there)} in the checkpoint, {shown(here)} in the config"
        for key, (there, here) in differ.items()
    )


def refit_overrides(trained: ModelConfig, differ: Differences) -> str:
    """The ``key=value`` overrides that set the ``differ`` keys back to the checkpoint's values;
    a ``model.extra`` key the checkpoint does not set is taken away by giving the whole mapping
    (``trained``'s), which replaces the config's."""
    extra = [key for key in differ if key.startswith("model.extra.")]
    whole = any(differ[key][0] is UNSET for key in extra)
    out = {}  # each key once, in the order of the first that needs it
    for key, (there, _) in differ.items():
        if whole and key in extra:
            out["model.extra"] = to_dict(trained)["extra"]
        else:
            out[key] = there
    return " ".join(f"{key}={shown(value)}" for key, value in out.items())


def shown(value: Any) -> str:
    """A setting as an override writes it (``8``, ``[1,2,2]``, ``"c2d_r18"``); "unset" for none."""
    return "unset" if value is UNSET else json.dumps(value, separators=(",", ":"))


def _network_layout(model: ModelConfig) -> tuple[str, list[tuple[str, tuple[int, ...]]]] | None:
    """The network a model section builds, as two networks are told apart: its modules (every
    layer's channels, kernel, stride, pool and octave) and its weights' names and shapes. Built
    on the meta device, which takes no memory; None where the section builds none."""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an octave without low channels: said at its build
            network = build_network(model)
    except (ValueError, TypeError):  # a key the model does not take: another network
        return None
    return repr(network), [(k, tuple(v.shape)) for k, v in network.state_dict().items()]
