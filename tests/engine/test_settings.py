"""The one comparison of a checkpoint's settings with a config's: which keys differ (a
``model.extra`` key set to its model's default, built on the meta device, does not; nor does an
empty mapping against none), the one wording that says them, and the overrides that put the
checkpoint's network back."""

from __future__ import annotations

import dataclasses

import pytest

from octvideo.config import ModelConfig, load_config
from octvideo.engine.settings import (
    NO_SHAPE,
    UNSET,
    differences,
    model_differences,
    model_settings,
    refit_overrides,
    said,
    shown,
)

_TRAINED = ModelConfig(name="i3d_r18", num_classes=2, alpha=0.25, extra={"width": 8})


def _with(**extra):
    return dataclasses.replace(_TRAINED, extra={**_TRAINED.extra, **extra})


def test_a_model_extra_key_set_to_its_models_default_is_no_difference():
    # an I3D pools in time by default: temporal_pool true builds the checkpoint's network
    assert model_differences(_TRAINED, _with(temporal_pool=True)) == {}
    assert model_differences(_with(temporal_pool=True), _TRAINED) == {}


def test_a_model_extra_key_that_builds_another_network_is_a_difference():
    assert model_differences(_TRAINED, _with(temporal_pool=False)) == {
        "model.extra.temporal_pool": (UNSET, False)
    }
    assert model_differences(_with(temporal_pool=False), _TRAINED) == {
        "model.extra.temporal_pool": (False, UNSET)
    }


def test_an_empty_mapping_and_no_mapping_are_the_same_setting():
    trained = dataclasses.replace(_TRAINED, extra={})
    there = model_settings(trained)
    here = {k: v for k, v in there.items() if k != "model.extra"}
    assert there["model.extra"] == {}
    assert differences(there, here, trained) == {}


def test_keys_that_shape_no_weights_are_left_out_unless_asked_for():
    config = dataclasses.replace(
        _TRAINED, dropout=0.1, extra={"width": 8, "zero_init_final_bn": True}
    )
    assert model_differences(_TRAINED, config) == {}
    assert model_differences(_TRAINED, config, free=())["model.dropout"] == (0.5, 0.1)
    assert "model.dropout" in NO_SHAPE


def test_differences_are_said_in_one_wording_with_values_as_overrides_write_them():
    differ = {"model.octave": ([1, 2, 2], [2, 2, 2]), "model.extra.stem": (UNSET, "c2d")}
    assert said(differ) == (
        "model.octave is [1,2,2] in the checkpoint, [2,2,2] in the config; "
        'model.extra.stem is unset in the checkpoint, "c2d" in the config'
    )
    assert shown(None) == "null"


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        (_with(width=16), "model.extra.width=8"),  # both set it: the key alone
        (  # the checkpoint sets no channel_multiple: the whole mapping takes it away
            _with(width=16, channel_multiple=4),
            'model.extra={"width":8}',
        ),
        (dataclasses.replace(_TRAINED, alpha=0.5), "model.alpha=0.25"),
    ],
)
def test_the_overrides_build_the_checkpoints_network_from_the_config(config, overrides):
    differ = model_differences(_TRAINED, config)
    assert refit_overrides(_TRAINED, differ) == overrides
    settings = model_settings(config)  # the config as overrides, then the refusal's
    given = [f"{k}={shown(v)}" for k, v in settings.items() if not k.startswith("model.extra")]
    given.append(f"model.extra={shown(config.extra)}")
    refitted = load_config(None, [*given, *overrides.split()]).model
    assert model_differences(_TRAINED, load_config(None, given).model) != {}
    assert model_differences(_TRAINED, refitted) == {}
