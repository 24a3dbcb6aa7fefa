"""ResNet3D (C2D, I3D, Slow, Non-local): the hardware-aligned channel split option, alpha per
stage, ``head_pool``, ``zero_init_final_bn`` (every residual block starts as its shortcut, in both
frequency groups, for bottleneck and basic blocks), a whole model in reduced precision on a
CPU (autocast inference, bfloat16 training), and the clips it takes (the fewest frames, named in
one line; nothing of the check in a trace)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from octvideo.models import create_model
from octvideo.models.layers import BasicBlock, Bottleneck
from octvideo.ops import OctConv3d, OctNorm, OctPair
from tests.ops.tensor_helpers import CL, relative_error


def _splits(model: torch.nn.Module) -> dict[str, tuple[int, int, int, int]]:
    """(in_high, in_low, out_high, out_low) of every OctConv3d, by name."""
    return {
        name: (m.in_high, m.in_low, m.out_high, m.out_low)
        for name, m in model.named_modules()
        if isinstance(m, OctConv3d)
    }


def test_i3d_r50_alpha_0_1_at_multiple_16_has_the_rounded_split():
    splits = _splits(create_model("i3d_r50", alpha=0.1, channel_multiple=16))
    assert splits["stem.conv"] == (3, 0, 64, 0)  # vanilla stem
    assert splits["res2.0.conv_a"] == (64, 0, 48, 16)  # 6.4 of 64 -> one multiple, not none
    assert splits["res2.0.conv_c"] == (48, 16, 224, 32)  # 25.6 of 256 -> 32
    assert splits["res2.0.downsample.conv"] == (64, 0, 224, 32)
    assert splits["res3.0.conv_a"] == (224, 32, 112, 16)  # 12.8 of 128 -> 16
    assert splits["res3.0.conv_c"] == (112, 16, 464, 48)  # 51.2 of 512 -> 48
    assert splits["res4.0.conv_a"] == (464, 48, 224, 32)
    assert splits["res4.0.conv_c"] == (224, 32, 928, 96)  # 102.4 of 1024 -> 96
    assert splits["res5.0.conv_a"] == (928, 96, 512, 0)  # res5 stays vanilla
    for name, (in_h, in_l, _, out_l) in splits.items():
        assert in_l % 16 == 0 and out_l % 16 == 0, name
        if in_l:
            assert in_h % 16 == 0, name


def test_the_paper_split_stays_the_default():
    default = _splits(create_model("i3d_r50", alpha=0.1))
    assert default == _splits(create_model("i3d_r50", alpha=0.1, channel_multiple=None))
    assert default["res2.0.conv_c"] == (58, 6, 231, 25)


@pytest.mark.parametrize("name", ["c2d_r50", "i3d_r50", "slow_r50", "i3d_nl_r50", "i3d_r18"])
def test_aligned_state_dict_has_the_same_keys_and_split_shapes(name):
    plain = create_model(name, alpha=0.1).state_dict()
    aligned_model = create_model(name, alpha=0.1, channel_multiple=16)
    aligned = aligned_model.state_dict()
    assert aligned.keys() == plain.keys()
    # the split only moves channels between the groups: every vanilla weight keeps its shape
    for conv_name, m in aligned_model.named_modules():
        if isinstance(m, OctConv3d):
            assert m.vanilla_weight()[0].shape == (m.out_channels, m.in_channels, *m.kernel_size)
            hh = aligned[f"{conv_name}.conv_hh.weight"].shape
            assert (hh[0], hh[1] * m.groups) == (m.out_high, m.in_high), conv_name
            if m.conv_ll is not None:
                ll = aligned[f"{conv_name}.conv_ll.weight"].shape
                assert (ll[0], ll[1] * m.groups) == (m.out_low, m.in_low), conv_name
        if isinstance(m, OctNorm) and m.low is not None:
            assert aligned[f"{conv_name}.low.weight"].shape[0] % 16 == 0, conv_name
    assert sum(t.numel() for t in aligned.values()) == sum(t.numel() for t in plain.values())


def test_non_local_blocks_take_the_aligned_split():
    model = create_model("i3d_nl_r50", alpha=0.1, channel_multiple=16)
    nl = model.res3.nl1
    assert (nl.theta.in_low, nl.out.out_low, nl.bn.low.num_features) == (48, 48, 48)


def test_aligned_model_runs_forward_and_backward():
    torch.manual_seed(0)
    model = create_model("i3d_r18", alpha=0.25, channel_multiple=8, num_classes=3, width=16)
    clip = torch.randn(2, 3, 4, 32, 32)
    model(clip).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------------------- head_pool


def _slow(head_pool=None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("slow_r50", width=8, num_classes=5, head_pool=head_pool).double().eval()


def test_head_pool_averages_the_windows_logits_over_a_larger_map():
    model = _slow((4, 2, 2))
    clip = torch.randn(2, 3, 4, 96, 96, dtype=torch.float64)  # res5: 4 x 3 x 3, 2 x 2 positions
    with torch.no_grad():
        res5 = model.forward_stages(clip).high  # (2, 256, 4, 3, 3)
        windows = torch.nn.functional.avg_pool3d(res5, (4, 2, 2), stride=1)  # (2, 256, 1, 2, 2)
        per_position = model.head.fc(windows.permute(0, 2, 3, 4, 1))  # (2, 1, 2, 2, 5)
        want = per_position.mean(dim=(1, 2, 3))
        got = model(clip)
        global_logits = model.forward_head(res5.mean(dim=(2, 3, 4)))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got, global_logits, rtol=1e-6, atol=1e-8)


def test_head_pool_off_is_the_global_head():
    clip = torch.randn(1, 3, 4, 64, 64, dtype=torch.float64)  # res5: 4 x 2 x 2
    with torch.no_grad():
        default = _slow()(clip)
        res5 = _slow().forward_stages(clip).high
        assert torch.equal(default, _slow().forward_head(res5.mean(dim=(2, 3, 4))))
        # a window no smaller than the map is the global pool too, bit for bit
        assert torch.equal(_slow((4, 7, 7))(clip), default)


def test_head_pool_leaves_the_state_dict_keys():
    plain = create_model("c2d_r50", width=8).state_dict()
    windowed = create_model("c2d_r50", width=8, head_pool=[4, 7, 7]).state_dict()
    assert windowed.keys() == plain.keys()


@pytest.mark.parametrize("head_pool", [(7, 7), [4, 7.5, 7], ((8, 7, 7), (32, 7, 7))])
def test_bad_head_pool_is_refused_naming_it(head_pool):
    with pytest.raises(ValueError, match="head_pool must be three"):
        create_model("i3d_r50", width=8, head_pool=head_pool)


@pytest.mark.parametrize("channels_last", [False, True])
def test_model_inference_under_cpu_autocast(channels_last) -> None:
    """Eval-mode inference folds batch norm and, in float32, runs oneDNN on prepacked weights,
    which would bypass autocast; under autocast it runs the autocast convolutions instead."""
    torch.manual_seed(0)
    model = create_model("i3d_r18", alpha=0.5, num_classes=6, width=8).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    if channels_last:
        model, clip = model.to(memory_format=CL), clip.contiguous(memory_format=CL)
    with torch.inference_mode():
        reference = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(clip)
    assert out.dtype == torch.bfloat16 and relative_error(out, reference) < 5e-2


def test_model_trains_in_bfloat16() -> None:
    """A whole bfloat16 model (``bf16-true``), channels-last and not: the pooling of the plain
    layout and of the temporal octave has no bfloat16 CPU kernel of its own. Gradients are
    checked for presence and dtype, not value: this 4-frame clip reaches 2-frame maps, where
    PyTorch 2.14's bfloat16 CPU weight gradients are wrong (``check_training_precision``)."""
    torch.manual_seed(0)
    for octave in ((1, 2, 2), (2, 2, 2)):
        for fmt in (torch.contiguous_format, CL):
            model = create_model("i3d_r18", alpha=0.5, octave=octave, num_classes=6, width=8)
            model = model.to(dtype=torch.bfloat16, memory_format=fmt)
            clip = torch.randn(2, 3, 4, 32, 32).to(torch.bfloat16).contiguous(memory_format=fmt)
            model(clip).float().logsumexp(1).sum().backward()
            assert all(
                p.grad is not None and p.grad.dtype == torch.bfloat16 for p in model.parameters()
            )


def test_alpha_per_stage_and_res5_default() -> None:
    model = create_model("i3d_r50", alpha=0.1)
    assert model.alphas == (0.1, 0.1, 0.1, 0.0)
    assert model.res5[0].conv_a.alpha_in == 0.1 and model.res5[0].conv_a.alpha_out == 0.0
    assert model.res5[1].conv_a.conv_ll is None
    with pytest.raises(ValueError, match="one per stage"):
        create_model("i3d_r50", alpha=(0.1, 0.2))


@pytest.mark.parametrize("name", ["i3d_r18", "i3d_r50", "slowfast_r50"])
def test_each_block_starts_as_its_shortcut(name):
    torch.manual_seed(0)
    model = create_model(name, alpha=0.25, num_classes=5, zero_init_final_bn=True).eval()
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck | BasicBlock)]
    assert blocks
    block = blocks[1]  # an identity shortcut
    last = block.bn_c if isinstance(block, Bottleneck) else block.bn_b
    assert block.downsample is None and last.low is not None
    c, c_low = last.high.num_features, last.low.num_features
    x = OctPair(torch.randn(1, c, 2, 8, 8), torch.randn(1, c_low, 2, 4, 4))
    with torch.no_grad():
        y = block(x)
    torch.testing.assert_close(y.high, x.high.relu())
    torch.testing.assert_close(y.low, x.low.relu())
    default = create_model(name, alpha=0.25, num_classes=5)  # off by default: unit scales
    scales = [m.weight for m in default.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert all(bool((w == 1).all()) for w in scales)


def test_a_variants_keywords_override_its_recipe():
    """Each family's settings (stem kernel, temporal kernels, temporal pool) are defaults that
    the caller's keywords replace."""
    assert create_model("c2d_r18", width=8).stem.conv.kernel_size == (1, 7, 7)
    assert create_model("c2d_r18", width=8, stem_kernel=(3, 7, 7)).stem.conv.kernel_size == (
        3,
        7,
        7,
    )
    assert create_model("i3d_r18", width=8).res2[0].conv_a.kernel_size == (3, 3, 3)
    c2d_kernels = ((1,), (1,), (1,), (1,))
    i3d_as_c2d = create_model("i3d_r18", width=8, temporal_kernels=c2d_kernels)
    assert i3d_as_c2d.res2[0].conv_a.kernel_size == (1, 3, 3)
    assert create_model("slow_r50", width=8).pool2 is None
    assert create_model("slow_r50", width=8, temporal_pool=True).pool2 is not None


def _meta_run(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    with torch.device("meta"), torch.no_grad():
        model(torch.empty(shape))


@pytest.mark.parametrize("name", ["c2d_r18", "i3d_r18", "i3d_nl_r50", "slow_r50"])
@pytest.mark.parametrize(("alpha", "octave"), [(0.0, (1, 2, 2)), (0.25, (2, 2, 2))])
def test_a_clip_shorter_than_the_network_takes_is_one_line_naming_the_fewest_frames(
    name, alpha, octave
):
    """C2D and I3D pool time 2x after res2, Slow keeps it: ``min_frames`` frames run (any frame
    size of a pixel or more), and one fewer, or an empty frame, is refused before the stem."""
    with torch.device("meta"):
        model = create_model(name, num_classes=3, alpha=alpha, octave=octave).eval()
    assert model.min_frames == (1 if name.startswith("slow") else 2)
    for size in (1, 33):
        _meta_run(model, (1, 3, model.min_frames, size, size + 1))
    depth = name.rsplit("_r", 1)[1]
    pool = " (it pools time 2x after res2, as C2D and I3D do)" if model.min_frames == 2 else ""
    for shape in [(1, 3, model.min_frames - 1, 64, 64), (1, 3, 4, 0, 64)]:
        with pytest.raises(ValueError) as caught:
            _meta_run(model, shape)
        assert str(caught.value) == (
            f"ResNet3D-{depth} takes (B, C, T, H, W) clips of {model.min_frames} or more "
            f"frames{pool} and 1x1 pixels or more; got {shape}"
        )


def test_the_clip_check_leaves_a_trace_without_it():
    """Under ``torch.jit.trace`` the shape is tensors: the check steps aside rather than record
    a comparison, and the trace runs other clips as the model does."""
    model = create_model("c2d_r18", num_classes=3, alpha=0.25, width=8).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # the octave layers' size arithmetic warns (a trace fixes H, W); none of this module's may
        warnings.filterwarnings(
            "error", category=torch.jit.TracerWarning, module=r"octvideo\.models\.resnet3d"
        )
        traced = torch.jit.trace(model, torch.randn(1, 3, 2, 32, 32))
        clip = torch.randn(2, 3, 2, 32, 32)
        torch.testing.assert_close(traced(clip), model(clip))


_NET = "ResNet3D-18"


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (
            torch.zeros(1, 4, 32, 32, 3),  # decoder frames, channels last
            f"{_NET} takes (B, 3, T, H, W) clips, channels second; got (1, 4, 32, 32, 3): "
            "channels-last frames (B, T, H, W, C)? clip.permute(0, 4, 1, 2, 3)",
        ),
        (
            torch.zeros(1, 4, 3, 32, 32),
            f"{_NET} takes (B, 3, T, H, W) clips, channels second; got (1, 4, 3, 32, 32): "
            "(B, T, C, H, W) frames? clip.transpose(1, 2)",
        ),
        (
            torch.zeros(4, 32, 32, 3),
            f"{_NET} takes (B, 3, T, H, W) clips, channels second; got (4, 32, 32, 3): one clip "
            "of frames (T, H, W, C)? clip.permute(3, 0, 1, 2).unsqueeze(0)",
        ),
        (
            torch.zeros(3, 4, 32, 32),
            f"{_NET} takes (B, 3, T, H, W) clips, channels second; got (3, 4, 32, 32): one "
            "(C, T, H, W) clip? add the batch axis, clip.unsqueeze(0)",
        ),
        (
            torch.zeros(1, 1, 4, 32, 32),
            f"{_NET} takes (B, 3, T, H, W) clips, channels second; got (1, 1, 4, 32, 32)",
        ),
        (
            torch.zeros(1, 3, 4, 32, 32, dtype=torch.uint8),
            f"{_NET} takes float clips of the model's dtype (float32), got uint8: normalise the "
            "frames to float first (e.g. Predictor.preprocess)",
        ),
        (
            torch.zeros(1, 3, 4, 32, 32, dtype=torch.float64),
            f"{_NET} takes float clips of the model's dtype (float32), got float64: convert the "
            "clip (clip.to(torch.float32)) or the model (model.to(torch.float64))",
        ),
        (
            torch.zeros(1, 3, 4, 32, 32, dtype=torch.bfloat16),
            f"{_NET} takes float clips of the model's dtype (float32), got bfloat16: convert the "
            "clip (clip.to(torch.float32)) or the model (model.to(torch.bfloat16))",
        ),
    ],
)
def test_a_clip_of_another_layout_or_dtype_is_one_line_naming_the_fix(clip, message):
    model = create_model("i3d_r18", num_classes=3, alpha=0.5, width=8).eval()
    with pytest.raises(ValueError) as caught, torch.no_grad():
        model(clip)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("clip", "got"),
    [
        (torch.zeros(1, 3, 4, 32, 32).numpy(), "ndarray (torch.from_numpy makes one)"),
        ([torch.zeros(1, 3, 4, 32, 32)], "list"),
    ],
)
def test_a_clip_that_is_no_tensor_is_a_type_error_naming_the_tensor(clip, got):
    model = create_model("c2d_r18", num_classes=3, width=8).eval()
    with pytest.raises(TypeError) as caught:
        model(clip)
    assert str(caught.value) == f"{_NET} takes clips as torch.Tensor (B, 3, T, H, W), got {got}"


def test_the_clip_check_follows_the_model_dtype_and_autocast():
    """A float64 model takes float64 clips; under autocast a float32 model takes the clips
    autocast casts (float32, bfloat16, float16), and float64 ones, which it does not, are
    refused."""
    torch.manual_seed(0)
    model = create_model("c2d_r18", num_classes=3, alpha=0.5, width=8).eval()
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        assert model.double()(clip.double()).dtype == torch.float64
        model.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                assert model(clip.to(dtype)).dtype == torch.bfloat16
            with pytest.raises(ValueError, match=r"model's dtype \(float32\), got float64"):
                model(clip.double())


_SWITCHES = ("temporal_pool", "oct_stem", "stride_in_1x1", "zero_init_final_bn")


@pytest.mark.parametrize("switch", _SWITCHES)
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_switch_that_is_not_true_or_false_is_refused(switch, value):
    with pytest.raises(ValueError) as caught:
        create_model("c2d_r18", width=8, alpha=0.5, **{switch: value})
    assert str(caught.value) == f"{switch} must be True or False, got {value!r}"


def test_numpy_numbers_and_switches_are_taken_as_their_python_values():
    """One rule for every argument (``octvideo.models.checks``): ``np.int64`` for ``width`` was
    taken, for ``num_classes`` refused, and ``np.True_`` for a switch refused."""
    model = create_model(
        "c2d_r18", width=np.int64(8), num_classes=np.int64(5), zero_init_final_bn=np.True_
    )
    assert model.head.fc.out_features == 5 and model.stem.conv.out_channels == 8
    lasts = [b.bn_b for b in model.modules() if isinstance(b, BasicBlock)]
    assert lasts and all(bool((n.high.weight == 0).all()) for n in lasts)
    for name, value in (("width", 8.0), ("num_classes", True), ("in_chans", "3")):
        with pytest.raises(ValueError) as caught:
            create_model("c2d_r18", **{"width": 8, name: value})
        assert str(caught.value) == f"{name} must be a whole number of at least 1, got {value!r}"


@pytest.mark.parametrize(
    ("factory", "value", "message"),
    [
        (
            "norm_layer",
            torch.nn.BatchNorm3d(8),
            "norm_layer must be a class that builds a layer, got a built BatchNorm3d: pass the "
            "class (norm_layer=BatchNorm3d), not an instance",
        ),
        (
            "act_layer",
            torch.nn.ReLU(),
            "act_layer must be a class that builds a layer, got a built ReLU: pass the class "
            "(act_layer=ReLU), not an instance",
        ),
        (
            "norm_layer",
            "batchnorm",
            "norm_layer must be a class that builds a layer (e.g. nn.BatchNorm3d, nn.ReLU), got "
            "'batchnorm'",
        ),
    ],
)
def test_a_layer_factory_that_builds_nothing_is_refused_naming_it(factory, value, message):
    with pytest.raises(TypeError) as caught:
        create_model("c2d_r18", width=8, **{factory: value})
    assert str(caught.value) == message


@pytest.mark.parametrize("dropout", ["0.5", 1.0, -0.1, True, None])
def test_a_dropout_outside_0_to_1_is_refused(dropout):
    with pytest.raises(ValueError) as caught:
        create_model("c2d_r18", width=8, dropout=dropout)
    assert str(caught.value) == f"dropout must be a number in [0, 1), got {dropout!r}"
    if dropout is not None:  # reset_classifier's None keeps the old rate
        model = create_model("c2d_r18", width=8, dropout=0)
        with pytest.raises(ValueError, match=r"^dropout must be a number in \[0, 1\)"):
            model.reset_classifier(5, dropout=dropout)


@pytest.mark.parametrize("position", [1.0, 1.5, True, -1, 2, "1", torch.tensor(1)])
def test_a_nonlocal_position_that_is_not_a_block_number_is_refused(position):
    """1.0 and True were taken as block 1, and 1.5 as no block, without a word."""
    with pytest.raises(ValueError) as caught:
        create_model("c2d_r18", width=8, nonlocal_blocks=((), (position,), (), ()))
    assert str(caught.value) == (
        "nonlocal_blocks takes, per stage, the blocks that a Non-local block follows: whole "
        f"numbers from 0 to 1 in a stage of 2 blocks; got ({position!r},)"
    )


def test_nonlocal_positions_may_be_numpy_whole_numbers():
    model = create_model("c2d_r18", width=8, nonlocal_blocks=((), (np.int64(1),), (), ()))
    names = dict(model.named_modules())
    assert "res3.nl1" in names and "res3.nl0" not in names


@pytest.mark.parametrize("stem_kernel", [(4, 6, 6), (4, 7, 7), (1, 6, 7), 4, (5, 7), "577"])
def test_a_stem_kernel_other_than_three_odd_numbers_is_refused_naming_it(stem_kernel):
    """An even stem kernel was padded (k - 1) // 2 and turned 8 frames into 7 (or shifted the
    frame half a pixel), with no word; with ``oct_stem`` OctConv3d refused it in its own words."""
    for oct_stem in (False, True):
        with pytest.raises(ValueError) as caught:
            create_model("i3d_r18", width=8, alpha=0.25, oct_stem=oct_stem, stem_kernel=stem_kernel)
        assert str(caught.value) == (
            "stem_kernel must be three odd whole numbers (T, H, W), e.g. (5, 7, 7) for I3D: an "
            f"even kernel has no 'same' padding and would shorten the clip; got {stem_kernel!r}"
        )
    model = create_model("i3d_r18", width=8, stem_kernel=(3, 5, 5))  # odd: kept in time
    assert model.stem(torch.randn(1, 3, 8, 32, 32)).high.shape == (1, 8, 8, 8, 8)


@pytest.mark.parametrize(
    "kernels", [((3,), (2,), (3,), (1,)), ((3,), (3,), (3,)), ((3,), (), (3,), (1,)), "3313"]
)
def test_temporal_kernels_other_than_odd_numbers_per_stage_are_refused_naming_them(kernels):
    """An even entry was refused by OctConv3d in its words, or at alpha 0 shortened the clip."""
    for alpha in (0.0, 0.25):
        with pytest.raises(ValueError) as caught:
            create_model("i3d_r18", width=8, alpha=alpha, temporal_kernels=kernels)
        assert str(caught.value) == (
            "temporal_kernels must be one list per stage (res2..res5) of odd whole numbers, "
            "conv_a's temporal kernels cycled over the stage's blocks, e.g. ((3,), (3, 1), "
            f"(3, 1), (1, 3)); got {kernels!r}"
        )
