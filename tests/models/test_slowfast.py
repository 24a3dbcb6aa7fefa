"""SlowFast: the hardware-aligned channel split option through both pathways and the laterals,
``head_pool``, and the slow and fast clips it is called with (their frame counts, the fewest
frames its laterals take, each refusal one line)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvideo.models import create_model
from octvideo.models.slowfast import FuseFastToSlow
from octvideo.ops import OctConv3d, low_channels


def test_aligned_slowfast_splits_every_layer_and_the_concatenation():
    model = create_model("slowfast_r50", alpha=0.25, channel_multiple=16)
    for name, m in model.named_modules():  # the Fast pathway's 8-channel layers: paper's split
        if isinstance(m, OctConv3d) and not name.startswith("fuse"):
            assert m.in_low == low_channels(m.in_channels, m.alpha_in, 16), name
            assert m.out_low == low_channels(m.out_channels, m.alpha_out, 16), name
    # the [slow, lateral] concatenation splits as the next stage's first conv expects
    for stage, fuse in (("res3", model.fuse_res2), ("res4", model.fuse_res3)):
        conv_a = getattr(model.slow, stage)[0].conv_a
        assert conv_a.in_low == low_channels(conv_a.in_channels, 0.25, 16)
        assert conv_a.in_low % 16 == 0 and fuse.conv.out_low % 16 == 0


def test_aligned_slowfast_runs():
    model = create_model("slowfast_r50", alpha=0.25, channel_multiple=16, num_classes=3).eval()
    with torch.no_grad():
        out = model([torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 8, 32, 32)])
    assert out.shape == (1, 3)


def test_head_pool_pools_each_pathway_with_its_own_window():
    torch.manual_seed(0)
    model = create_model("slowfast_r50", num_classes=5, head_pool=((2, 2, 2), (8, 2, 2))).eval()
    maps = {}
    for name in ("slow_pool", "fast_pool"):
        pool = getattr(model, name)
        pool.register_forward_hook(lambda m, args, out, name=name: maps.update({name: args[0]}))
    slow, fast = torch.randn(1, 3, 2, 96, 96), torch.randn(1, 3, 8, 96, 96)
    with torch.no_grad():
        got = model([slow, fast])
        s, f = maps["slow_pool"].high, maps["fast_pool"].high  # res5 maps: 3 x 3 cells
        assert s.shape[2:] == (2, 3, 3) and f.shape[2:] == (8, 3, 3)
        pooled = [
            torch.nn.functional.avg_pool3d(m, k, stride=1).mean(dim=(2, 3, 4))
            for m, k in ((s, (2, 2, 2)), (f, (8, 2, 2)))
        ]
        want = model.forward_head(torch.cat(pooled, dim=1))
        global_logits = model.forward_head(torch.cat([s.mean((2, 3, 4)), f.mean((2, 3, 4))], 1))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, global_logits, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    ("head_pool", "message"),
    [
        ((8, 7, 7), "one \\(T, H, W\\) kernel per pathway"),
        (((8, 7, 7),), "one \\(T, H, W\\) kernel per pathway"),
        (((8, 7, 7), (32, 7)), "head_pool\\[1\\] must be three"),
    ],
)
def test_bad_slowfast_head_pool_is_refused_naming_it(head_pool, message):
    with pytest.raises(ValueError, match=message):
        create_model("slowfast_r50", head_pool=head_pool)


@pytest.mark.parametrize(
    ("slow", "fast", "match"),
    [
        ((1, 3, 1, 32, 32), (1, 3, 7, 32, 32), r"need a slow clip of 2 frames.*fast\[:, :, ::4\]"),
        ((1, 3, 3, 32, 32), (1, 3, 8, 32, 32), r"need a slow clip of 2 frames"),
        ((1, 3, 2, 32, 32), (1, 3, 8, 32, 40), "same batch size and frame size"),
        ((2, 3, 2, 32, 32), (1, 3, 8, 32, 32), "same batch size and frame size"),
        ((3, 2, 32, 32), (1, 3, 8, 32, 32), r"takes \(B, 3, T, H, W\) slow clips"),
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


def _meta_run(model: torch.nn.Module, slow: tuple[int, ...], fast: tuple[int, ...]) -> None:
    with torch.device("meta"), torch.no_grad():
        model([torch.empty(slow), torch.empty(fast)])


@pytest.mark.parametrize(
    ("octave", "speed", "fast_alpha", "fewest"),
    [
        ((2, 2, 2), 4, None, 2),  # the lateral pools the Fast low group, ceil(4 / 2) frames, 4x
        ((2, 1, 1), 8, None, 2),
        ((2, 2, 2), 3, None, 2),
        ((2, 2, 2), 2, None, 1),  # one low frame: a pool of one frame
        ((2, 2, 2), 4, 0.0, 1),  # no Fast low group: the 4 fast frames fill the pool
        ((1, 2, 2), 4, None, 1),  # the spatial octave strides time natively
    ],
)
def test_the_fewest_slow_frames_the_laterals_take_are_named_in_one_line(
    octave, speed, fast_alpha, fewest
):
    with torch.device("meta"):
        model = create_model(
            "slowfast_r50",
            num_classes=3,
            alpha=0.25,
            octave=octave,
            slowfast_alpha=speed,
            fast_alpha=fast_alpha,
        ).eval()
    assert model.min_frames == fewest
    for frames in range(fewest, fewest + 3):
        _meta_run(model, (1, 3, frames, 9, 9), (1, 3, frames * speed, 9, 9))
    if fewest == 1:
        return
    slow, fast = (1, 3, 1, 9, 9), (1, 3, speed, 9, 9)
    with pytest.raises(ValueError) as caught:
        _meta_run(model, slow, fast)
    assert str(caught.value) == (
        f"SlowFast with an octave in time takes a slow clip of 2 or more frames and a fast one "
        f"{speed}x as long (its laterals pool the fast clip, and its low group of half the "
        f"frames, {speed}x in time); got slow {slow}, fast {fast}"
    )


@pytest.mark.parametrize("fast_frames", range(1, 12))
def test_a_fast_clip_of_any_length_runs_or_is_refused_in_one_line(fast_frames):
    """Fast clips that are no multiple of the speed too: the check refuses exactly the clips that
    a lateral's time pool would fail on (a window longer than the frames it has)."""
    with torch.device("meta"):
        model = create_model("slowfast_r50", num_classes=3, alpha=0.25, octave=(2, 2, 2)).eval()
    slow, fast = (1, 3, -(-fast_frames // 4), 9, 9), (1, 3, fast_frames, 9, 9)
    runs = fast_frames == 1 or fast_frames >= 7  # pools of 1 frame, or of whole windows of 4
    if runs:
        _meta_run(model, slow, fast)
    else:
        with pytest.raises(ValueError, match=r"^SlowFast with an octave in time takes a slow clip"):
            _meta_run(model, slow, fast)


@pytest.mark.parametrize("empty", [2, 3, 4])
def test_an_empty_clip_is_refused_in_one_line(empty):
    slow, fast = [1, 3, 2, 32, 32], [1, 3, 8, 32, 32]
    slow[empty] = fast[empty] = 0
    with pytest.raises(ValueError) as caught:
        _meta_run(create_model("slowfast_r50", num_classes=3), tuple(slow), tuple(fast))
    assert str(caught.value) == (
        f"SlowFast takes clips of 1 or more frames and pixels, got slow {tuple(slow)}, "
        f"fast {tuple(fast)}"
    )


def test_the_slow_pathway_is_slow_only_widened_by_the_laterals():
    """Slow pathway == slow_r50's stem and stages conv for conv (kernels, strides, widths), but
    for the lateral channels that each stage's first block also reads."""
    fast_chans = {"res2": 16, "res3": 64, "res4": 128, "res5": 256}  # 2 beta C of each lateral
    slow_only = dict(create_model("slow_r50").named_modules())
    for name, m in create_model("slowfast_r50").slow.named_modules():
        if isinstance(m, OctConv3d):
            ref = slow_only[name]
            assert (m.kernel_size, m.stride, m.out_channels) == (
                ref.kernel_size,
                ref.stride,
                ref.out_channels,
            ), name
            first = name.endswith(".0.conv_a") or name.endswith(".0.downsample.conv")
            extra = fast_chans[name[:4]] if first else 0
            assert m.in_channels == ref.in_channels + extra, name


_CLIP = (1, 3, 2, 32, 32), (1, 3, 8, 32, 32)


@pytest.mark.parametrize(
    ("clips", "error", "message"),
    [
        (
            torch.zeros(2, 3, 8, 32, 32),
            TypeError,
            "SlowFast takes a list [slow clip, fast clip] of (B, 3, T, H, W) tensors, got one "
            "tensor (2, 3, 8, 32, 32); octvideo.data.transforms.pack_pathways makes the pair "
            "from one clip",
        ),
        (
            {"slow": torch.zeros(_CLIP[0])},
            TypeError,
            "SlowFast takes a list [slow clip, fast clip] of (B, 3, T, H, W) tensors, got dict; "
            "octvideo.data.transforms.pack_pathways makes the pair from one clip",
        ),
        (
            [torch.zeros(_CLIP[1])],
            ValueError,
            "SlowFast takes a list [slow clip, fast clip], got a list of 1",
        ),
        (
            [torch.zeros(_CLIP[0]).numpy(), torch.zeros(_CLIP[1])],
            TypeError,
            "SlowFast takes slow clips as torch.Tensor (B, 3, T, H, W), got ndarray "
            "(torch.from_numpy makes one)",
        ),
        (
            [torch.zeros(_CLIP[0]), torch.zeros(1, 8, 32, 32, 3)],
            ValueError,
            "SlowFast takes (B, 3, T, H, W) fast clips, channels second; got (1, 8, 32, 32, 3): "
            "channels-last frames (B, T, H, W, C)? clip.permute(0, 4, 1, 2, 3)",
        ),
        (
            [torch.zeros(_CLIP[0], dtype=torch.uint8), torch.zeros(_CLIP[1], dtype=torch.uint8)],
            ValueError,
            "SlowFast takes float slow clips of the model's dtype (float32), got uint8: "
            "normalise the frames to float first (e.g. Predictor.preprocess)",
        ),
        (
            [torch.zeros(_CLIP[0]), torch.zeros(_CLIP[1], dtype=torch.float64)],
            ValueError,
            "SlowFast takes float fast clips of the model's dtype (float32), got float64: "
            "convert the clip (clip.to(torch.float32)) or the model (model.to(torch.float64))",
        ),
    ],
)
def test_clips_of_another_type_layout_or_dtype_are_one_line_naming_the_fix(clips, error, message):
    with torch.device("meta"):
        model = create_model("slowfast_r50", num_classes=3, alpha=0.25).eval()
    with pytest.raises(error) as caught, torch.no_grad():
        model(clips)
    assert str(caught.value) == message


@pytest.mark.parametrize("switch", ["stride_in_1x1", "zero_init_final_bn"])
def test_a_switch_that_is_not_true_or_false_is_refused(switch):
    with pytest.raises(ValueError) as caught:
        create_model("slowfast_r50", **{switch: "yes"})
    assert str(caught.value) == f"{switch} must be True or False, got 'yes'"


def test_numpy_numbers_and_switches_are_taken_as_their_python_values():
    with torch.device("meta"):
        model = create_model(
            "slowfast_r50",
            num_classes=np.int64(3),
            slowfast_alpha=np.int32(4),
            stride_in_1x1=np.True_,
        )
    assert model.head.fc.out_features == 3 and type(model.slowfast_alpha) is int
    with pytest.raises(ValueError) as caught:
        create_model("slowfast_r50", beta_inv=8.0)
    assert str(caught.value) == (
        "beta_inv must be a whole number from 1 to 64 (the Fast stem has 64 // beta_inv "
        "channels), got 8.0"
    )


def test_a_layer_instance_or_a_bad_dropout_is_refused_before_building():
    with pytest.raises(TypeError, match=r"^norm_layer must be a class .* got a built GroupNorm"):
        create_model("slowfast_r50", norm_layer=torch.nn.GroupNorm(2, 8))
    with pytest.raises(TypeError, match=r"^act_layer must be a class that builds a layer"):
        create_model("slowfast_r50", act_layer=3)
    with pytest.raises(ValueError, match=r"^dropout must be a number in \[0, 1\), got 1.5$"):
        create_model("slowfast_r50", dropout=1.5)


@pytest.mark.parametrize("name", ["fusion_ratio", "kernel_t", "speed"])
@pytest.mark.parametrize("value", [2.0, True, 0])
def test_a_lateral_refuses_other_than_whole_numbers_naming_the_argument(name, value):
    """A float fusion_ratio was refused as "channels", a float kernel_t as "kernel_size"."""
    with pytest.raises(ValueError) as caught:
        FuseFastToSlow(8, 16, **{name: value})
    what = "an odd whole number (the lateral convolutions pad it 'same' in time)"
    what = what if name == "kernel_t" else "a whole number of at least 1"
    assert str(caught.value) == f"{name} must be {what}, got {value!r}"


def test_a_lateral_takes_numpy_whole_numbers_as_python_ints():
    fuse = FuseFastToSlow(8, 16, fusion_ratio=np.int64(2), kernel_t=np.int64(5), speed=np.int32(4))
    assert type(fuse.out_chans) is int and fuse.out_chans == 16
    assert fuse.conv.kernel_size == (5, 1, 1) and fuse.conv.stride == (4, 1, 1)


def test_an_alpha_that_leaves_a_lateral_all_low_is_refused_naming_alpha():
    """0.992 is in [0, 1) but leaves fuse_res2 no high channel: it was refused as "cannot split
    a 64-channel lateral to give 64 low channels", naming no option; 0.99 builds."""
    with pytest.raises(ValueError) as caught:
        create_model("slowfast_r50", alpha=0.992)
    assert str(caught.value) == (
        "alpha=0.992 leaves SlowFast's 64-channel lateral into res3 (fuse_res2) no high channel "
        "(64 of the 320 channels there would be low, 253 of them the Slow pathway's 256); the "
        "largest alpha below 0.992 that splits them is 0.9906, and every alpha up to 0.9843 "
        "splits them"
    )
    with pytest.raises(ValueError, match=r"^alpha\[1\]=0.996 leaves SlowFast's 128-channel "):
        create_model("slowfast_r50", alpha=(0.5, 0.996, 0.5, 0.0))
    with torch.device("meta"):
        for alpha in (0.9906, 0.9843, 0.99, (0.5, 0.9953, 0.5, 0.0)):
            create_model("slowfast_r50", alpha=alpha)  # the bounds the messages give build


@pytest.mark.parametrize("alpha", [0.98, 0.985, 0.99, 0.992, 0.995, 0.997, 0.999])
def test_an_alpha_near_one_builds_or_is_refused_in_one_line_naming_alpha(alpha):
    try:
        with torch.device("meta"):
            create_model("slowfast_r50", alpha=alpha)
    except ValueError as caught:
        assert str(caught).startswith(f"alpha={alpha} leaves SlowFast's ")
        assert "\n" not in str(caught)


def test_beta_inv_above_64_is_refused_naming_it():
    """64 // beta_inv Fast stem channels: 65 gave a 0-channel stem and "cannot split a
    0-channel lateral" (at alpha 0 too)."""
    for alpha in (0.0, 0.25):
        with pytest.raises(ValueError) as caught:
            create_model("slowfast_r50", alpha=alpha, beta_inv=65)
        assert str(caught.value) == (
            "beta_inv must be a whole number from 1 to 64 (the Fast stem has 64 // beta_inv "
            "channels), got 65"
        )
    with torch.device("meta"):
        assert create_model("slowfast_r50", beta_inv=64).fast.stem.conv.out_channels == 1


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_an_even_fusion_kernel_is_refused_naming_it(alpha):
    """At alpha 0 a kernel of 4 was padded 1 and shifted the lateral half a frame; at 0.1
    OctConv3d refused it naming its own kernel and padding."""
    with pytest.raises(ValueError) as caught:
        create_model("slowfast_r50", alpha=alpha, fusion_kernel=4)
    assert str(caught.value) == (
        "fusion_kernel must be an odd whole number (the lateral convolutions pad it 'same' in "
        "time), got 4"
    )
    with pytest.raises(ValueError, match=r"^kernel_t must be an odd whole number \(the lateral"):
        FuseFastToSlow(8, 16, kernel_t=4)
