"""Every registered variant: builds, runs forward and backward on tiny clips (even and odd sizes,
spatial and spatio-temporal octave), every parameter gets a finite, non-zero gradient, and the
registry behaves (unknown names, listing).

State-dict keys are a public contract (checkpoints, conversions): each variant's keys at alpha 0
and the keys an octave adds (alpha 0.25, spatial octave) are pinned in state_dict_keys.json.
After an intended change, regenerate with ``.venv/bin/python tests/models/test_registry.py``
and review the JSON diff.

Deployment paths: every model runs under ``torch.compile`` and exports to ONNX (the legacy
TorchScript-tracing exporter, ``dynamo=False``: the pair type is a NamedTuple of tensors, which
tracing flattens) at alpha 0.1 and 0.5, with outputs equal to eager. `make test` runs one small
model; the full matrix is heavy.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from octvideo.models import create_model, list_models, model_class, unknown_model_hint
from octvideo.models.cost import example_input
from octvideo.ops import OctConv3d

PINNED = Path(__file__).with_name("state_dict_keys.json")


def current_keys(name: str) -> dict[str, list[str]]:
    vanilla = list(create_model(name).state_dict())
    octave = create_model(name, alpha=0.25).state_dict()
    return {
        "alpha0": vanilla,
        "alpha0.25_added": sorted(set(octave) - set(vanilla)),
        "alpha0.25_removed": sorted(set(vanilla) - set(octave)),
    }


@pytest.mark.parametrize("name", list_models())
def test_state_dict_keys_pinned(name: str) -> None:
    pinned = json.loads(PINNED.read_text())
    assert name in pinned, f"{name} has no pinned keys: regenerate {PINNED.name}"
    assert current_keys(name) == pinned[name]


def test_every_pinned_model_is_registered() -> None:
    assert sorted(json.loads(PINNED.read_text())) == list_models()


# (alpha, octave) settings: vanilla, the paper's spatial octave, and every stage spatio-temporal.
SETTINGS = [
    (0.0, (1, 2, 2), "a0"),
    (0.25, (1, 2, 2), "a0.25"),
    ((0.25, 0.25, 0.25, 0.25), (2, 2, 2), "a0.25-all-st"),
]


# ResNet-101/152 share every block with ResNet-50 but take ~10x longer on 2 cores: they run in the
# heavy set (their keys are still pinned by test_state_dict_keys_pinned).
DEEP = {n for n in list_models() if n.endswith(("r101", "r152"))}


def _cases(settings: list[tuple[object, tuple[int, int, int], str]]) -> list[object]:
    cases = []
    for name in list_models():
        for alpha, octave, sid in settings:
            marks = [pytest.mark.heavy] if name in DEEP else []
            cases.append(pytest.param(name, alpha, octave, id=f"{name}-{sid}", marks=marks))
    return cases


def _names() -> list[object]:
    return [pytest.param(n, marks=[pytest.mark.heavy] if n in DEEP else []) for n in list_models()]


def _randomise_norms(model: nn.Module) -> None:
    # Zero-initialised scales (Non-local output norm) would hide broken paths behind zero grads.
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)


def _clip(model: nn.Module, b: int, t: int, h: int, w: int) -> torch.Tensor | list[torch.Tensor]:
    speed = getattr(model, "slowfast_alpha", None)
    if speed is None:
        return torch.randn(b, 3, t, h, w)
    return [torch.randn(b, 3, t // speed, h, w), torch.randn(b, 3, t, h, w)]


@pytest.mark.parametrize(("name", "alpha", "octave"), _cases(SETTINGS))
def test_forward_backward(name: str, alpha: float, octave: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, alpha=alpha, octave=octave, dropout=0.0)
    _randomise_norms(model)
    frames = 8 if getattr(model, "slowfast_alpha", None) else 4
    logits = model(_clip(model, 2, frames, 32, 32))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    (logits * torch.randn_like(logits)).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", _names())
def test_odd_size(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, alpha=0.3)
    frames = 8 if getattr(model, "slowfast_alpha", None) else 5
    logits = model(_clip(model, 2, frames, 33, 47))
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()
    logits.sum().backward()


@pytest.mark.parametrize("name", _names())
def test_features_and_classifier(name: str) -> None:
    model = create_model(name, num_classes=5, alpha=0.1).eval()
    x = example_input(model, 8, 32)
    feats = model.forward_features(x)
    assert feats.shape == (1, model.num_features)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_head(feats), model(x))
    model.reset_classifier(11)
    assert model(x).shape == (1, 11)
    assert model.get_classifier().out_features == 11


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(ValueError, match="i3d_r50"):
        create_model("i3d_r5O")


def test_unknown_model_hint_names_the_closest_models_or_nothing() -> None:
    hint = unknown_model_hint("i3d_r5O")
    assert hint.startswith("; did you mean i3d_r50") and hint.endswith("?")
    assert unknown_model_hint("zzzz") == ""


def test_list_models_filters() -> None:
    assert "i3d_r50" in list_models()
    assert all(n.startswith("c2d") for n in list_models("c2d_*"))
    for name in ("c2d_r50", "i3d_r50", "i3d_nl_r50", "slow_r50"):
        assert name in list_models()


SMALL = "c2d_r18"


@pytest.mark.parametrize(
    "alpha", ["0.5", 1.0, -0.1, float("nan"), True, None, (0.1, 0.1, "0.1", 0.0), (0.1, 0.2)]
)
@pytest.mark.parametrize("name", [SMALL, "slowfast_r50"])
def test_an_alpha_other_than_shares_in_0_to_1_is_refused_in_one_line(name, alpha) -> None:
    with pytest.raises(
        ValueError, match=r"alpha needs one number in \[0, 1\) or 4 \(one per stage\)"
    ):
        create_model(name, alpha=alpha)


def test_an_alpha_of_any_real_number_type_is_taken() -> None:
    import numpy as np

    assert create_model(SMALL, alpha=np.float32(0.25), width=8).alphas == (0.25, 0.25, 0.25, 0.0)
    assert create_model(SMALL, alpha=[0, 0.5, 0.5, 0], width=8).alphas == (0.0, 0.5, 0.5, 0.0)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True, "3"])
def test_num_classes_other_than_a_whole_number_from_1_is_refused(num_classes) -> None:
    with pytest.raises(ValueError, match="num_classes must be a whole number of at least 1"):
        create_model(SMALL, num_classes=num_classes, width=8)
    model = create_model(SMALL, num_classes=3, width=8)
    with pytest.raises(ValueError, match="num_classes must be a whole number of at least 1"):
        model.reset_classifier(num_classes)


@pytest.mark.parametrize("name", ["i3d_nl_r50", "i3d_nl_r101"])
def test_a_non_local_variant_takes_other_non_local_positions(name) -> None:
    """``nonlocal_blocks`` replaces the variant's own, as ``stem_kernel`` does the C2D one."""
    plain = create_model(name.replace("_nl", ""), width=8)
    none = create_model(name, nonlocal_blocks=((), (), (), ()), width=8)
    assert list(none.state_dict()) == list(plain.state_dict())
    one = create_model(name, nonlocal_blocks=((), (0,), (), ()), width=8)
    assert [n for n, _ in one.named_children()] == [n for n, _ in plain.named_children()]
    assert list(dict(one.res3.named_children())) == [
        "0",
        "nl0",
        *map(str, range(1, len(one.res3) - 1)),
    ]


def _deploy_cases(light: tuple[float, ...] = (0.1, 0.5)) -> list[object]:
    return [
        pytest.param(
            name,
            alpha,
            id=f"{name}-a{alpha}",
            marks=[] if name == SMALL and alpha in light else [pytest.mark.heavy],
        )
        for name in list_models()
        for alpha in (0.1, 0.5)
    ]


def _inputs(model: torch.nn.Module) -> torch.Tensor | list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if hasattr(model, "slowfast_alpha"):
        return [
            torch.randn(1, 3, 2, 40, 40, generator=g),
            torch.randn(1, 3, 8, 40, 40, generator=g),
        ]
    return torch.randn(1, 3, 4, 40, 40, generator=g)


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


@pytest.mark.parametrize(("name", "alpha"), _deploy_cases())
def test_onnx_export_matches_eager(name: str, alpha: float, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = create_model(name, alpha=alpha, num_classes=5).eval()
    x = _inputs(model)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings of the legacy exporter
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tensors = x if isinstance(x, list) else [x]
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), tensors, strict=True)}
    got = torch.from_numpy(session.run(None, feeds)[0])
    with torch.no_grad():
        _close(got, model(x))


# Inductor on 2 CPU cores takes ~1.5 min per model: one case in `make test`.
@pytest.mark.parametrize(("name", "alpha"), _deploy_cases(light=(0.5,)))
def test_compile_matches_eager(name: str, alpha: float) -> None:
    model = create_model(name, alpha=alpha, num_classes=5).eval()
    x = _inputs(model)
    compiled = torch.compile(model)
    with torch.no_grad():
        _close(compiled(x), model(x))


if __name__ == "__main__":
    PINNED.write_text(json.dumps({n: current_keys(n) for n in list_models()}, indent=1) + "\n")


def test_model_class_is_the_class_a_variant_builds() -> None:
    for name in list_models():
        cls = model_class(name)
        assert cls is not None and type(create_model(name, num_classes=3)) is cls, name
    assert model_class("no_such_model") is None


def test_an_alpha_that_leaves_no_layer_a_low_group_is_warned_of_naming_what_gives_one() -> None:
    """int(alpha * C) low channels: at width 8 (res4 at 32 channels) alpha 0.01 gives none
    anywhere, which would build the vanilla network; the alpha or channel_multiple the message
    names builds an octave network, even where some narrow layers keep no low group. A warning:
    a checkpoint trained so before still loads."""
    with pytest.warns(UserWarning) as caught:
        create_model("i3d_r18", alpha=0.01, width=8)
    assert str(caught[0].message) == (
        "i3d_r18 with alpha=0.01 and width=8 has no low-frequency channel: a layer of C channels "
        "gets int(alpha * C), and its widest layer with an alpha above 0 has 32 channels; give "
        "alpha 0.0313 (1/32) or more, or a channel_multiple below 32"
    )
    for kwargs in ({"alpha": 0.0313}, {"alpha": 0.01, "channel_multiple": 8}):
        layers = create_model("i3d_r18", width=8, **kwargs).modules()
        octave = [m.has_octave for m in layers if isinstance(m, OctConv3d) and m.alpha_out > 0]
        assert any(octave), kwargs
    assert not all(octave)  # res2's 8 channels keep no low group at a multiple of 8


@pytest.mark.parametrize("name", [None, 3, ["c2d_r18"]])
def test_a_name_that_is_no_str_is_one_type_error_listing_the_models(name: object) -> None:
    with pytest.raises(TypeError) as caught:
        create_model(name)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"create_model takes a model name (a str), got {type(name).__name__} {name!r}; "
        f"known: {', '.join(list_models())}"
    )


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("octave", [2, 1, (2,), (2, 2), "122"])
def test_octave_is_three_factors_as_the_config_takes_it(name, octave):
    """``model.octave=2`` is refused by the config; create_model took 2 as (2, 2, 2)."""
    with pytest.raises(ValueError) as caught:
        create_model(name, alpha=0.25, octave=octave)
    assert str(caught.value) == (
        "octave must be three factors (T, H, W), each 1 or 2: (1, 2, 2) for the spatial octave, "
        f"(2, 2, 2) for the spatio-temporal one; got {octave!r}"
    )
