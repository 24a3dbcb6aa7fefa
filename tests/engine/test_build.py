"""Building the network from the model section: pretrained weights of another network are one
line naming the file and the first layer that does not fit, and a network over the parameter
bound is refused on the meta device before any memory is taken."""

from __future__ import annotations

import pytest
import torch

from octvideo import cli
from octvideo.config import MAX_PARAMETERS, ModelConfig, load_config
from octvideo.engine.build import build_model, check_clip
from octvideo.errors import ConfigError
from octvideo.models import create_model
from tests.engine.conftest import tiny_overrides


def _save_state(path, name, **kwargs):
    torch.save(create_model(name, num_classes=6, **kwargs).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("source", "kwargs", "layer"),
    [
        ("c2d_r18", {"alpha": 0.0, "width": 8}, "layer stem.conv"),  # 1x7x7 stem vs 5x7x7
        ("i3d_r18", {"alpha": 0.0, "width": 4}, "layer stem.conv"),  # another width
    ],
)
def test_alpha0_weights_of_another_network_are_one_line_naming_file_and_layer(
    tmp_path, source, kwargs, layer
):
    path = _save_state(tmp_path / f"{source}.pt", source, **kwargs)
    cfg = ModelConfig(
        name="i3d_r18", num_classes=6, alpha=0.25, extra={"width": 8}, pretrained=str(path)
    )
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert f"model.pretrained='{path}'" in message
    assert layer in message and "does not fit" in message
    assert "use weights of this architecture and width" in message


def test_alpha0_weights_of_another_depth_name_the_missing_keys(tmp_path):
    path = _save_state(tmp_path / "r34.pt", "i3d_r34", alpha=0.0, width=8)
    cfg = ModelConfig(
        name="i3d_r18", num_classes=6, alpha=0.25, extra={"width": 8}, pretrained=str(path)
    )
    with pytest.raises(
        ConfigError, match=r"does not fit ResNet3D: vanilla state dict .*unexpected"
    ):
        build_model(cfg)


def test_train_with_weights_of_another_network_is_one_line(tiny_synth, tmp_path, capsys):
    path = _save_state(tmp_path / "c2d.pt", "c2d_r18", alpha=0.0, width=4)
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_synth, **{"model.pretrained": path})
    assert cli.main(["train", "--cfg", "oct_i3d_synth.yaml", "--out", str(run), *overrides]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("octvideo train: error: model.pretrained=")
    assert str(path) in line and "layer stem.conv" in line
    assert not run.exists()  # refused before the run folder is made


def test_a_network_over_the_parameter_bound_is_refused_on_the_meta_device():
    cfg = load_config(None, ["model.extra={width: 100000}"])
    for build in (lambda: build_model(cfg.model), lambda: check_clip(cfg.model, cfg.data, (224,))):
        with pytest.raises(ConfigError) as err:
            build()
        assert "model.extra={'width': 100000}" in str(err.value)
        assert f"over the limit of {MAX_PARAMETERS:,}" in str(err.value)
