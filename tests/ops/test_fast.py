"""The channels-last fast path (``octvideo.ops.fast``): merged low convolutions, 2D views, one
autograd node per layer in training; equal in float64 to the paper's four paths
(``OctConv3d.forward_paths``) on contiguous (NCDHW) tensors, for single layers and whole
networks, forward and backward."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn

from octvideo.models import create_model
from octvideo.ops import (
    OctConv3d,
    OctNorm,
    OctPair,
    as_pair,
    fast,
    fuse_for_inference,
    low_channels,
    octconv,
)
from tests.ops.tensor_helpers import compiled_and_eager
from tests.scripts import run_code

CL = torch.channels_last_3d
KERNELS = [(1, 1, 1), (3, 1, 1), (1, 3, 3), (3, 3, 3)]
ALPHAS = [0.0, 0.25, 0.5]
OCTAVES = [(1, 2, 2), (2, 2, 2)]
SIZES = [(4, 8, 8), (3, 7, 7)]  # even and odd


@pytest.fixture(autouse=True)
def _float64():
    """Single-layer equivalence checks run in float64; the default is restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_input(channels: int, alpha: float, size, octave, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n_low = low_channels(channels, alpha)
    high = torch.randn(batch, channels - n_low, *size, generator=g)
    if n_low == 0:
        return high
    low_size = [math.ceil(s / o) for s, o in zip(size, octave, strict=True)]
    return OctPair(high, torch.randn(batch, n_low, *low_size, generator=g))


def _channels_last(x):
    cl = torch.channels_last_3d
    if isinstance(x, OctPair):
        return OctPair(x.high.contiguous(memory_format=cl), x.low.contiguous(memory_format=cl))
    return x.contiguous(memory_format=cl)


@pytest.mark.parametrize(
    ("alpha_in", "alpha_out", "kernel", "stride", "size", "octave", "groups"),
    [
        *itertools.product(ALPHAS, ALPHAS, KERNELS, [1, 2], SIZES, OCTAVES, [1]),
        (0.5, 0.5, (1, 3, 3), 1, (4, 8, 8), (1, 2, 2), 4),
        (0.5, 0.5, (1, 3, 3), 1, (3, 7, 7), (1, 2, 2), 8),
    ],
)
def test_fast_path_equals_four_paths(alpha_in, alpha_out, kernel, stride, size, octave, groups):
    """Channels-last inputs take the fast path; it must equal the paper's four paths."""
    layer = OctConv3d(
        8,
        8,
        kernel,
        stride=stride,
        bias=True,
        groups=groups,
        alpha_in=alpha_in,
        alpha_out=alpha_out,
        octave=octave,
    )
    x = make_input(8, alpha_in, size, octave)
    x_cl = _channels_last(x)
    x_grad = OctPair(
        *[
            t.clone().requires_grad_() if t is not None else None
            for t in (x_cl if isinstance(x_cl, OctPair) else OctPair(x_cl, None))
        ]
    )
    fast = layer(x_grad if isinstance(x, OctPair) else x_grad.high)
    x_plain = OctPair(
        *[None if t is None else t.detach().contiguous().clone().requires_grad_() for t in x_grad]
    )
    plain = layer(x_plain if isinstance(x, OctPair) else x_plain.high)
    assert not x_plain.high.is_contiguous(memory_format=torch.channels_last_3d)
    fast_t = fast if isinstance(fast, OctPair) else (fast,)
    plain_t = plain if isinstance(plain, OctPair) else (plain,)
    for f, p in zip(fast_t, plain_t, strict=True):
        torch.testing.assert_close(f, p, rtol=1e-10, atol=1e-10)
    # gradients (of weights and of both inputs) through the fast path match the plain ones, for
    # an upstream gradient that is not constant
    g = torch.Generator().manual_seed(1)
    upstream = [torch.randn(t.shape, generator=g) for t in plain_t]
    sum((t * u).sum() for t, u in zip(fast_t, upstream, strict=True)).backward()
    grads_fast = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    sum((t * u).sum() for t, u in zip(plain_t, upstream, strict=True)).backward()
    for g_fast, p in zip(grads_fast, layer.parameters(), strict=True):
        torch.testing.assert_close(g_fast, p.grad, rtol=1e-10, atol=1e-10)
    for t_fast, t_plain in zip(x_grad, x_plain, strict=True):
        if t_fast is not None:
            assert t_fast.grad is not None and t_fast.grad.abs().sum() > 0
            torch.testing.assert_close(t_fast.grad, t_plain.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fast_path_keeps_channels_last(kernel):
    layer = OctConv3d(8, 8, kernel, alpha_in=0.5, alpha_out=0.5).float()
    x = _channels_last(make_input(8, 0.5, (4, 8, 8), (1, 2, 2)))
    y = layer(OctPair(x.high.float(), x.low.float()))
    assert y.high.is_contiguous(memory_format=torch.channels_last_3d)
    assert y.low.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("used", ["high", "low", "both"])
@pytest.mark.parametrize("trainable", ["weights", "input", "low input"])
@pytest.mark.parametrize("size", SIZES, ids=["even", "odd"])
def test_fast_path_gradients_when_only_some_tensors_require_grad(trainable, size, used):
    """A frozen layer under a trainable input, a trainable layer on a clip without grad, a loss
    on one output group only: the fast path's training node returns exactly the gradients the
    plain paths do, None (not zeros) where a tensor took no part."""
    layer = OctConv3d(8, 8, (1, 3, 3), bias=True, alpha_in=0.5, alpha_out=0.5)
    layer.requires_grad_(trainable == "weights")
    x = make_input(8, 0.5, size, (1, 2, 2))
    grads = []
    for prepare in (_channels_last, lambda p: OctPair(*(t.contiguous() for t in p))):
        inputs = [t.detach().clone() for t in prepare(x)]
        inputs[0].requires_grad_(trainable == "input")
        inputs[1].requires_grad_(trainable in ("input", "low input"))
        y = layer(OctPair(*inputs))
        g = torch.Generator().manual_seed(2)
        outs = {"high": [y.high], "low": [y.low], "both": list(y)}[used]
        sum((t * torch.randn(t.shape, generator=g)).sum() for t in outs).backward()
        grads.append([t.grad for t in (*inputs, *layer.parameters())])
        layer.zero_grad(set_to_none=True)
    for got, plain in zip(*grads, strict=True):
        assert (got is None) == (plain is None)
        if plain is not None:
            torch.testing.assert_close(got, plain, rtol=1e-10, atol=1e-10)
    assert any(g is not None for g in grads[1])


@pytest.mark.parametrize(
    "size", [(2, 8, 8), pytest.param((2, 7, 9), marks=pytest.mark.heavy, id="odd")]
)
def test_compiled_training_fast_path_matches_eager(size):
    """torch.compile traces the fast path's training node (forward and its backward) and gives
    the eager gradients, at odd sizes too (a last, partial pooling cell)."""
    torch.manual_seed(0)
    layer = OctConv3d(16, 16, (1, 3, 3), bias=True, alpha_in=0.5, alpha_out=0.5)
    layer = layer.float().to(memory_format=torch.channels_last_3d)  # oneDNN: float32
    x = _channels_last(make_input(16, 0.5, size, (1, 2, 2)))
    x = OctPair(x.high.float(), x.low.float())
    compiled, eager = compiled_and_eager(layer, x, dynamic=False)
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# whole networks, (name, alpha, octave): vanilla, the paper's spatial octave, a spatio-temporal one
NETWORKS = [
    ("i3d_r50", 0.0, (1, 2, 2)),
    ("i3d_r50", 0.5, (1, 2, 2)),
    ("c2d_r18", 0.25, (1, 2, 2)),
    ("i3d_r18", 0.5, (2, 2, 2)),
]


def network(name: str, alpha: float, octave: tuple[int, int, int]) -> nn.Module:
    """A narrow float64 network whose batch norms hold statistics far from (0, 1)."""
    torch.manual_seed(0)
    model = create_model(
        name, num_classes=5, alpha=alpha, octave=octave, dropout=0.0, width=8
    ).double()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64))
                m.running_var.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64))
                m.running_var.add_(0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) - 0.5)
    return model


def clip(size: tuple[int, int, int], batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(batch, 3, *size, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("name", "alpha", "octave"), NETWORKS)
@pytest.mark.parametrize("size", [(4, 32, 32), (4, 35, 29)], ids=["even", "odd"])
def test_inference_fast_path_equals_plain(name, alpha, octave, size, monkeypatch) -> None:
    """Eval mode without autograd, and in inference mode: every OctConv3d of the channels-last
    network takes the fast path and the logits equal the plain network's."""
    model = network(name, alpha, octave).eval()
    x = clip(size)
    with torch.no_grad():
        plain = model(x)  # contiguous: the four paths
    ran = []
    forward_fast = fast.forward_fast
    monkeypatch.setattr(
        fast, "forward_fast", lambda layer, *a: ran.append(layer) or forward_fast(layer, *a)
    )
    # float64 convolutions do not keep channels-last (no oneDNN kernel): force the fast path,
    # which is exact in any layout, past the first layer
    monkeypatch.setattr(octconv, "is_channels_last", lambda t: True)
    with torch.no_grad():
        grad_free = model.to(memory_format=CL)(x.contiguous(memory_format=CL))
    with torch.inference_mode():
        inference = model(x.contiguous(memory_format=CL))
    convs = [m for m in model.modules() if isinstance(m, OctConv3d)]
    assert len(ran) == 2 * len(convs) and set(map(id, ran)) == set(map(id, convs))
    torch.testing.assert_close(grad_free, plain, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inference, plain, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "alpha", "octave"), NETWORKS)
@pytest.mark.parametrize("size", [(4, 64, 64), (4, 35, 29)], ids=["even", "odd"])
def test_training_fast_path_equals_plain(name, alpha, octave, size, monkeypatch) -> None:
    """Forward, loss and every gradient (parameters and clip) in train mode."""
    plain_model = network(name, alpha, octave).train()
    fast_model = copy.deepcopy(plain_model).to(memory_format=CL)
    x = clip(size)
    recomputed = []
    apply = fast._OctConvTrain.apply
    monkeypatch.setattr(fast._OctConvTrain, "apply", lambda *a: recomputed.append(1) or apply(*a))
    outs, grads = [], []
    for model, x_in in ((plain_model, x), (fast_model, x.contiguous(memory_format=CL))):
        # float64 convolutions do not keep channels-last (no oneDNN kernel): force the fast
        # path, which is exact in any layout, for the whole fast model
        is_fast = model is fast_model
        monkeypatch.setattr(octconv, "is_channels_last", lambda t, f=is_fast: f)
        x_in = x_in.clone().requires_grad_()
        out = model(x_in)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
        (out * upstream.double()).sum().backward()
        outs.append(out)
        grads.append({"clip": x_in.grad, **{n: p.grad for n, p in model.named_parameters()}})
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


@pytest.mark.heavy
def test_fast_path_traces_without_graph_breaks() -> None:
    """torch.compile sees the whole network in one graph, in training (the custom backward
    functions) and in inference."""
    import torch._dynamo

    model = create_model("i3d_r50", num_classes=4, alpha=0.5, dropout=0.0, width=8)
    model = model.float().to(memory_format=CL)
    x = torch.randn(2, 3, 4, 32, 32, dtype=torch.float32).contiguous(memory_format=CL)
    for train in (True, False):
        torch._dynamo.reset()
        with torch.set_grad_enabled(train):
            explained = torch._dynamo.explain(model.train(train))(x)
        assert explained.graph_break_count == 0, explained.break_reasons


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
def test_torchscript_trace_of_channels_last_input_under_autograd_saves_and_loads(
    fused, tmp_path
) -> None:
    """``torch.jit.trace`` with grad on records standard operators on a channels-last input, as on
    a contiguous one: its check (a rerun under no_grad) finds the same graph, and the trace saves,
    loads and gives the layers' output. A cross path, a 3x1x1 kernel and a strided 1x1 on fewer
    than 16 channels cover each of the fast path's choices."""
    layers = [
        OctConv3d(8, 16, 3, alpha_out=0.25),
        OctConv3d(16, 16, (3, 1, 1), alpha_in=0.25, alpha_out=0.25),
        OctConv3d(16, 16, 1, stride=(1, 2, 2), alpha_in=0.25, alpha_out=0.25),
        OctConv3d(16, 4, 1, alpha_in=0.25),
    ]
    net = nn.Sequential(
        *itertools.chain(*((c, OctNorm(c.out_channels, alpha=c.alpha_out)) for c in layers))
    )
    net = fuse_for_inference(net) if fused else net.eval()
    x = torch.randn(1, 8, 4, 8, 8).contiguous(memory_format=CL)
    traced = torch.jit.trace(net, x)  # check_trace=True, the default
    assert "_OctConvTrain" not in str(traced.inlined_graph)
    torch.jit.save(traced, tmp_path / "net.pt")
    loaded = torch.jit.load(tmp_path / "net.pt")
    torch.testing.assert_close(loaded(x), net(x), rtol=1e-10, atol=1e-10)


# strided 1x1 layers with fewer than 16 input channels in a path, where oneDNN's 2D 1x1 weight
# gradient writes past its buffer: (in_channels, alpha, octave); octave (1, 1, 1) strides natively
NARROW_STRIDED_1X1 = [(8, 0.0, (1, 2, 2)), (4, 0.0, (1, 2, 2)), (16, 0.25, (1, 1, 1))]


def _narrow_layer(channels: int, alpha: float, octave) -> OctConv3d:
    return OctConv3d(
        channels, 16, 1, stride=(1, 2, 2), alpha_in=alpha, alpha_out=alpha, octave=octave
    )


@pytest.mark.parametrize(
    ("channels", "alpha", "octave", "view"),
    [*((*case, "3d") for case in NARROW_STRIDED_1X1), (16, 0.0, (1, 2, 2), "frames")],
)
def test_strided_1x1_on_few_channels_trains_as_3d_and_equals_four_paths(
    channels, alpha, octave, view
):
    layer = _narrow_layer(channels, alpha, octave)
    assert fast.geometry(layer, backward=True).view == view
    assert fast.geometry(layer).view == "frames"  # no backward follows: the 2D view
    x = as_pair(make_input(channels, alpha, (4, 8, 8), octave))
    results = []
    for fmt in (CL, torch.contiguous_format):  # the fast path, then the paper's four paths
        inputs = [
            None if t is None else t.contiguous(memory_format=fmt).requires_grad_() for t in x
        ]
        out = as_pair(layer(OctPair(*inputs)))
        g = torch.Generator().manual_seed(1)
        sum((t * torch.randn(t.shape, generator=g)).sum() for t in out if t is not None).backward()
        grads = [t.grad for t in inputs if t is not None]
        results.append(
            [t for t in out if t is not None] + grads + [p.grad for p in layer.parameters()]
        )
        layer.zero_grad(set_to_none=True)
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


_TRAIN_NARROW_STRIDED_1X1 = """
import sys, torch
from octvideo.ops import OctConv3d, OctPair, as_pair, low_channels
channels, alpha = int(sys.argv[1]), float(sys.argv[2])
octave = tuple(int(o) for o in sys.argv[3].split(","))
cl = torch.channels_last_3d
layer = OctConv3d(channels, 16, 1, stride=(1, 2, 2), alpha_in=alpha, alpha_out=alpha,
                  octave=octave).to(memory_format=cl)
n_low = low_channels(channels, alpha)
x = torch.randn(2, channels - n_low, 8, 56, 56).contiguous(memory_format=cl)
if n_low:
    x = OctPair(x, torch.randn(2, n_low, 8, 56, 56).contiguous(memory_format=cl))
for _ in range(3):
    sum(t.sum() for t in as_pair(layer(x)) if t is not None).backward()
print("trained")
"""


@pytest.mark.parametrize(("channels", "alpha", "octave"), NARROW_STRIDED_1X1)
def test_strided_1x1_on_few_channels_trains_in_float32_channels_last(channels, alpha, octave):
    """In a fresh process, which the fault would kill: float32, channels-last, at the size of
    c2d_r18's first strided shortcut at width 8 on 224-pixel crops (8 frames of 56x56)."""
    done = run_code(
        _TRAIN_NARROW_STRIDED_1X1, str(channels), str(alpha), ",".join(map(str, octave))
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "trained"


_TRAIN_C2D_R18_WIDTH_8 = """
import torch
from octvideo.models import create_model
cl = torch.channels_last_3d
model = create_model("c2d_r18", num_classes=10, width=8).train().to(memory_format=cl)
model(torch.randn(2, 3, 8, 224, 224).contiguous(memory_format=cl)).sum().backward()
print("trained")
"""


@pytest.mark.heavy
def test_narrow_c2d_r18_trains_channels_last_on_224_pixel_crops():
    """A training step of c2d_r18 at width 8, alpha 0, on two clips of 8x224x224 channels-last
    (the memory format ``trainer.memory_format=auto`` picks on a CPU), in a fresh process."""
    done = run_code(_TRAIN_C2D_R18_WIDTH_8, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "trained"


def _per_sample_loss(layer, params, x):
    y = as_pair(torch.func.functional_call(layer, params, (x,)))
    return y.high.sum() + (0 if y.low is None else y.low.pow(2).sum())


@pytest.mark.parametrize(("alpha_in", "alpha_out"), [(0.0, 0.5), (0.5, 0.5), (0.5, 0.0)])
def test_training_node_runs_under_torch_func(alpha_in, alpha_out):
    """The channels-last training node (``_OctConvTrain``) under torch.func: per-sample
    gradients (vmap of grad) equal a loop of backward passes, jacrev equals autograd's
    Jacobian, and gradcheck passes on the node."""
    torch.manual_seed(0)
    layer = OctConv3d(4, 4, 3, bias=True, alpha_in=alpha_in, alpha_out=alpha_out)
    params = {k: v.detach() for k, v in layer.named_parameters()}
    samples = [
        _channels_last(make_input(4, alpha_in, (2, 4, 4), (1, 2, 2), seed=s)) for s in (0, 1)
    ]
    stacked = as_pair(torch.stack([as_pair(x).high for x in samples]))  # (N, B, C, T, H, W)
    if alpha_in:
        stacked = OctPair(stacked.high, torch.stack([x.low for x in samples]))
    stacked = OctPair(
        *(
            None
            if t is None
            else t.permute(0, 1, 3, 4, 5, 2).contiguous().permute(0, 1, 5, 2, 3, 4)
            for t in stacked
        )
    )
    assert fast.is_channels_last(stacked.high[0])
    x_in = stacked if alpha_in else stacked.high

    def loss(p, x):
        return _per_sample_loss(layer, p, x)

    got = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x_in)
    for i, x in enumerate(samples):
        p = {k: v.clone().requires_grad_() for k, v in params.items()}
        loss(p, x).backward()
        for k in p:
            torch.testing.assert_close(got[k][i], p[k].grad, rtol=1e-10, atol=1e-10)

    high, low = as_pair(samples[0])

    def high_out(h):
        return as_pair(layer(h if low is None else OctPair(h, low))).high

    h = high.requires_grad_()
    jac = torch.func.jacrev(high_out)(h)
    torch.testing.assert_close(
        jac, torch.autograd.functional.jacobian(high_out, h), rtol=1e-10, atol=1e-10
    )
    assert torch.autograd.gradcheck(high_out, (h,))


def test_a_channels_last_layer_on_the_meta_device_runs_with_autograd_on():
    # it stopped in the autocast check: "unknown device type for autocast"
    layer = OctConv3d(8, 8, (1, 3, 3), alpha_in=0.5, alpha_out=0.5, padding=(0, 1, 1)).to("meta")
    cl = torch.channels_last_3d
    x_h = torch.empty(2, 4, 4, 8, 8, device="meta").to(memory_format=cl).requires_grad_()
    x_l = torch.empty(2, 4, 4, 4, 4, device="meta").to(memory_format=cl).requires_grad_()
    y_h, y_l = layer((x_h, x_l))
    assert (y_h.shape, y_l.shape) == ((2, 4, 4, 8, 8), (2, 4, 4, 4, 4))
    assert y_h.requires_grad and y_h.device.type == "meta"
