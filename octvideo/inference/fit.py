"""Whether a network takes a clip protocol, decided before any video is read.

``misfit`` checks a model, its class names and a ``ClipProtocol`` against each other as
``octvideo train`` checks its config (``octvideo.engine.build.check_clip``): SlowFast pathways on
both sides or neither, then one test clip through the network on the meta device
(``octvideo.ops.meta.meta_forward``: shapes only, no memory, no arithmetic), whose logits must
be one per class name. A network with lazy modules is checked at its first clip instead
(``first_clip_misfit``). The ``Predictor`` refuses what does not fit (``MisfitError``), and
``Predictor.from_checkpoint`` words the refusal for the checkpoint (``checkpoint_misfit``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from octvideo.checkpoint_meta import CheckpointMeta, ClipProtocol
from octvideo.errors import CheckpointError, first_line
from octvideo.ops.meta import FORWARD_ERRORS, CannotRunOnMeta, meta_forward

logger = logging.getLogger(__name__)


class Misfit(NamedTuple):
    """How a model, its class names and a clip protocol fail to fit each other (``misfit``).

    Attributes:
        field: the piece at fault: ``"protocol.slowfast_alpha"``, ``"protocol.num_frames"`` (the
            model cannot take the protocol's test clip, or its frames are not a multiple of the
            SlowFast speed ratio), ``"model"`` (it gives no (N, K) logits) or ``"classes"`` (one
            name per output).
        message: one line naming the piece and what to do.
        cause: the network's own first line where running it failed, else None.
    """

    field: str
    message: str
    cause: str | None = None


def misfit(model: nn.Module, classes: Sequence[str], protocol: ClipProtocol) -> Misfit | None:
    """Whether ``model`` takes ``protocol``'s test clips and gives one logit per name of
    ``classes``, decided before any video is read as ``octvideo train`` decides it
    (``octvideo.engine.build.check_clip``): SlowFast pathways on both sides or neither, at one
    speed ratio, over a multiple of it of frames (``pathway_misfit``), then one test clip run
    through the model on the meta device (shapes only: no memory, no arithmetic; the model's own
    weights and modes are left as they are).

    Only the network's own forward can refuse the clip: a network that cannot be run there
    (``.item()``) is taken, and its clip and class count are found at its first prediction; one
    with lazy modules (``nn.Lazy*``), whose shapes the first clip sets, is taken here and checked
    by the ``Predictor`` as it gives them their shapes (``first_clip_misfit``).

    Returns:
        None when they fit or cannot be checked here; else the first ``Misfit``.
    """
    bad = _pathway_misfit(model, protocol)
    if bad is not None:
        return bad
    run = _trial_forward(model, protocol.slow_frames, protocol.test_crop_size)
    if run is None:  # its clip and class count are found at the first prediction
        return None
    if run.error is not None and not isinstance(run.error, ValueError):
        from octvideo.models import ResNet3D, SlowFast

        if not isinstance(model, (ResNet3D, SlowFast)):
            # a caller's own network may use what the meta device cannot run (``.item()``, data-
            # dependent shapes): its clip and class count are then found at the first prediction
            return None
    return _run_misfit(model, run, classes, protocol)


def first_clip_misfit(
    model: nn.Module, classes: Sequence[str], protocol: ClipProtocol, device: torch.device
) -> Misfit | None:
    """Gives ``model``'s lazy modules (``nn.Lazy*``) their shapes, in place, as its first
    prediction would: one zero clip of ``protocol``'s test size (float32, as ``preprocess``
    makes them) through it on ``device``, in eval mode without autograd, its modes restored
    after. Torch initialises their weights then, as at any first forward. What the forward
    returns or raises is checked as ``misfit`` checks its meta run; call ``misfit`` first.

    Returns:
        None when the model fits (or the clip cannot be made); else the ``Misfit``.
    """
    run = _trial_forward(model, protocol.slow_frames, protocol.test_crop_size, device)
    return None if run is None else _run_misfit(model, run, classes, protocol)


class MisfitError(ValueError):
    """``Predictor``'s refusal of a model, classes and protocol that do not fit (``misfit``), which
    ``from_checkpoint`` words for the checkpoint (``checkpoint_misfit``)."""

    def __init__(self, bad: Misfit) -> None:
        super().__init__(bad.message)
        self.misfit = bad


def checkpoint_misfit(
    bad: Misfit, meta: CheckpointMeta, path: str | os.PathLike[str]
) -> CheckpointError:
    """The refusal of a checkpoint whose model does not fit its own classes and clip (``misfit``:
    e.g. C2D and I3D pool time after res2, so one frame leaves none): one line naming the
    checkpoint's entry at fault and, when more frames would do, the fewest frames its model
    takes."""
    from octvideo.engine.build import fewest_frames

    where = f"checkpoint {os.fspath(path)!r}"
    if bad.field == "classes":
        return CheckpointError(
            f"{where} names {len(meta.classes)} classes but its model has "
            f"{meta.model.num_classes} outputs",
            field="classes",
        )
    if bad.field != "protocol.num_frames" or bad.cause is None:  # no run refused it
        field_name = bad.field.replace("protocol.", "clip.") if bad.field != "model" else None
        return CheckpointError(f"{where}: {bad.message}", field=field_name)
    clip = meta.clip
    least = fewest_frames(meta.model, clip.data_config(), (clip.test_crop_size,))
    fix = (
        f"; {meta.model.name} takes clips of at least {least} frames: import or train it "
        f"with a clip of {least} frames or more"
        if least is not None
        else ""
    )
    return CheckpointError(
        f"{where} has clips of {clip.num_frames} frames at {clip.test_crop_size}x"
        f"{clip.test_crop_size} pixels (clip {clip.num_frames}x{clip.sampling_rate}), which its "
        f"model {meta.model.name} cannot take ({bad.cause}){fix}",
        field="clip" if least is None else "clip.num_frames",
    )


def _pathway_misfit(model: nn.Module, protocol: ClipProtocol) -> Misfit | None:
    """``pathway_misfit`` of ``model`` and ``protocol``, worded for the protocol's fields."""
    from octvideo.engine.build import pathway_message, pathway_misfit

    want, got = getattr(model, "slowfast_alpha", None), protocol.slowfast_alpha
    bad = pathway_misfit(want, got, protocol.num_frames)
    if bad is None:
        return None
    field = "protocol.num_frames" if bad.kind == "frames" else "protocol.slowfast_alpha"
    return Misfit(field, pathway_message(bad, f"model {type(model).__name__}", "protocol.", "None"))


def _run_misfit(
    model: nn.Module, run: _Run, classes: Sequence[str], protocol: ClipProtocol
) -> Misfit | None:
    """How what the network's forward did with the protocol's test clip (``_trial_forward``)
    fails the protocol (it raised) or ``classes`` (no (1, K) logits, another K)."""
    name = type(model).__name__
    frames, size = protocol.num_frames, protocol.test_crop_size
    out, err = run
    if err is not None:
        reason = first_line(err, empty="") or type(err).__name__
        return Misfit(
            "protocol.num_frames",
            f"model {name} cannot take the protocol's clips of {frames} frames at {size}x{size} "
            f"pixels (protocol.num_frames, protocol.test_crop_size): {reason}",
            reason,
        )
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != 1:
        got_out = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        return Misfit(
            "model", f"model {name} must return (N, K) logits for N clips, got {got_out} for 1"
        )
    if out.shape[1] != len(classes):
        return Misfit(
            "classes",
            f"classes has {len(classes)} names for the {out.shape[1]} outputs of model {name}: "
            "give one name per output, by index",
        )
    return None


class _Run(NamedTuple):
    """What the network's forward did with the test clip (``_trial_forward``)."""

    out: object  # what it returned; None where it raised
    error: Exception | None  # what it raised


def _trial_forward(
    model: nn.Module, slow_frames: int, size: int, device: torch.device | None = None
) -> _Run | None:
    """``model`` in eval mode without autograd on one zero clip of ``slow_frames`` x ``size``
    x ``size`` (``example_input``): with ``device`` None on the meta device (``meta_forward``:
    the model's own parameters and buffers are left as they are); else on ``device``, through
    the model itself (lazy modules get their shapes). Its modules' modes are restored after.

    Only what the network's own forward raises is its answer; None where the check cannot be
    made for reasons of octvideo's, not the network's: on the meta device, lazy parameters or
    buffers, or state or a call ``meta_forward`` cannot make (``CannotRunOnMeta``); a clip that
    cannot be made.
    """
    from octvideo.models.cost import example_input

    name = type(model).__name__
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        try:
            with torch.device("meta" if device is None else device):
                clip = example_input(model, slow_frames, size)
        except FORWARD_ERRORS as err:
            logger.debug("%s is not checked with a test clip: %s", name, err)
            return None
        try:
            if device is None:
                return _Run(meta_forward(model, clip), None)
            with torch.no_grad():
                return _Run(model(clip), None)
        except CannotRunOnMeta as err:
            logger.debug("%s is not checked on the meta device: %s", name, err)
            return None
        except FORWARD_ERRORS as err:
            return _Run(None, err)
    finally:
        for module, mode in modes:
            module.training = mode
