"""Cost counts: at 8x224x224 they reproduce the OctConv paper's Table 8 cost column
(multiply-adds) within 3%, whatever the layout, dtype or mode."""

from __future__ import annotations

import pytest
import torch

from octvideo.models import create_model
from octvideo.models.cost import clip_cost, cost_table, example_input, measure_cost, module_gflops

# (model, alpha, paper GFLOPs). Which stages carry the octave: one alpha = res2-res4 (res5 and
# stem vanilla, the official code); four alphas = res2-res5 (the only layout that fits 22.1 and
# 15.3 for a = 0.2 / 0.5). The paper's Non-local count leaves out the attention products.
PAPER = [
    ("c2d_r50", 0.0, 19.3),
    ("i3d_r50", 0.0, 28.1),
    ("c2d_r50", 0.1, 17.4),
    ("i3d_r50", 0.1, 25.6),
    ("i3d_r50", (0.2, 0.2, 0.2, 0.2), 22.1),
    ("i3d_r50", (0.5, 0.5, 0.5, 0.5), 15.3),
    ("i3d_nl_r50", 0.0, 33.3),
]


@pytest.mark.parametrize(
    ("name", "alpha", "paper"),
    [
        pytest.param(*row, marks=[] if i == 2 else [pytest.mark.heavy])
        for i, row in enumerate(PAPER)
    ],
)
def test_paper_cost(name: str, alpha: float, paper: float) -> None:
    cost = measure_cost(create_model(name, alpha=alpha), slow_frames=8, size=224)
    assert abs(cost.gflops - paper) / paper < 0.03, cost


@pytest.mark.parametrize(
    ("name", "extra"),
    [("i3d_r18", {"width": 8}), pytest.param("slowfast_r50", {}, marks=pytest.mark.heavy)],
)
def test_count_does_not_depend_on_layout_dtype_or_mode(name: str, extra: dict) -> None:
    """A model left channels-last, in bfloat16 or in training mode (as a run leaves it) counts
    what a fresh one does: channels-last training layers run as one autograd node, which fvcore
    cannot see into, and a float32 clip would not run through a bfloat16 model at all."""
    fresh = create_model(name, alpha=0.25, num_classes=6, **extra)
    clip = example_input(fresh, 2, 32)
    expected = clip_cost(fresh, clip)
    assert expected.gflops > 0
    for dtype in (torch.float32, torch.bfloat16):
        for fmt in (torch.contiguous_format, torch.channels_last_3d):
            model = create_model(name, alpha=0.25, num_classes=6, **extra).to(dtype=dtype)
            model.to(memory_format=fmt).train()
            cost = clip_cost(model, clip)
            assert cost.gflops == pytest.approx(expected.gflops, rel=1e-9), (dtype, fmt)
            assert model.training  # the mode is given back


def test_example_input_is_a_clip_or_the_slow_and_fast_pathways_made_by_fill() -> None:
    clip = example_input(torch.nn.Identity(), 8, 32)
    assert clip.shape == (1, 3, 8, 32, 32) and not clip.any()
    slowfast = torch.nn.Identity()
    slowfast.slowfast_alpha = 4  # the Fast pathway takes 4 frames per Slow frame
    slow, fast = example_input(slowfast, 2, 16, batch=3, fill=torch.ones)
    assert (slow.shape, fast.shape) == ((3, 3, 2, 16, 16), (3, 3, 8, 16, 16))
    assert bool(slow.eq(1).all()) and bool(fast.eq(1).all())
    with torch.device("meta"):  # shapes only, as build.check_clip runs a network
        assert example_input(slowfast, 2, 16)[1].is_meta


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 32), "slow_frames must be a whole number of at least 1, got 0"),
        ((4.0, 32), "slow_frames must be a whole number of at least 1, got 4.0"),
        ((True, 32), "slow_frames must be a whole number of at least 1, got True"),
        ((4, 1.5), "size must be a whole number of at least 1, got 1.5"),
        ((4, 0), "size must be a whole number of at least 1, got 0"),
    ],
)
def test_measure_cost_refuses_other_than_whole_sizes_of_one_or_more(args, message) -> None:
    model = create_model("c2d_r18", width=8, alpha=0.5, num_classes=6)
    with pytest.raises(ValueError) as caught:
        measure_cost(model, *args)
    assert str(caught.value) == message
    with pytest.raises(ValueError) as caught:
        module_gflops(model, ["res2"], *args)
    assert str(caught.value) == message


def test_a_clip_the_model_cannot_take_is_refused_in_the_models_own_line() -> None:
    """The models skip their clip checks under fvcore's trace; the count runs them first, so a
    one-frame clip through C2D (which pools time 2x) gives the line an eager forward gives, not
    torch's error from inside the trace."""
    model = create_model("c2d_r18", width=8, alpha=0.5, num_classes=6).train()
    clip = torch.zeros(1, 3, 1, 32, 32)
    with pytest.raises(ValueError) as eager:
        model(clip)
    for count in (lambda: measure_cost(model, 1, 32), lambda: clip_cost(model, clip)):
        with pytest.raises(ValueError) as caught:
            count()
        assert str(caught.value) == str(eager.value)
        assert str(caught.value).startswith("ResNet3D-18 takes (B, C, T, H, W) clips of 2 or more")
    assert model.training  # the mode is given back


@pytest.mark.parametrize(
    ("model", "clip", "message"),
    [
        ("c2d_r18", "clip", "measure_cost takes a network (nn.Module), got str"),
        (None, "clip", "the clip to count must be a (B, C, T, H, W) tensor"),
        (None, [], "the clip to count must be a (B, C, T, H, W) tensor"),
        (None, torch.zeros(1, 4, 2, 32, 32), "ResNet3D-18 takes (B, 3, T, H, W) clips"),
    ],
)
def test_clip_cost_refuses_a_model_or_clip_of_another_kind_in_one_line(model, clip, message):
    net = create_model("c2d_r18", width=8, num_classes=6)
    with pytest.raises((TypeError, ValueError)) as caught:
        if model is not None:
            measure_cost(model, 2, 32)
        else:
            clip_cost(net, clip)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_module_gflops_and_cost_table_refuse_one_name_for_a_list() -> None:
    with pytest.raises(TypeError, match="module_gflops takes a list of submodule names"):
        module_gflops(create_model("c2d_r18", width=8, num_classes=6), "res2", 2, 32)
    with pytest.raises(TypeError, match="cost_table takes a list of model names"):
        cost_table("c2d_r18", frames=2, size=32)
    with pytest.raises(ValueError, match="frames must be a whole number of at least 1, got 2.0"):
        cost_table(["c2d_r18"], frames=2.0, size=32)
