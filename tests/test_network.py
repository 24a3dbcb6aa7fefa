"""A model section becomes its network: ``build_network`` refuses a network over
``MAX_PARAMETERS`` before building it, warns once of an octave without low-frequency channels,
and refuses a ``model.extra`` key the model does not take, naming the ones it does
(``model_settings``)."""

from __future__ import annotations

import warnings

import pytest

from octvideo.config import ModelConfig
from octvideo.network import build_network, model_settings


def test_a_network_over_the_parameter_bound_is_refused_before_it_is_built(monkeypatch):
    import octvideo.config as config

    monkeypatch.setattr(config, "MAX_PARAMETERS", 1000)
    with pytest.raises(ValueError, match=r"has [\d,]+ parameters, over the limit of 1,000"):
        build_network(ModelConfig(name="c2d_r18", num_classes=3, extra={"width": 8}))


def test_a_network_without_a_low_frequency_channel_is_warned_of_once():
    section = ModelConfig(name="c2d_r18", num_classes=3, alpha=1e-9, extra={"width": 8})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_network(section)
    lines = [str(w.message) for w in caught if "no low-frequency channel" in str(w.message)]
    assert len(lines) == 1, lines


def test_a_model_extra_key_the_model_does_not_take_names_the_keys_it_takes():
    section = ModelConfig(name="slowfast_r50", num_classes=4, extra={"width": 8})
    with pytest.raises(ValueError) as info:
        build_network(section)
    assert str(info.value) == (
        "model.extra.width is not a setting of slowfast_r50; it takes: slowfast_alpha, beta_inv, "
        "fusion_ratio, fusion_kernel, fast_alpha, stride_in_1x1, zero_init_final_bn, "
        "channel_multiple, head_pool"
    )


def test_the_settings_of_a_model_are_its_class_keywords_less_the_section_s():
    takes = model_settings("i3d_r18")
    assert {"width", "in_chans", "oct_stem", "channel_multiple"} <= set(takes)
    assert not {"depth", "alpha", "num_classes", "octave", "dropout", "norm_layer"} & set(takes)
    assert model_settings("no_such_model") is None
