"""Whole networks: the channels-last fast path (merged low convolutions, 2D views, pooled input
recomputed in backward) and, in inference, batch norm folded into the convolutions, each equal in
float64 to the plain four-path computation on contiguous (NCDHW) tensors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from octvideo.models import create_model
from octvideo.ops import (
    OctAct,
    OctConv3d,
    OctNorm,
    OctPair,
    as_pair,
    conv_norm_act,
    layers,
    oct_add,
    octconv,
    unpair,
)

CL = torch.channels_last_3d
# (name, alpha, octave): vanilla, the paper's spatial octave, a spatio-temporal octave
CASES = [
    ("i3d_r50", 0.0, (1, 2, 2)),
    ("i3d_r50", 0.5, (1, 2, 2)),
    ("c2d_r18", 0.25, (1, 2, 2)),
    ("i3d_r18", 0.5, (2, 2, 2)),
]


def _model(name: str, alpha: float, octave: tuple[int, int, int]) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(
        name, num_classes=5, alpha=alpha, octave=octave, dropout=0.0, width=8
    ).double()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():  # statistics far from (0, 1) so that folding has work to do
        if isinstance(m, nn.BatchNorm3d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64))
                m.running_var.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64))
                m.running_var.add_(0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) - 0.5)
    return model


def _clip(size: tuple[int, int, int], batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(batch, 3, *size, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("name", "alpha", "octave"), CASES)
@pytest.mark.parametrize("size", [(4, 32, 32), (4, 35, 29)], ids=["even", "odd"])
def test_inference_fast_and_folded_equal_plain(name, alpha, octave, size, monkeypatch) -> None:
    model = _model(name, alpha, octave).eval()
    x = _clip(size)
    with torch.no_grad():
        plain = model(x)  # contiguous: the four paths, batch norm as a layer
    folded = []
    forward_with_weights = OctConv3d.forward_with_weights

    def spy(self, *args, **kwargs):
        folded.append(self)
        return forward_with_weights(self, *args, **kwargs)

    monkeypatch.setattr(OctConv3d, "forward_with_weights", spy)
    with torch.no_grad():
        grad_free = model.to(memory_format=CL)(x.contiguous(memory_format=CL))
    with torch.inference_mode():
        inference = model(x.contiguous(memory_format=CL))
    # every convolution of the network is followed by a batch norm and is folded, in both runs
    convs = [m for m in model.modules() if isinstance(m, OctConv3d)]
    assert len(folded) == 2 * len(convs) and set(map(id, folded)) == set(map(id, convs))
    torch.testing.assert_close(grad_free, plain, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inference, plain, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "alpha", "octave"), CASES)
@pytest.mark.parametrize("size", [(4, 64, 64), (4, 35, 29)], ids=["even", "odd"])
def test_training_fast_path_equals_plain(name, alpha, octave, size, monkeypatch) -> None:
    """Forward, loss and every gradient (parameters and clip) in train mode."""
    plain_model = _model(name, alpha, octave).train()
    fast_model = copy.deepcopy(plain_model).to(memory_format=CL)
    x = _clip(size)
    recomputed = []
    apply = octconv._OctConvTrain.apply
    monkeypatch.setattr(
        octconv._OctConvTrain, "apply", lambda *a: recomputed.append(1) or apply(*a)
    )
    outs, grads = [], []
    for model, clip in ((plain_model, x), (fast_model, x.contiguous(memory_format=CL))):
        # float64 convolutions do not keep channels-last (no oneDNN kernel): force the fast
        # path, which is exact in any layout, for the whole fast model
        fast = model is fast_model
        monkeypatch.setattr(octconv, "is_channels_last", lambda t, fast=fast: fast)
        clip = clip.clone().requires_grad_()
        out = model(clip)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
        (out * upstream.double()).sum().backward()
        outs.append(out)
        grads.append({"clip": clip.grad, **{n: p.grad for n, p in model.named_parameters()}})
    # the fast model's octave layers ran as one autograd node each
    assert (len(recomputed) > 0) == (alpha > 0)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    assert grads[0].keys() == grads[1].keys()
    for key, want in grads[0].items():
        assert want is not None and grads[1][key] is not None, key
        torch.testing.assert_close(grads[1][key], want, rtol=1e-9, atol=1e-9, msg=key)
    # running statistics move identically
    for (n, a), (_, b) in zip(plain_model.named_buffers(), fast_model.named_buffers(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10, msg=n)


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


def test_folded_weights_follow_parameter_and_statistic_changes() -> None:
    """The folded weights are cached; a changed statistic or weight must not reuse them."""
    conv, norm, x = _unit(0.5)
    act = None

    def both() -> tuple[OctPair, OctPair]:
        with torch.no_grad():
            want = norm(conv(x))
        with torch.inference_mode():
            got = conv_norm_act(conv, norm, act, x)
        return got, want

    for change in (
        lambda: norm.low.running_var.mul_(3.0),
        lambda: norm.high.running_mean.add_(1.0),
        lambda: conv.conv_lh.weight.mul_(-2.0),
        lambda: norm.low.bias.add_(0.5),
        # a new tensor in place of a buffer, with the same version counter as the old one
        lambda: setattr(norm.high, "running_var", norm.high.running_var.clone().mul_(2.0)),
        lambda: conv.load_vanilla_weight(conv.vanilla_weight()[0] * 2, conv.vanilla_weight()[1]),
    ):
        got, want = both()
        torch.testing.assert_close(got.high, want.high, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got.low, want.low, rtol=1e-12, atol=1e-12)
        with torch.no_grad():
            change()


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_conv_norm_act_residual_and_relu_in_place_leave_inputs_alone(alpha: float) -> None:
    conv, norm, x = _unit(alpha)
    act = OctAct(nn.ReLU)
    with torch.no_grad():
        residual = conv(x)  # any tensor or pair of the output's shape
    res_copy = copy.deepcopy(residual)
    x_copy = copy.deepcopy(x)
    with torch.no_grad():
        want = act(
            norm(conv(x)) + residual
            if alpha == 0
            else OctPair(*(a + b for a, b in zip(norm(conv(x)), residual, strict=True)))
        )
    with torch.inference_mode():
        got = conv_norm_act(conv, norm, act, x, residual)
    for g_, w_ in zip(got if alpha else (got,), want if alpha else (want,), strict=True):
        torch.testing.assert_close(g_, w_, rtol=1e-12, atol=1e-12)
    for a, b in zip(
        residual if alpha else (residual,), res_copy if alpha else (res_copy,), strict=True
    ):
        assert torch.equal(a, b), "the residual was written to"
    for a, b in zip(x if alpha else (x,), x_copy if alpha else (x_copy,), strict=True):
        assert torch.equal(a, b), "the input was written to"


mkldnn_only = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN (mkldnn)"
)


def _spy_fused(monkeypatch) -> list[tuple[bool, bool]]:
    """Records every convolution that ran on oneDNN's fused kernel: (residual added, relu)."""
    calls: list[tuple[bool, bool]] = []
    fused = octconv._fused_conv

    def spy(pack, weight, x, w2, bias, g, groups, residual, relu):
        y = fused(pack, weight, x, w2, bias, g, groups, residual, relu)
        if y is not None:
            calls.append((residual is not None, relu))
        return y

    monkeypatch.setattr(octconv, "_fused_conv", spy)
    return calls


@mkldnn_only
@pytest.mark.parametrize(("name", "alpha", "octave"), CASES)
@pytest.mark.parametrize("size", [(4, 32, 32), (4, 35, 29)], ids=["even", "odd"])
def test_float32_inference_on_prepacked_weights_matches_float64_plain(
    name, alpha, octave, size, monkeypatch
) -> None:
    """float32 CPU inference runs on weights reordered once into oneDNN's layout, with residual
    adds and ReLUs fused into the convolutions: within float32 error of the float64 plain
    network, the same on a second call (packed weights reused), and the same as plain
    ``F.conv*`` calls (oneDNN switched off)."""
    model = _model(name, alpha, octave).eval()
    x = _clip(size)
    with torch.no_grad():
        want = model(x)
    model = model.float().to(memory_format=CL)
    x = x.float().contiguous(memory_format=CL)
    calls = _spy_fused(monkeypatch)
    with torch.inference_mode():
        packed = model(x)
        again = model(x)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        unpacked = model(x)
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
    conv.float()
    norm.float()
    r_fmt = CL if residual_layout == "same" else torch.contiguous_format
    x = OctPair(
        *(None if t is None else t.float().contiguous(memory_format=CL) for t in as_pair(x64))
    )
    r = OctPair(*(None if t is None else t.float().contiguous(memory_format=r_fmt) for t in r64))
    x_copy, r_copy = copy.deepcopy(x), copy.deepcopy(r)
    calls = _spy_fused(monkeypatch)
    with torch.inference_mode():
        got = as_pair(conv_norm_act(conv, norm, act, unpair(x), unpair(r)))
    assert ((True, True) in calls) == (residual_layout == "same")
    for g_, w_ in zip(got, want, strict=True):
        if w_ is not None:
            torch.testing.assert_close(g_.double(), w_, rtol=1e-5, atol=1e-5)
    for a, b in zip((*x, *r), (*x_copy, *r_copy), strict=True):
        assert a is None or torch.equal(a, b), "an input was written to"


@mkldnn_only
def test_prepacked_weights_are_kept_per_input_shape() -> None:
    """One layer seeing clips of two sizes in turn packs its weights once per size and gives
    each size its own correct result."""
    conv, norm, x64 = _unit(0.5)
    conv.float()
    norm.float()
    small = OctPair(*(t.float().contiguous(memory_format=CL) for t in x64))
    g = torch.Generator().manual_seed(5)
    big = OctPair(
        torch.randn(2, 4, 3, 9, 9, generator=g).contiguous(memory_format=CL),
        torch.randn(2, 4, 3, 5, 5, generator=g).contiguous(memory_format=CL),
    )
    for x in (small, big, small, big):
        with torch.no_grad():
            want = norm(conv(x))
        with torch.inference_mode():
            got = conv_norm_act(conv, norm, None, x)
        torch.testing.assert_close(got.high, want.high, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.low, want.low, rtol=1e-5, atol=1e-5)
    # hh, lh and the merged low weight, at each of the two sizes
    assert len(layers._FOLDED[conv][2].packed) == 6


def test_epilogues_are_inference_only() -> None:
    conv, _, x = _unit(0.0)
    with pytest.raises(RuntimeError, match="inference-only"):
        conv.forward_with_weights(x, conv.path_weights(), relu=True)


def test_hooks_still_see_every_convolution_in_inference() -> None:
    """A forward hook on a convolution or a norm turns folding off for that unit, so tools that
    count or inspect layers through hooks (activation memory, feature extraction) still work."""
    model = _model("i3d_r18", 0.5, (1, 2, 2)).eval().float().to(memory_format=CL)
    convs = [m for m in model.modules() if isinstance(m, OctConv3d)]
    seen: list[OctConv3d] = []
    handles = [c.register_forward_pre_hook(lambda m, args: seen.append(m)) for c in convs]
    x = _clip((4, 32, 32)).float().contiguous(memory_format=CL)
    with torch.inference_mode():
        hooked = model(x)
    for h in handles:
        h.remove()
    assert len(seen) == len(convs)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), hooked, rtol=1e-4, atol=1e-4)


def test_folded_weights_follow_a_dtype_change() -> None:
    conv, norm, x = _unit(0.5)
    with torch.inference_mode():
        conv_norm_act(conv, norm, None, x)  # folded and cached in float64
    conv.float()
    norm.float()
    x32 = OctPair(x.high.float(), x.low.float())
    with torch.no_grad():
        want = norm(conv(x32))
    with torch.inference_mode():
        got = conv_norm_act(conv, norm, None, x32)
    assert got.high.dtype == torch.float32
    torch.testing.assert_close(got.high, want.high, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.low, want.low, rtol=1e-5, atol=1e-5)


@pytest.mark.heavy
def test_fast_path_traces_without_graph_breaks() -> None:
    """torch.compile sees the whole network in one graph, in training (the custom backward
    functions) and in inference."""
    import torch._dynamo

    model = create_model("i3d_r50", num_classes=4, alpha=0.5, dropout=0.0, width=8)
    model = model.to(memory_format=CL)
    x = torch.randn(2, 3, 4, 32, 32).contiguous(memory_format=CL)
    for train in (True, False):
        torch._dynamo.reset()
        with torch.set_grad_enabled(train):
            explained = torch._dynamo.explain(model.train(train))(x)
        assert explained.graph_break_count == 0, explained.break_reasons


def _spy_pool_after(monkeypatch) -> list[bool]:
    """Records each "pool after" attempt: True where it ran, False where it fell back."""
    ran: list[bool] = []
    pool_after = octconv._pool_after

    def spy(*args):
        y = pool_after(*args)
        ran.append(y is not None)
        return y

    monkeypatch.setattr(octconv, "_pool_after", spy)
    return ran


# (kernel, octave, alpha_out, C_in, C_out): layers whose folded inference pools after
POOL_AFTER = [
    ((1, 1, 1), (1, 2, 2), 0.125, 32, 16),
    ((3, 1, 1), (1, 2, 2), 0.125, 64, 16),  # I3D's conv_a: time is not an octave axis
    ((1, 1, 1), (2, 2, 2), 0.2, 40, 20),
]


@pytest.mark.parametrize(("kernel", "octave", "alpha", "c_in", "c_out"), POOL_AFTER)
@pytest.mark.parametrize("relu", [True, False])
def test_pool_after_equals_the_four_paths_in_float64(
    kernel, octave, alpha, c_in, c_out, relu, monkeypatch
) -> None:
    """``act(norm(conv(x)))`` with H->L run at full resolution and pooled afterwards equals the
    paper's four paths with batch norm as a layer, in float64, and keeps channels-last."""
    torch.manual_seed(0)
    conv = OctConv3d(c_in, c_out, kernel, alpha_in=0.25, alpha_out=alpha, octave=octave)
    norm = OctNorm(c_out, alpha=alpha)
    conv, norm = conv.double(), norm.double().eval()
    for bn in (norm.high, norm.low):
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    assert octconv.pools_after(conv)
    g = torch.Generator().manual_seed(1)
    lo = [s // o for s, o in zip((4, 6, 8), octave, strict=True)]
    x = OctPair(
        torch.randn(2, conv.in_high, 4, 6, 8, generator=g, dtype=torch.float64),
        torch.randn(2, conv.in_low, *lo, generator=g, dtype=torch.float64),
    )
    act = OctAct(nn.ReLU) if relu else None
    with torch.no_grad():
        want = norm(conv.forward_paths(*x))
        want = act(want) if relu else want
    # float64 convolutions do not keep channels-last (no oneDNN kernel): the variant checks
    # the layout of its inputs only, which are channels-last here
    ran = _spy_pool_after(monkeypatch)
    x_cl = OctPair(*(t.contiguous(memory_format=CL) for t in x))
    with torch.inference_mode():
        got = conv_norm_act(conv, norm, act, x_cl)
    assert ran == [True]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert a.is_contiguous(memory_format=CL)


@pytest.mark.parametrize(
    ("kernel", "octave", "alpha_in", "alpha_out", "c_in", "c_out"),
    [
        ((1, 3, 3), (1, 2, 2), 0.125, 0.125, 32, 16),  # a spatial kernel does not commute
        ((3, 1, 1), (2, 2, 2), 0.125, 0.125, 32, 16),  # nor a temporal one with a time octave
        ((1, 1, 1), (1, 2, 2), 0.5, 0.5, 64, 16),  # measured slower at alpha 0.5
        ((1, 1, 1), (1, 2, 2), 0.125, 0.125, 16, 64),  # and on expanding layers
        ((1, 1, 1), (1, 2, 2), 0.0, 0.125, 64, 16),  # no low input: nothing to merge
    ],
)
def test_pool_after_is_chosen_only_where_exact_and_measured_faster(
    kernel, octave, alpha_in, alpha_out, c_in, c_out
) -> None:
    conv = OctConv3d(c_in, c_out, kernel, alpha_in=alpha_in, alpha_out=alpha_out, octave=octave)
    assert not octconv.pools_after(conv)
    assert _fold(conv).stacked is None


def _fold(conv: OctConv3d) -> octconv.PathWeights:
    norm = OctNorm(conv.out_channels, alpha=conv.alpha_out).eval()
    with torch.inference_mode():
        return layers._fold(conv, norm)


@mkldnn_only
@pytest.mark.parametrize("size", [(4, 64, 64), (4, 35, 29)], ids=["even", "odd"])
def test_pool_after_in_a_float32_network_matches_float64_plain(size, monkeypatch) -> None:
    """An Oct-I3D at alpha 0.125 (whose conv_a layers pool after) in float32 channels-last
    inference, on packed weights, against the float64 plain network; where a size does not
    divide by the octave the layer falls back to its usual path."""
    model = _model("i3d_r50", 0.125, (1, 2, 2)).eval()
    x = _clip(size)
    with torch.no_grad():
        want = model(x)
    ran = _spy_pool_after(monkeypatch)
    model = model.float().to(memory_format=CL)
    with torch.inference_mode():
        got = model(x.float().contiguous(memory_format=CL))
    convs = [m for m in model.modules() if isinstance(m, OctConv3d) and octconv.pools_after(m)]
    assert len(ran) == len(convs) > 0
    # even: it runs (a low group in another layout falls back); odd: no size divides
    assert any(ran) if size == (4, 64, 64) else not any(ran)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
