"""Fit checks (``misfit``): a model, its class names and a clip protocol refused in one line
before any video is read; lazy networks checked at their first clip; a caller's network the meta
device cannot run taken; a checkpoint's misfit worded for its own entries."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from octvideo.errors import CheckpointError
from octvideo.inference import Predictor
from octvideo.inference import predictor as predictor_module
from octvideo.inference.fit import Misfit, checkpoint_misfit, misfit
from octvideo.network import build_network
from octvideo.ops.meta import has_lazy
from tests.conftest import META


def _slowfast(**extra):
    from octvideo.models import create_model

    with torch.device("meta"):  # refused before it runs: no memory for its weights
        return create_model("slowfast_r50", num_classes=3, **extra)


@pytest.mark.parametrize(
    ("model", "classes", "clip", "message"),
    [
        (
            None,
            ["a", "b"],
            {},
            "classes has 2 names for the 3 outputs of model ResNet3D: give one name per "
            "output, by index",
        ),
        (
            None,
            None,
            {"num_frames": 1},
            "model ResNet3D cannot take the protocol's clips of 1 frames at 32x32 pixels "
            "(protocol.num_frames, protocol.test_crop_size): ResNet3D-18 takes (B, C, T, H, W) "
            "clips of 2 or more frames (it pools time 2x after res2, as C2D and I3D do) and 1x1 "
            "pixels or more; got (1, 3, 1, 32, 32)",
        ),
        (
            None,
            None,
            {"num_frames": 8, "slowfast_alpha": 4},
            "model ResNet3D takes one clip, not SlowFast pathways: set "
            "protocol.slowfast_alpha=None",
        ),
        (
            _slowfast,
            None,
            {"num_frames": 8},
            "model SlowFast takes [slow, fast] pathways: set protocol.slowfast_alpha=4",
        ),
        (
            _slowfast,
            None,
            {"num_frames": 8, "slowfast_alpha": 2},
            "protocol.slowfast_alpha=2 but model SlowFast is built with slowfast_alpha=4; set "
            "protocol.slowfast_alpha=4",
        ),
        (
            _slowfast,
            None,
            {"num_frames": 10, "slowfast_alpha": 4},
            "protocol.num_frames=10 is not a multiple of protocol.slowfast_alpha=4 (the slow "
            "pathway takes every 4th frame of the fast one); use protocol.num_frames=8",
        ),
        (
            torch.nn.Identity,
            None,
            {},
            "model Identity must return (N, K) logits for N clips, got (1, 3, 4, 32, 32) for 1",
        ),
    ],
)
def test_a_model_classes_and_protocol_that_do_not_fit_are_one_line_before_any_work(
    monkeypatch, model, classes, clip, message
):
    fused = []
    monkeypatch.setattr(predictor_module, "fuse_for_inference", fused.append)
    network = (model or (lambda: build_network(META.model)))()
    protocol = dataclasses.replace(META.clip, **clip)
    with pytest.raises(ValueError) as caught:
        Predictor(network, classes or list(META.classes), protocol)
    assert str(caught.value) == message and not fused


def test_a_checkpoint_misfit_no_run_refused_is_worded_with_its_clip_entry():
    bad = Misfit("protocol.num_frames", "protocol.num_frames=10 is not ...")
    err = checkpoint_misfit(bad, META, "a.ckpt")
    assert (str(err), err.field) == (
        "checkpoint 'a.ckpt': protocol.num_frames=10 is not ...",
        "clip.num_frames",
    )


class _ReadsAScalar(torch.nn.Module):
    """A caller's network that reads a value in its forward, which the meta device cannot."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + float(clip.abs().max().item() > 1e9)
        return self.fc(clip.mean(dim=(2, 3, 4)) * scale)


def test_a_callers_model_the_meta_device_cannot_run_is_taken_and_predicts(videos):
    classes = list(META.classes)
    own = Predictor(_ReadsAScalar(len(classes)), classes, META.clip)
    assert own.predict(videos["long"]).video.probs.shape == (len(classes),)


class _Lazy(torch.nn.Module):
    """A caller's network whose shapes its first clip sets (``nn.Lazy*``)."""

    def __init__(self, lazy: torch.nn.Module, classes: int) -> None:
        super().__init__()
        self.lazy = lazy
        self.fc = torch.nn.LazyLinear(classes)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lazy(clip).mean(dim=(2, 3, 4)))


def test_a_callers_model_with_lazy_modules_is_taken_and_predicts():
    classes = list(META.classes)
    own = Predictor(_Lazy(torch.nn.Identity(), len(classes)), classes, META.clip)
    frames = torch.randint(0, 256, (12, 40, 40, 3), dtype=torch.uint8)
    result = own.predict(frames, fps=8)
    assert result.ok and result.video.probs.shape == (len(classes),)


def test_lazy_parameters_and_buffers_leave_the_meta_check_to_the_first_clip():
    lazy = _Lazy(torch.nn.LazyBatchNorm3d(), len(META.classes))  # lazy buffers too
    assert misfit(lazy, list(META.classes), META.clip) is None


class _LazyConvNorm(torch.nn.Module):
    """A caller's float64 network of lazy convolution, batch norm (lazy buffers) and head."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        f64 = {"dtype": torch.float64}
        self.conv = torch.nn.LazyConv3d(4, 3, padding=1, **f64)
        self.norm = torch.nn.LazyBatchNorm3d(**f64)
        self.fc = torch.nn.LazyLinear(classes, **f64)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(clip.double())).relu()  # (B, 4, T, S, S)
        return self.fc(x.mean(dim=(2, 3, 4)))  # (B, K)


def test_a_lazy_network_predicts_what_it_gives_when_run_by_hand():
    classes = list(META.classes)
    network = _LazyConvNorm(len(classes))
    own = Predictor(network, classes, META.clip)  # its lazy modules get their shapes here
    assert network.training and not has_lazy(network)
    frames = torch.randint(0, 256, (12, 40, 40, 3), dtype=torch.uint8)
    opened = own.open_input(frames, "center", None, None, fps=8)
    clips = own.clip_views(opened.plan, opened.crops, opened.frames_of)
    with torch.no_grad():
        by_hand = network.eval()(clips)  # float64 logits
    torch.testing.assert_close(own.logits(clips), by_hand.float(), rtol=0, atol=0)
    result = own.predict(frames, fps=8)
    assert result.ok
    # the views fused as test fuses them: the float32 logits' softmax in float64
    fused = by_hand.float().double().softmax(-1).mean(0)
    torch.testing.assert_close(result.video.probs, fused)


def test_a_lazy_network_that_misfits_its_classes_is_refused_at_its_first_clip():
    with pytest.raises(ValueError) as caught:
        Predictor(_LazyConvNorm(2), list(META.classes), META.clip)
    assert str(caught.value) == (
        "classes has 3 names for the 2 outputs of model _LazyConvNorm: give one name per "
        "output, by index"
    )


def test_an_error_of_the_meta_check_itself_refuses_no_model(monkeypatch):
    from octvideo.models import cost

    def no_clip(*args):
        raise ValueError("the meta clip cannot be made")

    monkeypatch.setattr(cost, "example_input", no_clip)  # raised before the forward starts
    classes = list(META.classes)
    own = Predictor(_ReadsAScalar(len(classes)), classes, META.clip)
    assert own.classes == classes


def test_a_checkpoint_naming_other_classes_than_its_outputs_is_refused(tmp_path):
    from octvideo.engine.checkpoint import atomic_save

    meta = dataclasses.replace(META, classes=("a", "b"))
    state = {f"model.{k}": v for k, v in build_network(meta.model).state_dict().items()}
    path = tmp_path / "two_names.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta.to_dict()}}, path)
    with pytest.raises(CheckpointError) as caught:
        Predictor.from_checkpoint(path)
    assert caught.value.field == "classes"
    assert (
        str(caught.value) == f"checkpoint {str(path)!r} names 2 classes but its model has 3 outputs"
    )


def test_checkpoint_whose_model_cannot_take_its_clip_is_refused(tmp_path):
    # C2D pools time after res2: one frame leaves none, and two are the fewest it takes
    from octvideo.engine.checkpoint import atomic_save

    meta = dataclasses.replace(META, clip=dataclasses.replace(META.clip, num_frames=1))
    state = {f"model.{k}": v for k, v in build_network(meta.model).state_dict().items()}
    path = tmp_path / "one_frame.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta.to_dict()}}, path)
    with pytest.raises(CheckpointError) as caught:
        Predictor.from_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and caught.value.field == "clip.num_frames"
    assert message.startswith(
        f"checkpoint {str(path)!r} has clips of 1 frames at 32x32 pixels (clip 1x2), which its "
        "model c2d_r18 cannot take (ResNet3D-18 takes (B, C, T, H, W) clips of 2 or more frames "
        "(it pools time 2x after res2, as C2D and I3D do) and 1x1 pixels or more; got "
        "(1, 3, 1, 32, 32))"
    )
    assert message.endswith(
        "; c2d_r18 takes clips of at least 2 frames: import or train it with a clip of 2 "
        "frames or more"
    )
