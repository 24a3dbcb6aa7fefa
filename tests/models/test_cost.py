"""Cost counts: at 8x224x224 they reproduce the OctConv paper's Table 8 cost column
(multiply-adds) within 3%, whatever the layout, dtype or mode."""

from __future__ import annotations

import pytest
import torch

from octvideo.models import create_model
from octvideo.models.cost import clip_cost, example_input, measure_cost

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
