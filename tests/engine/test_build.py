"""Building the network from the model section: pretrained weights initialise it (an alpha-0
checkpoint an octave model, another label set all but the classifier), pretrained weights of
another network are one line naming the file and the first layer that does not fit, and a network
over the parameter bound is refused on the meta device before any memory is taken. The training
precision check: bfloat16 on a CPU is refused where this PyTorch's bfloat16 3D-convolution weight
gradients are wrong, as a float64 reference says."""

from __future__ import annotations

import dataclasses
import logging
import warnings

import lightning as L
import pytest
import torch

from octvideo import cli
from octvideo.checkpoint_meta import CheckpointMeta
from octvideo.config import (
    MAX_PARAMETERS,
    ModelConfig,
    load_config,
)
from octvideo.engine import build as build_module
from octvideo.engine.build import build_classifier, build_model, check_clip, fewest_frames
from octvideo.errors import ConfigError, UsageError
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


@pytest.mark.parametrize("there", ["broken weights", "a folder", "nothing"])
def test_pretrained_weights_refused_get_advice_that_fits_what_is_there(tmp_path, there):
    path = tmp_path / "weights.pt"
    if there == "broken weights":
        state = create_model("i3d_r18", num_classes=6, width=8).state_dict()
        state["stem.conv.conv_hh.weight"][0, 0, 0, 0, :2] = float("nan")
        torch.save(state, path)
    elif there == "a folder":
        path.mkdir()
    cfg = ModelConfig(name="i3d_r18", num_classes=6, extra={"width": 8}, pretrained=str(path))
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    message = str(err.value)
    assert message.startswith(f"model.pretrained={path} (octvideo): checkpoint {str(path)!r}")
    assert message.endswith("or model.pretrained=null to start from random weights")
    # "put the weights there" only where there is nothing: else the error says what to get
    assert ("put the weights there" in message) is (there == "nothing")
    if there == "broken weights":
        assert "weight stem.conv.conv_hh.weight holds 2 NaN; the checkpoint is broken" in message
        assert message.endswith(
            "get the file again; or set model.pretrained=PATH to other weights, or "
            "model.pretrained=null to start from random weights"
        )


def test_a_network_over_the_parameter_bound_is_refused_on_the_meta_device():
    with pytest.raises(ConfigError) as loaded:  # a loaded config: refused when it loads
        load_config(None, ["model.extra={width: 1000}"])
    model, data = ModelConfig(extra={"width": 1000}), load_config(None, []).data  # built in code
    refusals = [loaded]
    for build in (lambda: build_model(model), lambda: check_clip(model, data, (224,))):
        with pytest.raises(ConfigError) as err:
            build()
        refusals.append(err)
    for err in refusals:
        assert "model.extra={'width': 1000}" in str(err.value)
        assert f"over the limit of {MAX_PARAMETERS:,}" in str(err.value)


def test_a_model_extra_key_the_model_does_not_take_is_one_line_naming_it():
    refusals = []
    for build in (
        lambda: load_config(None, ["model.name=i3d_r18", "model.extra.bogus=1"]),
        lambda: build_model(ModelConfig(name="i3d_r18", extra={"bogus": 1})),  # built in code
    ):
        with pytest.raises(ConfigError) as err:
            build()
        refusals.append(err)
    for err in refusals:
        assert str(err.value).startswith(
            "model.extra.bogus is not a setting of i3d_r18; it takes: in_chans, stem_kernel, "
        )
        assert "width" in str(err.value) and "alpha" not in str(err.value)


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


@pytest.mark.parametrize("kind", ["octvideo", "pytorchvideo", "imagenet2d"])
def test_pretrained_weights_that_are_no_dict_are_told_the_file_their_kind_wants(tmp_path, kind):
    from octvideo.config import ModelConfig
    from octvideo.engine.checkpoint import WANTED

    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    cfg = ModelConfig(name="i3d_r18", num_classes=6, pretrained=str(path), pretrained_kind=kind)
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert f"pass {WANTED[kind]}" in str(err.value)


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


@pytest.mark.parametrize("num_classes", [6, 3])
@pytest.mark.parametrize("broken", ["head.fc.weight", "res2.0.conv_a.conv_hh.weight"])
def test_pretrained_weights_holding_nan_are_refused_where_they_would_be_loaded(
    tmp_path, caplog, num_classes, broken
):
    # a six-class file fine-tunes on three classes: its classifier is dropped, NaN and all
    source = create_model("i3d_r18", num_classes=6, width=4).state_dict()
    source[broken].view(-1)[:3] = float("nan")
    path = tmp_path / "six.pt"
    torch.save(source, path)
    cfg = ModelConfig(
        name="i3d_r18", num_classes=num_classes, pretrained=str(path), extra={"width": 4}
    )
    if broken.startswith("head.") and num_classes != 6:
        with caplog.at_level("INFO", logger=build_module.__name__):
            model = build_model(cfg)
        assert all(bool(torch.isfinite(v).all()) for v in model.state_dict().values())
        assert (
            f"pretrained {path}: weight head.fc.weight holds 3 NaN, dropped with the classifier"
            in caplog.text
        )
        return
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert str(err.value) == (
        f"model.pretrained={path} (octvideo): checkpoint {str(path)!r}: weight {broken} holds 3 "
        "NaN; the checkpoint is broken (a diverged run, or a damaged file): get the file again; "
        "or set model.pretrained=PATH to other weights, or model.pretrained=null to start from "
        "random weights"
    )


def test_bf16_training_check_lets_good_setups_through(monkeypatch) -> None:
    monkeypatch.setattr(build_module, "_cpu_bf16_weight_grads_ok", lambda: False)
    for precision in ("32-true", "16-true", "auto", "64-true"):
        build_module.check_training_precision(precision, "cpu")  # no bfloat16: nothing to check
    for precision in ("16-mixed", "bf16-mixed"):  # on a GPU these are what they say
        build_module.check_training_precision(precision, "gpu")
    monkeypatch.setattr(build_module, "_cpu_bf16_weight_grads_ok", lambda: True)
    build_module.check_training_precision("bf16-mixed", "cpu")  # a PyTorch without the fault


def test_bf16_weight_grad_check_agrees_with_float64() -> None:
    """The check (bfloat16 against float32) says what a float64 reference says of its cases."""
    right = []
    for g, x, w in build_module._bf16_probes():
        want = build_module._conv3d_weight_grad(g, x, w, torch.float64)
        got = build_module._conv3d_weight_grad(g, x, w, torch.bfloat16)
        right.append(
            bool(torch.isfinite(got).all()) and float((got - want).norm() / want.norm()) < 0.05
        )
    assert build_module._cpu_bf16_weight_grads_ok() is all(right)


def test_fewest_frames_is_the_least_clip_length_the_network_runs_on():
    # C2D and I3D pool time after res2: one frame leaves none, two leave one
    cfg = load_config(None, ["model.name=c2d_r18", "data.num_frames=1"])
    assert fewest_frames(cfg.model, cfg.data, (64,)) == 2
    with pytest.raises(ConfigError):
        check_clip(cfg.model, cfg.data, (64,))
    check_clip(cfg.model, dataclasses.replace(cfg.data, num_frames=2), (64,))


def test_a_network_that_reads_what_its_clip_lacks_is_refused_as_the_predictor_refuses_it(
    monkeypatch,
):
    # an AttributeError of the network's forward is its answer, in train as in predict (misfit)
    class ReadsAnAttribute(torch.nn.Module):
        def forward(self, clip: torch.Tensor) -> torch.Tensor:
            return clip.pathways  # (B, K) for a clip that had them

    monkeypatch.setattr(build_module, "_create", lambda cfg: ReadsAnAttribute())
    cfg = load_config(None, ["model.name=c2d_r18"])
    with pytest.raises(ConfigError) as caught:
        check_clip(cfg.model, cfg.data, (64,))
    assert str(caught.value) == (
        "c2d_r18 cannot take clips of data.num_frames=8 frames at 64x64 pixels: 'Tensor' object "
        "has no attribute 'pathways'"
    )
    assert isinstance(caught.value.__cause__, AttributeError)  # zoo asks for the fewest frames
    assert fewest_frames(cfg.model, cfg.data, (64,)) is None


@pytest.mark.parametrize(
    ("want", "got", "frames", "data", "protocol"),
    [
        (
            4,
            None,
            8,
            "model.name=slowfast_r50 takes [slow, fast] pathways: set data.slowfast_alpha=4",
            "model SlowFast takes [slow, fast] pathways: set protocol.slowfast_alpha=4",
        ),
        (
            None,
            4,
            8,
            "model.name=slowfast_r50 takes one clip, not SlowFast pathways: set "
            "data.slowfast_alpha=null",
            "model SlowFast takes one clip, not SlowFast pathways: set "
            "protocol.slowfast_alpha=None",
        ),
        (
            8,
            4,
            8,
            "data.slowfast_alpha=4 but model.name=slowfast_r50 is built with slowfast_alpha=8; "
            "set data.slowfast_alpha=8",
            "protocol.slowfast_alpha=4 but model SlowFast is built with slowfast_alpha=8; set "
            "protocol.slowfast_alpha=8",
        ),
        (
            4,
            4,
            10,
            "data.num_frames=10 is not a multiple of data.slowfast_alpha=4 (the slow pathway "
            "takes every 4th frame of the fast one); use data.num_frames=8",
            "protocol.num_frames=10 is not a multiple of protocol.slowfast_alpha=4 (the slow "
            "pathway takes every 4th frame of the fast one); use protocol.num_frames=8",
        ),
    ],
)
def test_a_pathway_misfit_is_worded_alike_for_the_data_section_and_a_protocol(
    want, got, frames, data, protocol
):
    bad = build_module.pathway_misfit(want, got, frames)
    assert build_module.pathway_message(bad, "model.name=slowfast_r50", "data.", "null") == data
    assert build_module.pathway_message(bad, "model SlowFast", "protocol.", "None") == protocol


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_precision_takes_bfloat16_only_where_the_gpu_computes_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    """torch counts emulated bfloat16 (GPUs before compute capability 8) as supported by
    default; ``auto`` must not pick it there."""

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert build_module.resolve_precision("auto", "gpu") == expected
    assert build_module.resolve_precision("auto", "cpu") == "32-true"
    assert build_module.resolve_precision("16-true", "gpu") == "16-true"


def test_16_mixed_on_a_cpu_trains_as_bf16_mixed_said_in_one_line(caplog) -> None:
    """PyTorch has no float16 autocast on a CPU: Lightning switches to bf16-mixed after a
    warning with a path into its code; octvideo asks for bf16-mixed itself and says so."""
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.build"):
        assert build_module.resolve_precision("16-mixed", "cpu") == "bf16-mixed"
    assert [r.getMessage() for r in caplog.records] == [
        "trainer.precision=16-mixed: float16 mixed precision needs a GPU; on a CPU the run uses "
        "bfloat16 mixed precision instead (trainer.precision=bf16-mixed asks for it without "
        "this line; 32-true is float32)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.build"):
        assert build_module.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
        assert build_module.resolve_precision("16-mixed", "gpu") == "16-mixed"
        # silent where asked, and on every process of a distributed run but global rank 0
        assert build_module.resolve_precision("16-mixed", "cpu", say=False) == "bf16-mixed"
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("RANK", raising=False)
            patch.setenv("LOCAL_RANK", "1")  # as Lightning's ddp runs the command again
            assert build_module.resolve_precision("16-mixed", "cpu") == "bf16-mixed"
    assert not caplog.records
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = L.Trainer(
            accelerator="cpu",
            precision=build_module.resolve_precision("16-mixed", "cpu"),
            logger=False,
            enable_checkpointing=False,
        )
    assert trainer.precision == "bf16-mixed"
    assert not [w for w in caught if "precision" in str(w.message)]


@pytest.mark.parametrize(
    ("want", "got", "frames", "expected"),
    [
        (None, None, 7, None),
        (4, 4, 8, None),
        (4, None, 8, ("pathways", None)),
        (None, 4, 8, ("one clip", None)),
        (4, 2, 8, ("ratio", None)),
        (4, 4, 10, ("frames", 8)),
        (4, 4, 3, ("frames", 4)),
    ],
)
def test_pathway_misfit_is_the_one_slowfast_check_of_train_and_predict(want, got, frames, expected):
    bad = build_module.pathway_misfit(want, got, frames)
    assert (None if bad is None else (bad.kind, bad.fix)) == expected


def test_the_advice_to_start_from_random_weights_loads_and_reads_no_file(tmp_path):
    """The refusal's ``model.pretrained=null`` is taken as typed and in YAML, and builds the
    network without reading a file."""
    cfg = ModelConfig(
        name="i3d_r18", num_classes=6, extra={"width": 8}, pretrained=str(tmp_path / "no.pt")
    )
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    advice = str(err.value).rsplit(", or ", 1)[1].split()[0]
    assert advice == "model.pretrained=null"
    path = tmp_path / "random.yaml"
    path.write_text("model:\n  pretrained: null\n")
    for loaded in (load_config(None, [advice]), load_config(path)):
        assert loaded.model.pretrained is None
        model = build_model(dataclasses.replace(cfg, pretrained=loaded.model.pretrained))
        assert model(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 6)


def _run_checkpoint(model: ModelConfig, *, meta: bool = True) -> dict:
    """A checkpoint as ``train`` writes it for a run of ``model`` on two classes (``meta``:
    with the model settings it records; else a bare state dict)."""
    cfg = dataclasses.replace(load_config(), model=model)
    weights = {f"model.{k}": v for k, v in build_model(model).state_dict().items()}
    checkpoint = {"state_dict": weights}
    if meta:
        info = CheckpointMeta.from_run(cfg, ["a", "b"]).to_dict()
        checkpoint["hyper_parameters"] = {"meta": info}
    return checkpoint


_TRAINED = ModelConfig(name="i3d_r18", num_classes=2, alpha=0.25, extra={"width": 8})


@pytest.mark.parametrize(
    ("config", "said", "overrides"),
    [
        (
            dataclasses.replace(_TRAINED, extra={"width": 16}),
            "model.extra.width is 8 in the checkpoint, 16 in the config",
            "model.extra.width=8",
        ),
        (
            dataclasses.replace(_TRAINED, alpha=0.5),
            "model.alpha is 0.25 in the checkpoint, 0.5 in the config",
            "model.alpha=0.25",
        ),
        (  # a key the checkpoint's run did not set goes with the whole mapping
            dataclasses.replace(_TRAINED, extra={"width": 16, "channel_multiple": 4}),
            "model.extra.width is 8 in the checkpoint, 16 in the config; "
            "model.extra.channel_multiple is unset in the checkpoint, 4 in the config",
            'model.extra={"width":8}',
        ),
    ],
)
def test_a_checkpoint_of_other_model_settings_is_refused_naming_each_and_its_overrides(
    config, said, overrides
):
    checkpoint = _run_checkpoint(_TRAINED)
    with pytest.raises(UsageError) as err:
        build_classifier(config, ["a", "b"], checkpoint, "runs/demo/checkpoints/best.ckpt")
    assert str(err.value) == (
        "checkpoint runs/demo/checkpoints/best.ckpt was trained with other model settings than "
        f"the config's ({said}): its weights do not fit model i3d_r18; use its run folder's "
        f"config.yaml, or give the overrides {overrides}"
    )


def test_a_checkpoint_of_other_settings_in_training_alone_loads_into_the_config():
    checkpoint = _run_checkpoint(_TRAINED)
    config = dataclasses.replace(
        _TRAINED, dropout=0.1, extra={"width": 8, "zero_init_final_bn": True}
    )
    model = build_classifier(config, ["a", "b"], checkpoint, "best.ckpt")
    assert torch.equal(
        model.state_dict()["stem.conv.conv_hh.weight"],
        checkpoint["state_dict"]["model.stem.conv.conv_hh.weight"],
    )


def test_a_checkpoint_that_records_no_settings_is_refused_naming_its_weights_shapes():
    checkpoint = _run_checkpoint(_TRAINED, meta=False)
    config = dataclasses.replace(_TRAINED, extra={"width": 16})
    with pytest.raises(UsageError) as err:
        build_classifier(config, ["a", "b"], checkpoint, "w.pt")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "checkpoint w.pt does not fit model i3d_r18 (shape differs: stem.conv.conv_hh.weight "
        "(8, 3, 5, 7, 7) in the checkpoint, (16, 3, 5, 7, 7) in the model, "
    )
    assert message.endswith(" more); use the config of the network it was saved from")


def test_a_checkpoint_of_another_class_count_alone_names_the_classes():
    checkpoint = _run_checkpoint(_TRAINED)
    config = dataclasses.replace(_TRAINED, num_classes=3)
    with pytest.raises(UsageError, match="has 2 classes but model.num_classes=3; use the config"):
        build_classifier(config, ["a", "b", "c"], checkpoint, "best.ckpt")


def test_a_model_extra_key_set_to_its_models_default_is_not_named_as_a_setting():
    # temporal_pool: true is how an I3D pools anyway: only the width builds another network
    checkpoint = _run_checkpoint(_TRAINED)
    config = dataclasses.replace(_TRAINED, extra={"width": 16, "temporal_pool": True})
    with pytest.raises(UsageError) as err:
        build_classifier(config, ["a", "b"], checkpoint, "best.ckpt")
    assert "(model.extra.width is 8 in the checkpoint, 16 in the config): " in str(err.value)
    assert str(err.value).endswith("give the overrides model.extra.width=8")


@pytest.mark.parametrize("alpha", [0.25, 0.0])
def test_pretrained_weights_of_other_recorded_settings_are_refused_naming_them(tmp_path, alpha):
    """The settings the checkpoint records, as ``octvideo test`` names them, not the shapes; the
    class count (the classifier is renewed) and the alpha of alpha-0 weights (sliced into the
    octave blocks) may differ."""
    path = tmp_path / "narrow.ckpt"
    torch.save(_run_checkpoint(dataclasses.replace(_TRAINED, alpha=alpha)), path)
    config = dataclasses.replace(_TRAINED, num_classes=6, extra={"width": 16}, pretrained=str(path))
    with pytest.raises(ConfigError) as err:
        build_model(config)
    assert str(err.value) == (
        f"model.pretrained={str(path)!r} (octvideo) does not fit ResNet3D: its weights were "
        "trained with other model settings (model.extra.width is 8 in the checkpoint, 16 in the "
        "config); use weights trained with the config's settings (only the classifier may "
        "differ), or give the overrides model.extra.width=8"
    )
