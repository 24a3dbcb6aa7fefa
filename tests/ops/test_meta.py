"""octvideo.ops.meta: one forward on the meta device, the network's errors told from its own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from octvideo.ops.meta import CannotRunOnMeta, has_lazy, meta_forward


class _Refuses(nn.Module):
    """Takes clips of 4 frames only, as a network's own check would."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 2, 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.shape[2] != 4:
            raise ValueError(f"takes 4 frames, got {clip.shape[2]}")
        return self.conv(clip).mean(dim=(2, 3, 4))  # (B, 2)


def _meta_clip(frames: int) -> torch.Tensor:
    return torch.empty(1, 3, frames, 8, 8, device="meta")


def test_a_forward_gives_meta_shapes_and_leaves_the_models_own_state():
    model = _Refuses()
    weight = model.conv.weight
    out = meta_forward(model, _meta_clip(4))
    assert out.is_meta and out.shape == (1, 2)
    assert model.conv.weight is weight and not weight.is_meta


@pytest.mark.parametrize(
    ("clip", "error", "message"),
    [
        (_meta_clip(5), ValueError, "takes 4 frames, got 5"),
        ([_meta_clip(4), _meta_clip(4)], AttributeError, "'list' object has no attribute"),
    ],
)
def test_what_the_forward_raises_is_raised_as_it_is(clip, error, message):
    with pytest.raises(error, match=message):
        meta_forward(_Refuses(), clip)


def test_a_forward_that_cannot_run_on_meta_raises_its_own_error():
    class ReadsAScalar(nn.Module):
        def forward(self, clip: torch.Tensor) -> torch.Tensor:
            return clip * clip.sum().item()

    with pytest.raises(RuntimeError):  # the network's: .item() of a meta tensor
        meta_forward(ReadsAScalar(), _meta_clip(4))


def test_lazy_state_or_a_failure_before_the_forward_is_cannot_run_on_meta():
    lazy = nn.Sequential(nn.LazyConv3d(2, 1))
    assert has_lazy(lazy)
    with pytest.raises(CannotRunOnMeta, match="Sequential has lazy parameters or buffers"):
        meta_forward(lazy, _meta_clip(4))
    assert has_lazy(lazy)  # its shapes are left for its first real forward

    def refuse(*_: object) -> None:
        raise RuntimeError("a hook of the caller's")

    model = _Refuses()
    model.register_forward_pre_hook(refuse)  # runs before the forward starts
    with pytest.raises(CannotRunOnMeta, match="a hook of the caller's") as caught:
        meta_forward(model, _meta_clip(4))
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_model_built_on_the_meta_device_runs_itself():
    with torch.device("meta"):
        lazy = nn.Sequential(nn.LazyConv3d(2, 1))
    assert meta_forward(lazy, _meta_clip(4)).shape == (1, 2, 4, 8, 8)
    assert not has_lazy(lazy)  # given its shapes, on the meta device
