"""``octvideo import``'s logic: PyTorchVideo zoo files (made here with PyTorchVideo's own builders
and random weights, at width 8 where PyTorchVideo allows it) import into checkpoints that predict
the PyTorchVideo model's own probabilities in float64; ``--alpha`` writes Oct models whose alpha-0
slices are the source's weights and that train fine-tunes; torchvision ResNets inflate; octvideo
checkpoints octavise; every bad input is one line and writes nothing."""

from __future__ import annotations

import copy
import logging
import os
import shlex
import shutil
import tomllib
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import octvideo.inference.predictor as predictor_module
from octvideo.checkpoint_meta import CheckpointMeta
from octvideo.config import ModelConfig, load_config
from octvideo.data.transforms import pack_pathways
from octvideo.engine import zoo_recipes as zoo_recipes_module
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict
from octvideo.engine.zoo import (
    CONFIG_MARK,
    import_checkpoint,
    kinetics400_classes,
)
from octvideo.errors import OutputWriteError, UsageError
from octvideo.inference.predictor import Predictor
from octvideo.models.weights import convert_pytorchvideo_state_dict
from octvideo.network import build_network
from octvideo.ops import OctConv3d
from tests.failing_writes import fail_output
from tests.reliability.bad_input_matrix import NO_FILES, make_no_file

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ["c2d_r50", "i3d_r50", "slow_r50", "slowfast_r50"]


@pytest.fixture
def unfused(monkeypatch):
    """Predictors keep the model as loaded: these tests compare its weights and its float64
    outputs with the source's, and ``fuse_for_inference`` (which folds batch norm in the
    predictor's float32) has its own float64 tests against the unfused model."""
    monkeypatch.setattr(
        predictor_module, "fuse_for_inference", lambda model, *_, **__: model.eval()
    )


def _pytorchvideo(name: str, num_classes: int = 400, width: int = 8) -> nn.Module:
    """PyTorchVideo's own network of ``name`` (random weights, non-trivial BN statistics), its
    head pool covering a 4 x 64 x 64 clip's features; ResNets at stem width ``width``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub
        from pytorchvideo.models.resnet import create_resnet

    torch.manual_seed(0)
    if name == "slow_r50":  # hub.slow_r50 fixes an (8, 7, 7) head pool; same arguments otherwise
        net = create_resnet(
            stem_conv_kernel_size=(1, 7, 7),
            head_pool_kernel_size=(4, 2, 2),
            model_depth=50,
            stem_dim_out=width,
            model_num_class=num_classes,
        )
    elif name == "slowfast_r50":  # no width argument in octvideo's SlowFast: the zoo's own
        net = hub.slowfast_r50(
            pretrained=False,
            head_pool_kernel_sizes=((2, 2, 2), (8, 2, 2)),
            model_num_class=num_classes,
        )
    else:
        net = getattr(hub, name)(
            pretrained=False,
            head_pool_kernel_size=(2, 2, 2),
            stem_dim_out=width,
            model_num_class=num_classes,
        )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return net.eval()


def _zoo_file(folder: Path, net: nn.Module, name: str = "I3D_8x8_R50.pyth") -> Path:
    path = folder / name
    torch.save({"model_state": net.state_dict()}, path)  # the zoo's file layout
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory):
    """``zoo(name, file_name)`` -> (PyTorchVideo network, its zoo file under ``file_name``),
    each network built and saved once (float32, as the zoo's files are)."""
    folder = tmp_path_factory.mktemp("zoo")
    made: dict[str, tuple[nn.Module, Path]] = {}

    def make(name: str, file_name: str | None = None) -> tuple[nn.Module, Path]:
        if name not in made:
            net = _pytorchvideo(name)
            made[name] = (net, _zoo_file(folder, net, f"{name}.pyth"))
        net, path = made[name]
        if file_name is not None:  # the zoo's file names carry the clip (SLOW_4x16_R50.pyth)
            link = folder / file_name
            if not link.exists():
                link.symlink_to(path)
            path = link
        return net, path

    return make


@pytest.fixture
def i3d_zoo(zoo) -> Path:
    return zoo("i3d_r50", "I3D_8x8_R50.pyth")[1]


# ------------------------------------------------------------------------------ class list


def test_kinetics400_classes_are_torchvisions_400_in_order() -> None:
    from torchvision.models._meta import _KINETICS400_CATEGORIES

    names = kinetics400_classes()
    assert len(names) == 400
    assert len(set(names)) == 400
    assert names == list(_KINETICS400_CATEGORIES)
    assert names == sorted(names)  # the zoo's classifiers: alphabetical, as PySlowFast sorts


def test_kinetics400_classes_ship_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["octvideo"]
    assert "data/kinetics400_classes.txt" in shipped
    assert (ROOT / "octvideo" / "data" / "kinetics400_classes.txt").is_file()


# --------------------------------------------------------------------------- PyTorchVideo


@pytest.mark.parametrize("name", ARCHS)
def test_zoo_import_predicts_the_pytorchvideo_models_probabilities(
    unfused, name: str, zoo, tmp_path: Path
) -> None:
    net, pyth = zoo(name)
    ref = copy.deepcopy(net).double()  # float64 on the file's own float32 weights, both sides
    out = tmp_path / f"{name}_k400.ckpt"
    result = import_checkpoint(pyth, source="pytorchvideo", model=name, out=out)
    assert result.checkpoint == out and result.config == out.with_suffix(".yaml")

    predictor = Predictor.from_checkpoint(out)  # what octvideo predict builds
    predictor.model.double()
    assert predictor.classes == kinetics400_classes()
    g = torch.Generator().manual_seed(2)
    frames = 8 if name.startswith("slowfast") else 4
    clips = torch.randn(2, 3, frames, 64, 64, generator=g, dtype=torch.float64)  # preprocessed
    got = predictor.logits(clips).double().softmax(-1)  # predict's path: logits of float32
    with torch.no_grad():
        if name.startswith("slowfast"):
            pathways = [pack_pathways(c, predictor.protocol.slowfast_alpha) for c in clips]
            inputs = [torch.stack([p[i] for p in pathways]) for i in range(2)]
            want_logits = ref(list(inputs))  # PyTorchVideo writes into its input list
            own_logits = predictor.model(inputs)
        else:
            want_logits = ref(clips)
            own_logits = predictor.model(clips)
    torch.testing.assert_close(own_logits, want_logits, rtol=1e-10, atol=1e-10)  # float64
    # predict's logits are float32: their rounding (1e-7 of a logit of ~10) is all that differs
    torch.testing.assert_close(got, want_logits.softmax(-1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ARCHS)
def test_zoo_import_pools_as_pytorchvideo_on_crops_larger_than_training(
    unfused, name: str, zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zoo's heads pool the 7 x 7 res5 map of a 224 crop, which a 256 crop makes 8 x 8 (2 x 2
    window positions). The nets here pool 2 x 2 cells, a 64 crop's map (the import is told so),
    and a 96 crop gives them 3 x 3 cells: 2 x 2 positions again."""
    monkeypatch.setattr(zoo_recipes_module, "ZOO_TRAIN_CROP", 64)
    net, pyth = zoo(name)
    ref = copy.deepcopy(net).double()
    out = tmp_path / f"{name}.ckpt"
    clip = "2x8" if name.startswith("slowfast") else "4x8"  # the clips the nets' kernels fit
    import_checkpoint(pyth, source="pytorchvideo", model=name, out=out, clip=clip)

    predictor = Predictor.from_checkpoint(out)  # the window comes from the checkpoint
    predictor.model.double()
    g = torch.Generator().manual_seed(3)
    frames = predictor.protocol.num_frames  # 4, or SlowFast's 8 (2 slow)
    clips = torch.randn(1, 3, frames, 96, 96, generator=g, dtype=torch.float64)
    got = predictor.logits(clips).double().softmax(-1)
    with torch.no_grad():
        if name.startswith("slowfast"):
            inputs = [p.unsqueeze(0) for p in pack_pathways(clips[0], 4)]
            want_logits = ref(list(inputs))
            own_logits = predictor.model(inputs)
        else:
            want_logits = ref(clips)
            own_logits = predictor.model(clips)
    torch.testing.assert_close(own_logits, want_logits, rtol=1e-10, atol=1e-10)  # float64
    torch.testing.assert_close(got, want_logits.softmax(-1), rtol=1e-5, atol=1e-7)


def test_run_config_builds_the_zoo_head_pool(i3d_zoo: Path, tmp_path: Path) -> None:
    from octvideo.config import load_config
    from octvideo.engine.build import build_model

    out = tmp_path / "i3d.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out)
    cfg = load_config(out.with_suffix(".yaml"))  # what octvideo test --cfg builds
    assert build_model(cfg.model, pretrained=False).global_pool.window == (4, 7, 7)
    meta = CheckpointMeta.from_checkpoint(load_checkpoint(out))
    assert build_network(meta.model).global_pool.window == (4, 7, 7)  # predict, export


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("torchscript", marks=pytest.mark.heavy)])
def test_export_keeps_the_zoo_head_pool(fmt: str, i3d_zoo: Path, tmp_path: Path) -> None:
    from octvideo.inference.export import example_clip, export, run_exported

    out = tmp_path / "i3d.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out, clip="2x8")
    result = export(out, fmt)  # traced on the protocol's 256 crop, checked against the model
    predictor = Predictor.from_checkpoint(out)
    assert predictor.model.global_pool.window == (1, 7, 7)
    clip = example_clip(predictor.protocol, 1, seed=3)  # 2 x 256 x 256: res5 1 x 8 x 8 cells
    got = torch.from_numpy(run_exported(result.path, fmt, (clip,)))
    with torch.no_grad():
        windowed = predictor.model(clip)
        res5 = predictor.model.forward_stages(clip).high
        global_logits = predictor.model.forward_head(res5.mean(dim=(2, 3, 4)))
    torch.testing.assert_close(got, windowed, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got, global_logits, rtol=1e-3, atol=1e-3)


def test_zoo_import_records_the_zoos_protocol(i3d_zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "i3d.ckpt"
    result = import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out)
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    assert meta["clip"] == {
        "num_frames": 8,
        "sampling_rate": 8,
        "target_fps": 30.0,
        "slowfast_alpha": None,
        "train_crop_size": 224,
        "val_crop_size": 224,
        "test_short_side": 256,
        "test_crop_size": 256,
        "test_num_clips": 10,
        "test_num_crops": 3,
    }
    assert meta["normalization"] == {"mean": [0.45] * 3, "std": [0.225] * 3}
    assert meta["model"]["name"] == "i3d_r50"
    assert meta["model"]["extra"] == {"width": 8, "head_pool": [4, 7, 7]}  # the zoo's I3D head
    assert meta["source"]["file"] == i3d_zoo.name and len(meta["source"]["sha256"]) == 64
    assert result.clip_source == f"the file name {i3d_zoo.name}"
    text = result.config.read_text()
    assert text.encode().startswith(CONFIG_MARK)
    data = yaml.safe_load(text)["data"]
    assert list(data) == [*meta["clip"], "train_jitter_scales", "mean", "std", "classes_file"]
    assert data["classes_file"].endswith("kinetics400_classes.txt")
    assert Path(data["classes_file"]).read_text().splitlines() == kinetics400_classes()


@pytest.mark.parametrize(
    ("clip", "file_name", "want", "head_pool"),
    [
        (None, "weights.pyth", (32, 2, 4), [[8, 7, 7], [32, 7, 7]]),  # its lateral kernel, 7
        ("4x16", "weights.pyth", (32, 2, 8), [[4, 7, 7], [32, 7, 7]]),
    ],
)
def test_slowfast_clip_sets_frames_stride_and_speed_ratio(
    clip: str | None,
    file_name: str,
    want: tuple[int, int, int],
    head_pool: list[list[int]],
    zoo,
    tmp_path: Path,
) -> None:
    pyth = zoo("slowfast_r50", file_name)[1]
    out = tmp_path / "sf.ckpt"
    import_checkpoint(pyth, source="pytorchvideo", model="slowfast_r50", out=out, clip=clip)
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    c = meta["clip"]
    assert (c["num_frames"], c["sampling_rate"], c["slowfast_alpha"]) == want
    extra = {"fusion_kernel": 7, "slowfast_alpha": want[2], "head_pool": head_pool}
    assert meta["model"]["extra"] == extra


def test_slow_4x16_from_the_zoo_file_name(zoo, tmp_path: Path) -> None:
    pyth = zoo("slow_r50", "SLOW_4x16_R50.pyth")[1]
    out = tmp_path / "slow.ckpt"
    import_checkpoint(pyth, source="pytorchvideo", model="slow_r50", out=out)
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    assert (meta["clip"]["num_frames"], meta["clip"]["sampling_rate"]) == (4, 16)
    assert meta["model"]["extra"]["head_pool"] == [4, 7, 7]


@pytest.mark.parametrize("name", ["c2d_r50", "i3d_r50"])
def test_a_clip_too_short_for_the_temporal_pool_is_refused(zoo, tmp_path: Path, name: str) -> None:
    """C2D and I3D halve T after res2: a 1-frame clip would write a checkpoint that predict and
    export cannot run."""
    message = _refusal(tmp_path, zoo(name)[1], model=name, clip="1x8")
    assert message.startswith(
        f"--clip 1x8: {name} cannot take clips of 1 frame; it takes 2 or more (e.g. --clip 2x8)"
    )


@pytest.mark.parametrize(
    ("name", "clip"),
    [("k400_320x256_slow_r50.pyth", "320x256"), ("SLOW_0x8_R50.pyth", "0x8"), ("4x0.pyth", "4x0")],
)
def test_a_clip_in_the_file_name_outside_the_bounds_is_one_line(
    zoo, tmp_path: Path, name: str, clip: str
) -> None:
    """A zoo name's clip that no model takes (none of 0 frames, nor past the bounds) is refused
    as --clip would be, never taken for the 8x8 default unsaid."""
    pyth = zoo("slow_r50", name)[1]
    assert _refusal(tmp_path, pyth, model="slow_r50") == (
        f"the file name {name} gives clip {clip}, outside the bounds 1x1 to 256x64 "
        "(data.num_frames x data.sampling_rate); pass --clip TxTAU"
    )


def test_a_clip_from_the_file_name_is_not_called_clip_option(zoo, tmp_path: Path) -> None:
    net, _ = zoo("slowfast_r50")
    state = {  # a lateral kernel of no zoo recipe's: the clip is the file name's
        k: v[:, :, 2:5] if k.endswith("conv_fast_to_slow.weight") else v
        for k, v in net.state_dict().items()
    }
    pyth = tmp_path / "SLOWFAST_8x3_R50.pyth"
    torch.save({"model_state": _shapes_only(state)}, pyth)
    message = _refusal(tmp_path, pyth, model="slowfast_r50")
    assert message.startswith(
        "clip 8x3 (from the file name SLOWFAST_8x3_R50.pyth): a SlowFast clip's stride is"
    )
    assert message.endswith("; pass --clip TxTAU")


def test_slowfast_fast_frames_over_the_bound_are_one_line(zoo, tmp_path: Path) -> None:
    pyth = zoo("slowfast_r50")[1]
    message = _refusal(tmp_path, pyth, model="slowfast_r50", clip="256x8")
    assert message.startswith("--clip 256x8: data.num_frames=1024 is over the limit of 256")


@pytest.fixture(scope="module")
def slowfast_4x16(zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo SlowFast R50 file of the 4x16 recipe, renamed: its lateral kernel of 5 frames, the
    only clip setting its weights keep (8x8's is 7)."""
    net, _ = zoo("slowfast_r50")
    state = {
        k: v[:, :, 1:6] if k.endswith("conv_fast_to_slow.weight") else v
        for k, v in net.state_dict().items()
    }
    path = tmp_path_factory.mktemp("sf4x16") / "sf_k400.pyth"
    torch.save({"model_state": state}, path)
    return path


@pytest.mark.parametrize(
    ("file_name", "clip", "want"),
    [
        ("sf_k400.pyth", None, (32, 2, 8, [[4, 7, 7], [32, 7, 7]])),  # from its weights
        ("SLOWFAST_4x16_R50.pyth", None, (32, 2, 8, [[4, 7, 7], [32, 7, 7]])),
        ("sf_k400.pyth", "8x8", (32, 2, 4, [[8, 7, 7], [32, 7, 7]])),  # as asked, with a warning
    ],
)
def test_a_slowfast_r50_clip_follows_its_weights_lateral_kernel(
    slowfast_4x16: Path, file_name: str, clip, want, tmp_path: Path, caplog
) -> None:
    src = tmp_path / file_name
    src.symlink_to(slowfast_4x16)
    out = tmp_path / "sf.ckpt"
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.zoo"):
        result = import_checkpoint(
            src, source="pytorchvideo", model="slowfast_r50", out=out, clip=clip
        )
    c, extra = result.meta["clip"], result.meta["model"]["extra"]
    assert (c["num_frames"], c["sampling_rate"], c["slowfast_alpha"], extra["head_pool"]) == want
    assert extra["fusion_kernel"] == 5
    warned = [r.getMessage() for r in caplog.records if r.name == "octvideo.engine.zoo"]
    if clip:
        assert warned == [
            f"--clip 8x8: the lateral kernel of {file_name}, 5 frames, is the zoo's SlowFast R50 "
            "4x16's; importing at 8x8 as asked"
        ]
    else:
        assert not warned
    if file_name == "sf_k400.pyth" and not clip:
        assert result.clip_source == (
            "its weights' lateral kernel of 5 frames, the zoo's SlowFast R50 4x16's"
        )


def test_a_slowfast_file_named_for_another_clip_than_its_weights_is_refused(
    slowfast_4x16: Path, tmp_path: Path
) -> None:
    src = tmp_path / "SLOWFAST_8x8_R50.pyth"
    src.symlink_to(slowfast_4x16)
    assert _refusal(tmp_path, src, model="slowfast_r50") == (
        "the file name SLOWFAST_8x8_R50.pyth gives clip 8x8, but its weights' lateral kernel of "
        "5 frames is the zoo's SlowFast R50 4x16's: pass --clip 4x16 for the weights' recipe, "
        "or --clip 8x8 to keep the name's"
    )


# ------------------------------------------------------------------------------- --alpha


def test_alpha_import_slices_are_the_source_weights(i3d_zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "oct.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out, alpha=0.1)
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    assert meta["model"]["alpha"] == 0.1
    model = build_network(CheckpointMeta.from_dict(meta).model)
    model.load_state_dict(model_state_dict(load_checkpoint(out)))
    raw = torch.load(i3d_zoo, map_location="cpu", weights_only=True)["model_state"]
    source = convert_pytorchvideo_state_dict(raw, slowfast=False)
    octave = 0
    for name, m in model.named_modules():
        if isinstance(m, OctConv3d):
            octave += m.has_octave
            weight, _ = m.vanilla_weight()
            torch.testing.assert_close(weight, source[f"{name}.conv_hh.weight"], rtol=0, atol=0)
    assert octave > 0
    norm = model.res3[0].bn_b  # 16 channels, 2 of them low at alpha 0.1
    assert norm.low is not None
    want = source["res3.0.bn_b.high.running_mean"]
    got = torch.cat([norm.high.running_mean, norm.low.running_mean])
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_octave_import_fine_tunes_a_step(tiny_synth: Path, tmp_path: Path) -> None:
    from octvideo.engine.run import run_train
    from tests.engine.conftest import tiny_overrides

    pyth = _zoo_file(tmp_path, _pytorchvideo("i3d_r50", width=8))
    out = tmp_path / "i3d_r50_oct.ckpt"
    import_checkpoint(pyth, source="pytorchvideo", model="i3d_r50", out=out, alpha=0.1)
    overrides = tiny_overrides(
        tiny_synth,
        **{
            "model.name": "i3d_r50",
            "model.alpha": 0.1,
            "model.extra": "{width: 8}",
            "model.pretrained": out,
            "trainer.max_epochs": 1,
            "output.plot_curves": False,
        },
    )
    result = run_train(out.with_suffix(".yaml"), overrides, out=str(tmp_path / "run"))
    assert result.global_step >= 1
    assert torch.isfinite(torch.tensor(result.metrics["train/loss_epoch"]))


def _imported(source: str, i3d_zoo: Path, checkpoint: Path, tmp_path: Path) -> Path:
    """The run config that importing a file of ``source`` writes."""
    if source == "pytorchvideo":
        src, model, classes = i3d_zoo, "i3d_r50", None
    elif source == "torchvision":
        import torchvision

        src, model, classes = tmp_path / "resnet18.pth", "c2d_r18", "kinetics400"
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), src)
    else:
        src, model, classes = checkpoint, "c2d_r18", None
    out = tmp_path / "imported.ckpt"
    import_checkpoint(src, source=source, model=model, out=out, classes=classes)
    return out.with_suffix(".yaml")


@pytest.mark.parametrize("source", ["pytorchvideo", "torchvision", "octvideo"])
def test_the_run_configs_fine_tune_line_trains_on_the_users_classes(
    source: str, i3d_zoo: Path, checkpoint: Path, tiny_synth: Path, tmp_path: Path
) -> None:
    from octvideo.data import VideoDataModule

    config = _imported(source, i3d_zoo, checkpoint, tmp_path)
    [line] = [x for x in config.read_text().splitlines() if x.startswith("# fine-tune:")]
    words = line.split("octvideo train ", 1)[1].split()
    assert words[:2] == ["--cfg", config.name]
    classes = (tiny_synth / "classes.txt").read_text().splitlines()
    fill = {
        "N": str(len(classes)),
        "TRAIN": str(tiny_synth / "train.txt"),
        "VAL": str(tiny_synth / "val.txt"),
        "CLASSES": str(tiny_synth / "classes.txt"),
    }
    overrides = [f"{k}={fill.get(v, v)}" for k, v in (w.split("=", 1) for w in words[2:])]
    run_cfg = load_config(config, overrides)
    assert run_cfg.model.pretrained == "imported.ckpt"
    # the user's classes and head width, not the imported file's Kinetics list
    assert run_cfg.model.num_classes == len(classes)
    assert VideoDataModule(run_cfg.data).classes == classes


# ----------------------------------------------------------------------------- torchvision


def test_torchvision_resnet_inflates_for_fine_tuning(unfused, tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    sd2d = torchvision.models.resnet18(weights=None).state_dict()
    src = tmp_path / "resnet18.pth"
    torch.save(sd2d, src)
    out = tmp_path / "i3d_r18.ckpt"
    import_checkpoint(
        src, source="torchvision", model="i3d_r18", out=out, classes="kinetics400", alpha=0.25
    )
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    assert meta["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert meta["model"]["num_classes"] == 400 and meta["classes"] == kinetics400_classes()
    predictor = Predictor.from_checkpoint(out)  # loads strictly: every weight is there
    weight, _ = predictor.model.res2[0].conv_a.vanilla_weight()
    kt = weight.shape[2]
    want = sd2d["layer1.0.conv1.weight"].unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
    torch.testing.assert_close(weight, want, rtol=0, atol=0)
    # the classifier is new and the same on every import
    again = tmp_path / "again.ckpt"
    import_checkpoint(
        src, source="torchvision", model="i3d_r18", out=again, classes="kinetics400", alpha=0.25
    )
    a, b = (model_state_dict(load_checkpoint(p)) for p in (out, again))
    assert torch.equal(a["head.fc.weight"], b["head.fc.weight"])


@pytest.mark.parametrize("classes", ["1000", "7"])
def test_torchvision_import_has_a_new_classifier_for_any_class_count(
    classes: str, tmp_path: Path, caplog
) -> None:
    """docs/zoo.md: a torchvision ResNet's classifier is new, also for 1000 classes, and that
    is no news to log."""
    import torchvision

    sd2d = torchvision.models.resnet18(weights=None).state_dict()
    src = tmp_path / "resnet18.pth"
    torch.save(sd2d, src)
    out = tmp_path / "c2d.ckpt"
    with caplog.at_level(logging.INFO, logger="octvideo.models.weights"):
        import_checkpoint(src, source="torchvision", model="c2d_r18", out=out, classes=classes)
    fc = model_state_dict(load_checkpoint(out))["head.fc.weight"]
    assert fc.shape[0] == int(classes) and not torch.equal(fc, sd2d["fc.weight"][: int(classes)])
    assert not [r for r in caplog.records if r.name == "octvideo.models.weights"]


# -------------------------------------------------------------------------------- octvideo


def test_octvideo_alpha0_checkpoint_octavises(i3d_zoo: Path, tmp_path: Path) -> None:
    vanilla = tmp_path / "vanilla.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=vanilla)
    out = tmp_path / "oct.ckpt"
    import_checkpoint(vanilla, source="octvideo", model="i3d_r50", out=out, alpha=0.1)
    direct = tmp_path / "direct.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=direct, alpha=0.1)
    a, b = (load_checkpoint(p) for p in (out, direct))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(v, b["state_dict"][k]) for k, v in a["state_dict"].items())
    ma, mb = a["hyper_parameters"]["meta"], b["hyper_parameters"]["meta"]
    assert (ma["model"], ma["clip"], ma["classes"]) == (mb["model"], mb["clip"], mb["classes"])


def test_a_bare_octvideo_state_dict_imports_with_classes_and_octavises(tmp_path: Path):
    from octvideo.models import create_model

    src = tmp_path / "c2d.pt"
    torch.save(create_model("c2d_r18", num_classes=3, width=8).state_dict(), src)
    args = {"source": "octvideo", "model": "c2d_r18"}
    assert _refusal(tmp_path, src, **args) == (
        f"{src} has no class names (a bare state dict); name them with --classes "
        "kinetics400, FILE or a number"
    )
    assert _refusal(tmp_path, src, **{**args, "model": "i3d_r18", "classes": "3"}) == (
        f"{src} holds octvideo weights of c2d_r18, not of i3d_r18; use --model c2d_r18"
    )
    assert _refusal(tmp_path, src, **args, classes="4").startswith(
        "--classes names 4 classes but the classifier of"
    )
    out = tmp_path / "oct.ckpt"
    import_checkpoint(src, out=out, classes="3", alpha=0.25, **args)
    meta = load_checkpoint(out)["hyper_parameters"]["meta"]
    assert (meta["model"]["alpha"], meta["model"]["extra"]["width"]) == (0.25, 8)
    assert meta["classes"] == ["0", "1", "2"]


def test_octvideo_checkpoint_keeps_its_classes_and_protocol(
    checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "renamed.ckpt"
    names = tmp_path / "names.txt"
    names.write_text("a\nb\nc\n")
    import_checkpoint(checkpoint, source="octvideo", model="c2d_r18", out=out, classes=str(names))
    source, written = load_checkpoint(checkpoint), load_checkpoint(out)
    meta, own = written["hyper_parameters"]["meta"], source["hyper_parameters"]["meta"]
    assert meta["classes"] == ["a", "b", "c"]
    assert meta["clip"] == own["clip"] and meta["model"]["alpha"] == own["model"]["alpha"]
    assert all(torch.equal(v, source["state_dict"][k]) for k, v in written["state_dict"].items())


@pytest.mark.parametrize(
    ("how", "reason"), [("write", "No space left on device"), ("rename", "Operation not permitted")]
)
def test_a_run_config_that_cannot_be_written_keeps_the_earlier_checkpoint_and_config(
    checkpoint: Path, tmp_path: Path, monkeypatch, how: str, reason: str
) -> None:
    # the checkpoint was renamed in place before its run config was written: a full disk or an
    # append-only earlier .yaml left the new checkpoint beside the run config of another
    out, config = tmp_path / "m.ckpt", tmp_path / "m.yaml"
    import_checkpoint(checkpoint, source="octvideo", model="c2d_r18", out=out)
    earlier = (out.read_bytes(), config.read_bytes())
    names = tmp_path / "names.txt"
    names.write_text("a\nb\nc\n")
    fail_output(monkeypatch, how, config)
    with pytest.raises(OutputWriteError) as info:
        import_checkpoint(
            checkpoint, source="octvideo", model="c2d_r18", out=out, classes=str(names)
        )
    assert str(info.value).startswith(
        f"cannot write {config} ({reason}); the earlier m.ckpt and m.yaml are kept; "
    )
    assert (out.read_bytes(), config.read_bytes()) == earlier
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt", "m.yaml", "names.txt"]


def _edited_meta(checkpoint: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``checkpoint`` whose ``hyper_parameters.meta`` went through ``edit``."""
    from octvideo.engine.checkpoint import atomic_save

    source = load_checkpoint(checkpoint)
    edit(source["hyper_parameters"]["meta"])
    path = tmp_path / "edited.ckpt"
    atomic_save(source, path)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m.update(classes="abc"), "metadata: classes is 'abc' (str), not a list of"),
        (lambda m: m.update(classes=[1, 2, 3]), "metadata: classes is [1, 2, 3] (list), not a"),
        (lambda m: m["model"].update(alpha="abc"), "metadata: model.alpha is 'abc' (str), not a"),
        (lambda m: m["model"].update(name=None), "metadata: model.name is None (NoneType), not"),
        (lambda m: m.update(config={"data": "x"}), "metadata: config.data is 'x' (str), not a"),
        (
            lambda m: m.update(config={"data": {"classes_file": 3}}),
            "metadata: config.data.classes_file is 3 (int), not text or null",
        ),
        (
            lambda m: m.update(config={"data": {"train_jitter_scales": [320]}}),
            "metadata: config.data.train_jitter_scales is [320] (list), not a list of 2 whole",
        ),
        (
            lambda m: m["model"].update(name="r9"),
            "metadata: model.name is 'r9', which is not an octvideo",
        ),
    ],
)
def test_octvideo_source_metadata_is_checked_as_predict_checks_it(
    checkpoint: Path, tmp_path: Path, edit, expected: str
) -> None:
    """A malformed source is refused in one line naming the entry, never passed on into a
    checkpoint (a string of classes split into one class per letter) or a traceback."""
    src = _edited_meta(checkpoint, tmp_path, edit)
    message = _refusal(tmp_path, src, source="octvideo", model="c2d_r18", classes="3")
    assert expected in message
    try:  # where predict refuses it, it refuses it in the same words
        CheckpointMeta.from_checkpoint(load_checkpoint(src), src)
    except UsageError as err:
        assert str(err) == message


# ----------------------------------------------------------------------------- refusals


def _refusal(tmp_path: Path, src: Path, **kwargs: object) -> str:
    out = kwargs.pop("out", tmp_path / "out.ckpt")
    args = {"source": "pytorchvideo", "model": "i3d_r50", **kwargs}
    with pytest.raises(UsageError) as err:
        import_checkpoint(src, out=out, **args)
    message = str(err.value)
    assert "\n" not in message
    assert not (tmp_path / "out.ckpt").exists() and not (tmp_path / "out.yaml").exists()
    return message


@pytest.mark.parametrize(
    ("source", "model", "advice"),
    [
        (
            "pytorchvideo",
            "i3d_r50",
            "a PyTorchVideo model-zoo checkpoint (a .pyth, weights under 'model_state')",
        ),
        (
            "torchvision",
            "c2d_r18",
            "a torchvision ResNet state dict (a .pth of torch.save(model.state_dict()))",
        ),
        ("octvideo", "c2d_r18", "a checkpoint written by 'octvideo train' or 'octvideo import'"),
    ],
)
def test_a_source_that_is_no_dict_is_refused_with_advice_for_its_from(
    tmp_path: Path, source: str, model: str, advice: str
) -> None:
    listed = tmp_path / "list.pyth"
    torch.save([1, 2], listed)
    assert _refusal(tmp_path, listed, source=source, model=model, classes="3") == (
        f"checkpoint {str(listed)!r} holds a list, not the dict of weights that checkpoints and "
        f"state dicts are; pass {advice}"
    )


NEGATIVE = "blocks.1.res_blocks.0.branch2.norm_a.running_var"


def test_a_zoo_file_holding_a_negative_variance_is_refused_where_it_is_read(
    zoo, tmp_path: Path
) -> None:
    """A damaged or edited zoo file is refused in one line naming the file's own tensor, by
    import and by train's model.pretrained, not imported to fail every later prediction."""
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model
    from octvideo.errors import ConfigError

    state = zoo("slow_r50")[0].state_dict()
    state[NEGATIVE] = state[NEGATIVE].clone()
    state[NEGATIVE][0] = -1.0
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    refused = (
        f"checkpoint {str(src)!r}: weight {NEGATIVE} holds 1 negative variance; the checkpoint "
        "is broken (a damaged or edited file: no training writes a negative variance): get the "
        "file again"
    )
    assert _refusal(tmp_path, src, model="slow_r50") == refused
    section = ModelConfig(
        name="slow_r50", extra={"width": 8}, pretrained=str(src), pretrained_kind="pytorchvideo"
    )
    with pytest.raises(ConfigError) as err:
        build_model(section)
    assert str(err.value).startswith(f"model.pretrained={src} (pytorchvideo): {refused}; or set")


def test_a_damaged_import_is_refused_with_its_source_file_named(zoo, tmp_path: Path) -> None:
    src = zoo("slow_r50", "SLOW_8x8_R50.pyth")[1]
    out = tmp_path / "k.ckpt"
    import_checkpoint(src, source="pytorchvideo", model="slow_r50", out=out)
    checkpoint = load_checkpoint(out)
    checkpoint["state_dict"]["model.res2.0.bn_a.high.running_var"][0] = -1.0
    torch.save(checkpoint, out)
    with pytest.raises(UsageError) as err:
        Predictor.from_checkpoint(out)
    assert str(err.value) == (
        f"checkpoint {str(out)!r}: weight model.res2.0.bn_a.high.running_var holds 1 negative "
        "variance; the checkpoint is broken (a damaged or edited file: no training writes a "
        "negative variance): get 'SLOW_8x8_R50.pyth' again and import it anew"
    )


def test_wrong_architecture_names_the_one_that_fits(i3d_zoo: Path, tmp_path: Path) -> None:
    message = _refusal(tmp_path, i3d_zoo, model="slow_r50")
    assert message.endswith(
        "holds PyTorchVideo weights of i3d_r50, not of slow_r50; use --model i3d_r50"
    )
    message = _refusal(tmp_path, i3d_zoo, model="slowfast_r50")
    assert "use --model i3d_r50" in message


def test_torchvision_depth_mismatch_is_refused(tmp_path: Path) -> None:
    import torchvision

    src = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), src)
    message = _refusal(tmp_path, src, source="torchvision", model="c2d_r50", classes="7")
    assert message.endswith("holds a torchvision ResNet-18, which does not inflate into c2d_r50; "
                            "use --model c2d_r18")  # fmt: skip
    message = _refusal(tmp_path, src, source="torchvision", model="c2d_r18")
    assert "--classes" in message


@pytest.mark.parametrize(
    ("arch", "what"),
    [
        ("wide_resnet50_2", "a wide ResNet (bottlenecks of 128 channels after a stem of 64)"),
        ("resnext50_32x4d", "a ResNeXt (32 groups of 4 channels)"),
    ],
)
@pytest.mark.parametrize("model", ["i3d_r50", "i3d_r101", "c2d_r18"])
def test_a_torchvision_network_no_depth_takes_is_named_whatever_the_depth(
    tmp_path: Path, arch: str, what: str, model: str
) -> None:
    """Not sent to the depth of ``--model`` that fits, which would refuse it too."""
    import torchvision

    with torch.device("meta"):
        state = getattr(torchvision.models, arch)(weights=None).state_dict()
    src = tmp_path / f"{arch}.pth"
    torch.save(_shapes_only(state), src)
    message = _refusal(tmp_path, src, source="torchvision", model=model, classes="5")
    assert message.startswith(
        f"{src} does not inflate into {model}: the 2D network is {what}, which octvideo does not "
        "build"
    )


def test_wrong_source_kind_says_which_it_looks_like(i3d_zoo: Path, checkpoint: Path, tmp_path):
    message = _refusal(tmp_path, i3d_zoo, source="octvideo")
    assert message.endswith("use --from pytorchvideo")
    message = _refusal(tmp_path, checkpoint, source="pytorchvideo")
    assert message.endswith("use --from octvideo")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"source": "tensorflow"}, "--from 'tensorflow': use one of pytorchvideo, torchvision"),
        ({"model": "i3d_r51"}, "--model 'i3d_r51' is not an octvideo model; did you mean"),
        ({"model": "i3d_nl_r50"}, "--model i3d_nl_r50: PyTorchVideo's zoo has"),
        ({"classes": "7"}, "--classes names 7 classes but the classifier of"),
        ({"classes": "missing.txt"}, "--classes missing.txt: no such file"),
        ({"classes": "0"}, "--classes 0: give 1 to 100000 classes"),
        ({"classes": "-1"}, "--classes -1: give 1 to 100000 classes"),  # a number, not a file
        ({"classes": "100001"}, "--classes 100001: give 1 to 100000 classes"),
        ({"classes": "9" * 5000}, f"--classes {'9' * 5000}: give 1 to 100000 classes"),
        ({"classes": "\u00b2"}, "--classes \u00b2: no such file"),  # a digit, not a number
        ({"alpha": 1.0}, "--alpha 1.0: give a low-frequency share in [0, 1)"),
        ({"clip": "8by8"}, "--clip '8by8': give frames x stride from 1x1 to 256x64"),
        ({"clip": "257x8"}, "--clip '257x8': give frames x stride from 1x1 to 256x64"),
        ({"clip": "8x65"}, "--clip '8x65': give frames x stride from 1x1 to 256x64"),
        ({"clip": "0x8"}, "--clip '0x8': give frames x stride"),
        ({"clip": "9" * 5000 + "x8"}, f"--clip '{'9' * 5000}x8': give frames x stride from"),
        ({"out": "out.pt"}, "--out out.pt: give a .ckpt file name"),
    ],
)
def test_bad_arguments_are_one_line(i3d_zoo: Path, tmp_path: Path, kwargs, expected) -> None:
    assert _refusal(tmp_path, i3d_zoo, **kwargs).startswith(expected)


@pytest.mark.parametrize("kind", NO_FILES)
def test_a_class_list_that_is_no_file_is_named_for_what_it_is(i3d_zoo: Path, tmp_path, kind):
    path = tmp_path / "names.txt"
    what = make_no_file(path, kind)
    message = _refusal(tmp_path, i3d_zoo, classes=str(path))
    assert message.startswith(f"--classes {path}: the path {what}; give kinetics400, a class-")


def _without_batch_counts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_pytorchvideo_weights_without_batch_counts_import(zoo, tmp_path: Path) -> None:
    """PyTorchVideo and torch's BatchNorm load a state dict without ``num_batches_tracked``
    (filled with 0); so does import, with the same weights."""
    net, full = zoo("slow_r50")
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": _without_batch_counts(net.state_dict())}, src)
    out, whole = tmp_path / "nonbt.ckpt", tmp_path / "whole.ckpt"
    import_checkpoint(src, source="pytorchvideo", model="slow_r50", out=out)
    import_checkpoint(full, source="pytorchvideo", model="slow_r50", out=whole)
    a, b = (model_state_dict(load_checkpoint(p)) for p in (out, whole))
    assert a.keys() == b.keys()
    counts = [k for k in a if k.endswith("num_batches_tracked")]
    assert counts and all(int(a[k]) == 0 for k in counts)
    assert all(torch.equal(v, b[k]) for k, v in a.items() if k not in counts)


@pytest.mark.parametrize("layout", ["zoo", "bare without batch counts"])
def test_train_starts_from_every_pytorchvideo_file_that_import_reads(
    layout: str, zoo, tmp_path: Path
) -> None:
    """``train model.pretrained=F model.pretrained_kind=pytorchvideo`` reads F as import does:
    the zoo's ``{"model_state": ...}`` beside other entries, a state dict without counts."""
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model

    net, _ = zoo("slow_r50")
    src = tmp_path / "SLOW_8x8_R50.pyth"
    if layout == "zoo":
        torch.save({"model_state": net.state_dict(), "model_epoch": 196}, src)
    else:
        torch.save(_without_batch_counts(net.state_dict()), src)
    out = tmp_path / "imported.ckpt"
    import_checkpoint(src, source="pytorchvideo", model="slow_r50", out=out)
    want = model_state_dict(load_checkpoint(out))
    section = ModelConfig(
        name="slow_r50", extra={"width": 8}, pretrained=str(src), pretrained_kind="pytorchvideo"
    )
    got = build_model(section).state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize(
    ("extra", "refused", "warned"),
    [
        ({}, True, False),  # the default section: the 8x8 recipe's lateral kernel of 7
        ({"fusion_kernel": 5}, False, True),  # 4x16's kernel at 8x8's speed ratio 4
        ({"fusion_kernel": 5, "slowfast_alpha": 8}, False, False),  # the 4x16 recipe
    ],
)
def test_train_names_the_zoo_recipe_of_a_slowfast_file_as_import_does(
    slowfast_4x16: Path, extra, refused: bool, warned: bool, caplog
) -> None:
    from octvideo.config import ModelConfig
    from octvideo.engine.build import build_model
    from octvideo.errors import ConfigError

    section = ModelConfig(
        name="slowfast_r50",
        extra=extra,
        pretrained=str(slowfast_4x16),
        pretrained_kind="pytorchvideo",
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.zoo_recipes"):
        if refused:
            with pytest.raises(ConfigError) as err:
                build_model(section)
        else:
            build_model(section)
    if refused:
        assert str(err.value) == (
            f"model.pretrained={str(slowfast_4x16)!r} (pytorchvideo) does not fit SlowFast: its "
            "weights' lateral kernel of 5 frames is the zoo's SlowFast R50 4x16's: set "
            "model.extra.fusion_kernel=5 model.extra.slowfast_alpha=8 with its clip, "
            "data.num_frames=32 data.sampling_rate=2 data.slowfast_alpha=8, or import it "
            "('octvideo import', docs/zoo.md), whose run config sets them"
        )
    got = [r.getMessage() for r in caplog.records if r.name == "octvideo.engine.zoo_recipes"]
    assert got == (
        [
            f"model.extra.slowfast_alpha=4: the lateral kernel of {slowfast_4x16}, 5 frames, is "
            "the zoo's SlowFast R50 4x16's, trained at slowfast_alpha 8; training at 4 as asked"
        ]
        if warned
        else []
    )


def test_torchvision_weights_without_batch_counts_inflate(tmp_path: Path) -> None:
    import torchvision

    src = tmp_path / "resnet18.pth"
    torch.save(_without_batch_counts(torchvision.models.resnet18(weights=None).state_dict()), src)
    out = tmp_path / "i3d.ckpt"
    import_checkpoint(src, source="torchvision", model="i3d_r18", out=out, classes="3")
    state = model_state_dict(load_checkpoint(out))
    assert int(state["stem.bn.high.num_batches_tracked"]) == 0


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d.pop("blocks.4.res_blocks.2.branch2.norm_c.running_var"),
            "(missing: blocks.4.res_blocks.2.branch2.norm_c.running_var)",
        ),
        (
            lambda d: d.update({"blocks.5.extra.weight": torch.zeros(3)}),
            "(unexpected: blocks.5.extra.weight)",
        ),
        (
            lambda d: d.update({"blocks.1.res_blocks.0.branch2.conv_a.weight": torch.zeros(1)}),
            "(shape differs: blocks.1.res_blocks.0.branch2.conv_a.weight (1,) in the "
            "checkpoint, (8, 8, 1, 1, 1) in the model)",
        ),
    ],
)
def test_a_zoo_file_off_by_a_key_names_the_key(zoo, tmp_path: Path, edit, expected: str) -> None:
    """A file of ``--model``'s layout but for a few keys is not called another model's."""
    net, _ = zoo("slow_r50")
    state = dict(net.state_dict())
    edit(state)
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    message = _refusal(tmp_path, src, model="slow_r50")
    assert message.startswith(f"{src} has the layout of PyTorchVideo's slow_r50 but not all its")
    assert expected in message


@pytest.mark.parametrize(
    "key",
    [
        "blocks.0.conv.weight",  # the stem's, which shows the width
        "blocks.1.res_blocks.0.branch2.conv_a.weight",
        "blocks.1.res_blocks.0.branch1_conv.weight",
        "blocks.4.res_blocks.2.branch2.conv_c.weight",
        "blocks.6.proj.weight",  # the classifier's, which shows the class count
    ],
)
def test_a_zoo_file_missing_a_weight_is_called_damaged_naming_its_own_key(
    zoo, tmp_path: Path, key: str
) -> None:
    """Whichever weight a file lost, the line names it as the file would hold it, and no other
    key: not octvideo's name, nor a shape guessed without the lost weight."""
    net, _ = zoo("i3d_r50")
    state = dict(net.state_dict())
    state.pop(key)
    src = tmp_path / "I3D_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    assert _refusal(tmp_path, src) == (
        f"{src} has the layout of PyTorchVideo's i3d_r50 but not all its weights (missing: "
        f"{key}); the file is damaged or of a modified network: download it again"
    )


@pytest.mark.parametrize(
    "key",
    [
        "blocks.0.multipathway_fusion.conv_fast_to_slow.weight",  # shows the lateral kernel
        "blocks.2.multipathway_blocks.1.res_blocks.0.branch2.conv_b.weight",
    ],
)
def test_a_slowfast_zoo_file_missing_a_weight_names_its_own_key(tmp_path: Path, key: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub

    with torch.device("meta"):
        state = dict(hub.slowfast_r50().state_dict())
    state.pop(key)
    src = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": _shapes_only(state)}, src)
    assert _refusal(tmp_path, src, model="slowfast_r50") == (
        f"{src} has the layout of PyTorchVideo's slowfast_r50 but not all its weights (missing: "
        f"{key}); the file is damaged or of a modified network: download it again"
    )


def test_a_torchvision_resnet_missing_its_stem_weight_names_it(tmp_path: Path) -> None:
    import torchvision

    state = dict(torchvision.models.resnet18(weights=None).state_dict())
    state.pop("conv1.weight")
    src = tmp_path / "resnet18.pth"
    torch.save(state, src)
    assert _refusal(tmp_path, src, source="torchvision", model="i3d_r18", classes="5") == (
        f"{src} does not inflate into i3d_r18: 2D state dict does not fit ResNet3D: missing: "
        "conv1.weight"
    )


def test_a_bare_octvideo_state_dict_missing_a_weight_is_called_damaged(tmp_path: Path):
    with torch.device("meta"):
        state = dict(build_network(ModelConfig(name="i3d_r18", num_classes=5)).state_dict())
    state.pop("stem.conv.conv_hh.weight")
    src = tmp_path / "i3d.pt"
    torch.save(_shapes_only(state), src)
    assert _refusal(tmp_path, src, source="octvideo", model="i3d_r18", classes="5") == (
        f"{src} has the layout of octvideo's i3d_r18 but not all its weights (missing: "
        "stem.conv.conv_hh.weight); the file is damaged or of a modified network: get the file "
        "again"
    )


@pytest.mark.parametrize(
    ("source", "model", "holds"),
    [
        (
            "pytorchvideo",
            "i3d_r50",
            "no PyTorchVideo weights (no 'model_state' of 'blocks.*' tensors)",
        ),
        ("torchvision", "i3d_r18", "no torchvision ResNet weights (no conv1 / layer1 keys)"),
        ("octvideo", "i3d_r18", "no octvideo weights"),
    ],
)
def test_weights_saved_through_a_data_parallel_wrapper_name_its_prefix(
    zoo, tmp_path: Path, source: str, model: str, holds: str
) -> None:
    """No command strips a ``module.`` prefix; every source names it and how to drop it."""
    import torchvision

    if source == "pytorchvideo":
        state = zoo("i3d_r50")[0].state_dict()
    elif source == "torchvision":
        state = torchvision.models.resnet18(weights=None).state_dict()
    else:
        state = build_network(ModelConfig(name=model, num_classes=5)).state_dict()
    src = tmp_path / "ddp.pth"
    torch.save({"model_state": {f"module.{k}": v for k, v in state.items()}}, src)
    assert _refusal(tmp_path, src, source=source, model=model, classes="5") == (
        f"{src} holds {holds}; every key starts with 'module.', as a DataParallel or "
        "DistributedDataParallel wrapper saves them: save model.module.state_dict() instead, or "
        "remove the prefix from the keys"
    )


def _shapes_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as zeros that take no memory (a stride-0 view of one value, which torch.save
    writes as that value): a file of a large network's shapes, for refusals that read shapes."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}


def test_a_zoo_design_octvideo_does_not_build_is_named_not_called_damaged(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub

    with torch.device("meta"):
        state = hub.slowfast_16x8_r101_50_50().state_dict()
    src = tmp_path / "k400.pyth"
    torch.save({"model_state": _shapes_only(state)}, src)
    for model in ("slowfast_r101", "slowfast_r50"):
        assert _refusal(tmp_path, src, model=model) == (
            f"{src} holds PyTorchVideo's SlowFast 16x8 R101 50_50, which octvideo does not build: "
            "its temporal kernels differ from slowfast_r101's in 34 convolutions "
            "(blocks.3.multipathway_blocks.0.res_blocks.6.branch2.conv_a.weight: 1, 3 in "
            "slowfast_r101); the file is intact: import a zoo model that docs/zoo.md lists"
        )


def test_a_zoo_file_of_other_temporal_kernels_is_named_not_called_damaged(zoo, tmp_path: Path):
    net, _ = zoo("slow_r50")
    state = dict(net.state_dict())
    key = "blocks.3.res_blocks.1.branch2.conv_a.weight"  # res4: temporal kernel 3
    state[key] = state[key][:, :, 1:2]
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    assert _refusal(tmp_path, src, model="slow_r50") == (
        f"{src} holds a PyTorchVideo slow_r50 of another design, which octvideo does not build: "
        f"its temporal kernels differ from slow_r50's in 1 convolution ({key}: 1, 3 in "
        "slow_r50); the file is intact: import a zoo model that docs/zoo.md lists"
    )


def test_zoo_designs_of_grouped_convolutions_or_no_classifier_are_not_called_damaged(
    tmp_path: Path,
):
    """CSN_32x2_R101 (depthwise conv_b, other temporal kernels) and the AVA zoo's Slow R50
    detector (no classifier) are intact files of designs octvideo does not build."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub

    with torch.device("meta"):
        csn = hub.csn_r101().state_dict()
        detector = hub.slow_r50_detection().state_dict()
    csn_file, detector_file = tmp_path / "CSN_32x2_R101.pyth", tmp_path / "SLOW_8x8_R50_DET.pyth"
    torch.save({"model_state": _shapes_only(csn)}, csn_file)
    torch.save({"model_state": _shapes_only(detector)}, detector_file)
    assert _refusal(tmp_path, csn_file, model="i3d_r101") == (
        f"{csn_file} holds a PyTorchVideo c2d_r101 of another design, which octvideo does not "
        "build: its temporal kernels differ from c2d_r101's in 34 convolutions "
        "(blocks.0.conv.weight: 3, 1 in c2d_r101); it has grouped convolutions where c2d_r101 "
        "has none, in 33 convolutions (blocks.1.res_blocks.0.branch2.conv_b.weight: 64 groups "
        "of 1 channel); the file is intact: import a zoo model that docs/zoo.md lists"
    )
    assert _refusal(tmp_path, detector_file, model="slow_r50") == (
        f"{detector_file} holds a PyTorchVideo slow_r50 of another design, which octvideo does "
        "not build: it has no classifier where slow_r50 has one (a backbone alone, or a "
        "detection network, whose head octvideo does not read); the file is intact: import a "
        "zoo model that docs/zoo.md lists"
    )


def test_a_zoo_file_wider_than_octvideo_builds_names_the_width_bound(zoo, tmp_path: Path):
    """A setting beyond the config's bounds fits no model: named, not guessed at."""
    net, _ = zoo("slow_r50")
    state = _shapes_only(dict(net.state_dict()))
    state["blocks.0.conv.weight"] = torch.zeros(()).expand(2048, 3, 1, 7, 7)
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    for model in ("slow_r50", "slowfast_r50"):  # its layout, and the guess from another
        message = _refusal(tmp_path, src, model=model)
        assert message.startswith("model.extra.width must be a whole number in [1, 1024]")
        assert message.endswith("got 2048")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (  # out channels: no design has a conv of other outputs beside norms of the old ones
            lambda w: w[:-1],
            "shape differs: blocks.1.res_blocks.0.branch2.conv_b.weight",
        ),
        (lambda w: w[:, :3], "shape differs: blocks.1.res_blocks.0.branch2.conv_b.weight"),
        (lambda w: w[..., :2], "shape differs: blocks.1.res_blocks.0.branch2.conv_b.weight"),
    ],
)
def test_zoo_shapes_no_design_explains_are_called_damaged(zoo, tmp_path: Path, edit, expected):
    net, _ = zoo("slow_r50")
    state = dict(net.state_dict())
    key = "blocks.1.res_blocks.0.branch2.conv_b.weight"  # (8, 8, 1, 3, 3) at width 8
    state[key] = edit(state[key])
    src = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": state}, src)
    message = _refusal(tmp_path, src, model="slow_r50")
    assert message.startswith(f"{src} has the layout of PyTorchVideo's slow_r50 but not all its")
    assert expected in message and message.endswith("download it again")


def test_missing_source_file_is_one_line(tmp_path: Path) -> None:
    assert "does not exist" in _refusal(tmp_path, tmp_path / "SLOW_8x8_R50.pyth")


def test_classes_file_of_another_count_is_refused(i3d_zoo: Path, tmp_path: Path) -> None:
    names = tmp_path / "k600.txt"
    names.write_text("".join(f"class {i}\n" for i in range(600)))
    message = _refusal(tmp_path, i3d_zoo, classes=str(names))
    assert message.startswith("--classes names 600 classes but the classifier of")


def test_output_over_an_input_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    before = checkpoint.read_bytes()
    message = _refusal(tmp_path, checkpoint, source="octvideo", model="c2d_r18", out=checkpoint)
    assert "writing it would destroy it" in message
    assert checkpoint.read_bytes() == before


def test_a_users_yaml_beside_the_output_is_not_replaced(i3d_zoo: Path, tmp_path: Path) -> None:
    mine = tmp_path / "out.yaml"
    mine.write_text("model: {name: i3d_r50}\n")
    with pytest.raises(UsageError, match="is not a run config of 'octvideo import': writing it"):
        import_checkpoint(
            i3d_zoo, source="pytorchvideo", model="i3d_r50", out=tmp_path / "out.ckpt"
        )
    assert mine.read_text() == "model: {name: i3d_r50}\n"
    assert not (tmp_path / "out.ckpt").exists()


def test_octave_source_is_not_octavised_again(checkpoint: Path, tmp_path: Path) -> None:
    message = _refusal(tmp_path, checkpoint, source="octvideo", model="c2d_r18", alpha=0.1)
    assert "is already an octave network (alpha 0.25)" in message
    message = _refusal(tmp_path, checkpoint, source="octvideo", model="i3d_r18")
    assert "is an octvideo c2d_r18 checkpoint, not i3d_r18; use --model c2d_r18" in message


def test_an_out_named_like_a_shipped_config_is_refused(i3d_zoo: Path, tmp_path: Path) -> None:
    # its run config's own header commands (--cfg i3d_oct.yaml) would be refused as ambiguous
    message = _refusal(tmp_path, i3d_zoo, out=tmp_path / "i3d_oct.ckpt")
    assert message == (
        f"--out {tmp_path / 'i3d_oct.ckpt'}: its run config i3d_oct.yaml would be named like the "
        "shipped config kinetics400/i3d_r50_oct_a0.1_8x8.yaml, which --cfg would not tell "
        "apart; choose another --out name"
    )


@pytest.mark.parametrize(
    "name",
    ["n\nmodel: {alpha: 0.5}\nx.ckpt", "tab\there.ckpt", "cr\r.ckpt", "ls\u2028x.ckpt"],
)
def test_an_out_name_with_a_control_character_is_one_line(
    i3d_zoo: Path, tmp_path: Path, name: str
) -> None:
    # its lines used to become YAML in the run config's header, which test then refused
    out = tmp_path / name
    assert _refusal(tmp_path, i3d_zoo, out=out) == (
        f"--out {str(out)!r}: its name holds a line break or another control character, which "
        "the commands in the run config's comments cannot hold; choose another --out name"
    )
    assert os.listdir(tmp_path) == []


def test_an_out_name_not_utf8_is_one_line_before_anything_is_written(
    checkpoint: Path, tmp_path: Path
) -> None:
    # the run config's text could not be written, after the checkpoint was
    out = tmp_path / os.fsdecode(b"caf\xe9.ckpt")
    message = _refusal(tmp_path, checkpoint, source="octvideo", model="c2d_r18", out=out)
    assert message == (
        f"--out {str(out)!r}: its name is not UTF-8 text, which the run config (UTF-8) cannot "
        "name; choose another --out name"
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["sp ace \u00fc", "-dash", "a #b", "it's", "[1]", 'q"$x'])
def test_the_run_configs_commands_run_as_pasted(checkpoint: Path, tmp_path: Path, name: str):
    from octvideo.cli import build_parser

    out = tmp_path / f"{name}.ckpt"
    import_checkpoint(checkpoint, source="octvideo", model="c2d_r18", out=out)
    lines = out.with_suffix(".yaml").read_text().splitlines()
    [test] = [x.removeprefix("# test:") for x in lines if x.startswith("# test:")]
    [tune] = [x.removeprefix("# fine-tune:") for x in lines if x.startswith("# fine-tune:")]
    parser = build_parser()
    args = parser.parse_args(shlex.split(test)[1:])  # as a shell splits it, in its folder
    assert (tmp_path / args.cfg, tmp_path / args.ckpt) == (out.with_suffix(".yaml"), out)
    args = parser.parse_args(shlex.split(tune)[1:])
    assert tmp_path / args.cfg == out.with_suffix(".yaml")
    fill = {"N": "3", "TRAIN": "t.txt", "VAL": "v.txt", "CLASSES": "c.txt"}
    overrides = [f"{k}={fill.get(v, v)}" for k, v in (w.split("=", 1) for w in args.overrides)]
    assert load_config(tmp_path / args.cfg, overrides).model.pretrained == out.name


def test_a_source_named_with_a_line_break_stays_on_its_header_line(
    checkpoint: Path, tmp_path: Path
) -> None:
    src = tmp_path / "run\nmodel: {alpha: 0.5}.ckpt"
    shutil.copy(checkpoint, src)
    out = tmp_path / "imported.ckpt"
    import_checkpoint(src, source="octvideo", model="c2d_r18", out=out)
    first = out.with_suffix(".yaml").read_text().splitlines()[0]
    assert f" from {src.name!r} (--from octvideo)" in first
    assert load_config(out.with_suffix(".yaml")).model.alpha == 0.25  # not the name's 0.5


def test_an_out_that_is_another_runs_checkpoint_is_kept(
    i3d_zoo: Path, checkpoint: Path, tmp_path: Path
) -> None:
    last = tmp_path / "last.ckpt"  # a run's resume point, with no import's run config beside it
    shutil.copy(checkpoint, last)
    before = last.read_bytes()
    with pytest.raises(UsageError) as err:
        import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=last)
    assert str(err.value) == (
        f"--out {last} exists and is not an earlier import (a checkpoint with the run config of "
        "'octvideo import' beside it): writing it would destroy it; choose another path or "
        "remove it"
    )
    assert last.read_bytes() == before and not (tmp_path / "last.yaml").exists()


@pytest.mark.parametrize("which", [".ckpt", ".yaml"])
def test_a_read_only_earlier_import_is_kept(checkpoint: Path, tmp_path: Path, which: str) -> None:
    # its owner protected it (chmod a-w); the rename of a new import replaced it all the same
    out = tmp_path / "imported.ckpt"
    import_checkpoint(checkpoint, source="octvideo", model="c2d_r18", out=out)
    kept = out.with_suffix(which)
    kept.chmod(0o444)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(UsageError) as err:
        import_checkpoint(checkpoint, source="octvideo", model="c2d_r18", out=out)
    named = "--out" if which == ".ckpt" else f"--out {out}: its run config"
    assert str(err.value) == (
        f"{named} {kept} is read-only: make it writable (chmod u+w) to replace it, or choose "
        "another path"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_importing_again_replaces_its_own_files(i3d_zoo: Path, tmp_path: Path) -> None:
    out = tmp_path / "i3d.ckpt"
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out)
    import_checkpoint(i3d_zoo, source="pytorchvideo", model="i3d_r50", out=out, alpha=0.1)
    assert load_checkpoint(out)["hyper_parameters"]["meta"]["model"]["alpha"] == 0.1
    assert yaml.safe_load(out.with_suffix(".yaml").read_text())["model"]["alpha"] == 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i3d.ckpt", "i3d.yaml"]


def _trained_in(start: Path, checkpoint: Path, output: dict, classes_file: str) -> Path:
    """``checkpoint`` as ``octvideo train`` started in ``start`` with ``output`` and
    ``data.classes_file`` leaves it: in the run folder's checkpoints/."""
    from octvideo.engine.checkpoint import atomic_save

    trained = load_checkpoint(checkpoint)
    config = {"name": "tiny", "output": output, "data": {"classes_file": classes_file}}
    trained["hyper_parameters"]["meta"]["config"] = config
    folder = Path(output.get("dir") or start / "runs" / "tiny")
    src = (folder if folder.is_absolute() else start / folder) / "checkpoints" / "last.ckpt"
    src.parent.mkdir(parents=True)
    atomic_save(trained, src)
    return src


@pytest.mark.parametrize(
    ("output", "where"),
    [
        ({"dir": "runs/a"}, "start"),  # the folder train was started in, found from output.dir
        ({"root": "runs", "name": ""}, "start"),  # runs/<config name>
        ({"dir": "ABSOLUTE"}, "run"),  # that folder unknown: the run folder
    ],
)
def test_octvideo_run_config_names_the_runs_classes_file_wherever_it_is_used(
    checkpoint: Path, tmp_path: Path, monkeypatch, output: dict, where: str
) -> None:
    # the relative data.classes_file was copied as it was, so the run config named a file
    # relative to wherever it was used later
    start, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    if output.get("dir") == "ABSOLUTE":
        output = {"dir": str(start / "runs" / "b")}
    src = _trained_in(start, checkpoint, output, "data/classes.txt")
    own = start if where == "start" else src.parent.parent
    (own / "data").mkdir(parents=True)
    (own / "data" / "classes.txt").write_text("left\nright\nstill\n")
    monkeypatch.chdir(elsewhere)
    (elsewhere / "data").mkdir()
    (elsewhere / "data" / "classes.txt").write_text("x\ny\nz\n")  # another list of that name
    out = tmp_path / "again.ckpt"
    import_checkpoint(src, source="octvideo", model="c2d_r18", out=out)
    named = yaml.safe_load(out.with_suffix(".yaml").read_text())["data"]["classes_file"]
    assert named == str((own / "data" / "classes.txt").resolve())


def test_octvideo_runs_classes_file_found_nowhere_is_left_out_with_a_warning(
    checkpoint: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    start = tmp_path / "project"
    src = _trained_in(start, checkpoint, {"dir": str(tmp_path / "moved")}, "data/classes.txt")
    (start / "data").mkdir(parents=True)
    (start / "data" / "classes.txt").write_text("left\nright\nstill\n")  # not to be known
    monkeypatch.chdir(src.parent)  # a classes file of other names here is no answer either
    (src.parent / "data").mkdir()
    (src.parent / "data" / "classes.txt").write_text("left\nright\n")
    out = tmp_path / "kept.ckpt"
    with caplog.at_level(logging.WARNING, logger="octvideo.engine.zoo"):
        import_checkpoint(src, source="octvideo", model="c2d_r18", out=out)
    assert (
        f"{src} names data.classes_file=data/classes.txt, relative to the folder its run was "
        f"started in, and no data/classes.txt in {tmp_path / 'moved'}, {src.parent} lists its 3 "
        "classes: the run config leaves data.classes_file unset"
    ) in caplog.text
    assert load_config(out.with_suffix(".yaml")).data.classes_file == ""
    assert load_checkpoint(out)["hyper_parameters"]["meta"]["classes"] == list(
        load_checkpoint(src)["hyper_parameters"]["meta"]["classes"]
    )
    names = start / "data" / "classes.txt"
    out = tmp_path / "named.ckpt"
    import_checkpoint(src, source="octvideo", model="c2d_r18", out=out, classes=str(names))
    assert load_config(out.with_suffix(".yaml")).data.classes_file == str(names.resolve())


def _with_larger_crops(checkpoint: Path, tmp_path: Path, config: dict) -> Path:
    """``checkpoint`` as a run trained and tested at 288-pixel crops would store it."""

    def edit(meta: dict) -> None:
        clip = {"train_crop_size": 288, "val_crop_size": 288, "test_crop_size": 288}
        meta["clip"].update(clip, test_short_side=320)
        meta["config"] = config

    return _edited_meta(checkpoint, tmp_path, edit)


@pytest.mark.parametrize(
    ("config", "scales"),
    [
        ({"data": {"train_jitter_scales": [320, 400]}}, [320, 400]),  # the run's own
        ({}, [288, 360]),  # none stored: the default 256-320 grown to the crop
    ],
)
def test_octvideo_run_config_has_training_scales_that_fit_its_crops(
    checkpoint: Path, tmp_path: Path, config: dict, scales: list[int]
) -> None:
    src = _with_larger_crops(checkpoint, tmp_path, config)
    out = tmp_path / "again.ckpt"
    import_checkpoint(src, source="octvideo", model="c2d_r18", out=out)
    run_cfg = load_config(out.with_suffix(".yaml"))  # a config train and test take
    assert list(run_cfg.data.train_jitter_scales) == scales
    assert run_cfg.data.train_crop_size == 288


def test_octvideo_source_whose_scales_are_below_its_crops_is_refused(
    checkpoint: Path, tmp_path: Path
) -> None:
    src = _with_larger_crops(checkpoint, tmp_path, {"data": {"train_jitter_scales": [256, 320]}})
    message = _refusal(tmp_path, src, source="octvideo", model="c2d_r18")
    assert message.startswith(
        f"checkpoint {str(src)!r} metadata: config.data.train_jitter_scales low end 256 is"
    )
