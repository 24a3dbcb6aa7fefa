"""Settings of the data layer: where the videos are and how clips are sampled and transformed.

``DataConfig`` is a plain dataclass of YAML-able fields (str, int, float, bool, tuples and lists of
those, ``None``). The engine's config layer nests it as the ``data`` section; nothing here reads
YAML. ``__post_init__`` only rejects values of another type than the field's (a bool for a whole
number, a str for a tuple of suffixes, the text "8" for a number) and impossible values, naming the
field; it never changes a value.

The defaults are the Kinetics recipe of the Octave Convolution paper's video models (Chen et al.,
"Drop an Octave", ICCV 2019, Sec. 4.3) and of the Non-local video ResNets it builds on: 8 frames at
stride 8, short-side scale jitter 256-320, 224 crop and flip for training; 10 temporal clips x 3
spatial crops of 256 at short side 256 for testing.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import reprlib
import typing
from dataclasses import dataclass, fields

from octvideo.argtypes import is_whole
from octvideo.data.annotations import VIDEO_EXTENSIONS

ANNOTATION_FORMATS = ("auto", "lines", "kinetics_csv", "folders")
DECODERS = ("decord", "pyav", "auto")
# The largest short side, in pixels, a decode resizes frames to (``decode(short_side=)``,
# ``data.decode_short_side``; octvideo.config.LIMITS bounds the config key alike): a typo of an
# extra digit would otherwise make each frame of a clip hundreds of megabytes.
MAX_RESIZE_SHORT_SIDE = 2048


@dataclass
class DataConfig:
    """Data section of the run config.

    Paths in annotation files are resolved against ``root`` unless they are absolute.
    """

    root: str = ""  # folder the annotation paths are relative to ("" = the annotation's folder)
    train_list: str = ""  # training annotations: lines file, Kinetics CSV or class-folder tree
    val_list: str = ""  # validation annotations (one centre clip per video during training)
    test_list: str = ""  # test annotations (multi-view); "" = use val_list
    annotation_format: str = "auto"  # "auto" | "lines" | "kinetics_csv" | "folders"
    classes_file: str = ""  # class names, one a line; written from the train list when absent
    # for folders; the default is the suffixes every command counts as videos (VIDEO_EXTENSIONS)
    video_extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    decoder: str = "auto"  # "auto" (decord, then PyAV for a file decord fails) | "decord" | "pyav"
    decode_short_side: int | None = (
        None  # resize frames on decode to this short side (None = as is)
    )
    num_frames: int = 8  # T: frames per clip
    sampling_rate: int = 8  # tau: stride between sampled frames
    # count the stride at this frame rate: tau frames at target_fps are tau * fps / target_fps
    # frames of a video at fps (PySlowFast's DATA.TARGET_FPS, 30); None = the video's own frames
    target_fps: float | None = None
    train_jitter_scales: tuple[int, int] = (256, 320)  # random short side, inclusive range
    train_crop_size: int = 224  # square training crop
    val_crop_size: int = 224  # centre crop for the per-epoch validation (short side = jitter min)
    test_short_side: int = 256  # short side before the test crops
    test_crop_size: int = 256  # square test crop
    test_num_clips: int = 10  # N temporal clips per test video
    test_num_crops: int = 3  # 1 (centre) or 3 (left/top, centre, right/bottom) spatial crops
    random_flip: bool = True  # horizontal flip in training
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)  # per channel, on [0, 1] pixels
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)  # per channel, on [0, 1] pixels
    slowfast_alpha: int | None = None  # speed ratio; when set the video is a list [slow, fast]
    batch_size: int = 8  # per device
    num_workers: int = 4  # DataLoader worker processes
    pin_memory: bool = True  # page-locked batches (only used when CUDA is available)
    persistent_workers: bool = True  # keep workers between epochs (when num_workers > 0)
    prefetch_factor: int = 2  # batches prefetched per worker (when num_workers > 0)
    max_retries: int = 10  # training: other videos tried in place of a bad one before failing
    allow_outside_root: bool = False  # accept list paths like ../x.mp4 that climb out of root
    seed: int = 0  # base of every random draw (clip start, scale, crop, flip, shuffling)

    def __post_init__(self) -> None:
        # from Python: a pathlib.Path for a path, numpy's numbers for numbers, kept as the
        # str, int and float that the readers, torch and torchvision take
        for name in ("root", "train_list", "val_list", "test_list", "classes_file"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list | tuple):
                setattr(self, f.name, type(value)(plain_number(v) for v in value))
            else:
                setattr(self, f.name, plain_number(value))
        check_types(self, "data")
        if self.annotation_format not in ANNOTATION_FORMATS:
            raise ValueError(
                f"data.annotation_format: {self.annotation_format!r} is not one of "
                f"{', '.join(ANNOTATION_FORMATS)}"
            )
        if self.decoder not in DECODERS:
            raise ValueError(f"data.decoder: {self.decoder!r} is not one of {', '.join(DECODERS)}")
        for name in (
            "num_frames",
            "sampling_rate",
            "train_crop_size",
            "val_crop_size",
            "test_short_side",
            "test_crop_size",
            "test_num_clips",
            "batch_size",
            # used only when num_workers > 0, checked always: a later num_workers=N override
            # would hand 0 to the DataLoader, whose workers assert prefetch_factor > 0
            "prefetch_factor",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.target_fps is not None and not (
            math.isfinite(self.target_fps) and self.target_fps > 0
        ):
            raise ValueError(
                f"data.target_fps must be > 0 or null (the video's own frames), got "
                f"{self.target_fps}"
            )
        low, high = self.train_jitter_scales
        if not 1 <= low <= high:
            raise ValueError(
                f"data.train_jitter_scales must be (low, high) with 1 <= low <= high, got "
                f"{tuple(self.train_jitter_scales)}"
            )
        if low < self.train_crop_size:
            raise ValueError(
                f"data.train_jitter_scales low end {low} is smaller than data.train_crop_size "
                f"{self.train_crop_size}: the crop would not fit"
            )
        if low < self.val_crop_size:
            # validation clips are resized to short side = the low end (transforms.val_transform)
            raise ValueError(
                f"data.train_jitter_scales low end {low} is smaller than data.val_crop_size "
                f"{self.val_crop_size}: the crop would not fit"
            )
        if self.test_short_side < self.test_crop_size:
            raise ValueError(
                f"data.test_short_side {self.test_short_side} is smaller than "
                f"data.test_crop_size {self.test_crop_size}"
            )
        if self.test_num_crops not in (1, 3):
            raise ValueError(f"data.test_num_crops must be 1 or 3, got {self.test_num_crops}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("data.mean and data.std need 3 values each, std > 0")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise ValueError(
                f"data.mean and data.std must be finite, got {tuple(self.mean)}, {tuple(self.std)}"
            )
        if self.slowfast_alpha is not None and not 1 <= self.slowfast_alpha <= self.num_frames:
            raise ValueError(
                f"data.slowfast_alpha must be in [1, num_frames={self.num_frames}], "
                f"got {self.slowfast_alpha}"
            )
        for name in ("num_workers", "max_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.{name} must be >= 0, got {getattr(self, name)}")
        if self.decode_short_side is not None and self.decode_short_side < 1:
            raise ValueError(
                f"data.decode_short_side must be null (no resize) or >= 1, got "
                f"{self.decode_short_side}"
            )

    @property
    def slow_frames(self) -> int:
        """Frames of the Slow pathway's clip (``num_frames`` counts the Fast one's for SlowFast),
        the "8" of an "8x8" recipe; ``num_frames`` without SlowFast pathways."""
        return self.num_frames // (self.slowfast_alpha or 1)


def check_data_config(cfg: object, who: str) -> DataConfig:
    """``cfg`` when it is a ``DataConfig``.

    Raises:
        TypeError: anything else (None, a dict of its fields, the whole run config), in one line
            naming ``who`` and how to make one.
    """
    if not isinstance(cfg, DataConfig):
        raise TypeError(
            f"{who} takes a DataConfig (octvideo.data.DataConfig; a run config's .data), got "
            f"{type(cfg).__name__}; build one with DataConfig(**fields)"
        )
    return cfg


# what a field of each type takes, in words: one value, and several
_KINDS = {
    bool: ("True or False", "True/False values"),
    int: ("a whole number", "whole numbers"),
    float: ("a number", "numbers"),
    str: ("text (a str)", "strings"),
}


def _takes(kind: type) -> tuple[str, str]:
    """What a field of ``kind`` takes, in words: one value, and several."""
    return _KINDS.get(kind, (f"a {kind.__name__}", f"{kind.__name__} values"))


def is_kind(value: object, kind: type) -> bool:
    """Whether ``value`` is a ``kind`` value: a bool is no number, a whole number (numpy's too)
    is a number, and text is no number."""
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is int:
        return is_whole(value)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, kind)


@functools.cache
def _field_kinds(schema: type) -> dict[str, tuple[type, bool, int | None]]:
    """Field name -> (type, takes None, count) of a dataclass of plain fields; count is None for
    one value, -1 for a tuple of any length, else the tuple's length."""
    hints = typing.get_type_hints(schema)
    kinds = {}
    for f in fields(schema):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        if optional:
            (hint,) = (a for a in args if a is not type(None))
        count = None
        if typing.get_origin(hint) is tuple:
            items = typing.get_args(hint)
            count = -1 if items[-1] is Ellipsis else len(items)
            hint = items[0]
        kinds[f.name] = (hint, optional, count)
    return kinds


def plain_number(value: object) -> object:
    """A whole number that is no ``int`` (numpy's) as an ``int``, a real one that is no
    ``float`` as a ``float`` (``np.float64`` too, a subclass of ``float`` that a checkpoint
    read with ``weights_only`` refuses); anything else (a bool too) as it is."""
    if type(value) in (bool, int, float) or not isinstance(value, numbers.Real):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def check_types(cfg: object, section: str) -> None:
    """Refuses a field of the dataclass ``cfg`` whose value is not of the field's type (a tuple
    field takes a list as well).

    Raises:
        ValueError: one line naming ``section.field``, what it takes and the value.
    """
    for name, (kind, optional, count) in _field_kinds(type(cfg)).items():
        value = getattr(cfg, name)
        if value is None and optional:
            continue
        if count is None:
            if is_kind(value, kind):
                continue
            takes = _takes(kind)[0]
        else:
            if (
                isinstance(value, list | tuple)
                and count in (-1, len(value))
                and all(is_kind(v, kind) for v in value)
            ):
                continue
            many = _takes(kind)[1]
            takes = f"a tuple of {many}" if count == -1 else f"a tuple of {count} {many}"
        takes += " or None" if optional else ""
        raise ValueError(f"{section}.{name} must be {takes}, got {reprlib.repr(value)}")
