"""Every registered variant: builds, runs forward and backward on tiny clips (even and odd sizes,
spatial and spatio-temporal octave), every parameter gets a finite, non-zero gradient, and the
registry behaves (unknown names, listing)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from octvideo.models import create_model, list_models
from octvideo.models.cost import example_input

# (alpha, octave) settings: vanilla, the paper's spatial octave, and every stage spatio-temporal.
SETTINGS = [
    (0.0, (1, 2, 2), "a0"),
    (0.25, (1, 2, 2), "a0.25"),
    ((0.25, 0.25, 0.25, 0.25), (2, 2, 2), "a0.25-all-st"),
]
# ResNet-101/152 share every block with ResNet-50 but take ~10x longer on 2 cores: they run in the
# heavy set (their keys are still pinned by test_state_dict_keys).
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


def test_list_models_filters() -> None:
    assert "i3d_r50" in list_models()
    assert all(n.startswith("c2d") for n in list_models("c2d_*"))
    for name in ("c2d_r50", "i3d_r50", "i3d_nl_r50", "slow_r50"):
        assert name in list_models()


def test_alpha_per_stage_and_res5_default() -> None:
    model = create_model("i3d_r50", alpha=0.1)
    assert model.alphas == (0.1, 0.1, 0.1, 0.0)
    assert model.res5[0].conv_a.alpha_in == 0.1 and model.res5[0].conv_a.alpha_out == 0.0
    assert model.res5[1].conv_a.conv_ll is None
    with pytest.raises(ValueError, match="one per stage"):
        create_model("i3d_r50", alpha=(0.1, 0.2))


@pytest.mark.parametrize(
    ("slow", "fast", "match"),
    [
        ((1, 3, 1, 32, 32), (1, 3, 7, 32, 32), r"need a slow clip of 2 frames.*fast\[:, :, ::4\]"),
        ((1, 3, 3, 32, 32), (1, 3, 8, 32, 32), r"need a slow clip of 2 frames"),
        ((1, 3, 2, 32, 32), (1, 3, 8, 32, 40), "same batch size and frame size"),
        ((2, 3, 2, 32, 32), (1, 3, 8, 32, 32), "same batch size and frame size"),
        ((3, 2, 32, 32), (1, 3, 8, 32, 32), r"two \(B, 3, T, H, W\) clips"),
    ],
)
def test_slowfast_names_mismatched_clips(slow: tuple, fast: tuple, match: str) -> None:
    model = create_model("slowfast_r50", num_classes=3, alpha=0.25).eval()
    with pytest.raises(ValueError, match=match):
        model([torch.randn(slow), torch.randn(fast)])


def test_slowfast_takes_fast_frames_not_a_multiple_of_its_speed() -> None:
    # 7 fast frames: the lateral's stride-4 convolution gives ceil(7 / 4) = 2 slow frames
    model = create_model("slowfast_r50", num_classes=3, alpha=0.25).eval()
    with torch.no_grad():
        logits = model([torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 7, 32, 32)])
    assert logits.shape == (1, 3)
