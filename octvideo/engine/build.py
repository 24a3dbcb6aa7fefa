"""From config sections to objects: the network (with its starting weights: pretrained ones, or a
checkpoint's for ``octvideo test`` and ``train --resume``) and the trainer's precision. Models
receive plain keyword arguments, never a config object."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from octvideo.checkpoint_meta import stored_meta
from octvideo.config import LIMITS, ModelConfig
from octvideo.data.config import DataConfig
from octvideo.data.ranks import is_global_zero
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict, refuse_broken_weights
from octvideo.engine.settings import NO_SHAPE, model_differences, refit_overrides, said
from octvideo.engine.zoo_recipes import lateral_kernel_problem, warn_other_speed
from octvideo.errors import ConfigError, UsageError, first_line, one_line
from octvideo.models.cost import example_input
from octvideo.models.weights import (
    convert_pytorchvideo,
    first_non_finite,
    impossible_tensors,
    inflate_resnet2d,
    is_alpha0_state,
    non_finite_tensors,
    state_mismatch,
)
from octvideo.network import build_network, check_extra_keys
from octvideo.ops.meta import FORWARD_ERRORS, CannotRunOnMeta, meta_forward

logger = logging.getLogger(__name__)


def build_model(cfg: ModelConfig, *, pretrained: bool = True) -> nn.Module:
    """``octvideo.models.create_model`` with the section's settings, then its pretrained weights.

    Args:
        cfg: the model section.
        pretrained: load ``cfg.pretrained``; False where a checkpoint's weights replace them
            anyway (test, resume), so the file need not exist any more.

    Raises:
        ConfigError: unknown model name, bad keyword in ``model.extra``, or a network of more
            than ``MAX_PARAMETERS`` parameters (counted on the meta device first).
    """
    model = _create(cfg)  # build_network counts the parameters on the meta device first
    if pretrained and cfg.pretrained:
        load_pretrained(model, cfg)
    return model


def build_classifier(
    cfg: ModelConfig,
    classes: Sequence[str],
    checkpoint: dict[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """The network of a run: with the model section's pretrained weights, or with the weights of
    ``checkpoint`` (``octvideo test``, ``train --resume``) once they are checked to fit it.

    Args:
        cfg: the model section.
        classes: the data's class names, which the checkpoint must have been trained on.
        checkpoint: a loaded checkpoint (``load_checkpoint``), or None for a new run.
        path: the checkpoint's file, named in errors.

    Raises:
        ConfigError: as ``build_model``.
        UsageError: the checkpoint's weights do not fit the network, it was trained on other
            classes, or its metadata is malformed (``CheckpointError``).
    """
    model = build_model(cfg, pretrained=checkpoint is None)  # else its weights replace them
    if checkpoint is None:
        return model
    check_checkpoint_fits(model, checkpoint, path, cfg)
    check_same_classes(checkpoint, classes, path)
    model.load_state_dict(model_state_dict(checkpoint), strict=True)
    return model


def check_checkpoint_fits(
    model: nn.Module,
    checkpoint: dict[str, Any],
    path: str | os.PathLike[str] | None,
    cfg: ModelConfig,
) -> None:
    """One-line error when a checkpoint's weights do not fit the configured network.

    A checkpoint that records its model section is refused for the settings the config's
    differs in (``model_differences``), with both values and the config or overrides that build
    its network; the weights' shapes are named only where it records none, or where it records
    the config's settings and still does not fit (a modified network or file).

    Raises:
        UsageError: names the class counts when they alone differ, else each differing setting,
            else the first mismatching weights.
    """
    problem = state_mismatch(model, model_state_dict(checkpoint))
    if problem is None:
        return
    meta = stored_meta(checkpoint, path)
    differ = {} if meta is None else model_differences(meta.model, cfg)
    if meta is not None and list(differ) == ["model.num_classes"]:
        raise UsageError(
            f"checkpoint {path} has {meta.model.num_classes} classes but model.num_classes="
            f"{cfg.num_classes}; use the config and data it was trained with"
        )
    if meta is not None and differ:
        if meta.source is None:
            config = "its run folder's config.yaml"
        else:  # imported: no run folder, but the run config its import wrote beside it
            config = (
                f"the config its import wrote beside it, {Path(path or '').with_suffix('.yaml')}"
            )
        raise UsageError(
            f"checkpoint {path} was trained with other model settings than the config's "
            f"({said(differ)}): its weights do not fit model {cfg.name}; use {config}, or give "
            f"the overrides {refit_overrides(meta.model, differ)}"
        )
    raise UsageError(
        f"checkpoint {path} does not fit model {cfg.name} ({problem}); use the config of the "
        "network it was saved from"
    )


def check_same_classes(
    checkpoint: dict[str, Any], classes: Sequence[str], path: str | os.PathLike[str] | None
) -> None:
    """One-line error when a checkpoint was trained on another class list, or the same classes
    in another order: its outputs would be scored against the wrong labels.

    Raises:
        UsageError: names the first class that differs.
    """
    meta = stored_meta(checkpoint, path)
    if meta is None or list(meta.classes) == list(classes):
        return
    trained = meta.classes
    if len(trained) != len(classes):
        differs = f"{len(trained)} classes there, {len(classes)} here"
    else:
        i = next(i for i, (a, b) in enumerate(zip(trained, classes, strict=True)) if a != b)
        differs = f"class {i} is {trained[i]!r} there, {classes[i]!r} here"
    raise UsageError(
        f"checkpoint {path} was trained on other classes than the data's ({differs}); use the "
        "class list it was trained with (data.classes_file, or the training list's classes)"
    )


class PathwayMisfit(NamedTuple):
    """How a clip fails a network's SlowFast pathways (``pathway_misfit``).

    Attributes:
        kind: ``"pathways"`` (the network takes [slow, fast] pathways, the clip is one),
            ``"one clip"`` (the network takes one clip, the clip has pathways), ``"ratio"``
            (both have pathways, at other speed ratios) or ``"frames"`` (the clip's frames are
            not a multiple of the ratio: the slow pathway takes every ratio-th frame).
        want: the network's speed ratio (its ``slowfast_alpha``; None: it takes one clip).
        got: the clip's speed ratio (None: it is one clip).
        frames: the clip's frames.
        fix: for ``"frames"``, the nearest number of frames that is a multiple; else None.
    """

    kind: str
    want: int | None
    got: int | None
    frames: int
    fix: int | None = None


def pathway_misfit(want: int | None, got: int | None, frames: int) -> PathwayMisfit | None:
    """Whether a clip of ``frames`` frames at SlowFast speed ratio ``got`` (None: one clip) fits
    a network built with speed ratio ``want`` (its ``slowfast_alpha``; None: it takes one clip):
    the checks ``check_clip`` and the Predictor (``octvideo.inference.fit.misfit``) make
    before running the network, each worded for the settings its user gave
    (``pathway_message``).

    Returns:
        None when they fit; else how they do not.
    """
    if want is not None and got is None:
        return PathwayMisfit("pathways", want, got, frames)
    if want is None and got is not None:
        return PathwayMisfit("one clip", want, got, frames)
    if want is not None and got != want:
        return PathwayMisfit("ratio", want, got, frames)
    if want is not None and frames % want:
        return PathwayMisfit("frames", want, got, frames, max(want, frames - frames % want))
    return None


def pathway_message(bad: PathwayMisfit, model: str, prefix: str, none: str) -> str:
    """One line saying how the clip fails the network (``pathway_misfit``) and what to set.

    Args:
        bad: the misfit.
        model: the network, in the words of its user's settings (``"model.name=slowfast_r50"``).
        prefix: the clip's settings' prefix (``"data."``, ``"protocol."``).
        none: the value that sets no speed ratio, as the user writes it (``"null"``, ``"None"``).
    """
    key = f"{prefix}slowfast_alpha"
    if bad.kind == "pathways":
        return f"{model} takes [slow, fast] pathways: set {key}={bad.want}"
    if bad.kind == "one clip":
        return f"{model} takes one clip, not SlowFast pathways: set {key}={none}"
    if bad.kind == "ratio":
        return (
            f"{key}={bad.got} but {model} is built with slowfast_alpha={bad.want}; set "
            f"{key}={bad.want}"
        )
    return (
        f"{prefix}num_frames={bad.frames} is not a multiple of {key}={bad.want} (the slow "
        f"pathway takes every {bad.want}th frame of the fast one); use {prefix}num_frames={bad.fix}"
    )


def check_clip(cfg: ModelConfig, data: DataConfig, crop_sizes: Sequence[int]) -> None:
    """Check that the network takes the clips the data section makes, before any work is done.

    SlowFast settings are checked by name; the network's size (``build_network``) and everything
    else by running it on the meta device (``meta_forward``: shapes only, no memory, no
    arithmetic) on one clip of each crop size. Whatever its forward raises there
    (``FORWARD_ERRORS``) refuses the clip, as the Predictor's ``misfit`` refuses it.

    Raises:
        ConfigError: one line naming the settings and what the network says about them.
    """
    with torch.device("meta"):
        model = _create(cfg)
    model.eval()
    frames = data.num_frames
    bad = pathway_misfit(getattr(model, "slowfast_alpha", None), data.slowfast_alpha, frames)
    if bad is not None:
        raise ConfigError(pathway_message(bad, f"model.name={cfg.name}", "data.", "null"))
    for size in sorted(set(crop_sizes)):
        with torch.device("meta"):
            inputs = example_input(model, data.slow_frames, size)
        try:
            meta_forward(model, inputs)
        except (CannotRunOnMeta, *FORWARD_ERRORS) as err:
            reason = first_line(err)
            raise ConfigError(
                f"{cfg.name} cannot take clips of data.num_frames={frames} frames at "
                f"{size}x{size} pixels: {reason}"
            ) from err


def fewest_frames(cfg: ModelConfig, data: DataConfig, crop_sizes: Sequence[int]) -> int | None:
    """The fewest ``data.num_frames`` above ``data``'s (a multiple of ``data.slowfast_alpha``) that
    ``check_clip`` takes, up to the bound of ``data.num_frames``; None if none up to it (the
    crop size is at fault). A network that takes T frames takes more, so the search doubles its
    step, then bisects: a few runs on the meta device."""
    speed = data.slowfast_alpha or 1
    most = int(LIMITS["data.num_frames"][0]) // speed  # in steps of ``speed`` frames

    def fits(steps: int) -> bool:
        try:
            check_clip(cfg, dataclasses.replace(data, num_frames=steps * speed), crop_sizes)
        except ConfigError:
            return False
        return True

    low = data.slow_frames  # refused
    high = max(low, 1)
    while not fits(high := min(high * 2, most)):
        if high == most:
            return None
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high * speed


def _create(cfg: ModelConfig) -> nn.Module:
    try:
        check_extra_keys(cfg)  # names model.extra.KEY itself: no model.name prefix
    except ValueError as err:
        raise ConfigError(str(err)) from err
    try:
        return build_network(cfg)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model.name={cfg.name!r}: {err}") from err


def load_pretrained(model: nn.Module, cfg: ModelConfig) -> None:
    """Initialise ``model`` from ``cfg.pretrained``; a classifier of another shape is left fresh.

    Args:
        model: the freshly built network of ``cfg``.
        cfg: the model section: ``pretrained`` is the weights file, ``pretrained_kind`` its
            kind: ``"octvideo"`` (an octvideo checkpoint or plain state dict of the same
            architecture, or of its alpha-0 twin, sliced into the octave blocks),
            ``"pytorchvideo"`` (a PyTorchVideo ResNet checkpoint) or ``"imagenet2d"`` (a
            torchvision 2D ResNet, inflated to 3D). A PyTorchVideo SlowFast file's lateral
            kernel is checked against ``name`` as ``octvideo import`` reads it (the zoo recipe
            the kernel shows, ``lateral_kernel_problem``).

    Raises:
        ConfigError: the file is missing or refused (``load_checkpoint``), a weight the model
            has no place for, a missing non-classifier weight, one besides the classifier's of
            another shape (named by the settings an octvideo checkpoint records, where they
            differ from ``cfg``'s), a weight of the file that no training writes (a negative
            variance), or a weight loaded into the model holding a NaN or an infinity (a
            classifier of another shape, which is dropped, may hold them).
    """
    path, kind, name = cfg.pretrained, cfg.pretrained_kind, cfg.name
    octavised = False  # alpha-0 weights sliced into an octave network: its alpha may differ
    try:
        # the finite check is on the tensors loaded, below: not on a classifier that is dropped
        checkpoint = load_checkpoint(path, check_values=False, wants=kind)
        # under the file's own names (no classifier has a variance or a batch count)
        refuse_broken_weights(checkpoint, path, impossible_tensors(model_state_dict(checkpoint)))
    except UsageError as err:
        raise _pretrained_refused(path, kind, err) from err
    try:
        if kind == "octvideo":
            state = model_state_dict(checkpoint)
            octavised = is_alpha0_state(state) and not is_alpha0_state(model.state_dict())
            if octavised:
                # an alpha-0 network's weights for an octave one: each convolution sliced into
                # its four blocks, each norm into its two groups (same parameters, same order)
                from octvideo.models.weights import octavise_state_dict

                state = octavise_state_dict(state, model)
                logger.info("pretrained %s: alpha-0 weights sliced into the octave blocks", path)
        else:
            if kind == "pytorchvideo" and name:
                raw = model_state_dict(checkpoint)
                problem = lateral_kernel_problem(name, raw, model)
                if problem:
                    raise ConfigError(
                        f"model.pretrained={path!r} ({kind}) does not fit "
                        f"{type(model).__name__}: {problem}"
                    )
                warn_other_speed(path, name, raw, model)
            state = _converted_state(model, checkpoint, kind)
    except (ValueError, KeyError) as err:  # the converters name the layer or keys
        if kind == "octvideo":  # an octvideo checkpoint may name the settings instead
            _refuse_other_settings(model, checkpoint, cfg, octavised)
        reason = one_line(err)
        raise ConfigError(
            f"model.pretrained={path!r} ({kind}) does not fit {type(model).__name__}: "
            f"{reason}; use weights of this architecture and width (of alpha 0 or of this "
            "alpha; only the classifier may differ), or model.pretrained_kind for another "
            "source"
        ) from err
    own = model.state_dict()
    fresh = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    head = _classifier_keys(model)
    other = [k for k in fresh if k not in head]
    if other:  # another width, depth or alpha split: starting from random weights unnoticed
        _refuse_other_settings(model, checkpoint, cfg, octavised)
        shapes = ", ".join(
            f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in other[:3]
        )
        raise ConfigError(
            f"model.pretrained={path!r} ({kind}) does not fit {type(model).__name__}: "
            f"{len(other)} weights besides the classifier differ in shape ({shapes}"
            f"{', ...' if len(other) > 3 else ''}); use weights of the same architecture, "
            "width and alpha (only the classifier may differ)"
        )
    dropped = non_finite_tensors({key: state.pop(key) for key in fresh})
    try:  # before the model takes any of them
        refuse_broken_weights(checkpoint, path, non_finite_tensors(state))
    except UsageError as err:
        raise _pretrained_refused(path, kind, err) from err
    if dropped:
        logger.info(
            "pretrained %s: %s, dropped with the classifier (shape differs)",
            path,
            first_non_finite(dropped, "tensor"),
        )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in fresh]
    if result.unexpected_keys or missing:
        raise ConfigError(
            f"model.pretrained={path!r} ({kind}) does not fit {type(model).__name__}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}"
        )
    if fresh:
        logger.info("pretrained %s: new weights for %s (shape differs)", path, ", ".join(fresh))
    logger.info("initialised from %s (%s): %d tensors", path, kind, len(state))


def _refuse_other_settings(
    model: nn.Module, checkpoint: dict[str, Any], cfg: ModelConfig, octavised: bool
) -> None:
    """Refuses pretrained weights whose checkpoint records model settings that build another
    network than ``cfg`` (``model_differences``), naming each; returns where it records none or
    the same ones. The class count (the classifier is left fresh) and, for alpha-0 weights sliced
    into the octave blocks (``octavised``), ``model.alpha`` may differ.

    Raises:
        ConfigError: names each differing setting, both values and the overrides that build the
            network the weights were trained in.
    """
    try:
        meta = stored_meta(checkpoint, cfg.pretrained)
    except UsageError as err:  # malformed metadata (CheckpointError): the file is refused
        raise _pretrained_refused(cfg.pretrained, cfg.pretrained_kind, err) from err
    if meta is None:
        return
    free = (*NO_SHAPE, "model.num_classes", *(["model.alpha"] if octavised else []))
    differ = model_differences(meta.model, cfg, free)
    if differ:
        raise ConfigError(
            f"model.pretrained={cfg.pretrained!r} ({cfg.pretrained_kind}) does not fit "
            f"{type(model).__name__}: its weights were trained with other model settings "
            f"({said(differ)}); use weights trained with the config's settings (only the "
            f"classifier may differ), or give the overrides {refit_overrides(meta.model, differ)}"
        )


def _pretrained_refused(path: str, kind: str, err: UsageError) -> ConfigError:
    """``model.pretrained``'s file refused for what it is or holds (``err`` names it), with what
    to do."""
    if os.path.lexists(path):  # refused for what it is or holds, which the error names
        advice = "or set model.pretrained=PATH to other weights"
    else:  # the shipped _in1k configs name a file the user downloads
        advice = (
            "put the weights there (docs/training.md, 'ImageNet init', says how), set "
            "model.pretrained=PATH"
        )
    return ConfigError(
        f"model.pretrained={path} ({kind}): {err}; {advice}, or model.pretrained=null to "
        "start from random weights"
    )


def _classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the model's classifier (``get_classifier()``), the one layer a
    pretrained checkpoint for another label set may not fit."""
    get = getattr(model, "get_classifier", None)
    if get is None:
        return set()
    classifier = get()
    for name, module in model.named_modules():
        if module is classifier:
            return {f"{name}.{key}" for key in module.state_dict()}
    return set()


def _converted_state(model: nn.Module, checkpoint: dict, kind: str) -> dict[str, torch.Tensor]:
    if kind == "pytorchvideo":
        return convert_pytorchvideo(model_state_dict(checkpoint), model)
    if kind == "imagenet2d":
        return inflate_resnet2d(model_state_dict(checkpoint), model)
    raise ConfigError(f"model.pretrained_kind: unknown kind {kind!r}")


def on_gpu(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` runs on GPUs (``"auto"``: where CUDA is available)."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: str, accelerator: str, *, say: bool = True) -> str:
    """The precision a run of ``trainer.precision`` trains or tests in: ``"auto"`` is
    bf16-mixed on a GPU with bfloat16 arithmetic (compute capability 8 or more), 16-mixed on
    other GPUs (where bfloat16 would be emulated, slowly), 32-true on CPU; ``16-mixed`` on a
    CPU, where PyTorch has no float16 autocast, is bf16-mixed, said in one line (Lightning
    would make the same change after a warning of its own, with a path into its code) unless
    ``say`` is false. A resolved precision resolves to itself, silently."""
    resolved = _resolved_precision(precision, accelerator)
    if say and resolved != precision and precision != "auto" and is_global_zero():
        logger.warning(
            "trainer.precision=%s: float16 mixed precision needs a GPU; on a CPU the run uses "
            "bfloat16 mixed precision instead (trainer.precision=%s asks for it without this "
            "line; 32-true is float32)",
            precision,
            resolved,
        )
    return resolved


def _resolved_precision(precision: str, accelerator: str) -> str:
    """``resolve_precision`` without its line."""
    if precision == "16-mixed" and _on_cpu(accelerator):
        return "bf16-mixed"
    if precision != "auto":
        return precision
    if not on_gpu(accelerator):
        return "32-true"
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    return "bf16-mixed" if native else "16-mixed"


def _on_cpu(accelerator: str) -> bool:
    """Whether ``trainer.accelerator`` runs on the CPU (``"auto"``: where Lightning finds
    neither CUDA nor Apple's MPS)."""
    if accelerator == "cpu":
        return True
    return (
        accelerator == "auto"
        and not torch.cuda.is_available()
        and not torch.backends.mps.is_available()
    )


def check_training_precision(precision: str, accelerator: str) -> None:
    """Refuses bfloat16 training on a CPU whose PyTorch gets bfloat16 3D-convolution weight
    gradients wrong.

    PyTorch 2.14 (oneDNN 3.12) on an AVX-512 CPU returns NaN, inf or unrelated values for the
    weight gradient of a bfloat16 3D convolution over a 2-frame map with a temporal kernel of 3
    or more (the stem's 5x7x7 too), while its forward pass, its input gradient and float16 /
    float32 are right. Video ResNets meet 2-frame maps at short clips and in the low group of the
    temporal octave. A few such cases are checked against float32 once per process, so a PyTorch
    without the fault is let through.

    Raises:
        ConfigError: bf16-mixed or bf16-true on a CPU where the check fails, and 16-mixed there
            too: it trains as bf16-mixed on a CPU (``resolve_precision``).
    """
    if on_gpu(accelerator):
        return
    runs_as = _resolved_precision(precision, accelerator)
    if not runs_as.startswith("bf16") or _cpu_bf16_weight_grads_ok():
        return
    as_bf16 = "" if runs_as == precision else f" (it trains as {runs_as} there)"
    raise ConfigError(
        f"trainer.precision={precision} on a CPU{as_bf16}: this PyTorch ({torch.__version__}) "
        "computes wrong bfloat16 weight gradients for 3D convolutions over 2-frame feature "
        "maps (NaN or unrelated values; checked against float32), which short clips and the "
        "temporal octave produce; train with trainer.precision=32-true on a CPU (testing in "
        "bfloat16, forward only, is not affected)"
    )


@functools.cache
def _cpu_bf16_weight_grads_ok() -> bool:
    """Whether bfloat16 3D-convolution weight gradients on this CPU match float32 on
    ``_bf16_probes()`` (2-frame maps, temporal kernels of 3: the cases PyTorch 2.14 gets wrong)."""
    for g, x, w in _bf16_probes():
        want, got = (
            _conv3d_weight_grad(g, x, w, dtype) for dtype in (torch.float32, torch.bfloat16)
        )
        if not bool(torch.isfinite(got).all()) or (got - want).norm() > 0.05 * want.norm():
            return False
    return True


def _bf16_probes() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(output gradient, input, weight) of three small 2-frame 3D convolutions."""
    generator = torch.Generator().manual_seed(0)
    probes = []
    for c_in, c_out, kernel in ((64, 64, (3, 1, 1)), (16, 8, (3, 3, 3)), (8, 64, (3, 3, 3))):
        x = torch.randn(2, c_in, 2, 8, 8, generator=generator)
        w = torch.randn(c_out, c_in, *kernel, generator=generator) / (c_in * 3) ** 0.5
        g = torch.randn(2, c_out, 2, 8, 8, generator=generator)
        probes.append((g, x, w))
    return probes


def _conv3d_weight_grad(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor, dtype) -> torch.Tensor:
    """Weight gradient of a stride-1, "same"-padded 3D convolution, computed in ``dtype``."""
    padding = [k // 2 for k in w.shape[2:]]
    grads = torch.ops.aten.convolution_backward(
        g.to(dtype), x.to(dtype), w.to(dtype), None, [1, 1, 1], padding, [1, 1, 1],
        False, [0, 0, 0], 1, [False, True, False],
    )  # fmt: skip
    return grads[1].double()
