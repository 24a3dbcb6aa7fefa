"""The building blocks' pooling: ``GlobalAvgPool`` with a window is PyTorchVideo's head pool
(fixed kernel at stride 1, projected, averaged over its positions), in float64; and the classifier
methods every model shares (``ClassifierHeadMixin``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from octvideo.models.layers import (
    BasicBlock,
    ClassifierHead,
    ClassifierHeadMixin,
    GlobalAvgPool,
    Shortcut,
    make_shortcut,
)
from octvideo.ops import OctPair, as_pair


def _pytorchvideo_head(in_features: int, num_classes: int, kernel: tuple[int, int, int]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models.head import create_res_basic_head

    return create_res_basic_head(
        in_features=in_features,
        out_features=num_classes,
        pool=nn.AvgPool3d,
        pool_kernel_size=kernel,
        dropout_rate=0.5,
    )


def test_window_pool_then_one_projection_is_pytorchvideos_head() -> None:
    torch.manual_seed(0)
    head = _pytorchvideo_head(6, 5, (2, 3, 3)).double().eval()
    x = torch.randn(2, 6, 3, 5, 4, dtype=torch.float64)  # 2 x 3 x 2 window positions
    pooled = GlobalAvgPool((2, 3, 3))(x)  # (2, 6)
    got = F.linear(pooled, head.proj.weight, head.proj.bias)
    torch.testing.assert_close(got, head(x), rtol=1e-12, atol=1e-12)
    global_logits = F.linear(x.mean(dim=(2, 3, 4)), head.proj.weight, head.proj.bias)
    assert not torch.allclose(global_logits, head(x), rtol=1e-6, atol=1e-6)


def test_without_a_window_or_on_a_map_no_larger_it_is_the_global_mean() -> None:
    x = torch.randn(2, 4, 3, 7, 7)
    assert torch.equal(GlobalAvgPool()(x), x.mean(dim=(2, 3, 4)))
    assert torch.equal(GlobalAvgPool((3, 7, 7))(x), x.mean(dim=(2, 3, 4)))
    assert torch.equal(GlobalAvgPool((8, 9, 9))(x), x.mean(dim=(2, 3, 4)))


def test_each_dimension_of_the_window_is_cut_to_the_map() -> None:
    x = torch.randn(2, 4, 2, 5, 6, dtype=torch.float64)
    want = F.avg_pool3d(x, (2, 3, 3), stride=1).mean(dim=(2, 3, 4))
    torch.testing.assert_close(GlobalAvgPool((8, 3, 3))(x), want, rtol=0, atol=0)


def test_low_group_window_is_the_kernel_over_the_octave_rounded_up() -> None:
    high = torch.randn(1, 4, 2, 8, 8, dtype=torch.float64)
    low = torch.randn(1, 2, 2, 4, 4, dtype=torch.float64)
    pool = GlobalAvgPool((2, 7, 7), octave=(1, 2, 2))
    assert pool.low_window == (2, 4, 4)
    got = pool(OctPair(high, low))
    want_high = F.avg_pool3d(high, (2, 7, 7), stride=1).mean(dim=(2, 3, 4))
    torch.testing.assert_close(got, torch.cat([want_high, low.mean(dim=(2, 3, 4))], dim=1))


@pytest.mark.parametrize(
    "window", [(7, 7), (0, 7, 7), (8.0, 7, 7), (True, 7, 7), "877", 7, (8, -1, 7)]
)
def test_a_window_of_other_than_three_whole_numbers_is_refused(window) -> None:
    with pytest.raises(ValueError) as caught:
        GlobalAvgPool(window)
    assert str(caught.value) == (
        f"head_pool must be three whole numbers of 1 or more (T, H, W), got {window!r}"
    )


@pytest.mark.parametrize(
    "window", [(np.int64(2), 7, 7), np.array([2, 7, 7]), [np.int32(2), np.uint8(7), 7]]
)
def test_a_window_of_numpy_whole_numbers_is_python_ints(window) -> None:
    # the rule of every model number (checks.check_whole): np.int64 entries were refused
    pool = GlobalAvgPool(window)
    assert pool.window == (2, 7, 7) and {type(k) for k in pool.window} == {int}
    assert pool.low_window == (2, 4, 4) and pool.extra_repr() == "window=(2, 7, 7)"


class _HeadOnly(ClassifierHeadMixin, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num_features = 6
        self.head = ClassifierHead(6, 3, dropout=0.2)


def test_a_head_takes_numpy_whole_numbers_and_refuses_other_numbers() -> None:
    # the rule of every model number (checks.check_whole): np.int64 num_classes was refused
    head = ClassifierHead(np.int64(6), np.int64(3))
    assert (head.fc.in_features, head.fc.out_features) == (6, 3)
    assert type(head.fc.in_features) is int and type(head.fc.out_features) is int
    model = _HeadOnly()
    model.reset_classifier(np.int64(5))
    assert model.get_classifier().out_features == 5
    for args, message in [
        ((6, 0), "num_classes must be a whole number of at least 1, got 0"),
        ((6, True), "num_classes must be a whole number of at least 1, got True"),
        ((6, 3.0), "num_classes must be a whole number of at least 1, got 3.0"),
        ((0, 3), "in_features must be a whole number of at least 1, got 0"),
        ((6.0, 3), "in_features must be a whole number of at least 1, got 6.0"),
    ]:
        with pytest.raises(ValueError) as caught:
            ClassifierHead(*args)
        assert str(caught.value) == message


def test_reset_classifier_is_a_new_head_on_the_old_dtype_and_dropout() -> None:
    model = _HeadOnly().double().eval()
    old = model.get_classifier()
    model.reset_classifier(5)
    fc = model.get_classifier()
    assert fc is model.head.fc and fc is not old
    assert (fc.in_features, fc.out_features, fc.weight.dtype) == (6, 5, torch.float64)
    assert model.head.drop.p == 0.2 and list(model.state_dict()) == [
        "head.fc.weight",
        "head.fc.bias",
    ]
    model.reset_classifier(4, dropout=0.0)
    assert model.head.drop.p == 0.0
    x = torch.randn(2, 6, dtype=torch.float64)
    torch.testing.assert_close(model.forward_head(x), x @ model.head.fc.weight.T)  # zero bias


@pytest.mark.parametrize(
    ("stride", "size"), [(2, (2, 4, 4)), (np.int64(2), (2, 4, 4)), ((1, 2, 2), (4, 4, 4))]
)
def test_a_block_takes_its_stride_as_one_whole_number_or_three(stride, size) -> None:
    """A block of one width (no projection) read the stride as three numbers to choose its
    shortcut, so one number, as its convolutions take it, stopped in a TypeError."""
    block = BasicBlock(8, 8, 8, stride=stride)
    assert isinstance(block.downsample, Shortcut)
    assert block(as_pair(torch.randn(1, 8, 4, 8, 8))).high.shape == (1, 8, *size)
    assert make_shortcut(8, 8, 1, 0.0, 0.0, octave=(1, 2, 2), norm_layer=nn.BatchNorm3d) is None
    with pytest.raises(ValueError, match=r"^stride must be a whole number of 1 or more"):
        BasicBlock(8, 8, 8, stride=2.0)


@pytest.mark.parametrize("octave", [(1, 2.0, 2), (1, 2.5, 2), 3])
def test_a_head_pool_refuses_an_octave_other_than_whole_factors_of_1_or_2(octave) -> None:
    with pytest.raises(ValueError, match=r"^octave must be three factors of 1 or 2"):
        GlobalAvgPool((2, 7, 7), octave=octave)
    with pytest.raises(ValueError, match=r"^octave must be three factors of 1 or 2"):
        GlobalAvgPool(octave=octave)


def test_a_head_pool_takes_a_numpy_octave() -> None:
    pool = GlobalAvgPool((3, 7, 7), octave=np.int64(2))
    assert pool.low_window == (2, 4, 4) and {type(k) for k in pool.low_window} == {int}
