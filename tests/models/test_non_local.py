"""The Non-local block's arguments: sizes as Python ints, refused in one line when built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octvideo.models.non_local import NonLocal3d
from octvideo.ops import OctPair

_POOL = "pool_size must be a whole number of 1 or more, or three of them (T, H, W); got"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool_size": (1, 2.0, 2)}, f"{_POOL} (1, 2.0, 2)"),
        ({"pool_size": (1, 0, 2)}, f"{_POOL} (1, 0, 2)"),
        ({"pool_size": (1, True, 2)}, f"{_POOL} (1, True, 2)"),
        ({"pool_size": (1, 2)}, f"{_POOL} (1, 2)"),
        ({"inner_chans": 0}, "inner_chans must be a whole number of at least 1, got 0"),
        ({"inner_chans": 2.0}, "inner_chans must be a whole number of at least 1, got 2.0"),
        ({"octave": (1, 2.0, 2)}, "octave must be three factors of 1 or 2"),
    ],
)
def test_sizes_other_than_whole_numbers_are_refused_when_built(kwargs, message):
    """A pool size was stored as given and refused, or divided by zero, at the first forward;
    an inner width of 0 became channels // 2."""
    with pytest.raises(ValueError) as caught:
        NonLocal3d(8, alpha=0.5, **kwargs)
    assert str(caught.value).startswith(message)


def test_numpy_sizes_are_python_ints_and_run():
    block = NonLocal3d(
        np.int64(8), alpha=0.5, inner_chans=np.int64(2), pool_size=(1, np.int64(2), 2)
    )
    assert block.pool_size == (1, 2, 2) and type(block.inner_chans) is int
    assert {type(k) for k in block.pool_size} == {int}
    x = OctPair(torch.randn(1, 4, 2, 6, 6), torch.randn(1, 4, 2, 3, 3))
    y = block(x)
    assert (y.high.shape, y.low.shape) == (x.high.shape, x.low.shape)
