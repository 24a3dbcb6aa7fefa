"""The argument and clip checks the model classes share, called directly: what they return and the
names they put in the one line they raise. The models' own refusals are tested in
``test_resnet3d.py`` and ``test_slowfast.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvideo.models.checks import (
    ArgumentError,
    check_clip_tensor,
    check_dropout,
    check_kernel,
    check_octave,
    check_odd,
    check_switches,
    check_temporal_kernels,
    check_whole,
)


@pytest.mark.parametrize("p", [0, 0.5, np.float64(0.25)])
def test_a_dropout_rate_comes_back_as_a_python_float(p):
    rate = check_dropout(p)
    assert type(rate) is float and rate == float(p)


def test_the_first_switch_that_is_not_true_or_false_is_named():
    check_switches(a=True, b=False)
    with pytest.raises(ValueError) as caught:
        check_switches(a=True, b="no", c=1)
    assert str(caught.value) == "b must be True or False, got 'no'"


def test_numbers_and_switches_from_numpy_come_back_as_pythons():
    """One rule for every model argument: ``np.int64`` for ``width`` was taken and for
    ``num_classes`` refused, ``np.True_`` for a switch refused."""
    assert check_switches(a=np.True_, b=np.bool_(False), c=True) == (True, False, True)
    assert [type(v) for v in check_switches(a=np.True_, b=False)] == [bool, bool]
    whole = check_whole("n", np.int64(5))
    assert type(whole) is int and whole == 5
    for value in (5.0, True, "5", np.float64(5), 0):
        with pytest.raises(ValueError) as caught:
            check_whole("n", value)
        assert str(caught.value) == f"n must be a whole number of at least 1, got {value!r}"
    with pytest.raises(ValueError, match=r"^a must be True or False, got np.int64\(1\)$"):
        check_switches(a=np.int64(1))


def test_a_clip_check_names_the_network_and_what_it_takes():
    clip = torch.zeros(1, 3, 2, 4, 4)
    check_clip_tensor(clip, "Net", channels=3, dtype=torch.float32, what="slow clips")
    with pytest.raises(ValueError) as caught:
        check_clip_tensor(clip, "Net", channels=3, dtype=torch.float64, what="slow clips")
    assert str(caught.value) == (
        "Net takes float slow clips of the model's dtype (float64), got float32: convert the "
        "clip (clip.to(torch.float64)) or the model (model.to(torch.float32))"
    )
    with pytest.raises(ValueError) as caught:
        check_clip_tensor(clip, "Net", channels=8, dtype=torch.float32)
    assert (
        str(caught.value) == "Net takes (B, 8, T, H, W) clips, channels second; got (1, 3, 2, 4, 4)"
    )


def test_a_whole_number_out_of_its_bounds_names_them_and_why():
    assert check_whole("beta_inv", np.int64(64), high=64) == 64
    with pytest.raises(ValueError) as caught:
        check_whole("beta_inv", 65, high=64, why=" (a reason)")
    assert str(caught.value) == "beta_inv must be a whole number from 1 to 64 (a reason), got 65"
    with pytest.raises(ValueError, match=r"^k must be a whole number of at least 1, got 0$"):
        check_whole("k", 0)


@pytest.mark.parametrize("value", [2, 0, -3, 3.0, True, "5"])
def test_an_odd_kernel_is_an_odd_whole_number(value):
    with pytest.raises(ValueError) as caught:
        check_odd("k", value, "padded 'same'")
    assert str(caught.value) == f"k must be an odd whole number (padded 'same'), got {value!r}"
    assert check_odd("k", np.int64(5), "padded 'same'") == 5


def test_kernels_and_octaves_come_back_as_python_ints():
    assert check_kernel("stem_kernel", (np.int64(5), 7, 7), "(5, 7, 7)") == (5, 7, 7)
    assert check_kernel("stem_kernel", 3, "(5, 7, 7)") == (3, 3, 3)
    assert check_temporal_kernels([[3], [3, 1], [1], [np.int64(3)]]) == ((3,), (3, 1), (1,), (3,))
    assert check_octave([np.int64(2), 2, 2]) == (2, 2, 2)
    assert type(check_octave((1, 2, 2))[0]) is int


@pytest.mark.parametrize(
    ("check", "argument"),
    [
        (lambda: check_kernel("stem_kernel", (2, 7, 7), "(5, 7, 7)"), "stem_kernel"),
        (lambda: check_odd("fusion_kernel", 4, "padded 'same'"), "fusion_kernel"),
        (lambda: check_octave((1, 3, 3)), "octave"),
        (lambda: check_whole("width", 0), "width"),
        (lambda: check_switches(oct_stem="no"), "oct_stem"),
    ],
)
def test_a_refused_argument_is_named_as_a_field_a_caller_can_rename(check, argument):
    with pytest.raises(ArgumentError) as info:
        check()
    err = info.value
    assert err.argument == argument and str(err).startswith(argument)
    assert err.message("model.extra.x") == "model.extra.x" + str(err).removeprefix(argument)
