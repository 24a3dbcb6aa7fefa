"""Config loading: merge order, type checks, error messages, shipped-config lookup."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from octvideo import cli
from octvideo.config import (
    CONFIG_DIR,
    RunConfig,
    from_dict,
    load_config,
    resolve_config_path,
    save_config,
    shipped_configs,
    to_dict,
)
from octvideo.errors import ConfigError, UsageError


def test_defaults_are_the_paper_recipe():
    cfg = load_config()
    assert cfg == RunConfig(name="run")
    assert (cfg.data.num_frames, cfg.data.sampling_rate) == (8, 8)
    assert tuple(cfg.data.train_jitter_scales) == (256, 320)
    assert cfg.data.train_crop_size == 224
    assert (cfg.optim.momentum, cfg.optim.nesterov, cfg.optim.weight_decay) == (0.9, True, 1e-4)
    assert cfg.model.dropout == 0.5
    assert (cfg.data.test_num_clips, cfg.data.test_num_crops) == (10, 3)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: c2d_r50\n  alpha: 0.1\noptim:\n  lr: 0.4\n")
    cfg = load_config(path, ["optim.lr=0.2", "model.alpha=[0.1, 0.2, 0.3, 0]"])
    assert cfg.name == "mine"
    assert cfg.model.name == "c2d_r50"
    assert cfg.optim.lr == 0.2
    assert cfg.model.alpha == [0.1, 0.2, 0.3, 0]
    assert isinstance(cfg.data.train_jitter_scales, tuple)


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        ("model:\n  alpah: 0.1\n", [], "unknown key 'model.alpah'; did you mean 'model.alpha'?"),
        ("", ["optim.weight_decy=0"], "'optim.weight_decay'"),
        ("", ["num_frames=4"], "did you mean 'data.num_frames'?"),
        ("optim:\n  lr: fast\n", [], "bad value for 'optim.lr'"),
        ("", ["trainer.max_epochs=1.5"], "'trainer.max_epochs'"),
        ("", ["model.alpha=1.5"], "model.alpha"),
        ("", ["optim.schedule=linear"], "optim.schedule"),
        ("", ["data.test_num_crops=2"], "data.test_num_crops"),
        ("", ["novalue"], "not key=value"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, overrides, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    assert needle in str(err.value)
    assert isinstance(err.value, UsageError)  # the CLI prints it as one line


def test_cli_reports_a_bad_key_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  momentun: 0.9\n")
    assert cli.main(["train", "--cfg", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'optim.momentun'" in err and "'optim.momentum'" in err


def test_validation_never_changes_values():
    cfg = load_config(None, ["model.alpha=0", "optim.lr=0.3", "trainer.gradient_clip_val=0"])
    assert cfg.model.alpha == 0 and cfg.optim.lr == 0.3 and cfg.trainer.gradient_clip_val == 0
    assert from_dict(to_dict(cfg)) == cfg


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["model.extra={width: 8}", "optim.step_epochs=[10, 20]"])
    path = save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load(path.read_text())["model"]["extra"] == {"width": 8}
    assert load_config(path) == dataclasses.replace(cfg, name="run")


def test_shipped_name_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shipped_configs(), "configs/ ships no config"
    some = shipped_configs()[0]
    for name in (some.name, some.stem, some.relative_to(CONFIG_DIR).as_posix()):
        assert resolve_config_path(name) == some
    with pytest.raises(ConfigError, match="neither a file nor a shipped config"):
        resolve_config_path("no_such_recipe.yaml")


def test_ambiguous_shipped_name_lists_the_choices():
    by_name: dict[str, list] = {}
    for path in shipped_configs():
        by_name.setdefault(path.name, []).append(path)
    dup = next(n for n, ps in by_name.items() if len(ps) > 1)  # K400 and K600 recipes
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_config_path(dup)


def test_an_alpha_0_checkpoint_initialises_an_octave_model(tmp_path):
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model
    from octvideo.models.weights import octavise_state_dict

    settings = dict(name="i3d_r18", num_classes=6, extra={"width": 4})
    vanilla = build_model(ModelConfig(alpha=0.0, **settings))
    path = tmp_path / "vanilla.pt"
    torch.save(vanilla.state_dict(), path)
    octave = build_model(ModelConfig(alpha=0.25, pretrained=str(path), **settings))
    fresh = build_model(ModelConfig(alpha=0.25, **settings))
    want = octavise_state_dict(vanilla.state_dict(), fresh)
    got = octave.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)  # before: "does not fit", missing hl


def test_pretrained_weights_for_another_label_set_renew_only_the_classifier(tmp_path):
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model

    source = build_model(ModelConfig(name="i3d_r18", num_classes=6, extra={"width": 4}))
    path = tmp_path / "six.pt"
    torch.save(source.state_dict(), path)
    model = build_model(
        ModelConfig(name="i3d_r18", num_classes=3, pretrained=str(path), extra={"width": 4})
    )
    want = source.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith("head.fc."):
            assert value.shape[0] == 3
        else:
            assert torch.equal(value, want[key]), key


def test_pretrained_weights_of_another_width_are_refused(tmp_path):
    # they used to load as "new weights (shape differs)" for every layer: a random start
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model

    narrow = build_model(ModelConfig(name="i3d_r18", num_classes=6, extra={"width": 4}))
    path = tmp_path / "narrow.pt"
    torch.save(narrow.state_dict(), path)
    with pytest.raises(ConfigError) as err:
        build_model(
            ModelConfig(name="i3d_r18", num_classes=6, pretrained=str(path), extra={"width": 8})
        )
    message = str(err.value)
    assert message.startswith(f"model.pretrained={str(path)!r} (octvideo) does not fit ")
    assert "besides the classifier differ in shape (stem.conv.conv_hh.weight (4, 3, " in message
    assert message.endswith(
        "use weights of the same architecture, width and alpha (only the classifier may differ)"
    )
