"""Typed run configuration: one dataclass section per part, loaded from YAML plus overrides.

A run config has six sections: ``model``, ``data``, ``optim``, ``trainer``, ``test`` and
``output``. Their defaults are the Kinetics recipe of the Octave Convolution paper's video models
(Chen et al., "Drop an Octave", ICCV 2019, Sec. 4.3, following the Non-local paper's video
ResNet-50), so a config file only states what differs. The YAML file is merged onto the defaults,
then ``key=value`` overrides from the command line (``optim.lr=0.05``, ``model.alpha=[0.1,0.1,0]``).
OmegaConf's structured configs do the merge and the type checks; every failure is re-raised as one
:class:`ConfigError` that names the full key and the closest valid key. Validation never changes a
value. Each part of the program receives only its own section.

``--cfg`` takes a path or the name of a shipped config (``i3d_r50_oct_a0.1_8x8.yaml``,
``kinetics600/i3d_r50_8x8_in1k``), looked up in ``CONFIG_DIR`` (the repository's ``configs/``
folder, which an installed package carries as ``octvideo/configs``), or one of the short names in
``ALIASES`` (``i3d_oct.yaml``: the paper's Kinetics-400 Oct-I3D at alpha 0.1).

Config text is data: YAML anchors, aliases and merge keys (``&name``, ``*name``, ``<<``) are refused
(nested aliases expand exponentially, the "billion laughs"; a merged mapping's keys are lost where
the mapping gives the key too), so is a key given twice in one mapping; numbers and true/false are
read as YAML 1.2 reads them (``010`` is 10, ``1e-1`` is 0.1, ``1:20`` and ``yes`` are text, where
PyYAML's YAML 1.1 reads 8, text, 80 and true); a key that takes text refuses a value that reads as a
number or true/false (quote it), and a key that takes a number or true/false refuses text, even text
that Python reads as one (``6_0``, ``nan``, ``'6'``), naming how to write it; the file is at most
``MAX_CONFIG_BYTES`` and ``MAX_YAML_DEPTH`` levels deep, and a ``${...}`` in a value is kept as
text, never resolved by OmegaConf. Every size and count has an upper bound in ``LIMITS`` (and
``MAX_CLIP_PIXELS``, ``MAX_BATCH_PIXELS``; the few whole numbers bounded otherwise are in
``OTHER_BOUNDS``: ``data.num_workers`` has this machine's cores, 4 processes a core), checked when
the config loads, before a run writes anything.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from octvideo.argtypes import DECIMAL, WHOLE
from octvideo.data.config import MAX_RESIZE_SHORT_SIDE, DataConfig, is_kind
from octvideo.data.limits import MAX_WORKERS
from octvideo.data.workers import check_worker_count
from octvideo.errors import ConfigError, TextFileError, first_line, one_line
from octvideo.ops import MEMORY_FORMATS
from octvideo.paths import read_utf8, why_not_a_file, write_atomically


def _config_dir() -> Path:
    """The shipped configs: the copy inside the package, which a wheel or sdist install carries
    (pyproject.toml maps the repository's ``configs/`` to ``octvideo/configs``), else the
    repository's ``configs/`` beside the package (a checkout or an editable install)."""
    packaged = Path(str(importlib.resources.files("octvideo").joinpath("configs")))
    if packaged.is_dir():
        return packaged.resolve()
    return Path(__file__).resolve().parent.parent / "configs"


CONFIG_DIR = _config_dir()
PRETRAINED_KINDS = ("octvideo", "pytorchvideo", "imagenet2d")
SCHEDULES = ("cosine", "step")
NONFINITE = ("stop", "skip")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true")
# The devices a run trains and tests on (Lightning's names; "gpu" is "cuda"); "auto" picks CUDA,
# then Apple's MPS, then the CPU. Lightning's "tpu" (torch_xla) is not among them: untested here.
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# Metrics the training module logs where higher is better: best.ckpt keeps the maximum
# (``mode="max"`` in run.py), so a loss or a failure count would keep the worst epoch.
MONITORS = ("val/top1", "val/top5")
MAX_SEED = 2**32 - 1  # lightning.seed_everything takes seeds in [0, 2**32 - 1]

# Short names a reader of the paper would type for its Kinetics-400 recipes (alpha 0.1).
ALIASES = {
    "i3d_oct": "kinetics400/i3d_r50_oct_a0.1_8x8.yaml",
    "c2d_oct": "kinetics400/c2d_r50_oct_a0.1_8x8.yaml",
    "slowfast_oct": "kinetics400/slowfast_r50_oct_a0.1_4x16.yaml",
    "oct_i3d": "kinetics400/i3d_r50_oct_a0.1_8x8.yaml",
    "oct_c2d": "kinetics400/c2d_r50_oct_a0.1_8x8.yaml",
    "oct_slowfast": "kinetics400/slowfast_r50_oct_a0.1_4x16.yaml",
}

# A config file is a few KB of settings; the bound keeps a wrong file (a video, a log) from
# being read into memory and parsed.
MAX_CONFIG_BYTES = 2**20
# Sections, keys and model.extra's values need 4 or 5 levels; the YAML composer recurses per level.
MAX_YAML_DEPTH = 16

# Upper bounds of every size and count in the schema, far beyond the paper's recipes (224 crops,
# 8-32 frames, 10 x 3 views), so that a typo (an extra zero or three) is one line before a run
# writes anything instead of a 120 GB allocation later. Key -> (bound, unit). A tuple or list
# value is bounded element-wise. A period (trainer.log_every_n_steps, output.ckpt_every_n_steps)
# longer than any run only never fires, but is bounded too, so that no count is beyond int64.
# The whole-number keys bounded otherwise are in OTHER_BOUNDS.
LIMITS: dict[str, tuple[float, str]] = {
    "model.num_classes": (100_000, "classes"),
    "model.octave": (4, "per axis"),
    "data.decode_short_side": (MAX_RESIZE_SHORT_SIDE, "pixels"),
    "data.num_frames": (256, "frames"),
    "data.sampling_rate": (64, "frames"),
    "data.train_jitter_scales": (MAX_RESIZE_SHORT_SIDE, "pixels"),
    "data.train_crop_size": (1024, "pixels"),
    "data.val_crop_size": (1024, "pixels"),
    "data.test_short_side": (MAX_RESIZE_SHORT_SIDE, "pixels"),
    "data.test_crop_size": (1024, "pixels"),
    "data.test_num_clips": (100, "clips"),
    "data.batch_size": (1024, "clips"),
    "data.prefetch_factor": (64, "batches"),
    "data.max_retries": (1000, "videos"),
    "optim.lr_reference_batch": (65_536, "clips"),
    "optim.warmup_epochs": (10_000, "epochs"),
    "optim.step_epochs": (10_000, "epochs"),
    "optim.max_skipped_steps": (10_000, "steps"),
    "trainer.max_epochs": (10_000, "epochs"),
    "trainer.devices": (1024, "devices"),
    "trainer.num_nodes": (1024, "nodes"),
    "trainer.accumulate_grad_batches": (1024, "batches"),
    "trainer.num_sanity_val_steps": (10_000, "batches"),
    "trainer.precise_bn_batches": (10_000, "batches"),
    "trainer.log_every_n_steps": (10_000_000, "steps"),
    "trainer.check_val_every_n_epoch": (10_000, "epochs"),
    "output.ckpt_every_n_steps": (10_000_000, "steps"),
}
# The whole-number keys bounded by a check of their own, not by LIMITS: key -> that bound. Every
# whole-number key of the schema is in one of the two tables (tests/test_config.py).
OTHER_BOUNDS: dict[str, str] = {
    "data.test_num_crops": "1 or 3 (DataConfig)",
    "data.slowfast_alpha": "data.num_frames (DataConfig)",
    "data.num_workers": "this machine's cores, 4 processes a core (check_limits)",
    "data.seed": "MAX_SEED (check_limits)",
    "trainer.seed": "MAX_SEED (TrainerConfig)",
}
# Pixels of one clip the network takes (frames x crop x crop): 64 x 512 x 512, 42 times the
# paper's 8 x 224 x 224; and of one device's batch of them (batch x frames x crop x crop).
MAX_CLIP_PIXELS = 2**24
MAX_BATCH_PIXELS = 2**28
# data.target_fps, frames per second: from one frame every 10 s to a high-speed camera's rate. A
# tiny rate would make the stride tau * fps / target_fps overflow into negative frame indices.
TARGET_FPS_RANGE = (0.1, 1000.0)
# The model.extra keywords the registered models take (ResNet3D, SlowFast) as whole numbers:
# keyword -> (bound, what it counts). A stem wider than 1024 channels is over MAX_PARAMETERS in
# every model; the other bounds are far beyond the papers' values (3 channels, alpha 4 or 8,
# beta_inv 8, ratio 2, kernel 5 or 7, multiples of 8). None is allowed where the model's own
# default is None (channel_multiple).
EXTRA_WHOLES: dict[str, tuple[int, str]] = {
    "width": (1024, "channels of the stem"),
    "in_chans": (64, "input channels"),
    "slowfast_alpha": (64, "Fast frames per Slow frame"),
    "beta_inv": (64, "Slow channels per Fast channel"),
    "fusion_ratio": (64, "lateral channels per Fast channel"),
    "fusion_kernel": (64, "frames"),
    "channel_multiple": (1024, "channels"),
}
# Keywords create_model receives from the model section itself (model.alpha, ...) or that
# model.name sets (a variant passes its depth): as model.extra keys they would override
# model.alpha unseen (the config and every report saying 0.25 of a network built at 0.5), or fail
# mid-run (num_classes) or in the builder (depth). Keyword -> the key that sets it.
EXTRA_RESERVED: dict[str, str] = {
    "num_classes": "model.num_classes",
    "alpha": "model.alpha",
    "octave": "model.octave",
    "dropout": "model.dropout",
    "depth": "model.name",
}
# The model.extra keywords the registered models take as true or false.
EXTRA_FLAGS = ("temporal_pool", "oct_stem", "stride_in_1x1", "zero_init_final_bn")
# Parameters of the network model.name and model.extra build (counted on the meta device, before
# any memory is taken): a ResNet-50 has 30 million; 2**30 are 4 GiB of float32 weights.
MAX_PARAMETERS = 2**30


@dataclass
class ModelConfig:
    """Which network to build; turned into keyword arguments of ``octvideo.models.create_model``."""

    name: str = "i3d_r50"  # a name from octvideo.models.list_models()
    num_classes: int = 400
    alpha: Any = 0.0  # low-frequency share: one float, or one per OctConv stage (res2, res3, ...)
    octave: tuple[int, int, int] = (1, 2, 2)  # (T, H, W) octave: spatial (paper) or (2, 2, 2)
    dropout: float = 0.5  # before the classifier
    pretrained: str | None = None  # weights to start from (null = random init; "" is read as null)
    pretrained_kind: str = "octvideo"  # "octvideo" | "pytorchvideo" | "imagenet2d" (inflated)
    extra: dict[str, Any] = field(default_factory=dict)  # further create_model keyword arguments

    def __post_init__(self) -> None:
        alphas = self.alpha if isinstance(self.alpha, list | tuple) else [self.alpha]
        if not alphas or any(
            isinstance(a, bool) or not isinstance(a, int | float) or not 0.0 <= a < 1.0
            for a in alphas
        ):
            raise ValueError(
                f"model.alpha must be a number in [0, 1) or a list of them, got {self.alpha!r}"
            )
        if self.num_classes < 1:
            raise ValueError(f"model.num_classes must be >= 1, got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.pretrained_kind not in PRETRAINED_KINDS:
            raise ValueError(
                f"model.pretrained_kind: {self.pretrained_kind!r} is not one of "
                f"{', '.join(PRETRAINED_KINDS)}"
            )
        check_extra(self.extra)


def check_extra(extra: dict[str, Any]) -> None:
    """Refuses a ``model.extra`` value of the wrong type or size for the keywords the models take
    (``EXTRA_WHOLES``, ``EXTRA_FLAGS``): ``width: abc`` or ``.inf`` would fail deep in the model,
    ``true`` would build a network of width 1, and a huge width would allocate gigabytes. Keywords
    a model does not take are refused when the network is built, naming the model.

    A keyword the section sets itself (``EXTRA_RESERVED``: ``alpha``, ``num_classes``, ...) is
    refused, naming the key that sets it.

    Raises:
        ValueError: one line naming ``model.extra.KEY``, the value and what the key takes.
    """
    for key, value in extra.items():
        if key in EXTRA_RESERVED:
            owner = EXTRA_RESERVED[key]
            if owner == "model.name":
                raise ValueError(
                    f"model.extra.{key} is set by model.name (i3d_r18 is depth 18); choose a "
                    f"model.name of the {key} you want"
                )
            raise ValueError(f"model.extra.{key} duplicates {owner}; set {owner}")
        if key in EXTRA_WHOLES:
            bound, unit = EXTRA_WHOLES[key]
            if key == "channel_multiple" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                none = " or null" if key == "channel_multiple" else ""
                raise ValueError(
                    f"model.extra.{key} must be a whole number in [1, {bound}] ({unit}){none}, "
                    f"got {value!r}{_how_to_write(value, int)}"
                )
        elif key in EXTRA_FLAGS and not isinstance(value, bool):
            raise ValueError(
                f"model.extra.{key} must be true or false, got {value!r}"
                f"{_how_to_write(value, bool)}"
            )


def network_kwargs(model: ModelConfig) -> dict[str, Any]:
    """``octvideo.models.create_model``'s keyword arguments for the section ``model`` (less its
    name): the one place a section becomes them."""
    alpha = list(model.alpha) if isinstance(model.alpha, list | tuple) else float(model.alpha)
    return {
        "num_classes": model.num_classes,
        "alpha": alpha,
        "octave": tuple(model.octave),
        "dropout": model.dropout,
        **model.extra,
    }


# Parameters of the networks check_network built (section -> count): a process checks a few
# sections, and a sweep or the tests the same ones again, each build a fraction of a second.
_COUNTED: dict[str, int] = {}
_MAX_COUNTED = 256


def check_network(model: ModelConfig) -> int:
    """Builds the network of ``model`` on the meta device (shapes only, no memory) and refuses
    what its model refuses, in the config's words, and a network over ``MAX_PARAMETERS``: so a
    config that no model takes is one line when it loads, before a run writes anything.

    The model's own checks decide (``octvideo.models.checks``): an argument it refuses
    (``ArgumentError``) is named as the config's key that sets it (``model.extra.stem_kernel``,
    ``model.alpha``, ``model.octave``).

    Returns:
        The network's parameter count.

    Raises:
        ValueError: one line naming the key, the value and what it takes; an unknown
            ``model.name`` or ``model.extra`` key (``check_extra_keys``); a network over
            ``MAX_PARAMETERS``.
    """
    import warnings

    import torch

    from octvideo.models import create_model, list_models
    from octvideo.models.checks import ArgumentError, as_yaml

    if model.name not in list_models():
        try:
            create_model(model.name)
        except (TypeError, ValueError) as err:  # names the closest registered models
            raise ValueError(f"model.name: {first_line(err)}") from err
    check_extra_keys(model)
    kwargs = network_kwargs(model)
    key = repr((model.name, sorted(kwargs.items())))
    count = _COUNTED.get(key)
    if count is None:
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the network built for the run warns, once
                count = sum(p.numel() for p in create_model(model.name, **kwargs).parameters())
        except ArgumentError as err:
            settings = model_settings(model.name) or [*model.extra]
            if err.argument in EXTRA_RESERVED or err.argument in settings:
                option = EXTRA_RESERVED.get(err.argument, f"model.extra.{err.argument}")
                raise ValueError(err.message(option, as_yaml)) from err
            raise ValueError(f"model.name={model.name} cannot be built: {err}") from err
        except (TypeError, ValueError) as err:
            raise ValueError(f"model.name={model.name} cannot be built: {first_line(err)}") from err
        if len(_COUNTED) >= _MAX_COUNTED:
            _COUNTED.clear()
        _COUNTED[key] = count
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"{model.name} with model.extra={model.extra} has {count:,} parameters, over the "
            f"limit of {MAX_PARAMETERS:,} (octvideo.config.MAX_PARAMETERS); use a smaller width "
            "or depth"
        )
    return count


def model_settings(name: str) -> list[str] | None:
    """The ``model.extra`` keywords the registered model ``name`` takes: the keyword parameters of
    the class its variant function returns, less those the model section sets
    (``EXTRA_RESERVED``) and the layer classes (``norm_layer``, ...), which YAML cannot give.

    Returns:
        The names in signature order; None for an unknown name or a class that takes
        ``**kwargs`` (anything then goes to the builder, which says what it refuses).
    """
    import inspect

    from octvideo.models import model_class

    cls = model_class(name)
    if cls is None:
        return None
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # less self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name
        for p in params
        if p.kind in named and p.name not in EXTRA_RESERVED and not isinstance(p.default, type)
    ]


def check_extra_keys(model: ModelConfig) -> None:
    """Refuses a ``model.extra`` key that ``model.name``'s model does not take, naming the ones it
    does (the builder's own TypeError names a private function or ``__init__``).

    Raises:
        ValueError: one line: ``model.extra.KEY is not a setting of NAME; it takes: ...``.
    """
    takes = model_settings(model.name)
    if takes is None:
        return
    for key in model.extra:
        if key not in takes:
            raise ValueError(
                f"model.extra.{key} is not a setting of {model.name}; it takes: {', '.join(takes)}"
            )


@dataclass
class OptimConfig:
    """SGD with momentum, warmup and decay; the loss and its regularisers."""

    lr: float = 0.1  # learning rate at a global batch of lr_reference_batch
    # lr is scaled by global_batch / lr_reference_batch, the global batch being the clips of one
    # optimiser step over all devices (no more than one epoch holds: engine.optim.step_batch)
    lr_reference_batch: int = 64
    scale_lr: bool = True  # linear scaling rule (Goyal et al. 2017); False = use lr as is
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4  # on conv and linear weights only, never on norm or bias
    schedule: str = "cosine"  # "cosine" | "step", applied per optimiser step after the warmup
    warmup_epochs: float = 0.0  # linear warmup from warmup_start_factor * lr to lr
    warmup_start_factor: float = 0.1
    final_lr_factor: float = 0.0  # cosine: lr at the end, as a share of the peak
    step_epochs: list[int] = field(default_factory=list)  # step: epochs at which lr *= step_gamma
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # Beta(a, a) mixing of clips and labels; 0 = off
    cutmix_alpha: float = 0.0  # Beta(a, a) box area; 0 = off (both on: one of them per batch)
    mix_prob: float = 1.0  # share of batches that are mixed when mixup or cutmix is on
    on_nonfinite_loss: str = "stop"  # NaN / inf loss: "stop" the run, or "skip" the step
    max_skipped_steps: int = 10  # skip: stop anyway after this many non-finite steps in a row

    def __post_init__(self) -> None:
        if self.on_nonfinite_loss not in NONFINITE:
            raise ValueError(
                f"optim.on_nonfinite_loss: {self.on_nonfinite_loss!r} is not one of "
                f"{', '.join(NONFINITE)}"
            )
        if self.max_skipped_steps < 0:
            raise ValueError(f"optim.max_skipped_steps must be >= 0, got {self.max_skipped_steps}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"optim.schedule: {self.schedule!r} is not one of {', '.join(SCHEDULES)}"
            )
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"optim.lr must be finite and > 0, got {self.lr}")
        if self.lr_reference_batch < 1:
            raise ValueError(
                f"optim.lr_reference_batch must be >= 1, got {self.lr_reference_batch}"
            )
        # SGD's own check is momentum >= 0; 1 or more never forgets a gradient and diverges.
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"optim.momentum must be in [0, 1), got {self.momentum}")
        # NaN and inf too. A negative weight decay grows the weights: SGD checks its default
        # but not the values of the parameter groups, which is where this one goes.
        for name in ("weight_decay", "warmup_epochs", "mixup_alpha", "cutmix_alpha"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"optim.{name} must be finite and >= 0, got {value}")
        if not 0.0 < self.warmup_start_factor <= 1.0:
            raise ValueError(
                f"optim.warmup_start_factor must be in (0, 1], got {self.warmup_start_factor}"
            )
        # Shares of the peak lr: below 0 the lr turns negative (gradient ascent), above 1 it grows.
        if not 0.0 <= self.final_lr_factor <= 1.0:
            raise ValueError(f"optim.final_lr_factor must be in [0, 1], got {self.final_lr_factor}")
        if not 0.0 < self.step_gamma <= 1.0:
            raise ValueError(f"optim.step_gamma must be in (0, 1], got {self.step_gamma}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"optim.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"optim.mix_prob must be in [0, 1], got {self.mix_prob}")
        if list(self.step_epochs) != sorted(self.step_epochs):
            raise ValueError(f"optim.step_epochs must be increasing, got {list(self.step_epochs)}")
        if any(e < 0 for e in self.step_epochs):
            raise ValueError(f"optim.step_epochs must be >= 0, got {list(self.step_epochs)}")


@dataclass
class TrainerConfig:
    """Where and how long to train: passed to ``lightning.Trainer``."""

    max_epochs: int = 196
    accelerator: str = "auto"  # "auto" | "cpu" | "gpu" | "cuda" | "mps" (ACCELERATORS)
    devices: int = 1  # per node; -1 = all visible
    num_nodes: int = 1
    strategy: str = "auto"  # "auto" is DDP when devices * num_nodes > 1
    precision: str = "auto"  # "auto": bf16-mixed on GPUs that have it, else 16-mixed; CPU 32-true
    sync_batchnorm: bool = False  # batch statistics over all processes (small per-GPU batches)
    gradient_clip_val: float = 0.0  # clip the global gradient norm; 0 = off
    accumulate_grad_batches: int = 1
    seed: int = 0
    deterministic: bool = False
    log_every_n_steps: int = 50
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0
    # Lightning's progress bar where stdout is a terminal; elsewhere (a log file, a pipe), and
    # always when false, one log line per epoch: epoch N/M, train loss, val top-1, time left
    progress_bar: bool = True
    # recompute every batch norm's statistics over this many training batches, with the weights
    # held, before each validation and at each epoch's end, so checkpoints carry them ("precise
    # BN", PySlowFast's BN.NUM_BATCHES_PRECISE); 0 = off (the running averages of training)
    precise_bn_batches: int = 0
    # "auto": channels-last (NDHWC) on CPU, where OctConv3d takes its fast path and a training
    # step at 224 is 11-31% faster (at 64x64 5-11% slower); contiguous (NCDHW) on GPUs until
    # measured there | "channels_last" | "contiguous"
    memory_format: str = "auto"

    def __post_init__(self) -> None:
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(
                f"trainer.memory_format: {self.memory_format!r} is not one of "
                f"{', '.join(MEMORY_FORMATS)}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"trainer.precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if self.accelerator not in ACCELERATORS:
            raise ValueError(
                f"trainer.accelerator: {self.accelerator!r} is not one of {', '.join(ACCELERATORS)}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"trainer.strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}"
            )
        counts = {
            "max_epochs": self.max_epochs,
            "num_nodes": self.num_nodes,
            "accumulate_grad_batches": self.accumulate_grad_batches,
        }
        for name, count in counts.items():
            if count < 1:
                raise ValueError(f"trainer.{name} must be >= 1, got {count}")
        if self.devices == 0 or self.devices < -1:
            raise ValueError(f"trainer.devices must be >= 1 or -1 (all), got {self.devices}")
        if not math.isfinite(self.gradient_clip_val) or self.gradient_clip_val < 0:
            raise ValueError(
                f"trainer.gradient_clip_val must be finite and >= 0, got {self.gradient_clip_val}"
            )
        if self.check_val_every_n_epoch < 1:
            raise ValueError(
                f"trainer.check_val_every_n_epoch must be >= 1, got {self.check_val_every_n_epoch}"
            )
        if self.log_every_n_steps < 0:
            raise ValueError(
                f"trainer.log_every_n_steps must be >= 0 (0 = never), got {self.log_every_n_steps}"
            )
        if self.num_sanity_val_steps < -1:
            raise ValueError(
                f"trainer.num_sanity_val_steps must be >= 0 or -1 (all), got "
                f"{self.num_sanity_val_steps}"
            )
        if self.precise_bn_batches < 0:
            raise ValueError(
                f"trainer.precise_bn_batches must be >= 0 (0 = off), got {self.precise_bn_batches}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"trainer.seed must be in [0, {MAX_SEED}], got {self.seed}")


@dataclass
class TestConfig:
    """Multi-view evaluation (``octvideo test``); the views themselves are ``data.test_*``."""

    count_flops: bool = True  # GFLOPs of one view in the summary (measure_cost: convs, classifier)
    confusion_matrix: bool = True  # confusion-matrix PNG
    out_dir: str = ""  # where the report goes ("" = <run dir>/test)
    # test on other frames, frame rate or normalisation than the checkpoint was trained with
    allow_other_clip: bool = False


@dataclass
class OutputConfig:
    """Where a run writes: checkpoints, logs, resolved config, plots."""

    root: str = "runs"  # run dir = <root>/<name>
    name: str = ""  # "" = the config file's stem
    dir: str = ""  # explicit run dir (wins over root/name; ``--out``)
    monitor: str = "val/top1"  # metric that decides best.ckpt (highest): "val/top1" | "val/top5"
    ckpt_every_n_steps: int = 0  # also refresh last.ckpt every N optimiser steps; 0 = per epoch
    tensorboard: bool = True
    plot_curves: bool = True  # training curves PNG at the end of training

    def __post_init__(self) -> None:
        if self.monitor not in MONITORS:
            raise ValueError(
                f"output.monitor: {self.monitor!r} is not one of {', '.join(MONITORS)} "
                "(best.ckpt keeps the highest value)"
            )
        if self.ckpt_every_n_steps < 0:
            raise ValueError(
                f"output.ckpt_every_n_steps must be >= 0 (0 = per epoch only), got "
                f"{self.ckpt_every_n_steps}"
            )


@dataclass
class RunConfig:
    """A whole run: one section per part."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    name: str = ""  # the recipe's name (the config file's stem unless set)

    def __post_init__(self) -> None:
        # train and test score with torchmetrics' multiclass accuracy, which needs two classes;
        # a checkpoint's model section (predict) may have one
        if self.model.num_classes < 2:
            raise ValueError(
                f"model.num_classes must be >= 2 to train or test (a classifier tells classes "
                f"apart), got {self.model.num_classes}"
            )
        check_limits(self)


def check_limits(cfg: RunConfig) -> None:
    """Refuses a size or count above its bound in ``LIMITS``, clips or batches of more pixels
    than ``MAX_CLIP_PIXELS`` / ``MAX_BATCH_PIXELS``, a ``data.seed`` outside ``[0, MAX_SEED]``,
    a ``data.target_fps`` outside ``TARGET_FPS_RANGE`` and more ``data.num_workers`` than this
    machine's cores take (``check_worker_count``: the run's DataLoader starts them here).

    Raises:
        ValueError: one line naming the key, its value and the bound.
    """
    for key, (bound, unit) in LIMITS.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is not None and v > bound:
                raise ValueError(
                    f"{key}={_compact(value)} is over the limit of {bound_text(bound)} {unit} "
                    "(octvideo.config.LIMITS)"
                )
    d = cfg.data
    check_worker_count("data.num_workers", d.num_workers, low=0, cap=MAX_WORKERS)
    # torch's generators take 64-bit seeds; data.seed + epoch seeds the sampler's
    if not 0 <= d.seed <= MAX_SEED:
        raise ValueError(f"data.seed must be in [0, {MAX_SEED}], got {d.seed}")
    low, high = TARGET_FPS_RANGE
    if d.target_fps is not None and not low <= d.target_fps <= high:
        raise ValueError(
            f"data.target_fps must be null (the video's own frames) or in [{low:g}, {high:g}] "
            f"frames per second, got {d.target_fps:g}"
        )
    _check_pixels(d)


def _check_pixels(d: DataConfig) -> None:
    """Refuses clips of more pixels than ``MAX_CLIP_PIXELS`` at any crop of ``d``, and batches of
    more than ``MAX_BATCH_PIXELS`` at its largest crop.

    Raises:
        ValueError: one line naming the keys, the pixels and the limit.
    """
    crops = {"train_crop_size": d.train_crop_size, "val_crop_size": d.val_crop_size}
    crops["test_crop_size"] = d.test_crop_size
    for name, crop in crops.items():
        if d.num_frames * crop * crop > MAX_CLIP_PIXELS:
            raise ValueError(
                f"data.num_frames={d.num_frames} x data.{name}={crop}^2 is "
                f"{d.num_frames * crop * crop:,} pixels a clip, over the limit of "
                f"{MAX_CLIP_PIXELS:,} (e.g. 64 frames at 512x512); use fewer frames or a smaller "
                "crop"
            )
    name, crop = max(crops.items(), key=lambda item: item[1])
    if d.batch_size * d.num_frames * crop * crop > MAX_BATCH_PIXELS:
        raise ValueError(
            f"data.batch_size={d.batch_size} clips of data.num_frames={d.num_frames} x "
            f"data.{name}={crop}^2 are {d.batch_size * d.num_frames * crop * crop:,} pixels a "
            f"batch, over the limit of {MAX_BATCH_PIXELS:,}; use a smaller data.batch_size "
            "(trainer.accumulate_grad_batches keeps the global batch)"
        )


def bound_text(bound: float) -> str:
    """A bound of ``LIMITS`` as a message gives it: a whole number in digits (``10000000``, not
    ``1e+07``), any other as ``%g``."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _compact(value: Any) -> str:
    """A number or a list of them as an override writes it: ``[1,2,2]``, ``1e+06``. (Other
    messages quote a value with ``_shown``, as YAML writes it.)"""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Loading


def shipped_configs() -> list[Path]:
    """Every config file shipped in ``configs/``, sorted."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.is_file())


def shipped_names(name: str) -> list[Path]:
    """The shipped configs ``name`` (ending in ``.yaml``) stands for: the config of that relative
    name, a short name's recipe, or, for a bare file name, every shipped config of that name."""
    shipped = shipped_configs()
    relative = {p.relative_to(CONFIG_DIR).as_posix(): p for p in shipped}
    if name in relative:
        return [relative[name]]
    alias = ALIASES.get(name.removesuffix(".yaml").removesuffix(".yml"))
    if alias is not None and alias in relative:
        return [relative[alias]]
    return [p for p in shipped if p.name == name and "/" not in name]


def _refuse_two_meanings(text: str, name: str, shipped: list[Path]) -> None:
    """Refuse ``text``, a file here and also the name of the ``shipped`` configs, naming how to
    ask for either."""
    bare = "/" not in name
    names = [p.relative_to(CONFIG_DIR).as_posix() if bare else str(p) for p in shipped]
    if ALIASES.get(name.removesuffix(".yaml").removesuffix(".yml")):
        what, which = f"the short name of {names[0]}", f"{names[0]} for the recipe"
    elif len(names) == 1:
        what, which = "a shipped config", f"{names[0]} for the shipped one"
    else:
        what, which = (
            f"{len(names)} shipped configs",
            f"one of {', '.join(names)} for a shipped one",
        )
    raise ConfigError(
        f"config name {text!r} is both a file here and {what}; use ./{text} for the file or {which}"
    )


def resolve_config_path(cfg: str | Path) -> Path:
    """A config path as given, the shipped config with that name, or a short name's recipe.

    A name may omit ``.yaml`` and may include its folder (``kinetics600/i3d_r50_8x8_in1k``); a bare
    file name must match exactly one shipped config. The short names of ``ALIASES``
    (``i3d_oct.yaml``, ``c2d_oct``, ``slowfast_oct``) are the paper's Kinetics-400 recipes. A name
    that is both a file here and a shipped config or short name is refused, not guessed: ``./NAME``
    names the file, the shipped config's folder and name the shipped one.

    Raises:
        ConfigError: nothing matches (a folder is named as such), a bare name matches several
            shipped configs, or a name is both a file here and a shipped config or short name.
    """
    text = str(cfg)
    path = Path(text).expanduser()
    name = text if text.endswith((".yaml", ".yml")) else f"{text}.yaml"
    matches = shipped_names(name)
    why = why_not_a_file(path)
    if os.path.lexists(path) and why and not path.is_dir():  # a pipe, a device, a broken link
        raise ConfigError(f"config {text!r} {why}; pass a config file (a .yaml file)")
    # the file as given, or NAME.yaml here for a NAME given without its suffix
    here = path if path.is_file() else Path(name).expanduser()
    if here.is_file():
        if matches and not any(here.samefile(p) for p in matches):  # not run in configs/
            _refuse_two_meanings(text if here is path else name, name, matches)
        return here
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        options = ", ".join(p.relative_to(CONFIG_DIR).as_posix() for p in matches)
        raise ConfigError(f"config name {cfg!r} is ambiguous: use one of {options}")
    if path.is_dir():
        raise ConfigError(f"config {text!r} is a folder; pass a config file (a .yaml file)")
    shipped = shipped_configs()
    relative = [p.relative_to(CONFIG_DIR).as_posix() for p in shipped]
    shorts = [f"{short}.yaml" for short in ALIASES]
    close = difflib.get_close_matches(name, [*shorts, *relative], n=1) or difflib.get_close_matches(
        Path(name).name, [*shorts, *(p.name for p in shipped)], n=1
    )
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"config {text!r} is neither a file nor a shipped config{hint} (short names: "
        f"{short_names()})"
    )


def short_names() -> str:
    """The short config names and the recipes they stand for, one phrase."""
    firsts: dict[str, list[str]] = {}
    for short, target in ALIASES.items():
        firsts.setdefault(target, []).append(f"{short}.yaml")
    return ", ".join(f"{' / '.join(names)} = {Path(t).stem}" for t, names in firsts.items())


def _suggest(key: str) -> str:
    """``"; did you mean 'KEY'?"`` for the valid key closest to ``key``, or ""."""
    close = difflib.get_close_matches(key, _VALID_KEYS, n=1, cutoff=0.5)
    if not close:
        # The last component alone often finds the right section for a misplaced key.
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in _VALID_KEYS if k.rsplit(".", 1)[-1] == leaf][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def flatten(node: Any, prefix: str = "", *, where: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) of a nested mapping (``{"model": {"alpha": 0.1}}`` gives
    ``("model.alpha", 0.1)``); lists and empty mappings below the top are leaves. (A config
    file's or override's keys are checked as YAML reads them: ``KeyNotText``.)

    Raises:
        ConfigError: a key that is not a string (``_not_a_name``), after ``where`` (what holds
            the mapping).
    """
    if isinstance(node, dict) and (not prefix or node):
        for key, value in node.items():
            if not isinstance(key, str):
                at = f"{where}: " if where else ""
                raise ConfigError(at + _not_a_name(prefix + _shown(key), key, "it is"))
            yield from flatten(value, f"{prefix}{key}.", where=where)
    else:
        yield prefix[:-1], node


def _key_hints(schema: Any, prefix: str = "") -> Iterator[tuple[str, tuple[Any, Any]]]:
    """(dotted key, (type hint, default)) of every key of a structured config, sections
    included: the one walk over the schema that the key tables below filter."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        yield key, (hint, default)
        if dataclasses.is_dataclass(hint):
            yield from _key_hints(hint, f"{key}.")


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, ``(hint, False)`` for any other hint."""
    args = typing.get_args(hint)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if union and type(None) in args and len(args) == 2:
        (inner,) = (a for a in args if a is not type(None))
        return inner, True
    return hint, False


def _is_text(hint: Any) -> bool:
    """Whether a key of this hint holds text (``str``, ``str | None`` and tuples of ``str``):
    paths, names and choices."""
    return hint in (str, str | None) or (
        typing.get_origin(hint) is tuple and set(typing.get_args(hint)) <= {str, Ellipsis}
    )


def _typed(hint: Any) -> tuple[type, bool, bool] | None:
    """(type, takes null, takes a list) for a hint of whole numbers, numbers or true/false,
    alone or in a list or tuple; None for any other hint."""
    hint, optional = _unwrap_optional(hint)
    many = typing.get_origin(hint) in (list, tuple)
    kinds = {a for a in typing.get_args(hint) if a is not Ellipsis} if many else {hint}
    if len(kinds) == 1 and (kind := kinds.pop()) in _TAKES:
        return kind, optional, many
    return None


# what a key of each type takes, in words: one value, and several
_TAKES = {
    bool: ("true or false", "true or false values"),
    int: ("a whole number", "whole numbers"),
    float: ("a number", "numbers"),
}
_KEY_HINTS = dict(_key_hints(RunConfig))
_VALID_KEYS = tuple(_KEY_HINTS)
_TEXT_KEYS = frozenset(key for key, (hint, _) in _KEY_HINTS.items() if _is_text(hint))
_TYPED_KEYS = {
    key: typed for key, (hint, _) in _KEY_HINTS.items() if (typed := _typed(hint)) is not None
}
# the config's sections: a mapping given for one sets the keys it names (``model={alpha: 0.5}``)
SECTIONS = frozenset(
    name
    for name, hint in typing.get_type_hints(RunConfig).items()
    if dataclasses.is_dataclass(hint)
)
# What the items of a tuple key stand for, and examples for the keys whose default shows none
# (an empty list, mapping or text) or too much (every video suffix)
_ITEM_NAMES = {
    "model.octave": "[T, H, W]",
    "data.train_jitter_scales": "[low, high]",
    "data.mean": "[R, G, B]",
    "data.std": "[R, G, B]",
}
_EXAMPLES: dict[str, Any] = {
    "data": {"num_frames": 8},
    "model.extra": {"width": 32},
    "data.video_extensions": [".mp4", ".webm"],
    "optim.step_epochs": [30, 60],
}
_COUNTS = {2: "two", 3: "three"}


def _key_takes(key: str) -> str | None:
    """What a key of the schema takes, in words with an example where it holds several values
    (``"a list of three whole numbers [T, H, W] (like [1, 2, 2])"``, ``"a mapping of its keys
    (like {lr: 0.1})"``); None for a key of any type (``model.alpha``), whose section checks it."""
    hint, default = _KEY_HINTS[key]
    if dataclasses.is_dataclass(hint):
        first = dataclasses.fields(hint)[0].name
        example = _EXAMPLES.get(key, {first: getattr(default, first)})
        return f"a mapping of its keys (like {_yaml_text(example)})"
    example = _yaml_text(_EXAMPLES.get(key, plain(default)))
    hint, optional = _unwrap_optional(hint)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    null = " or null" if optional else ""
    if origin is dict:
        return f"a mapping of keyword arguments (like {example}; {{}} for none){null}"
    if origin in (list, tuple):
        several = "text values" if args[0] is str else _TAKES[args[0]][1]
        count = "" if args[-1] is Ellipsis or origin is list else _COUNTS.get(len(args), len(args))
        count = f"{count} " if count else ""
        names = f" {_ITEM_NAMES[key]}" if key in _ITEM_NAMES else ""
        return f"a list of {count}{several}{names} (like {example}){null}"
    if hint is str:
        return f"text{null}"
    return _TAKES[hint][0] + null if hint in _TAKES else None


def _check_text(key: str, value: Any, where: str, text: str | None) -> None:
    """Refuses a number or a true/false for a text key: YAML reads ``0123``, ``1e3`` and ``False``
    as 123, 1000.0 and False, which OmegaConf would turn into the text ``'123'``, ``'1000.0'``
    and ``'False'``, a file or a choice of another name than the one typed.

    A list for a key of one text (and the other way round) is left to OmegaConf, whose refusal
    ``_apply`` words as what the key takes: quoting would not make it one.

    Args:
        text: the value as typed (an override's text), or None where only the YAML value is
            known (a config file).

    Raises:
        ConfigError: one line naming the key, what the value reads as, and to quote it.
    """
    if isinstance(value, list) != (typing.get_origin(_KEY_HINTS[key][0]) is tuple):
        return
    values = value if isinstance(value, list) else [value]
    found = next((v for v in values if isinstance(v, bool | int | float)), None)
    if found is None:
        return
    kind = "true or false" if isinstance(found, bool) else "a number"
    if text is not None and not isinstance(value, list):
        typed = text.strip()
        raise ConfigError(
            f"{where}: {key}={typed} reads as {kind}; quote it ({key}=\"'{typed}'\") to mean "
            "the text"
        )
    shown = str(found).lower() if isinstance(found, bool) else repr(found)
    what = "an item of " if isinstance(value, list) else ""
    raise ConfigError(
        f"{where}: {what}{key} reads as {kind} ({shown}); quote it ('...') to mean the text as "
        "typed"
    )


def _check_typed(key: str, value: Any, where: str) -> None:
    """Refuses a value of a number or true/false key (``_TYPED_KEYS``) that YAML 1.2 does not
    read as one: OmegaConf would convert the text ``6_0``, ``' 6'``, ``nan`` or ``yes`` and the
    number ``2`` (as Python reads them: 60, 6, NaN, True, True), where YAML 1.2 reads them as text
    and a number. A whole number is a number too; a list for a key of one value (and the other
    way round) and null are left to OmegaConf, whose refusal ``_apply`` words as what the key
    takes.

    Raises:
        ConfigError: one line naming the key, what it takes, the value and, where Python reads
            it as one, how to write it.
    """
    kind, _, many = _TYPED_KEYS[key]
    if many != isinstance(value, list):
        return
    for item in value if many else [value]:
        if item is None or is_kind(item, kind):
            continue
        inside = f" in {_shown(value)}" if many else ""
        raise ConfigError(
            f"{where}: {key} takes {_key_takes(key)}, got {_shown(item)}{inside}"
            f"{_how_to_write(item, kind)}"
        )


_SHOWN_CHARS = 200


def _shown(value: Any) -> str:
    """``value`` in a one-line message: text quoted (``'abc'``), anything else as YAML writes it
    inline (``null``, ``[1, 2]``, ``{a: 1}``; Python's repr where that takes several lines), cut
    to ``_SHOWN_CHARS`` characters."""
    shown = _yaml_text(value)
    if isinstance(value, str) or "\n" in shown:
        shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."


def _how_to_write(value: Any, kind: type) -> str:
    """``", which YAML 1.2 reads as text; write 60"`` for a ``value`` that Python reads as a
    ``kind`` value (``'6_0'``), ``"; write 6"`` for one YAML 1.2 reads as another kind (6.0), or
    ``""``."""
    spelling = _yaml12_spelling(value, kind)
    if spelling is None:
        return ""
    text = ", which YAML 1.2 reads as text" if isinstance(value, str) else ""
    return f"{text}; write {spelling}"


def _yaml_text(value: Any) -> str:
    """``value`` as YAML writes it inline (``true``, ``.inf``, ``[1, 2]``)."""
    return dump_yaml(value, default_flow_style=True, width=2**16).removesuffix("\n...\n").strip()


def _yaml12_spelling(value: Any, kind: type) -> str | None:
    """How to write in YAML 1.2 the ``kind`` value that Python (and so OmegaConf) reads in
    ``value`` (``'6_0'``: 60, ``'yes'`` and ``1``: true, ``'nan'``: .nan); None if none."""
    if kind is bool:
        word = str(value).strip().lower() if isinstance(value, str | int) else ""
        if word in ("y", "yes", "on", "true", "1"):
            return "true"
        return "false" if word in ("n", "no", "off", "false", "0") else None
    if isinstance(value, bool):
        return None
    if kind is int and isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    try:
        number = int(value) if kind is int else float(value)
    except ValueError:
        return None
    # no number key takes .nan or .inf: naming them would point at a second refusal
    return _yaml_text(number) if math.isfinite(number) else None


def _apply(base: DictConfig, key: str, value: Any, where: str, text: str | None = None) -> None:
    """Sets ``key`` to ``value`` in ``base``; ``text`` is the value as typed, where known.

    A mapping given for a section (``model={alpha: 0.1}``) sets the keys it names, each checked
    as if given alone; a mapping given for any other key (``model.extra={}``) replaces its
    value, as a number or a list does: the keys it leaves out are gone. A value of the wrong
    shape (a number for a list, a list of another length, null for a key that takes none, a
    number for a section) is refused naming what the key takes (``_key_takes``).
    """
    if key in SECTIONS and isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(
                    f"{where}: " + _not_a_name(f"{key}.{_shown(name)}", name, "it is")
                )
            _apply(base, f"{key}.{name}", item, where)
        return
    if key not in _VALID_KEYS and not _under_free_mapping(key):
        raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key)}")
    if key in _TEXT_KEYS:
        _check_text(key, value, where, text)
    if key in _TYPED_KEYS:
        _check_typed(key, value, where)
    try:
        OmegaConf.update(base, key, _literal(value), merge=False)
        # a "${" value of a number or bool field is stored as an interpolation and checked
        # only when read: read it now (the cause says what the field takes)
        OmegaConf.select(base, key)
    except OmegaConfBaseException as err:
        takes = _key_takes(key) if key in _KEY_HINTS else None
        if takes is not None:  # OmegaConf's words are its classes' ("not a TupleConfig")
            raise ConfigError(f"{where}: {key} takes {takes}, got {_shown(value)}") from err
        reason = first_line(err.__cause__ or err)
        if isinstance(value, str):  # the value as given, not as escaped for OmegaConf
            reason = reason.replace(_literal(value), value)
        raise ConfigError(f"{where}: bad value for {key!r}: {reason}") from err


# "${" and the backslashes right before it: OmegaConf reads \${ as a literal "${", and each \\
# right before one as a literal backslash
_INTERPOLATION = re.compile(r"(\\*)\$\{")


def _literal(value: Any) -> Any:
    """``value`` with every ``${`` escaped, so OmegaConf keeps it as text.

    Config values are data, not templates: ``a${b}`` would fail to resolve and
    ``${oc.env:HOME}`` would be replaced by an environment variable. OmegaConf turns the escaped
    text back into the text as given when the config is resolved.
    """
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


_FREE_MAPPINGS = ("model.extra",)


def _under_free_mapping(key: str) -> bool:
    """Keys inside a free-form mapping section (``model.extra.*``) are not checked by name."""
    return any(key.startswith(f"{k}.") for k in _FREE_MAPPINGS)


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
# What PyYAML's YAML 1.1 resolves in plain text and the YAML 1.2 core schema does not: its
# numbers (below), true/false spelt yes, no, on or off, dates (2024-01-01) and "=". YAML 1.2
# reads all of these as text.
_YAML11_TAGS = (
    _INT_TAG,
    _FLOAT_TAG,
    _BOOL_TAG,
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",
)
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
# The numbers of the YAML 1.2 core schema. PyYAML implements YAML 1.1, where ``010`` is octal
# (8), ``1:20`` is base 60 (80) and ``1e-1`` (an exponent without a dot) is text: a config means
# 10, the text ``1:20`` (refused where a number is wanted) and 0.1.
# (the forms options take too: ``octvideo.argtypes``)
_YAML12_INT = re.compile(rf"^(?:{WHOLE.pattern})$")
_YAML12_FLOAT = re.compile(rf"^(?:{DECIMAL.pattern}|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


def _not_a_name(shown: str, key: Any, reads: str = "YAML reads it as") -> str:
    """Says that the config key ``key``, ``shown`` as its reader has it (the text of a YAML key
    as typed, ``0x10``; a stored config's dotted key, ``model.true``), is not a name: it
    ``reads`` a number, true/false, null or a collection."""
    if isinstance(key, bool):
        kind = "true or false"
    elif isinstance(key, int | float):
        kind = "a number"
    else:
        kind = "null" if key is None else "a list or mapping"
    return (
        f"config key {shown} is not a name ({reads} {kind}); keys are names like model, lr or width"
    )


# What a config refuses of YAML's features, in every message that refuses one
_NO_REFERENCES = "configs take no YAML anchors, aliases or << merge keys"


class RefusedYaml(yaml.constructor.ConstructorError):
    """Valid YAML that a config refuses (an anchor, an alias, a merge key, a key that is not
    text): ``problem`` says what and where to look, ``problem_mark`` where it stands; its reader
    adds the file (``file:line:column``) or the override."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(None, None, problem, mark)


class KeyNotText(RefusedYaml):
    """A mapping key that YAML reads as a number, true/false, null or a collection: settings,
    sections and ``model.extra`` keywords are all names. ``problem`` says so in words
    (``_not_a_name``), naming the key as typed (``0x10``, not 16) when it is a scalar, for ``key``
    at ``node``'s start; its reader adds where (``file:line:column``)."""

    def __init__(self, key: Any, node: yaml.Node) -> None:
        typed = node.value if isinstance(node, yaml.ScalarNode) else ""
        if not typed or len(typed) > _SHOWN_CHARS:  # ``_shown`` cuts a long one
            typed = _shown(key)
        super().__init__(_not_a_name(typed, key), node.start_mark)
        self.key = key


class _DataLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors, aliases or merge keys, with a depth bound, with
    unique keys and with the numbers and true/false of YAML 1.2.

    An alias (``*name``) inserts its anchor's node again; nested ones grow exponentially, so a
    1 KB file can expand to gigabytes ("billion laughs"). A merge key (``<<: {...}``, ``<<:
    *name``) hides keys: a key the mapping also gives replaces the merged one whole, so a merged
    section's other keys were silently lost. Configs need none of them, so an anchor (``&name``,
    which only an alias or a merge reads), an alias and a merge key are each refused where they
    appear (``RefusedYaml``). The composer recurses once per
    nesting level, so a deep ``[[[[...`` would exhaust the stack: more than ``MAX_YAML_DEPTH``
    levels are refused. A key given twice in one mapping is refused (PyYAML keeps the last one,
    so a second ``model:`` section would silently reset the first one's keys to their
    defaults), and so is a key that is not text (``KeyNotText``), where it stands. Numbers and
    true/false are read as YAML 1.2 reads them (``_YAML12_INT``, ``_YAML12_FLOAT``,
    ``_YAML12_BOOL``); ``yes``, ``off`` and dates are text.
    """

    _depth = 0

    # YAML 1.1's resolvers of _YAML11_TAGS out, YAML 1.2's in (first characters they can start
    # with)
    yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag not in _YAML11_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            self._check_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _check_keys(self, node: yaml.MappingNode) -> None:
        """Refuses a merge key (``<<``), a key of the mapping ``node`` that is not text
        (``KeyNotText``) or that it gives twice, naming the line of the first."""
        lines: dict[Any, int] = {}  # key -> the line it is first given on
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise RefusedYaml(
                    f"found the merge key <<: {_NO_REFERENCES}; write the keys out",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise KeyNotText(key, key_node)
            first = lines.get(key)
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (first at line {first}); give each key once",
                    key_node.start_mark,
                )
            lines[key] = key_node.start_mark.line + 1

    def construct_yaml_int(self, node: Any) -> int:
        """A YAML 1.2 integer: decimal (leading zeros too), ``0o`` octal or ``0x`` hex."""
        text = str(self.construct_scalar(node))
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        try:
            return int(text[2:] if base != 10 else text, base)
        except ValueError as err:  # an explicit !!int tag on something else
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a YAML 1.2 integer", node.start_mark
            ) from err

    def construct_yaml_float(self, node: Any) -> float:
        """A YAML 1.2 float; ``.inf`` and ``.nan`` (Python spells them without the dot)."""
        text = str(self.construct_scalar(node))
        if text.lower().lstrip("+-") in (".inf", ".nan"):
            text = text.replace(".", "", 1)
        try:
            return float(text)
        except ValueError as err:  # an explicit !!float tag on something else
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a YAML 1.2 float", node.start_mark
            ) from err

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise RefusedYaml(
                f"found the alias *{event.anchor}: {_NO_REFERENCES}; write the value out",
                event.start_mark,
            )
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise RefusedYaml(
                f"found the anchor &{event.anchor}: {_NO_REFERENCES}; leave it out",
                event.start_mark,
            )
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested more than {MAX_YAML_DEPTH} levels deep",
                self.peek_event().start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_DataLoader.add_constructor(_INT_TAG, _DataLoader.construct_yaml_int)
_DataLoader.add_constructor(_FLOAT_TAG, _DataLoader.construct_yaml_float)
_DataLoader.add_implicit_resolver(_INT_TAG, _YAML12_INT, list("-+0123456789"))
_DataLoader.add_implicit_resolver(_FLOAT_TAG, _YAML12_FLOAT, list("-+.0123456789"))
_DataLoader.add_implicit_resolver(_BOOL_TAG, _YAML12_BOOL, list("tTfF"))


class _DataDumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes a string that YAML 1.2 or YAML 1.1 would read as
    something else: the text ``1e5`` (a folder's name) is quoted, since YAML 1.2 reads it as a
    number, where YAML 1.1's dumper writes it bare; ``yes`` is quoted for YAML 1.1 readers."""

    yaml_implicit_resolvers: dict[Any, list[Any]] = {}
    for _table in (_DataLoader.yaml_implicit_resolvers, yaml.SafeLoader.yaml_implicit_resolvers):
        for _first, _resolvers in _table.items():
            yaml_implicit_resolvers.setdefault(_first, []).extend(_resolvers)
    del _table, _first, _resolvers


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as YAML text that ``load_config`` reads back as the same values."""
    return yaml.dump(data, Dumper=_DataDumper, allow_unicode=True, **options)


def _yaml_problem(err: yaml.YAMLError) -> tuple[str, str]:
    """(``"line:column"`` or ``""``, the problem in one line) of a PyYAML error, whose text spans
    several lines with a quote of the offending line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if problem is None:  # a ReaderError (a control character) and other unmarked errors
        return "", one_line(err)
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context:
        at = f" at line {context_mark.line + 1}" if context_mark is not None else ""
        problem = f"{problem} ({context}{at})"
    return (f"{mark.line + 1}:{mark.column + 1}" if mark is not None else ""), problem


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_DataLoader)  # a SafeLoader: plain data types only


def read_config_file(path: Path) -> Any:
    """The YAML content of a config file, read as data (see ``_DataLoader``).

    Raises:
        ConfigError: one line naming the file: it cannot be read, is over ``MAX_CONFIG_BYTES``,
            is not UTF-8, is not valid YAML or has what a config refuses of it (``RefusedYaml``)
            (``file:line:column: problem``).
    """
    try:
        text = read_utf8(path, MAX_CONFIG_BYTES)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror or err})") from err
    except TextFileError as err:
        if err.line is None:
            raise ConfigError(
                f"{path}: over {MAX_CONFIG_BYTES // 2**10} KiB, which no config is (a few KB of "
                "settings); is this the right file?"
            ) from err
        raise ConfigError(
            f"{path}:{err.line}: not UTF-8 text (byte 0x{err.byte:02x}); save the config as UTF-8"
        ) from err
    try:
        return _parse_yaml(text)
    except RefusedYaml as err:
        where, problem = _yaml_problem(err)
        raise ConfigError(f"{path}:{where}: {problem}") from err
    except yaml.YAMLError as err:
        where, problem = _yaml_problem(err)
        raise ConfigError(
            f"{path}:{where + ':' if where else ''} not valid YAML: {problem}"
        ) from err


def override_list(overrides: Sequence[str]) -> list[str]:
    """``overrides`` as a list of ``key=value`` strings, refusing what is not one: a single
    string (its letters would be read as overrides) or an item that is not a string.

    Raises:
        ConfigError: one line naming ``overrides``, what it takes and what it got.
    """
    takes = "overrides takes a list of 'key=value' strings"
    if isinstance(overrides, str):
        raise ConfigError(f"{takes}, got one string: pass [{overrides!r}]")
    if isinstance(overrides, Mapping) or not isinstance(overrides, Iterable):
        raise ConfigError(f"{takes}, got {_repr(overrides)}")
    items = list(overrides)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{takes}, got the item {_repr(item)}")
    return items


def _repr(value: Any) -> str:
    """A Python value as a one-line message gives it: its ``repr``, cut to ``_SHOWN_CHARS``."""
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 3] + "..."


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """``key=value`` strings to (key, YAML-parsed value) pairs; YAML as in config files (no
    anchors, aliases or merge keys, bounded depth), and a ``${...}`` stays text.

    Raises:
        ConfigError: ``overrides`` that is not a list of strings (``override_list``), an item
            without ``=``, or a value that is not YAML or has what a config refuses of it
            (``RefusedYaml``).
    """
    pairs = []
    for item in override_list(overrides):
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        try:
            value = _parse_yaml(text) if text else ""
        except RefusedYaml as err:
            raise ConfigError(f"override {key.strip()!r}: {err.problem} (in {text})") from err
        except yaml.YAMLError as err:
            where, problem = _yaml_problem(err)
            at = f" at {where}" if where else ""
            raise ConfigError(
                f"override {key.strip()!r}: {text!r} is not a YAML value{at}: {problem}"
            ) from err
        pairs.append((key.strip(), value))
    return pairs


def _to_dataclass(schema: Any, data: dict[str, Any]) -> Any:
    """Build a (nested) dataclass from plain values, running every ``__post_init__``."""
    hints = typing.get_type_hints(schema)
    kwargs = {}
    for f in dataclasses.fields(schema):
        value = data[f.name]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = _to_dataclass(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return schema(**kwargs)


def load_config(
    cfg: str | Path | RunConfig | None = None, overrides: Sequence[str] = (), *, name: str = ""
) -> RunConfig:
    """Defaults, then the YAML file, then ``key=value`` overrides, validated.

    Args:
        cfg: a config path or shipped config name; a ``RunConfig`` (one loaded and then changed
            in Python), checked key by key as a file is (``RUN_CONFIG``) and copied, never
            changed; None = defaults only.
        overrides: ``key=value`` strings applied after the file.
        name: the run's name when the config does not set one (default: the file's stem).

    Raises:
        ConfigError: missing file, unknown key, wrong type or impossible value; names the key.
    """
    overrides = override_list(overrides)
    base = OmegaConf.structured(RunConfig)
    stem = name
    if isinstance(cfg, RunConfig):
        for key, value in [*_attributes(cfg), *flatten(to_dict(cfg), where=RUN_CONFIG)]:
            _apply(base, key, value, RUN_CONFIG)
    elif cfg is not None:
        path = resolve_config_path(cfg)
        stem = stem or path.stem
        content = read_config_file(path) or {}
        if not isinstance(content, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        for key, value in flatten(content):
            _apply(base, key, value, str(path))
    for item, (key, value) in zip(overrides, parse_overrides(overrides), strict=True):
        _apply(base, key, value, "override", text=item.partition("=")[2])
    if not base.name:
        base.name = stem or "run"
    return _resolved(base)


def _attributes(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of each attribute set in Python on a config or its sections that is
    none of their fields (``cfg.data.batchsize = 8``), which ``to_dict`` would leave out: for
    ``_apply`` to refuse as an unknown key, naming the closest valid one."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    for name, value in vars(cfg).items():
        if name not in fields:
            yield f"{prefix}{name}", value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from _attributes(value, f"{prefix}{name}.")


def _resolved(base: DictConfig) -> RunConfig:
    """The ``RunConfig`` of ``base``, every section's ``__post_init__`` run.

    Raises:
        ConfigError: an impossible value (the section's message).
    """
    values = canonical(OmegaConf.to_container(base, resolve=True, structured_config_mode=None))
    try:
        cfg = _to_dataclass(RunConfig, values)
        check_network(cfg.model)  # the sections' own checks first: their messages are plainer
        check_accelerator_here(cfg.trainer.accelerator)
        return cfg
    except ValueError as err:
        raise ConfigError(str(err)) from err


def check_accelerator_here(accelerator: str) -> None:
    """Refuses a ``trainer.accelerator`` whose device this machine lacks (``gpu`` or ``cuda``
    where this PyTorch finds no CUDA GPU, ``mps`` where it finds no MPS), when the config loads:
    Lightning refuses it only when the trainer is made, after the lists are read, in its own
    words ("HINT: Try running pip install ...").

    Raises:
        ValueError: ``trainer.accelerator=gpu: no such device on this machine (...); ...``.
    """
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        found = "no CUDA GPU"
    elif accelerator == "mps" and not torch.backends.mps.is_available():
        found = "no Apple MPS device"
    else:
        return
    raise ValueError(
        f"trainer.accelerator={accelerator}: no such device on this machine (PyTorch "
        f"{torch.__version__} finds {found}); use trainer.accelerator=cpu, or auto to take "
        "the device there is"
    )


# The keys that name a file or folder. A leading ``~`` or ``~user`` in one is that home folder, as
# in ``--cfg`` (``resolve_config_path``) and a shell: ``canonical`` expands it, so every reader of
# the config (the lists, the weights, the run folder) and the config.yaml a run writes see the path
# itself. ``$HOME`` is not expanded: config values are data (a ``${...}`` stays text too).
PATH_KEYS = frozenset(
    {
        "model.pretrained",
        "data.root",
        "data.train_list",
        "data.val_list",
        "data.test_list",
        "data.classes_file",
        "test.out_dir",
        "output.root",
        "output.dir",
    }
)


def canonical(data: dict[str, Any], schema: Any = RunConfig, prefix: str = "") -> dict[str, Any]:
    """``data``, a config as plain values (``to_dict``'s form), with one spelling for the values
    that mean the same: an optional text key's ``""`` is null (``model.pretrained``: both are
    random init), and a path key's leading ``~`` is the home folder (``PATH_KEYS``). Every config
    loaded goes through it, and a config stored by an earlier version (a plan.json with
    ``pretrained: ""``) compares equal to today's once passed through it too. Keys the schema does
    not know are kept as they are, for the caller to name.
    """
    hints = typing.get_type_hints(schema)
    out = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = canonical(value, hint, f"{prefix}{key}.")
        elif value == "" and hint == (str | None):
            value = None
        elif f"{prefix}{key}" in PATH_KEYS and isinstance(value, str):
            value = os.path.expanduser(value)
        out[key] = value
    return out


def plain(value: Any) -> Any:
    """``value`` as plain dicts, lists and scalars (mappings to dicts, tuples to lists): a copy
    that shares no dict or list with ``value``, safe for YAML, JSON and checkpoints."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config (section) as plain dicts, lists and scalars: safe for YAML, JSON and checkpoints."""
    return plain(dataclasses.asdict(cfg))


# what a refusal of a RunConfig given to load_config (run_train, run_test) names as its place
RUN_CONFIG = "RunConfig"


def from_dict(data: dict[str, Any]) -> RunConfig:
    """The inverse of :func:`to_dict`, with the same checks as :func:`load_config`."""
    base = OmegaConf.structured(RunConfig)
    for key, value in flatten(data, where="stored config"):
        _apply(base, key, value, "stored config")
    return _resolved(base)


def save_config(cfg: RunConfig, path: Path) -> Path:
    """Write the resolved config as YAML (loadable again with ``--cfg``), atomically: a reader
    sees the old file or the whole new one, and a symbolic link at ``path`` is refused rather
    than written through (it would overwrite the file it points to).

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe or a device.
        OutputWriteError: it cannot be written; an earlier file is kept.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, dump_yaml(to_dict(cfg), sort_keys=False))
