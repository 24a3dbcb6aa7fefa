"""``fuse_for_inference`` (``octvideo.ops.fusion``): batch norm folded into the convolutions,
weights packed for oneDNN, residual and ReLU fused; equal in float64 to the unfused model for
every registered model family, and the one home of private PyTorch API."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import pickle
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.nn.utils import vector_to_parameters

import octvideo
from octvideo.checkpoint_meta import ClipProtocol
from octvideo.inference.predictor import Predictor
from octvideo.models import create_model, list_models
from octvideo.models.cost import example_input
from octvideo.ops import (
    FoldedNorm,
    FusedOctConv3d,
    OctAct,
    OctConv3d,
    OctNorm,
    OctPair,
    OctPool3d,
    as_pair,
    conv_norm_act,
    fast,
    forget_made_weights,
    fuse_for_inference,
    oct_add,
    unpair,
)
from octvideo.ops.fusion import _MAX_PACKED, fusable_pairs

CL = torch.channels_last_3d
FAMILIES = sorted({name.rsplit("_r", 1)[0] for name in list_models()})


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and affine parameters far from (0, 1), so folding has work to do."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            n, dtype = m.num_features, m.running_mean.dtype
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(n, generator=g, dtype=dtype))
                m.running_var.copy_(torch.rand(n, generator=g, dtype=dtype) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g, dtype=dtype) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g, dtype=dtype) - 0.5)
    return model


def _smallest(family: str) -> str:
    """The registered model of ``family`` with the fewest layers."""
    names = [n for n in list_models() if n.rsplit("_r", 1)[0] == family]
    return min(names, key=lambda n: int(n.rsplit("_r", 1)[1]))


def _network(name: str, alpha: float, octave=(1, 2, 2)) -> nn.Module:
    torch.manual_seed(0)
    narrow = {} if name.startswith("slowfast") else {"width": 8}  # ResNet3D's width option
    model = create_model(name, num_classes=5, alpha=alpha, octave=octave, dropout=0.0, **narrow)
    return _randomise_norms(model.double()).eval()


def _clip(model: nn.Module, frames: int, side: int, fmt=torch.contiguous_format):
    x = example_input(model, frames, side, 2)
    g = torch.Generator().manual_seed(2)
    if isinstance(x, list):
        return [
            torch.randn(t.shape, generator=g, dtype=torch.float64).contiguous(memory_format=fmt)
            for t in x
        ]
    return torch.randn(x.shape, generator=g, dtype=torch.float64).contiguous(memory_format=fmt)


def _family_cases() -> list:
    """(family, alpha, memory format), every combination; SlowFast (full width: about 5 s a
    float64 forward) once by default and the rest under ``heavy``."""
    cases = []
    for family in FAMILIES:
        for alpha in (0.0, 0.5):
            for fmt in ("contiguous", "channels_last"):
                heavy = family == "slowfast" and (alpha, fmt) != (0.5, "channels_last")
                marks = [pytest.mark.heavy] if heavy else []
                cases.append(pytest.param(family, alpha, fmt, marks=marks))
    return cases


@pytest.mark.parametrize(("family", "alpha", "fmt"), _family_cases())
def test_fused_model_equals_unfused_in_float64(family: str, alpha: float, fmt: str) -> None:
    """Every (conv, batch norm) pair of the network is folded, with an example clip as
    without; the logits equal the unfused eval-mode network's in float64, in both memory
    formats."""
    model = _network(_smallest(family), alpha)
    memory_format = CL if fmt == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = _clip(model, 4, 35, memory_format)  # odd side: the cropped upsample
    with torch.no_grad():
        want = model(x)
    fused = fuse_for_inference(model)
    norms = sum(isinstance(m, OctNorm) for m in model.modules())
    assert sum(isinstance(m, FusedOctConv3d) for m in fused.modules()) == norms > 0
    assert sum(isinstance(m, FoldedNorm) for m in fused.modules()) == norms
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fused.modules())
    seen = fuse_for_inference(model, x)  # the meta forward finds no pair run or held apart
    assert sum(isinstance(m, FusedOctConv3d) for m in seen.modules()) == norms
    with torch.inference_mode():
        got = fused(x)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_fuse_for_inference_copies_unless_asked_and_returns_eval_mode() -> None:
    model = _network("i3d_r18", 0.5).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_for_inference(model)
    assert fused is not model and not fused.training
    assert model.training and not any(isinstance(m, FusedOctConv3d) for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert fuse_for_inference(model, inplace=True) is model
    assert any(isinstance(m, FusedOctConv3d) for m in model.modules())


def _lazy_tail() -> nn.Sequential:
    """Octave layers, then lazy ones (``nn.LazyBatchNorm3d`` holds lazy buffers), in float64."""
    f64 = {"dtype": torch.float64}
    return nn.Sequential(
        OctConv3d(3, 8, 3, padding=1).double(),
        OctNorm(8).double(),
        nn.LazyConv3d(4, 1, **f64),
        nn.LazyBatchNorm3d(**f64),
    )


def test_a_model_whose_lazy_modules_have_not_run_fuses_into_a_copy_of_its_own() -> None:
    model = _lazy_tail()
    fused = fuse_for_inference(model)  # torch's deepcopy refuses lazy buffers
    assert isinstance(fused[0], FusedOctConv3d) and isinstance(fused[1], FoldedNorm)
    assert fused[3].running_mean is not model[3].running_mean
    assert fused(torch.randn(1, 3, 2, 6, 6, dtype=torch.float64)).shape == (1, 4, 2, 6, 6)
    assert is_lazy(model[3].running_mean) and is_lazy(model[2].weight)  # the model's wait


def test_a_model_whose_lazy_modules_have_run_fuses_equal_in_float64() -> None:
    model, x = _lazy_tail().eval(), torch.randn(2, 3, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        model(x)  # the first forward sets the lazy modules' shapes and weights
        torch.testing.assert_close(fuse_for_inference(model)(x), model(x), rtol=0, atol=1e-10)


def test_a_norm_that_does_not_follow_its_convolution_is_left_alone() -> None:
    """Only a batch norm of the convolution's output groups is folded."""
    model = nn.Sequential(OctConv3d(4, 8, 1), OctNorm(6), OctConv3d(6, 6, 1), nn.BatchNorm3d(6))
    fused = fuse_for_inference(model)
    assert [type(m) for m in fused] == [OctConv3d, OctNorm, OctConv3d, nn.BatchNorm3d]


class _PostNorm(nn.Module):
    """``relu(norm(conv(x) + x))``: the norm, registered right after the conv, normalises a sum."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.conv = OctConv3d(8, 8, 3, padding=1, alpha_in=alpha, alpha_out=alpha)
        self.norm = OctNorm(8, alpha=alpha)
        self.act = OctAct()

    def forward(self, x):
        return self.act(self.norm(oct_add(self.conv(x), x)))


class _ConvPoolNorm(nn.Module):
    """``norm(pool(conv(x)))`` with the pool registered last: a max pool and a negative scale
    do not commute."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.conv = OctConv3d(8, 8, 3, padding=1, alpha_in=alpha, alpha_out=alpha)
        self.norm = OctNorm(8, alpha=alpha)
        self.pool = OctPool3d((1, 2, 2))

    def forward(self, x):
        return self.norm(self.pool(self.conv(x)))


class _Declared(_ConvPoolNorm):
    """``norm(conv(x))``, stated through ``fusable_pairs``."""

    fusable_pairs = (("conv", "norm"),)

    def forward(self, x):
        return self.pool(self.norm(self.conv(x)))


class _Reversed(nn.Sequential):
    """A Sequential whose forward runs its children last to first."""

    def forward(self, x):
        for m in reversed(self):
            x = m(x)
        return x


def _oct_input(alpha: float, channels: int = 8) -> torch.Tensor | OctPair:
    g = torch.Generator().manual_seed(5)
    n_low = int(alpha * channels)
    high = torch.randn(2, channels - n_low, 3, 8, 8, generator=g, dtype=torch.float64)
    if n_low == 0:
        return high
    return OctPair(high, torch.randn(2, n_low, 3, 4, 4, generator=g, dtype=torch.float64))


def _assert_same(got, want) -> None:
    for g_, w_ in zip(as_pair(got), as_pair(want), strict=True):
        if w_ is not None:
            torch.testing.assert_close(g_, w_, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("block", [_PostNorm, _ConvPoolNorm, _Declared])
def test_fused_module_of_the_callers_own_equals_unfused_in_float64(block, alpha: float) -> None:
    """A module of another class is folded only where it states its pairs (``fusable_pairs``):
    a post-norm residual or a pool between conv and norm is left as it is, and the fused output
    equals the unfused one in float64 either way."""
    model = _randomise_norms(nn.Sequential(block(alpha)).double()).eval()
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm3d):
            with torch.no_grad():
                bn.weight.neg_()  # a negative scale: max pooling would not commute with it
    x = _oct_input(alpha)
    with torch.no_grad():
        want = model(x)
    fused = fuse_for_inference(model)
    assert isinstance(fused[0].conv, FusedOctConv3d) == (block is _Declared)
    with torch.inference_mode():
        got = fused(x)
    _assert_same(got, want)


def test_only_a_sequential_that_runs_its_children_in_order_is_folded() -> None:
    for seq, folded in ((nn.Sequential, True), (_Reversed, False)):
        model = seq(OctConv3d(4, 8, 1), OctNorm(8))
        assert isinstance(fuse_for_inference(model)[0], FusedOctConv3d) == folded


def test_a_convolution_or_norm_used_in_two_places_is_left_alone() -> None:
    """Folding a shared layer would change its other place too."""
    conv, norm = OctConv3d(8, 8, 1), OctNorm(8)
    for model in (
        nn.Sequential(nn.Sequential(conv, norm), conv),
        nn.Sequential(nn.Sequential(conv, norm), norm),
    ):
        fused = fuse_for_inference(model)
        assert not any(isinstance(m, FusedOctConv3d) for m in fused.modules())


class _Reaching(nn.Module):
    """A network of the caller's own around an ordered (conv, norm) ``body``, whose forward may
    also run the body's convolution or norm apart, or read the convolution's output twice."""

    def __init__(self, use: str) -> None:
        super().__init__()
        self.use = use
        self.stem = nn.Conv3d(3, 8, 1)
        self.body = nn.Sequential(OctConv3d(8, 8, 3, padding=1), OctNorm(8))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.stem(x)
        if self.use == "conv again":
            h = self.body(h) + self.body[0](h)
        elif self.use == "norm again":
            h = self.body(h) + self.body[1](h)
        elif self.use == "output read twice":
            y = self.body[0](h)
            h = self.body[1](y) + y
        else:
            h = self.body(h)
        return self.fc(h.mean((2, 3, 4)))


@pytest.mark.parametrize("use", ["conv again", "norm again", "output read twice", "body alone"])
def test_a_forward_that_runs_a_pairs_layers_apart_keeps_them_unfused(use, caplog) -> None:
    """With an example, one meta-device forward decides: a pair whose convolution or norm also
    runs apart, or whose convolution's output something else reads, is left unfused; without
    one, no pair under a forward of another class is folded. Either way, float64 logits equal
    the unfused network's; a ``Predictor`` fuses as its test clip shows."""
    torch.manual_seed(0)
    model = _randomise_norms(_Reaching(use).double()).eval()
    x = torch.randn(1, 3, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        want = model(x)
    alone = use == "body alone"
    with caplog.at_level("DEBUG", logger="octvideo.ops.fusion"):
        for example, folded in ((x, alone), ((1, 3, 4, 8, 8), alone), (None, False)):
            fused = fuse_for_inference(model, example)
            assert isinstance(fused.body[0], FusedOctConv3d) == folded
            with torch.no_grad():
                torch.testing.assert_close(fused(x), want, rtol=1e-10, atol=1e-10)
    assert ("body.0 and .1 left unfused" in caplog.text) != alone
    protocol = ClipProtocol(num_frames=4, sampling_rate=2, test_short_side=8, test_crop_size=8)
    predictor = Predictor(model.float(), ["a", "b", "c"], protocol)  # it makes float32 clips
    assert isinstance(predictor.model.body[0], FusedOctConv3d) == alone
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(x.float()), want.float(), rtol=0, atol=1e-5)


@dataclasses.dataclass
class _Features:
    """A forward's output that is not a pytree: a walk of lists, tuples and dicts misses it."""

    logits: torch.Tensor
    feat: object


class _Holder:
    """A plain object, neither dataclass nor container."""

    def __init__(self, feat) -> None:
        self.feat = feat


class _Keeping(nn.Module):
    """A network of the caller's own whose forward runs ``body``'s (conv, norm) in order and
    keeps the convolution's output as a feature: on itself (Grad-CAM's ``self.feat = y``), in a
    dict attribute, or in the object it returns."""

    def __init__(self, keep: str) -> None:
        super().__init__()
        self.keep = keep
        self.stem = nn.Conv3d(3, 8, 1)
        conv = OctConv3d(8, 8, 3, padding=1, alpha_out=0.5)
        self.body = nn.Sequential(conv, OctNorm(8, alpha=0.5))
        self.fc = nn.Linear(4, 3)  # the high group's 4 channels
        self.feat: object = None

    def forward(self, x):
        y = self.body[0](self.stem(x))
        if self.keep == "attribute":
            self.feat = y
        elif self.keep == "dict attribute":
            self.feat = {"res2": [y.low]}
        h = self.body[1](y).high
        logits = self.fc(h.mean((2, 3, 4)))
        if self.keep == "dataclass":
            return _Features(logits, y)
        if self.keep == "plain object":
            return logits, _Holder(y.high)
        return logits

    def features(self, out) -> list[torch.Tensor]:
        """The logits and every tensor the network keeps or returns, in a fixed order."""
        kept = {"dataclass": lambda: out.feat, "plain object": lambda: out[1].feat}
        feat = kept.get(self.keep, lambda: self.feat)()
        logits = out.logits if self.keep == "dataclass" else out
        logits = logits[0] if isinstance(logits, tuple) else logits
        if isinstance(feat, dict):
            return [logits, *feat["res2"]]
        return [logits, *as_pair(feat)] if feat is not None else [logits]


@pytest.mark.parametrize(
    "keep", ["attribute", "dict attribute", "dataclass", "plain object", "nothing"]
)
def test_a_convolution_output_kept_after_the_forward_keeps_its_pair_unfused(keep) -> None:
    """A pair whose convolution output the network holds after the forward (an attribute, an
    object it returns of any class) is left unfused, so that feature stays the unfused one in
    float64; the meta forward leaves no meta tensor on the modules it ran."""
    torch.manual_seed(0)
    model = _randomise_norms(_Keeping(keep).double()).eval()
    x = torch.randn(1, 3, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        want = model.features(model(x))
    before = model.feat
    fused = fuse_for_inference(model, x, inplace=True)
    assert fused.feat is before
    assert isinstance(fused.body[0], FusedOctConv3d) == (keep == "nothing")
    with torch.no_grad():
        got = fused.features(fused(x))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("example", ["clip", (1, 3, 2.0), [], object()])
def test_an_example_that_is_neither_tensors_nor_shapes_is_refused(example) -> None:
    with pytest.raises(ValueError, match=r"^example must be an input of the model \(a tensor"):
        fuse_for_inference(nn.Sequential(OctConv3d(4, 8, 1), OctNorm(8)), example)


@pytest.mark.parametrize("model", ["i3d_r18", None, {"conv.weight": torch.ones(1)}])
@pytest.mark.parametrize("call", [fuse_for_inference, forget_made_weights])
def test_anything_but_a_network_is_refused_in_one_line(call, model) -> None:
    name = call.__name__
    with pytest.raises(TypeError, match=rf"^{name} takes a network \(nn.Module\), got "):
        call(model)


@pytest.mark.parametrize("inplace", ["yes", 1, None])
def test_an_inplace_that_is_not_a_bool_is_refused(inplace) -> None:
    model = nn.Sequential(OctConv3d(4, 8, 1), OctNorm(8))
    with pytest.raises(TypeError, match=r"^fuse_for_inference: inplace must be True or False"):
        fuse_for_inference(model, inplace=inplace)
    assert isinstance(model[0], OctConv3d)  # left as it was


@pytest.mark.parametrize(
    "declared", [("conv", "norm"), (("conv", "bn"),), "conv", (("conv", 1),), ((["conv"]),)]
)
def test_fusable_pairs_that_do_not_name_pairs_of_children_are_refused(declared) -> None:
    model = _ConvPoolNorm(0.0)
    model.fusable_pairs = declared
    with pytest.raises(
        ValueError, match=r"^_ConvPoolNorm.fusable_pairs must be \(conv name, norm "
    ):
        fuse_for_inference(model)


def test_fusable_pairs_lists_each_ordered_pair_octvideo_blocks_included() -> None:
    block = _network("i3d_r18", 0.0).res2[0]
    names = list(dict(block.named_children()))
    assert fusable_pairs(block) == list(zip(names, names[1:], strict=False))
    assert fusable_pairs(_Declared(0.0)) == [("conv", "norm")]
    assert fusable_pairs(_PostNorm(0.0)) == []


def _unit(alpha: float) -> tuple[OctConv3d, OctNorm, torch.Tensor | OctPair]:
    conv = OctConv3d(8, 8, (1, 3, 3), bias=True, alpha_in=alpha, alpha_out=alpha).double()
    norm = OctNorm(8, alpha=alpha).double().eval()
    for bn in (norm.high, norm.low):
        if bn is not None:
            with torch.no_grad():
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
    g = torch.Generator().manual_seed(0)
    high = torch.randn(2, 8 - conv.in_low, 3, 7, 7, generator=g, dtype=torch.float64)
    if conv.in_low == 0:
        return conv, norm, high
    return conv, norm, OctPair(high, torch.randn(2, 4, 3, 4, 4, generator=g, dtype=torch.float64))


def _fused_unit(conv: OctConv3d, norm: OctNorm) -> tuple[FusedOctConv3d, FoldedNorm]:
    fused = fuse_for_inference(nn.Sequential(conv, norm))
    assert isinstance(fused[0], FusedOctConv3d) and isinstance(fused[1], FoldedNorm)
    return fused[0], fused[1]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "packed"])
def test_fused_copy_keeps_the_weights_it_was_fused_from(dtype: torch.dtype) -> None:
    """Changes to the source model after fusing do not reach the fused copy; fusing again takes
    them; weights loaded into the fused layer replace its merged and packed weights."""
    conv, norm, x = _unit(0.5)
    conv, norm, x = conv.to(dtype), norm.to(dtype), OctPair(*(t.to(dtype) for t in x))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    fused, _ = _fused_unit(conv, norm)
    with torch.no_grad():
        before = norm(conv(x))
        norm.low.running_var.mul_(3.0)
        conv.conv_lh.weight.mul_(-2.0)
        after = norm(conv(x))
    with torch.inference_mode():
        stale = fused(x)
        fresh = _fused_unit(conv, norm)[0](x)
    torch.testing.assert_close(stale, before, rtol=tol, atol=tol)
    torch.testing.assert_close(fresh, after, rtol=tol, atol=tol)
    fused.load_state_dict(_fused_unit(conv, norm)[0].state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), after, rtol=tol, atol=tol)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_conv_norm_act_residual_and_relu_in_place_leave_inputs_alone(alpha: float) -> None:
    conv, norm, x = _unit(alpha)
    act = OctAct(nn.ReLU)
    with torch.no_grad():
        residual = conv(x)  # any tensor or pair of the output's shape
        want = act(oct_add(norm(conv(x)), residual))
    res_copy, x_copy = copy.deepcopy(residual), copy.deepcopy(x)
    fused, folded = _fused_unit(conv, norm)
    with torch.inference_mode():
        got = conv_norm_act(fused, folded, act, x, residual)
    for g_, w_ in zip(as_pair(got), as_pair(want), strict=True):
        if w_ is not None:
            torch.testing.assert_close(g_, w_, rtol=1e-12, atol=1e-12)
    for a, b in zip(as_pair(residual), as_pair(res_copy), strict=True):
        assert a is None or torch.equal(a, b), "the residual was written to"
    for a, b in zip(as_pair(x), as_pair(x_copy), strict=True):
        assert a is None or torch.equal(a, b), "the input was written to"


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_fused_layer_under_autograd_gives_the_same_values_and_gradients(alpha: float) -> None:
    """With autograd on, the residual and ReLU run out of place and gradients reach the input."""
    conv, norm, x = _unit(alpha)
    act = OctAct(nn.ReLU)
    fused, folded = _fused_unit(conv, norm)
    grads = []
    for unit in ((conv, norm), (fused, folded)):
        x_in = unpair(
            OctPair(*(None if t is None else t.clone().requires_grad_() for t in as_pair(x)))
        )
        with torch.no_grad():
            r = conv(x)
        y = as_pair(conv_norm_act(*unit, act, x_in, r))
        sum(t.square().sum() for t in y if t is not None).backward()
        grads.append([t.grad for t in as_pair(x_in) if t is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_fused_layers_are_modules_that_hooks_see() -> None:
    """Tools that count or inspect layers through hooks see every fused convolution once."""
    model = fuse_for_inference(_network("i3d_r18", 0.5)).float().to(memory_format=CL)
    convs = [m for m in model.modules() if isinstance(m, FusedOctConv3d)]
    seen: list[nn.Module] = []
    handles = [c.register_forward_pre_hook(lambda m, args: seen.append(m)) for c in convs]
    x = _clip(model, 4, 32).float().contiguous(memory_format=CL)
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    assert len(seen) == len(convs) and set(map(id, seen)) == set(map(id, convs))


@pytest.mark.parametrize("hook", ["feature", "change", "inner", "activation", "every module"])
def test_a_hooked_layer_keeps_its_hook_after_fusion(hook) -> None:
    """A Grad-CAM feature hook on a conv, a hook that changes a norm's or an activation's output,
    or one registered for every module, was dropped by folding: it never ran, or the logits
    changed. A hooked pair is left unfused, a hooked activation is called rather than folded."""
    model = _network("i3d_r18", 0.5)
    convs = [m for m in model.modules() if isinstance(m, OctConv3d)]
    seen: list[object] = []
    left = 1  # pairs left unfused
    if hook == "feature":
        convs[-1].register_forward_hook(lambda m, args, out: seen.append(out))
    elif hook == "change":
        norm = next(m for m in model.modules() if isinstance(m, OctNorm))
        norm.register_forward_hook(lambda m, args, out: seen.append(1) or _doubled(out))
    elif hook == "inner":
        convs[0].conv_hh.register_forward_pre_hook(lambda m, args: seen.append(1))
    elif hook == "activation":
        model.res5[-1].act.register_forward_hook(
            lambda m, args, out: seen.append(1) or _doubled(out)
        )
        left = 0
    x = _clip(model, 4, 32)
    with contextlib.ExitStack() as stack:
        if hook == "every module":

            def doubling_norms(module, args, out):
                if not isinstance(module, nn.BatchNorm3d):
                    return None
                seen.append(1)
                return _doubled(out)

            stack.callback(nn.modules.module.register_module_forward_hook(doubling_norms).remove)
            left = len(convs)
        with torch.no_grad():
            expected, runs = model(x), len(seen)
            fused = fuse_for_inference(model)
            seen.clear()
            got = fused(x)
    assert len(seen) == runs > 0
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert sum(isinstance(m, FusedOctConv3d) for m in fused.modules()) == len(convs) - left


def test_a_backward_hook_keeps_its_pair_unfused() -> None:
    model = _network("i3d_r18", 0.5)
    conv = next(m for m in model.modules() if isinstance(m, OctConv3d))
    conv.register_full_backward_hook(lambda m, grad_in, grad_out: None)
    fused = fuse_for_inference(model)
    unfused = [m for m in fused.modules() if type(m) is OctConv3d]
    assert len(unfused) == 1 and unfused[0]._backward_hooks


def _doubled(out):
    """A norm's output, doubled: a hook that changes what a layer gives."""
    if isinstance(out, tuple):
        return type(out)(*(None if t is None else 2 * t for t in out))
    return 2 * out


def test_fused_model_follows_a_dtype_change() -> None:
    conv, norm, x = _unit(0.5)
    fused, _ = _fused_unit(conv, norm)
    with torch.inference_mode():
        fused(x)  # float64
    fused.float()
    conv.float()
    norm.float()
    x32 = OctPair(x.high.float(), x.low.float())
    with torch.no_grad():
        want = norm(conv(x32))
    with torch.inference_mode():
        got = fused(x32)
    assert got.high.dtype == torch.float32
    torch.testing.assert_close(got.high, want.high, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.low, want.low, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_traced_fused_model_is_standard_operators(alpha: float) -> None:
    """A trace of a fused channels-last model records plain convolutions on the folded weights:
    no batch norm, no oneDNN calls; its output equals the eager one."""
    model = fuse_for_inference(_network("i3d_r18", alpha)).float().to(memory_format=CL)
    x = _clip(model, 4, 32).float().contiguous(memory_format=CL)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_trace=False)
        want = model(x)
        got = traced(x)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert "aten::_convolution" in kinds or "aten::conv2d" in kinds or "aten::conv3d" in kinds
    assert not any("mkldnn" in k or "batch_norm" in k for k in kinds), sorted(kinds)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["contiguous", "channels_last"])
def test_vmap_over_a_fused_float32_model_equals_a_loop_over_the_clips(fmt) -> None:
    """``torch.func.vmap`` refuses memory-format queries and has no rule for oneDNN's calls: a
    fused layer under it runs the public operators, with the loop's values."""
    model = fuse_for_inference(_network("i3d_r18", 0.25)).float().to(memory_format=fmt)
    clips = _clip(model, 4, 32).float().contiguous(memory_format=fmt)  # each clip is a view
    with torch.no_grad():
        want = torch.cat([model(c[None]) for c in clips])
        got = torch.func.vmap(lambda c: model(c[None])[0])(clips)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


mkldnn_only = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN (mkldnn)"
)


def _spy_packed(monkeypatch) -> list[tuple[bool, bool]]:
    """Records every convolution that ran on oneDNN's packed kernel: (residual added, relu)."""
    calls: list[tuple[bool, bool]] = []
    packed_conv = FusedOctConv3d._packed_conv

    def spy(self, weight, x, w2, bias, g, residual, relu):
        calls.append((residual is not None, relu))
        return packed_conv(self, weight, x, w2, bias, g, residual, relu)

    monkeypatch.setattr(FusedOctConv3d, "_packed_conv", spy)
    return calls


NETWORKS = [
    ("i3d_r50", 0.0, (1, 2, 2)),
    ("i3d_r50", 0.5, (1, 2, 2)),
    ("c2d_r18", 0.25, (1, 2, 2)),
    ("i3d_r18", 0.5, (2, 2, 2)),
]


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "octave"), NETWORKS)
@pytest.mark.parametrize("size", [(4, 32, 32), (4, 35, 29)], ids=["even", "odd"])
def test_float32_inference_on_prepacked_weights_matches_float64_plain(
    name, alpha, octave, size, monkeypatch
) -> None:
    """float32 CPU inference of a fused model runs on weights reordered once into oneDNN's
    layout, with residual adds and ReLUs fused into the convolutions: within float32 error of
    the float64 unfused network, the same on a second call (packed weights reused), and the
    same as plain ``F.conv*`` calls (oneDNN switched off)."""
    model = _network(name, alpha, octave)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        want = model(x)
    fused = fuse_for_inference(model).float().to(memory_format=CL)
    x = x.float().contiguous(memory_format=CL)
    calls = _spy_packed(monkeypatch)
    with torch.inference_mode():
        packed = fused(x)
        again = fused(x)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        unpacked = fused(x)
    assert {(True, True), (False, True), (False, False)} <= set(calls)
    assert len(calls) % 2 == 0  # nothing packed ran with oneDNN switched off
    torch.testing.assert_close(packed.double(), want, rtol=1e-4, atol=1e-4)
    assert torch.equal(again, packed)
    torch.testing.assert_close(unpacked, packed, rtol=1e-5, atol=1e-5)


@mkldnn_only
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("residual_layout", ["same", "other"])
def test_fused_residual_and_relu_follow_the_residual_layout(
    alpha: float, residual_layout: str, monkeypatch
) -> None:
    """``relu(bn(conv(x)) + residual)`` in float32: fused into oneDNN's convolution when the
    residual's memory layout is the output's, added afterwards when it is not; the same result
    either way, and neither the input nor the residual is written to."""
    conv, norm, x64 = _unit(alpha)
    act = OctAct(nn.ReLU)
    with torch.no_grad():
        r64 = as_pair(conv(x64))  # any pair of the output's shape
        want = as_pair(act(oct_add(norm(conv(x64)), unpair(r64))))
    fused, folded = _fused_unit(conv, norm)
    fused.float()
    r_fmt = CL if residual_layout == "same" else torch.contiguous_format
    x = OctPair(
        *(None if t is None else t.float().contiguous(memory_format=CL) for t in as_pair(x64))
    )
    r = OctPair(*(None if t is None else t.float().contiguous(memory_format=r_fmt) for t in r64))
    x_copy, r_copy = copy.deepcopy(x), copy.deepcopy(r)
    calls = _spy_packed(monkeypatch)
    with torch.inference_mode():
        got = as_pair(conv_norm_act(fused, folded, act, unpair(x), unpair(r)))
    assert ((True, True) in calls) == (residual_layout == "same")
    for g_, w_ in zip(got, want, strict=True):
        if w_ is not None:
            torch.testing.assert_close(g_.double(), w_, rtol=1e-5, atol=1e-5)
    for a, b in zip((*x, *r), (*x_copy, *r_copy), strict=True):
        assert a is None or torch.equal(a, b), "an input was written to"


def _float32_cl_pair(g: torch.Generator, batch: int, size: int) -> OctPair:
    """A float32 channels-last input of ``_unit``'s layer, ``size`` pixels high and wide."""
    low = -(-size // 2)
    return OctPair(
        torch.randn(batch, 4, 3, size, size, generator=g).contiguous(memory_format=CL),
        torch.randn(batch, 4, 3, low, low, generator=g).contiguous(memory_format=CL),
    )


def _assert_fused_equals_unfused(fused, conv, norm, x: OctPair) -> None:
    with torch.no_grad():
        want = norm(conv(x))
    with torch.inference_mode():
        got = fused(x)
    torch.testing.assert_close(got.high, want.high, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.low, want.low, rtol=1e-5, atol=1e-5)


@mkldnn_only
def test_prepacked_weights_are_kept_per_input_shape(monkeypatch) -> None:
    """One layer seeing clips of two sizes in turn packs its weights once per size and gives
    each size its own correct result."""
    conv, norm, x64 = _unit(0.5)
    fused, _ = _fused_unit(conv, norm)
    conv.float()
    norm.float()
    fused.float()
    small = OctPair(*(t.float().contiguous(memory_format=CL) for t in x64))
    big = _float32_cl_pair(torch.Generator().manual_seed(5), 2, 9)
    calls = _spy_packed(monkeypatch)
    for x in (small, big, small, big):
        _assert_fused_equals_unfused(fused, conv, norm, x)
    assert len(calls) == 12  # hh, lh and the merged low weight, per call
    # packed once each: hh, lh and the merged low weight, at each of the two sizes
    assert len(fused._packed) == 6


@mkldnn_only
def test_packing_more_shapes_than_kept_starts_over_and_keeps_the_merged_weights() -> None:
    """Past ``_MAX_PACKED`` packed weights a layer drops them and packs again, each result still
    correct; its merged low weight, made once, is kept throughout."""
    conv, norm, _ = _unit(0.5)
    conv, norm = conv.float(), norm.float()
    fused = _fused_unit(conv, norm)[0].float()
    g = torch.Generator().manual_seed(6)
    merged = []
    for size in range(8, 8 + 2 * (_MAX_PACKED // 3 + 2), 2):  # three packed weights per size
        _assert_fused_equals_unfused(fused, conv, norm, _float32_cl_pair(g, 1, size))
        assert len(fused._packed) <= _MAX_PACKED
        merged.append(fused._low_weight(fast.path_weights(fused)))
    assert len(fused._packed) < _MAX_PACKED  # it started over
    assert all(m is merged[0] for m in merged)


# Private PyTorch API: torch._anything, an underscored name anywhere in a torch.* path,
# oneDNN's operator namespace, and private attributes that torch objects carry.
PRIVATE = re.compile(
    r"\b(?:torch|nn|F)(?:\.\w+)*\._(?!_)"
    r"|\btorch\.ops\.mkldnn\b"
    r"|\b(?:from|import)\s+torch(?:\.\w+)*\._"
    r"|\._(?:version|forward_hooks|forward_pre_hooks|global_forward_hooks|C)\b"
)
FUSION = Path(octvideo.__file__).parent / "ops" / "fusion.py"


def test_private_torch_api_is_called_only_in_the_fusion_module() -> None:
    """So that a PyTorch upgrade that changes private API touches one file."""
    root = Path(octvideo.__file__).parent
    found = [
        f"{path.relative_to(root.parent)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path != FUSION
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line.split("#", 1)[0])  # a comment may name one
    ]
    assert found == []
    assert PRIVATE.search(FUSION.read_text())  # the pattern finds what the fusion module calls


def _reducing_unit(kernel, octave, alpha=0.1, c_in=64, c_out=16) -> nn.Sequential:
    """A channel-reducing (conv, norm) pair, the bottlenecks' first, with norms far from (0, 1),
    in float64 channels-last."""
    torch.manual_seed(3)
    pad = tuple(k // 2 for k in kernel)
    conv = OctConv3d(
        c_in, c_out, kernel, padding=pad, alpha_in=alpha, alpha_out=alpha, octave=octave
    )
    model = _randomise_norms(nn.Sequential(conv, OctNorm(c_out, alpha=alpha)).double()).eval()
    return model.to(memory_format=CL)


def _pair_input(conv: OctConv3d, size: tuple[int, int, int]) -> OctPair:
    """A channels-last float64 (high, low) input of ``conv`` at high size ``size``."""
    g = torch.Generator().manual_seed(4)
    low = tuple(-(-s // o) for s, o in zip(size, conv.octave, strict=True))
    shapes = ((2, conv.in_high, *size), (2, conv.in_low, *low))
    return OctPair(
        *(
            torch.randn(s, generator=g, dtype=torch.float64).contiguous(memory_format=CL)
            for s in shapes
        )
    )


def _spy_pool_after(monkeypatch) -> list[FusedOctConv3d]:
    calls: list[FusedOctConv3d] = []
    pool_after = FusedOctConv3d._forward_pooled_after

    def spy(self, *args):
        calls.append(self)
        return pool_after(self, *args)

    monkeypatch.setattr(FusedOctConv3d, "_forward_pooled_after", spy)
    return calls


@pytest.mark.parametrize(
    ("kernel", "octave"),
    [((1, 1, 1), (1, 2, 2)), ((3, 1, 1), (1, 2, 2)), ((1, 1, 1), (2, 2, 2))],
    ids=["1x1x1", "3x1x1", "spatio-temporal"],
)
@pytest.mark.parametrize("relu", [False, True])
def test_channel_reducing_layer_pools_after_and_equals_the_four_paths(
    kernel, octave, relu, monkeypatch
) -> None:
    """A fused channel-reducing layer with a small low share, on a channels-last CPU input whose
    sizes divide by the octave, runs H->L at full resolution and pools afterwards: in float64 its
    output equals the unfused layer's, batch norm and ReLU included."""
    model = _reducing_unit(kernel, octave)
    x = _pair_input(model[0], (4, 8, 6))
    act = OctAct(nn.ReLU)
    with torch.no_grad():
        want = as_pair(act(model(x)) if relu else model(x))
    fused, folded = _fused_unit(*model)
    assert fused.pool_after_eligible
    calls = _spy_pool_after(monkeypatch)
    with torch.inference_mode():
        got = as_pair(conv_norm_act(fused, folded, act if relu else None, x))
    assert calls == [fused]
    for g_, w_ in zip(got, want, strict=True):
        assert g_.is_contiguous(memory_format=CL)
        torch.testing.assert_close(g_, w_, rtol=1e-12, atol=1e-12)


S = (1, 2, 2)  # the spatial octave


@pytest.mark.parametrize(
    ("kernel", "octave", "alpha", "c_in", "c_out", "size"),
    [
        ((1, 3, 3), S, 0.1, 64, 16, (4, 8, 6)),  # a spatial kernel: pooling does not commute
        ((3, 1, 1), (2, 2, 2), 0.1, 64, 16, (4, 8, 6)),  # nor with a temporal one in time
        ((1, 1, 1), S, 0.5, 64, 16, (4, 8, 6)),  # a large low share
        ((1, 1, 1), S, 0.1, 16, 64, (4, 8, 6)),  # expanding
        ((1, 1, 1), S, 0.1, 64, 16, (4, 7, 6)),  # a size the octave does not divide: at run time
    ],
    ids=["spatial-kernel", "temporal-kernel", "alpha-0.5", "expanding", "odd-size"],
)
def test_other_layers_and_inputs_take_the_usual_path(
    kernel, octave, alpha, c_in, c_out, size, monkeypatch
) -> None:
    model = _reducing_unit(kernel, octave, alpha, c_in, c_out)
    x = _pair_input(model[0], size)
    with torch.no_grad():
        want = as_pair(model(x))
    fused = fuse_for_inference(model)
    calls = _spy_pool_after(monkeypatch)
    with torch.inference_mode():
        got = as_pair(fused(x))
    assert calls == []
    for g_, w_ in zip(got, want, strict=True):
        torch.testing.assert_close(g_, w_, rtol=1e-12, atol=1e-12)


def test_bottleneck_network_at_a_small_alpha_pools_after_and_equals_unfused() -> None:
    """In a whole I3D-R50 at alpha 0.1 (channels-last float64), the bottlenecks' first layers
    pool after, and the logits equal the unfused network's."""
    model = _network("i3d_r50", 0.1).to(memory_format=CL)
    x = _clip(model, 4, 64, CL)
    with torch.no_grad():
        want = model(x)
    fused = fuse_for_inference(model)
    assert sum(getattr(m, "pool_after_eligible", False) for m in fused.modules()) > 0
    with torch.inference_mode():
        got = fused(x)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def _with_non_finite(x: torch.Tensor | OctPair) -> torch.Tensor | OctPair:
    """A copy of ``x`` with a NaN, a +inf and a -inf in each of its groups, apart."""
    groups = []
    for t in as_pair(x):
        if t is not None:
            t = t.clone()
            b, c, d, h, w = t.shape
            t[0, 0, 0, 0, 0] = float("nan")
            t[b - 1, c // 2, d // 2, h // 2, w // 2] = float("inf")
            t[0, c - 1, d - 1, h - 1, w - 1] = float("-inf")
        groups.append(t)
    return unpair(OctPair(*groups))


def _float32_cl(x: torch.Tensor | OctPair) -> torch.Tensor | OctPair:
    return unpair(
        OctPair(
            *(None if t is None else t.float().contiguous(memory_format=CL) for t in as_pair(x))
        )
    )


@mkldnn_only
@pytest.mark.parametrize(
    "case", ["alpha-0", "alpha-0.5", "residual", "residual-other-layout", "pool-after"]
)
def test_fused_relu_and_residual_keep_nan_and_infinity_where_unfused_does(
    case: str, monkeypatch
) -> None:
    """A NaN or an infinity in a float32 CPU input leaves the fused layer where the unfused
    layer's ReLU leaves it (NaN stays NaN, +inf stays +inf, never 0 or the largest float), on
    every path: a packed convolution, with the residual added inside it or after it, the high
    group's upsampled add, and pooling after."""
    if case == "pool-after":
        conv, norm = _reducing_unit((1, 1, 1), S)
        x = _pair_input(conv, (4, 8, 6))
    else:
        conv, norm, x = _unit(0.0 if case == "alpha-0" else 0.5)
    conv, norm, act = conv.float(), norm.float(), OctAct(nn.ReLU)
    x = _with_non_finite(_float32_cl(x))
    residual = None
    if case.startswith("residual"):
        with torch.no_grad():
            residual = _with_non_finite(conv(x))  # any pair of the output's shape
        if case == "residual-other-layout":
            residual = unpair(
                OctPair(*(None if t is None else t.contiguous() for t in as_pair(residual)))
            )
    with torch.no_grad():
        want = as_pair(act(norm(conv(x)) if residual is None else oct_add(norm(conv(x)), residual)))
    fused, folded = _fused_unit(conv, norm)
    calls, pooled = _spy_packed(monkeypatch), _spy_pool_after(monkeypatch)
    with torch.inference_mode():
        got = as_pair(conv_norm_act(fused, folded, act, x, residual))
    assert bool(pooled) == (case == "pool-after")
    assert ((True, True) in calls) == (case == "residual")  # added inside the convolution
    for g_, w_ in zip(got, want, strict=True):
        if w_ is not None:
            assert w_.isnan().any() and w_.isinf().any()
            torch.testing.assert_close(g_, w_, rtol=1e-4, atol=1e-4, equal_nan=True)


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "octave"), NETWORKS)
def test_a_nan_weight_gives_nan_logits_fused_as_unfused(name, alpha, octave) -> None:
    """One NaN weight makes every logit NaN in the unfused network, and in the fused float32
    CPU network on oneDNN's packed convolutions too."""
    model = _network(name, alpha, octave).float().to(memory_format=CL)
    with torch.no_grad():
        model.res2[0].conv_b.conv_hh.weight[0, 0, 0, 0, 0] = float("nan")
    x = _float32_cl(_clip(model, 4, 32, CL))
    with torch.no_grad():
        assert model(x).isnan().all()
    with torch.inference_mode():
        assert fuse_for_inference(model)(x).isnan().all()


# Weights a fused layer makes (merged, packed for oneDNN) follow the tensors they are made from.

MADE_CASES = [
    ("i3d_r50", 0.1, "channels_last", 64),  # pooled after, merged low weight, packed
    ("c2d_r18", 0.5, "channels_last", 32),  # merged low weight, packed
    ("i3d_r18", 0.0, "contiguous", 32),  # packed
]


def _ran_float32(name: str, alpha: float, layout: str, side: int):
    """A fused float32 network that has run once without autograd, so it holds made weights,
    and its input."""
    fmt = CL if layout == "channels_last" else torch.contiguous_format
    model = _network(name, alpha).float().to(memory_format=fmt)
    x = _clip(model, 4, side, fmt).float().contiguous(memory_format=fmt)
    fused = fuse_for_inference(model)
    with torch.no_grad():
        first = fused(x)
    assert any(len(m._packed) for m in fused.modules() if isinstance(m, FusedOctConv3d))
    return fused, x, first


def _plain(model: nn.Module, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
    """The model's output with autograd on: a fused layer then runs public operators on its
    current weights, and keeps nothing."""
    with torch.enable_grad():
        if params is None:
            return model(x).detach()
        return torch.func.functional_call(model, params, (x,)).detach()


def _assert_close_to(got: torch.Tensor, want: torch.Tensor) -> None:
    """Within float32 rounding of ``want``, relative to its largest value (the logits of a
    narrow, deep network are small)."""
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def _halve(model: nn.Module, how: str) -> None:
    params = list(model.parameters())
    with torch.no_grad():
        if how == "vector_to_parameters":
            vector_to_parameters(torch.cat([p.reshape(-1) for p in params]) * 0.5, params)
        for p in params:
            if how == "mul_":
                p.mul_(0.5)
            elif how == "copy_":
                p.copy_(p * 0.5)
            elif how == "data =":
                p.data = p.detach() * 0.5


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "layout", "side"), MADE_CASES)
@pytest.mark.parametrize("how", ["mul_", "copy_", "data =", "vector_to_parameters"])
def test_a_fused_model_that_has_run_follows_its_weights_edited_in_place(
    name, alpha, layout, side, how
) -> None:
    """After a run, weights edited in place or replaced under the fused model reach its next
    inference call as they reach a call with autograd on: no merged or packed weight made from
    the old ones is used again."""
    fused, x, first = _ran_float32(name, alpha, layout, side)
    _halve(fused, how)
    with torch.no_grad():
        got = fused(x)
    want = _plain(fused, x)
    assert not torch.allclose(want, first, rtol=1e-3, atol=1e-3)  # the edit changes the output
    _assert_close_to(got, want)
    with torch.inference_mode():
        _assert_close_to(fused(x), want)


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "layout", "side"), [*MADE_CASES, ("layer", 0.0, "", 7)])
def test_functional_call_without_autograd_uses_the_given_parameters(
    name, alpha, layout, side
) -> None:
    """``torch.func.functional_call`` of a fused model that has run, without autograd, computes
    with the tensors it is given, each call's own (a freed one's id given to the next call's
    tensors or not), as with autograd on; the model's own weights are used again after it."""
    if name == "layer":  # packed weights only; the freed tensors' ids come back soon
        conv, norm, x = _unit(alpha)
        fused = fuse_for_inference(nn.Sequential(conv, norm)).float()
        x = x.float()
        with torch.no_grad():
            first = fused(x)
    else:
        fused, x, first = _ran_float32(name, alpha, layout, side)
    for scale in (0.5, 2.0) * 3:
        params = {k: v.detach() * scale for k, v in fused.named_parameters()}
        with torch.no_grad():
            got = torch.func.functional_call(fused, params, (x,))
        _assert_close_to(got, _plain(fused, x, params))
        del params, got  # the next call's tensors may be given these ids
    with torch.no_grad():
        _assert_close_to(fused(x), first)


@mkldnn_only
def test_inference_mode_calls_keep_the_packed_weights(monkeypatch) -> None:
    """Under ``torch.inference_mode`` (the predictor's mode) weights are packed on the first
    call only, merged weights included: each later call reuses them, with the same result."""
    fused, x, _ = _ran_float32("i3d_r50", 0.1, "channels_last", 64)
    fused = copy.deepcopy(fused)  # nothing made yet
    reorders = _count_reorders(monkeypatch)
    with torch.inference_mode():
        first = fused(x)
        packed = len(reorders)
        again = fused(x)
    assert packed > 0 and len(reorders) == packed
    assert torch.equal(again, first)


def _count_reorders(monkeypatch) -> list[str]:
    """The names of oneDNN's weight reorders called from now on."""
    reorders: list[str] = []

    def spy(name: str):
        reorder = getattr(torch._C._nn, name)

        def counted(*args):
            reorders.append(name)
            return reorder(*args)

        return counted

    for name in ("mkldnn_reorder_conv2d_weight", "mkldnn_reorder_conv3d_weight"):
        monkeypatch.setattr(torch._C._nn, name, spy(name))
    return reorders


@mkldnn_only
def test_a_model_built_in_inference_mode_keeps_its_made_weights(monkeypatch) -> None:
    """Weights of a model built under ``torch.inference_mode`` have no version counter: what is
    made from them is kept (known by object and address), so only the first call packs; after
    an in-place edit ``forget_made_weights`` makes the next call use the edited weights."""
    with torch.inference_mode():
        fused = fuse_for_inference(_network("c2d_r18", 0.5).float().to(memory_format=CL))
        x = _clip(fused, 4, 32, CL).float().contiguous(memory_format=CL)
        reorders = _count_reorders(monkeypatch)
        first = fused(x)
        packed = len(reorders)
        assert packed > 0 and torch.equal(fused(x), first) and len(reorders) == packed
        for p in fused.parameters():
            p.mul_(0.5)
        forget_made_weights(fused)
        got = fused(x)
    params = {k: v.clone() for k, v in fused.named_parameters()}  # ordinary tensors
    _assert_close_to(got, _plain(fused, x.clone(), params))


def _assert_uses_the_edited_weights(fused: nn.Module, x: torch.Tensor, first: torch.Tensor):
    """The fused model's next call without autograd gives a call's with autograd on, which the
    edit of its weights has moved away from ``first``."""
    with torch.no_grad():
        got = fused(x)
    want = _plain(fused, x)
    assert not torch.allclose(want, first, rtol=1e-3, atol=1e-3)
    _assert_close_to(got, want)


@mkldnn_only
def test_forget_made_weights_after_an_edit_the_version_counter_misses() -> None:
    """An edit through ``p.data`` (as a fused optimizer's step or a numpy view) keeps the
    version and address; after ``forget_made_weights`` the next call uses the edited weights."""
    fused, x, first = _ran_float32("c2d_r18", 0.5, "channels_last", 32)
    for p in fused.parameters():
        p.data.mul_(0.5)
    forget_made_weights(fused)
    _assert_uses_the_edited_weights(fused, x, first)


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "layout", "side"), MADE_CASES)
def test_a_fused_model_that_has_run_swaps_its_weights(name, alpha, layout, side) -> None:
    """``torch.utils.swap_tensors`` takes a fused layer's weights after a run (nothing made
    from them holds a weak reference), and the next call uses the swapped-in weights."""
    fused, x, first = _ran_float32(name, alpha, layout, side)
    for module in fused.modules():
        if isinstance(module, FusedOctConv3d):
            for p in module.parameters():
                torch.utils.swap_tensors(p, nn.Parameter(p.detach() * 0.5))
    _assert_uses_the_edited_weights(fused, x, first)


@mkldnn_only
@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save", "fuse_for_inference"])
def test_a_fused_model_that_has_run_copies_saves_and_fuses_again(how: str) -> None:
    """A fused model holding packed weights (oneDNN tensors, which have no storage to copy)
    deep-copies, pickles, saves with ``torch.save`` and fuses again; the copy packs its own and
    gives the same output, and the original runs on."""
    fused, x, first = _ran_float32("c2d_r18", 0.5, "channels_last", 32)
    if how == "deepcopy":
        other = copy.deepcopy(fused)
    elif how == "pickle":
        other = pickle.loads(pickle.dumps(fused))
    elif how == "torch.save":
        buffer = io.BytesIO()
        torch.save(fused, buffer)
        buffer.seek(0)
        other = torch.load(buffer, weights_only=False)
    else:
        other = fuse_for_inference(fused)
    with torch.no_grad():
        _assert_close_to(other(x), first)
        _assert_close_to(fused(x), first)
