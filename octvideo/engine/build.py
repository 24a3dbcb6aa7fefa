"""From config sections to objects: the network (with its starting weights) and the trainer's
precision. Models receive plain keyword arguments, never a config object."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from octvideo.config import ConfigError, ModelConfig
from octvideo.data.config import DataConfig
from octvideo.engine.checkpoint import load_checkpoint, model_state_dict

logger = logging.getLogger(__name__)


def build_model(cfg: ModelConfig) -> nn.Module:
    """``octvideo.models.create_model`` with the section's settings, then its pretrained weights.

    Raises:
        ConfigError: unknown model name or bad keyword in ``model.extra``.
    """
    model = _create(cfg)
    if cfg.pretrained:
        load_pretrained(model, cfg.pretrained, cfg.pretrained_kind)
    return model


def check_clip(cfg: ModelConfig, data: DataConfig, crop_sizes: Sequence[int]) -> None:
    """Check that the network takes the clips the data section makes, before any work is done.

    SlowFast settings are checked by name; everything else by running the network on the meta
    device (shapes only: no memory, no arithmetic) on one clip of each crop size.

    Raises:
        ConfigError: one line naming the settings and what the network says about them.
    """
    from octvideo.data.transforms import pack_pathways

    with torch.device("meta"):
        model = _create(cfg)
    model.eval()
    frames, want, got = data.num_frames, getattr(model, "slowfast_alpha", None), data.slowfast_alpha
    if want is not None and got is None:
        raise ConfigError(
            f"model.name={cfg.name} takes [slow, fast] pathways: set data.slowfast_alpha={want}"
        )
    if want is None and got is not None:
        raise ConfigError(
            f"model.name={cfg.name} takes one clip, not SlowFast pathways: "
            "set data.slowfast_alpha=null"
        )
    if want is not None and got != want:
        raise ConfigError(
            f"data.slowfast_alpha={got} but {cfg.name} is built with slowfast_alpha={want}; "
            f"set data.slowfast_alpha={want}"
        )
    if want is not None and frames % want:
        raise ConfigError(
            f"data.num_frames={frames} is not a multiple of data.slowfast_alpha={want} (the "
            f"slow pathway takes every {want}th frame of the fast one); use "
            f"data.num_frames={max(want, frames - frames % want)}"
        )
    for size in sorted(set(crop_sizes)):
        clip = torch.empty(3, frames, size, size, device="meta")  # (3, T, S, S)
        inputs = [v[None] for v in pack_pathways(clip, got)] if got else clip[None]
        try:
            with torch.no_grad():
                model(inputs)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"{cfg.name} cannot take clips of data.num_frames={frames} frames at "
                f"{size}x{size} pixels: {reason}"
            ) from err


def _create(cfg: ModelConfig) -> nn.Module:
    from octvideo.models import create_model

    alpha = list(cfg.alpha) if isinstance(cfg.alpha, list | tuple) else float(cfg.alpha)
    try:
        model = create_model(
            cfg.name,
            num_classes=cfg.num_classes,
            alpha=alpha,
            octave=tuple(cfg.octave),
            dropout=cfg.dropout,
            **cfg.extra,
        )
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model.name={cfg.name!r}: {err}") from err
    return model


def load_pretrained(model: nn.Module, path: str, kind: str) -> None:
    """Initialise ``model`` from a checkpoint; a classifier of another shape is left fresh.

    Args:
        model: the freshly built network.
        path: the weights file.
        kind: ``"octvideo"`` (an octvideo checkpoint or plain state dict of the same
            architecture), ``"pytorchvideo"`` (a PyTorchVideo ResNet checkpoint) or
            ``"imagenet2d"`` (a torchvision 2D ResNet, inflated to 3D).

    Raises:
        ConfigError: a weight the model has no place for, or a missing non-classifier weight.
    """
    checkpoint = load_checkpoint(path)
    if kind == "octvideo":
        state = model_state_dict(checkpoint)
    else:
        state = _converted_state(model, checkpoint, kind)
    own = model.state_dict()
    fresh = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in fresh:
        del state[key]
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


def _converted_state(model: nn.Module, checkpoint: dict, kind: str) -> dict[str, torch.Tensor]:
    try:
        from octvideo.models import weights
    except ImportError as err:
        raise ConfigError(
            f"model.pretrained_kind={kind!r} needs octvideo.models.weights "
            f"(convert_pytorchvideo / inflate_2d), which this install lacks"
        ) from err
    if kind == "pytorchvideo":
        return weights.convert_pytorchvideo(model_state_dict(checkpoint), model)
    if kind == "imagenet2d":
        return weights.inflate_2d(model_state_dict(checkpoint), model)
    raise ConfigError(f"model.pretrained_kind: unknown kind {kind!r}")


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"``: bf16-mixed on a GPU that has bf16, 16-mixed on other GPUs, 32-true on CPU."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if not on_gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
