"""Every shipped config loads, validates and builds its model at full size, and the model takes
the clips of its data section (a forward pass on the meta device: shapes only)."""

from __future__ import annotations

import pytest

from octvideo.config import CONFIG_DIR, load_config, shipped_configs
from octvideo.engine.build import build_model, check_clip

CONFIGS = shipped_configs()


def test_configs_are_shipped():
    assert {p.parent.name for p in CONFIGS} >= {"kinetics400", "kinetics600", "demo"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_config_loads_and_builds(path):
    cfg = load_config(path, ["model.pretrained="])  # the init weights are not shipped
    model = build_model(cfg.model)
    assert model.get_classifier().out_features == cfg.model.num_classes
    assert cfg.name == path.stem
    d = cfg.data
    check_clip(cfg.model, d, (d.train_crop_size, d.val_crop_size, d.test_crop_size))
