"""Weights across layouts: PyTorchVideo zoo models (built here without weights) convert to the
alpha-0 octvideo models output for output in float64; octavising slices every weight into blocks
that reassemble to the vanilla one; torchvision ResNets inflate so identical frames give the 2D
logits; a state dict that does not fit names its keys."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from octvideo.engine.checkpoint import load_pytorchvideo_checkpoint
from octvideo.models import create_model
from octvideo.models.weights import (
    convert_pytorchvideo,
    convert_pytorchvideo_state_dict,
    inflate_resnet2d,
    is_alpha0_state,
    load_state_dict_checked,
    octavise_state_dict,
    pytorchvideo_key,
    state_mismatch,
)
from octvideo.ops import OctConv3d


def _pytorchvideo(name: str) -> nn.Module:
    """The zoo architecture of ``name`` with a head pool that covers a 4x64x64 clip's features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub
        from pytorchvideo.models.resnet import create_resnet

    if name == "slow_r50":  # hub.slow_r50 fixes the (8, 7, 7) head pool; same arguments otherwise
        return create_resnet(
            stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(4, 2, 2), model_depth=50
        )
    if name == "slowfast_r50":
        return hub.slowfast_r50(pretrained=False, head_pool_kernel_sizes=((2, 2, 2), (8, 2, 2)))
    return getattr(hub, name)(pretrained=False, head_pool_kernel_size=(2, 2, 2))


def _randomise(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d | nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


def _clip(name: str) -> torch.Tensor | list[torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    if name.startswith("slowfast"):
        return [
            torch.randn(2, 3, 2, 64, 64, generator=g, dtype=torch.float64),
            torch.randn(2, 3, 8, 64, 64, generator=g, dtype=torch.float64),
        ]
    return torch.randn(2, 3, 4, 64, 64, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", ["slow_r50", "c2d_r50", "i3d_r50", "slowfast_r50"])
def test_pytorchvideo_checkpoint_matches(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = _randomise(_pytorchvideo(name)).double().eval()
    path = tmp_path / f"{name}.pyth"
    torch.save({"model_state": ref.state_dict()}, path)  # the zoo's file layout
    model = load_pytorchvideo_checkpoint(create_model(name).double().eval(), path)
    x = _clip(name)
    with torch.no_grad():
        # PyTorchVideo's multi-pathway blocks write into the input list: give it a copy.
        want = ref(list(x) if isinstance(x, list) else x)
        torch.testing.assert_close(model(x), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "layout"), [("i3d_r18", "ResNet"), ("slowfast_r50", "SlowFast")])
def test_convert_names_unknown_keys_and_the_layout(name: str, layout: str) -> None:
    weird = {f"blocks.0.weird{i}.weight": torch.zeros(1) for i in range(5)}
    with torch.device("meta"):
        model = create_model(name)
    with pytest.raises(ValueError) as err:
        convert_pytorchvideo(weird, model)
    assert str(err.value) == (
        f"5 PyTorchVideo keys have no octvideo {layout} counterpart: blocks.0.weird0.weight, "
        "blocks.0.weird1.weight, blocks.0.weird2.weight and 2 more"
    )


def test_load_reports_missing_and_unexpected(tmp_path: Path) -> None:
    model = create_model("c2d_r18")
    sd = model.state_dict()
    sd.pop("stem.conv.conv_hh.weight")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        load_state_dict_checked(model, sd)
    assert str(err.value) == (
        "state dict does not fit ResNet3D: missing: stem.conv.conv_hh.weight; unexpected: "
        "extra.weight"
    )


def test_state_mismatch_names_shapes_then_missing_then_unexpected_keys_in_one_line() -> None:
    model = create_model("c2d_r18", num_classes=400, width=8)
    state = create_model("c2d_r18", num_classes=6, width=8).state_dict()
    lost = [k for k in state if k.startswith("res2.0.bn_a.")]  # 5 keys
    for key in lost:
        state.pop(key)
    state["extra.weight"] = torch.zeros(1)
    diff = state_mismatch(model, state)
    assert diff is not None
    assert diff.shapes == {"head.fc.weight": ((6, 64), (400, 64)), "head.fc.bias": ((6,), (400,))}
    assert (diff.missing, diff.unexpected) == (lost, ["extra.weight"])
    assert str(diff) == (
        "shape differs: head.fc.weight (6, 64) in the checkpoint, (400, 64) in the model, "
        "head.fc.bias (6,) in the checkpoint, (400,) in the model; "
        f"missing: {', '.join(lost[:3])} and 2 more; unexpected: extra.weight"
    )
    assert state_mismatch(model, model.state_dict()) is None


@pytest.mark.parametrize("name", ["i3d_nl_r50", "slowfast_r50", "c2d_r18"])
@pytest.mark.parametrize("alpha", [0.25, (0.5, 0.5, 0.5, 0.5)])
def test_octavise_slices_every_weight(name: str, alpha: float) -> None:
    torch.manual_seed(0)
    vanilla = _randomise(create_model(name))
    octave = create_model(name, alpha=alpha)
    load_state_dict_checked(octave, octavise_state_dict(vanilla.state_dict(), octave))
    orders = octave.octave_input_order() if hasattr(octave, "octave_input_order") else {}
    convs = dict(vanilla.named_modules())
    n_oct = 0
    for mname, m in octave.named_modules():
        if isinstance(m, OctConv3d):
            n_oct += m.has_octave
            w, b = m.vanilla_weight()
            ref = convs[mname].conv_hh.weight
            if mname in orders:
                ref = ref[:, orders[mname]]
            torch.testing.assert_close(w, ref, rtol=0, atol=0)
            if b is not None:
                torch.testing.assert_close(b, convs[mname].conv_hh.bias, rtol=0, atol=0)
    assert n_oct > 0
    assert sum(p.numel() for p in octave.parameters()) == sum(
        p.numel() for p in vanilla.parameters()
    )


@pytest.mark.parametrize("name", ["i3d_nl_r50", "slowfast_r50", "c2d_r18"])
def test_is_alpha0_state_tells_a_vanilla_state_from_an_octave_one(name: str) -> None:
    with torch.device("meta"):  # shapes only
        vanilla = create_model(name).state_dict()
        octave = create_model(name, alpha=0.25).state_dict()
    assert is_alpha0_state(vanilla)
    assert not is_alpha0_state(octave)
    # one cross path is enough: the last octave layer of a network has no low output
    assert not is_alpha0_state({"stem.conv.conv_lh.weight": torch.empty(0)})


def test_slowfast_octavised_lateral_order() -> None:
    # The lateral's high channels land after the slow high channels in the octave pair.
    octave = create_model("slowfast_r50", alpha=0.25)
    orders = octave.octave_input_order()
    assert orders["slow.res2.0.conv_a"].tolist() == list(range(80))  # after the vanilla stem
    order = orders["slow.res3.0.conv_a"]  # [slow 256 | lateral 64], 80 of 320 low
    assert sorted(order.tolist()) == list(range(320))
    assert order[:192].tolist() == list(range(192))  # slow high
    assert order[192:240].tolist() == list(range(256, 304))  # lateral high
    assert order[240:304].tolist() == list(range(192, 256))  # slow low


@pytest.mark.parametrize(("depth", "name"), [(50, "c2d_r50"), (18, "c2d_r18")])
def test_inflated_c2d_gives_2d_logits(depth: int, name: str, tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    net2d = _randomise(getattr(torchvision.models, f"resnet{depth}")(weights=None)).double()
    net2d.eval()
    path = tmp_path / "resnet2d.pth"
    torch.save(net2d.state_dict(), path)
    sd2d = torch.load(path, map_location="cpu", weights_only=True)
    model = create_model(name, num_classes=1000).double().eval()
    load_state_dict_checked(model, inflate_resnet2d(sd2d, model, with_classifier=True))
    image = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    clip = image[:, :, None].expand(2, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), net2d(image), rtol=1e-10, atol=1e-10)


def test_inflate_i3d_octave_nonlocal_keeps_own_parts() -> None:
    import torchvision

    sd2d = torchvision.models.resnet50(weights=None).state_dict()
    model = create_model("i3d_nl_r50", num_classes=10, alpha=0.1)
    sd = inflate_resnet2d(sd2d, model)
    load_state_dict_checked(model, sd)
    w3 = model.res2[0].conv_a.vanilla_weight()[0]
    assert w3.shape[2] == 3
    torch.testing.assert_close(w3.sum(dim=2), sd2d["layer1.0.conv1.weight"])
    assert model.get_classifier().out_features == 10


def test_inflation_keeps_the_models_classifier_even_of_1000_classes() -> None:
    """ImageNet's 1000 classes are not a video data set's 1000: the head is the model's own."""
    import torchvision

    sd2d = torchvision.models.resnet18(weights=None).state_dict()
    model = create_model("c2d_r18", num_classes=1000)
    sd = inflate_resnet2d(sd2d, model)
    assert torch.equal(sd["head.fc.weight"], model.state_dict()["head.fc.weight"])
    assert not torch.equal(sd["head.fc.weight"], sd2d["fc.weight"])


@pytest.mark.parametrize(
    ("arch", "what"),
    [
        ("wide_resnet50_2", "a wide ResNet (bottlenecks of 128 channels after a stem of 64)"),
        ("resnext50_32x4d", "a ResNeXt (32 groups of 4 channels)"),
    ],
)
def test_torchvision_networks_octvideo_does_not_build_are_named(arch: str, what: str) -> None:
    import torchvision

    with torch.device("meta"):  # shapes are all it reads
        sd2d = getattr(torchvision.models, arch)(weights=None).state_dict()
        model = create_model("i3d_r50")
    with pytest.raises(ValueError) as info:
        inflate_resnet2d(sd2d, model)
    assert str(info.value).startswith(f"the 2D network is {what}, which octvideo does not build")


def _without_batch_counts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_weights_without_batch_counts_convert_as_torch_loads_them() -> None:
    """``model.pretrained_kind=pytorchvideo`` and ``imagenet2d`` read such files as import does:
    the counts are 0, every other weight is the file's."""
    import torchvision
    from pytorchvideo.models.resnet import create_resnet

    torch.manual_seed(0)
    ref = create_resnet(stem_conv_kernel_size=(1, 7, 7), model_depth=50, stem_dim_out=8)
    model = create_model("slow_r50", alpha=0.25, width=8, num_classes=400)
    whole = convert_pytorchvideo(ref.state_dict(), model)
    bare = convert_pytorchvideo(_without_batch_counts(ref.state_dict()), model)
    counts = [k for k in bare if k.endswith("num_batches_tracked")]
    assert bare.keys() == whole.keys() and counts and all(int(bare[k]) == 0 for k in counts)
    assert all(torch.equal(v, whole[k]) for k, v in bare.items() if k not in counts)
    model = create_model("c2d_r18", num_classes=3)
    sd2d = _without_batch_counts(torchvision.models.resnet18(weights=None).state_dict())
    assert int(inflate_resnet2d(sd2d, model)["stem.bn.high.num_batches_tracked"]) == 0


def test_engine_entry_points_octave_model() -> None:

    ref = _pytorchvideo("i3d_r50")
    model = create_model("i3d_r50", alpha=0.1)
    load_state_dict_checked(model, convert_pytorchvideo(ref.state_dict(), model))
    import torchvision

    sd = inflate_resnet2d(torchvision.models.resnet50(weights=None).state_dict(), model)
    assert set(sd) == set(model.state_dict())


def test_non_finite_tensors_names_each_one_with_its_counts() -> None:
    from octvideo.models.weights import NonFinite, non_finite_tensors

    state = create_model("c2d_r18", num_classes=3, width=8).state_dict()
    assert non_finite_tensors(state) == []
    state["res3.0.conv_b.conv_hh.weight"][0, 0, 0, 0, 0] = float("nan")
    state["head.fc.bias"][:2] = torch.tensor([float("inf"), float("-inf")])
    state["head.fc.bias"][2] = float("nan")
    state["big"] = torch.full((4,), 6e4, dtype=torch.half)  # its sum overflows; no value does
    state["count"] = torch.tensor(7)
    found = non_finite_tensors({**state, "note": "not a tensor"})
    assert found == [
        NonFinite("res3.0.conv_b.conv_hh.weight", nan=1, inf=0),
        NonFinite("head.fc.bias", nan=1, inf=2),
    ]
    assert [str(f) for f in found] == [
        "weight res3.0.conv_b.conv_hh.weight holds 1 NaN",
        "weight head.fc.bias holds 1 NaN and 2 infinite values",
    ]


def test_first_non_finite_names_the_first_and_counts_the_rest() -> None:
    from octvideo.models.weights import NonFinite, first_non_finite

    a, b, c = NonFinite("a", 1, 0), NonFinite("b", 0, 2), NonFinite("c", 1, 1)
    assert first_non_finite([a], "tensor") == "weight a holds 1 NaN"
    assert first_non_finite([b, a], "gradient") == (
        "weight b holds 2 infinite values (and 1 more gradient)"
    )
    assert first_non_finite([c, a, b], "tensor") == (
        "weight c holds 1 NaN and 1 infinite value (and 2 more tensors)"
    )


def test_broken_tensors_name_values_no_training_writes() -> None:
    from octvideo.models.weights import Impossible, NonFinite, broken_tensors, impossible_tensors

    state = create_model("c2d_r18", num_classes=3, width=8).state_dict()
    assert broken_tensors(state) == []
    state["stem.bn.high.running_var"][:2] = -1.0
    state["res2.0.bn_a.high.num_batches_tracked"].fill_(-4)
    state["res3.0.bn_b.high.running_var"][0] = float("nan")  # named once, for its NaN
    state["res3.0.bn_b.high.running_var"][1] = -1.0
    state["res3.0.bn_a.high.running_var"][0] = -0.0  # not below 0
    state["res3.0.bn_a.high.running_mean"][0] = -1.0  # a mean may be negative
    found = broken_tensors(state)
    assert found == [
        Impossible("stem.bn.high.running_var", 2, "negative variance"),
        Impossible("res2.0.bn_a.high.num_batches_tracked", 1, "negative batch count"),
        NonFinite("res3.0.bn_b.high.running_var", nan=1, inf=0),
    ]
    assert [str(f) for f in found[:2]] == [
        "weight stem.bn.high.running_var holds 2 negative variances",
        "weight res2.0.bn_a.high.num_batches_tracked holds 1 negative batch count",
    ]
    assert impossible_tensors(state) == [*found[:2], Impossible(found[2].key, 1, found[0].what)]


@pytest.mark.parametrize("name", ["c2d_r50", "i3d_r50", "slowfast_r50"])
def test_each_octvideo_key_names_the_pytorchvideo_key_it_came_from(name: str) -> None:
    """The converted keys name their source back, in the file's block numbering (C2D and I3D
    have a pooling block between res2 and res3), also a key the file lacks."""
    with torch.device("meta"):
        state = _pytorchvideo(name).state_dict()
    slowfast = name.startswith("slowfast")
    converted = convert_pytorchvideo_state_dict(state, slowfast=slowfast)
    for theirs, ours in zip(state, converted, strict=True):  # the converter keeps the order
        assert pytorchvideo_key(ours, state, slowfast=slowfast) == theirs
        lacking = {k: v for k, v in state.items() if k != theirs}
        assert pytorchvideo_key(ours, lacking, slowfast=slowfast) == theirs


def test_a_pytorchvideo_file_that_misses_weights_is_named_in_its_own_keys() -> None:
    """As train's model.pretrained reads it: the file's keys, not octvideo's."""
    with torch.device("meta"):
        state = dict(_pytorchvideo("i3d_r50").state_dict())
        model = create_model("i3d_r50")
    state.pop("blocks.1.res_blocks.0.branch2.conv_a.weight")
    state.pop("blocks.1.res_blocks.0.branch1_conv.weight")
    state["blocks.3.res_blocks.0.branch2.norm_b.weight"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        convert_pytorchvideo(state, model)
    assert str(err.value) == (
        "PyTorchVideo state dict does not fit ResNet3D: shape differs: "
        "blocks.3.res_blocks.0.branch2.norm_b.weight (3,) in the checkpoint, (128,) in the "
        "model; missing: "
        "blocks.1.res_blocks.0.branch2.conv_a.weight, blocks.1.res_blocks.0.branch1_conv.weight"
    )


def test_a_torchvision_resnet_that_misses_weights_is_named_in_its_own_keys_and_shapes() -> None:
    import torchvision

    state = {
        k: v
        for k, v in torchvision.models.resnet18(weights=None).state_dict().items()
        if not k.endswith("num_batches_tracked")  # a file without counts: none is named
    }
    state.pop("conv1.weight")
    state.pop("layer2.0.bn1.running_mean")
    state["layer1.0.conv2.weight"] = torch.zeros(64, 64, 1, 3)
    with pytest.raises(ValueError) as err:
        inflate_resnet2d(state, create_model("i3d_r18", num_classes=5, alpha=0.25))
    assert str(err.value) == (
        "2D state dict does not fit ResNet3D: shape differs: layer1.0.conv2.weight (64, 64, 1, "
        "3) in the checkpoint, (64, 64, 3, 3) in the model; missing: conv1.weight, "
        "layer2.0.bn1.running_mean"
    )
