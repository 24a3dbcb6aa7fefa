"""What a checkpoint says about itself: one description, written by training and import, read by
test, predict, export and import.

``octvideo train`` and ``octvideo import`` store, beside the weights, the model section, the class
names, the input normalisation and the clip protocol (Chen et al., "Drop an Octave", ICCV 2019,
after the Non-local video ResNets: T frames tau apart, short side, square crops, N temporal clips
x 1 or 3 crops), so that a checkpoint alone can rebuild the network and its inputs. On disk it is
plain values under ``hyper_parameters.meta`` (the checkpoint loads with ``weights_only=True``)::

    octvideo_version  "0.1.0"
    name              the run's (or the imported file's) name
    model             the model section: name, num_classes, alpha, octave, dropout, pretrained,
                      pretrained_kind, extra
    classes           class names, by classifier output
    normalization     mean, std (per channel, on [0, 1] pixels)
    clip              num_frames, sampling_rate, target_fps, slowfast_alpha, train_crop_size,
                      val_crop_size, test_short_side, test_crop_size, test_num_clips,
                      test_num_crops
    config            the whole resolved run config (training), the run config beside the file
                      (import)
    source            import only: from, file, sha256

``CheckpointMeta.from_dict`` reads every checkpoint octvideo has written: an entry that earlier
versions did not write (``target_fps``, ``octvideo_version``) takes its config section's default,
and entries it does not know are skipped. A missing required entry or one of the wrong type is a
``CheckpointError`` naming it.

This module sits below ``octvideo.engine`` and ``octvideo.inference`` (both read checkpoints and
neither imports the other at load time); it imports the config sections. The network a model
section describes is built by ``octvideo.network.build_network``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from octvideo import __version__
from octvideo.config import (
    LIMITS,
    MAX_CLIP_PIXELS,
    TARGET_FPS_RANGE,
    ModelConfig,
    RunConfig,
    plain,
    to_dict,
)
from octvideo.data.config import DataConfig, plain_number
from octvideo.errors import CheckpointError

# what to do about a checkpoint whose metadata is missing or malformed
ADVICE = "use a checkpoint written by 'octvideo train' or 'octvideo import'"
# the sections every checkpoint's metadata has (the others are optional)
SECTIONS = ("model", "classes", "clip", "normalization")
# ClipProtocol's fields in the order its clip entry is written (normalization holds mean and std)
_CLIP_ENTRIES = (
    "num_frames",
    "sampling_rate",
    "target_fps",
    "slowfast_alpha",
    "train_crop_size",
    "val_crop_size",
    "test_short_side",
    "test_crop_size",
    "test_num_clips",
    "test_num_crops",
)
# the crops a data section takes only with the data.train_jitter_scales they fit in, which a
# checkpoint does not record
_TRAINING_CROPS = ("train_crop_size", "val_crop_size")
# ClipProtocol's whole-number fields -> the LIMITS bound of the data.* field each comes from
_CLIP_WHOLES: dict[str, str | None] = {
    "num_frames": "data.num_frames",
    "sampling_rate": "data.sampling_rate",
    "test_short_side": "data.test_short_side",
    "test_crop_size": "data.test_crop_size",
    "test_num_clips": "data.test_num_clips",
    "test_num_crops": None,  # 1 or 3
    "slowfast_alpha": None,  # or None; at most num_frames
    "train_crop_size": "data.train_crop_size",
    "val_crop_size": "data.val_crop_size",
}

_REQUIRED = object()


def _default(field: str) -> Any:
    """What a checkpoint without the clip entry ``field`` takes: the ``ClipProtocol`` default
    (``DataConfig``'s), or ``_REQUIRED`` for a field without one."""
    default = ClipProtocol.__dataclass_fields__[field].default
    return _REQUIRED if default is MISSING else default


@dataclass(frozen=True)
class ClipProtocol:
    """How a clip is sampled and normalised: the ``data`` settings a checkpoint keeps.

    Fields after ``test_crop_size`` default to ``DataConfig``'s defaults, which is also what a
    checkpoint of an earlier version that lacks them was trained with. numpy's numbers
    (``np.int64(4)``, ``np.float32(30)``; ``np.float64`` is a float) are kept as Python's int and
    float, as ``DataConfig`` keeps them.
    """

    num_frames: int
    sampling_rate: int
    test_short_side: int
    test_crop_size: int
    test_num_clips: int = DataConfig.test_num_clips
    test_num_crops: int = DataConfig.test_num_crops
    slowfast_alpha: int | None = None
    mean: tuple[float, float, float] = DataConfig.mean
    std: tuple[float, float, float] = DataConfig.std
    target_fps: float | None = None  # the stride counted at this frame rate (data.target_fps)
    train_crop_size: int = DataConfig.train_crop_size
    val_crop_size: int = DataConfig.val_crop_size

    def __post_init__(self) -> None:
        # so a protocol built in code checks, compares and is saved as one read from a
        # checkpoint; a value of another type stays as given, for ``check`` to refuse
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list | tuple):
                value = type(value)(plain_number(v) for v in value)
            object.__setattr__(self, f.name, plain_number(value))

    @property
    def slow_frames(self) -> int:
        """``DataConfig.slow_frames``: the Slow pathway's frames, else ``num_frames``."""
        return self.num_frames // (self.slowfast_alpha or 1)

    @classmethod
    def from_data(cls, data: DataConfig) -> ClipProtocol:
        """The protocol of a run's data section."""
        values = {f.name: getattr(data, f.name) for f in fields(cls)}
        values["mean"], values["std"] = _floats(data.mean), _floats(data.std)
        if data.target_fps is not None:
            values["target_fps"] = float(data.target_fps)
        return cls(**values)

    @classmethod
    def from_dict(
        cls,
        clip: Any,
        normalization: Any,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> ClipProtocol:
        """The protocol of a checkpoint's ``clip`` and ``normalization`` entries.

        Every size is bounded as the config bounds its ``data.*`` field (``LIMITS``,
        ``MAX_CLIP_PIXELS``, ``TARGET_FPS_RANGE``; ``check`` makes the same checks on a protocol
        built directly), so a damaged or hand-edited checkpoint cannot make predict allocate
        gigabytes, and the values ``DataConfig`` refuses are named by their entry here
        (``clip.test_num_crops``), not by a config key predict has none of.

        Raises:
            CheckpointError: a required entry is missing, an entry has the wrong type, a size is
                beyond its bound, or the entries do not make a clip protocol.
        """
        c = _Entries(clip, "clip", path)
        n = _Entries(normalization, "normalization", path)
        protocol = cls(
            **{field: c.whole(field, _default(field)) for field in _CLIP_WHOLES},
            mean=n.triple("mean"),
            std=n.triple("std"),
            target_fps=c.rate("target_fps", None),
        )
        bad = _clip_problem(protocol, _stored_entry)
        if bad is not None:
            field, problem = bad
            raise _metadata_error(path, problem, _stored_entry(field))
        return protocol

    def check(self, name: str = "ClipProtocol") -> None:
        """Refuses what ``from_dict`` refuses in a checkpoint, however this protocol was made: a
        size that is not a whole number or is beyond the bound of its ``data.*`` field
        (``LIMITS``), a clip over ``MAX_CLIP_PIXELS``, a frame rate outside
        ``TARGET_FPS_RANGE``, a mean or std that is not 3 numbers, and what ``DataConfig``
        refuses (``Predictor`` checks its protocol with it, so a typo is one line, not a
        120 GB allocation at the first clip).

        Args:
            name: what the protocol is called in the message (``protocol``: ``protocol.num_frames
                ...``).

        Raises:
            ValueError: one line naming the first field at fault.
        """
        bad = _clip_problem(self, lambda field: ".".join(k for k in (name, field) if k))
        if bad is not None:
            raise ValueError(bad[1])

    def clip_dict(self) -> dict[str, Any]:
        """The ``clip`` entry on disk (``normalization`` holds ``mean`` and ``std``)."""
        return {name: getattr(self, name) for name in _CLIP_ENTRIES}

    def data_config(self) -> DataConfig:
        """The data section the evaluation transforms are built from. Its train and val crops
        are ``DataConfig``'s defaults: a data section refuses crops larger than the low end of
        its ``train_jitter_scales``, which a checkpoint does not record, so a run's own crops of
        288 (at scales 320-400) would be refused against the default scales."""
        clip = {k: v for k, v in self.clip_dict().items() if k not in _TRAINING_CROPS}
        return DataConfig(**clip, mean=tuple(self.mean), std=tuple(self.std))


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything a checkpoint says about its weights (see the module docstring for the layout).

    Attributes:
        model: the model section the weights belong to.
        classes: class names, by classifier output.
        clip: how clips were sampled and normalised.
        name: the run's name (the imported file's stem for ``octvideo import``).
        config: the resolved run config as plain values; None where none was stored.
        source: where imported weights came from (``from``, ``file``, ``sha256``); None for
            trained ones.
        octvideo_version: the version that wrote it; None where it was not recorded.
    """

    model: ModelConfig
    classes: tuple[str, ...]
    clip: ClipProtocol
    name: str = ""
    config: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    octvideo_version: str | None = None

    @classmethod
    def from_run(cls, cfg: RunConfig, classes: Sequence[str]) -> CheckpointMeta:
        """What a training run of ``cfg`` on ``classes`` stores in its checkpoints."""
        return cls(
            model=model_config(to_dict(cfg.model)),  # plain values, as they read back
            classes=tuple(classes),
            clip=ClipProtocol.from_data(cfg.data),
            name=cfg.name,
            config=to_dict(cfg),
            octvideo_version=__version__,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (dicts, lists, strings, numbers) for ``hyper_parameters.meta``; entries
        that are None (``config``, ``source``, ``octvideo_version``) are left out."""
        out: dict[str, Any] = {}
        if self.octvideo_version is not None:
            out["octvideo_version"] = self.octvideo_version
        out["name"] = self.name
        out["model"] = to_dict(self.model)
        out["classes"] = list(self.classes)
        out["normalization"] = {"mean": list(self.clip.mean), "std": list(self.clip.std)}
        out["clip"] = self.clip.clip_dict()
        if self.config is not None:
            out["config"] = plain(self.config)
        if self.source is not None:
            out["source"] = plain(self.source)
        return out

    @classmethod
    def from_dict(cls, meta: Any, *, path: str | os.PathLike[str] | None = None) -> CheckpointMeta:
        """The description a checkpoint's ``hyper_parameters.meta`` holds, checked entry by entry.

        Args:
            meta: what the checkpoint stores (``to_dict``'s output, or an earlier version's).
            path: the checkpoint, named in errors.

        Raises:
            CheckpointError: a section of ``SECTIONS`` is missing (all missing ones are named),
                or an entry is missing or of the wrong type (the first is named).
        """
        meta = meta if isinstance(meta, Mapping) else {}
        missing = [k for k in SECTIONS if k not in meta]
        if missing:
            raise CheckpointError(
                f"{_name(path)} has no {', '.join(missing)} metadata: {ADVICE} (a bare state "
                "dict cannot say which model, classes and clip protocol it belongs to)",
                field=missing[0],
            )
        top = _Entries(meta, "", path)
        return cls(
            model=model_config(meta["model"], path=path),
            classes=top.names("classes"),
            clip=ClipProtocol.from_dict(meta["clip"], meta["normalization"], path=path),
            name=top.text("name", ""),
            config=top.mapping("config", None),
            source=top.mapping("source", None),
            octvideo_version=top.text("octvideo_version", None),
        )

    @classmethod
    def from_checkpoint(
        cls, checkpoint: Mapping[str, Any], path: str | os.PathLike[str] | None = None
    ) -> CheckpointMeta:
        """The description in a loaded checkpoint (``hyper_parameters.meta``).

        Raises:
            CheckpointError: it has none (a bare state dict, a Lightning checkpoint of another
                module), or it is malformed (``from_dict``).
        """
        return cls.from_dict(_stored(checkpoint) or {}, path=path)

    def trained_classes_file(self, path: str | os.PathLike[str] | None = None) -> str:
        """The training run's ``data.classes_file`` (in ``config``); "" where it names none.

        Raises:
            CheckpointError: ``config.data`` or its ``classes_file`` is of the wrong type.
        """
        data = self._trained_data(path)
        return "" if data is None else data.text("classes_file", None) or ""

    def trained_jitter_scales(
        self, path: str | os.PathLike[str] | None = None
    ) -> tuple[int, int] | None:
        """The training run's ``data.train_jitter_scales`` (in ``config``); None where it names
        none.

        Raises:
            CheckpointError: ``config.data`` or its scales are of the wrong type.
        """
        data = self._trained_data(path)
        if data is None or data.values.get("train_jitter_scales") is None:
            return None
        low, high = data.wholes("train_jitter_scales", 2, limit="data.train_jitter_scales")
        return low, high

    def _trained_data(self, path: str | os.PathLike[str] | None) -> _Entries | None:
        data = _Entries(self.config or {}, "config", path).mapping("data", None)
        return None if data is None else _Entries(data, "config.data", path)


def stored_meta(
    checkpoint: Mapping[str, Any], path: str | os.PathLike[str] | None = None
) -> CheckpointMeta | None:
    """The description in a loaded checkpoint; None where it stores none (a bare state dict,
    which ``octvideo test`` and ``train --resume`` take with the config's model section).

    Raises:
        CheckpointError: it stores one that is malformed (``CheckpointMeta.from_dict``).
    """
    meta = _stored(checkpoint)
    return None if meta is None else CheckpointMeta.from_dict(meta, path=path)


def model_config(section: Any, *, path: str | os.PathLike[str] | None = None) -> ModelConfig:
    """The model section a checkpoint stores (``to_dict(ModelConfig)``), checked.

    ``name``, ``num_classes``, ``alpha`` and ``octave`` are required; ``dropout``,
    ``pretrained``, ``pretrained_kind`` and ``extra`` default to ``ModelConfig``'s defaults.

    Raises:
        CheckpointError: a required entry is missing, or an entry has the wrong type, a size
            beyond its ``LIMITS`` bound, or a value ``ModelConfig`` refuses (an alpha outside
            [0, 1), a ``model.extra.width`` that is not a whole number up to its bound).
    """
    m = _Entries(section, "model", path)
    fields = {
        "name": m.text("name"),
        "num_classes": m.whole("num_classes", limit="model.num_classes"),
        "alpha": m.alpha("alpha"),
        "octave": m.wholes("octave", 3, limit="model.octave"),
        "dropout": m.number("dropout", ModelConfig.dropout),
        "pretrained": m.text("pretrained", ModelConfig.pretrained),
        "pretrained_kind": m.text("pretrained_kind", ModelConfig.pretrained_kind),
        "extra": dict(m.mapping("extra", {})),
    }
    try:
        return ModelConfig(**fields)
    except ValueError as err:  # the message names the model.* entry
        raise _metadata_error(path, str(err), "model") from err


# ---------------------------------------------------------------------------------- reading


def _stored(checkpoint: Mapping[str, Any]) -> Any:
    hyper = checkpoint.get("hyper_parameters")
    return hyper.get("meta") if isinstance(hyper, Mapping) else None


def _name(path: str | os.PathLike[str] | None) -> str:
    return "checkpoint" if path is None else f"checkpoint {os.fspath(path)!r}"


def _metadata_error(
    path: str | os.PathLike[str] | None, problem: str, field: str
) -> CheckpointError:
    """The refusal "checkpoint PATH metadata: PROBLEM; ADVICE" of the stored entry ``field``."""
    return CheckpointError(f"{_name(path)} metadata: {problem}; {ADVICE}", field=field)


def _floats(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for a one-line message; an int too long for Python
    to write (over 4300 digits) by its length."""
    try:
        shown = repr(value)
    except ValueError:  # int's digit limit (sys.set_int_max_str_digits)
        sign = "a negative" if value < 0 else "a"
        return f"{sign} whole number of about {int(value.bit_length() * 0.30103)} digits"
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A real number a float holds: not nan, not infinite, no int past about 1.8e308 (the
    comparison is exact, where math.isfinite overflows on such an int)."""
    return _is_real(value) and -sys.float_info.max <= value <= sys.float_info.max


def _triple_problem(entry: str, value: Any) -> str | None:
    """Why ``value`` is no mean or std (3 finite numbers, one per channel), in one line naming
    ``entry``; None when it is one."""
    if not isinstance(value, list | tuple) or len(value) != 3 or not all(map(_is_real, value)):
        return _not(entry, value, "a list of 3 numbers (one per channel)")
    odd = [v for v in value if not _is_number(v)]
    return f"{entry} holds {_short_repr(odd[0])}; give 3 finite numbers" if odd else None


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _not(entry: str, value: Any, want: str) -> str:
    """``ENTRY is VALUE (TYPE), not WANT``: a value of the wrong type, in one line."""
    return f"{entry} is {_short_repr(value)} ({type(value).__name__}), not {want}"


def _over_limit(entry: str, value: Any, limit: str | None) -> str | None:
    """``ENTRY VALUE is beyond the limit ...`` for a size over ``LIMITS[limit]``, else None."""
    if limit is None or value <= LIMITS[limit][0]:
        return None
    bound, unit = LIMITS[limit]
    return (
        f"{entry} {_short_repr(value)} is beyond the limit of {bound:g} {unit} "
        f"(octvideo.config.LIMITS {limit})"
    )


def _stored_entry(field: str) -> str:
    """The checkpoint entry of a ClipProtocol field: ``clip.num_frames``, ``normalization.std``;
    ``clip`` for the whole protocol."""
    return f"normalization.{field}" if field in ("mean", "std") else f"clip.{field}".rstrip(".")


def _clip_problem(p: ClipProtocol, entry: Callable[[str], str]) -> tuple[str, str] | None:
    """The first value of ``p`` a data section would refuse (``DataConfig`` and
    ``check_limits``), as (field, one line naming it ``entry(field)``); None when it has none.
    The one check of a protocol, read from a checkpoint or built directly."""
    for field, limit in _CLIP_WHOLES.items():
        value = getattr(p, field)
        if value is None and field == "slowfast_alpha":
            continue
        if not _is_whole(value):
            return field, _not(entry(field), value, "a whole number of 1 or more")
        beyond = _over_limit(entry(field), value, limit)
        if beyond is not None:
            return field, beyond
    for field in ("mean", "std"):
        bad = _triple_problem(entry(field), getattr(p, field))
        if bad is not None:
            return field, bad
    if p.target_fps is not None and (not _is_number(p.target_fps) or p.target_fps <= 0):
        return "target_fps", _not(entry("target_fps"), p.target_fps, "a positive number or None")
    if p.test_num_crops not in (1, 3):
        crops = _short_repr(p.test_num_crops)
        return "test_num_crops", f"{entry('test_num_crops')} must be 1 or 3, got {crops}"
    if p.test_short_side < p.test_crop_size:
        return "test_short_side", (
            f"{entry('test_short_side')} {_short_repr(p.test_short_side)} is smaller than "
            f"{entry('test_crop_size')} {_short_repr(p.test_crop_size)}"
        )
    if p.slowfast_alpha is not None and p.slowfast_alpha > p.num_frames:
        return "slowfast_alpha", (
            f"{entry('slowfast_alpha')} {_short_repr(p.slowfast_alpha)} is beyond "
            f"{entry('num_frames')} {_short_repr(p.num_frames)}"
        )
    if min(p.std) <= 0:
        return "std", f"{entry('std')} must be > 0, got {[float(v) for v in p.std]}"
    low, high = TARGET_FPS_RANGE
    if p.target_fps is not None and not low <= p.target_fps <= high:
        return "target_fps", (
            f"{entry('target_fps')} {p.target_fps:g} is beyond [{low:g}, {high:g}] frames per "
            "second"
        )
    for field in ("test_crop_size", "train_crop_size", "val_crop_size"):
        crop = getattr(p, field)
        if p.num_frames * crop * crop > MAX_CLIP_PIXELS:
            return "num_frames", (
                f"{entry('num_frames')} {p.num_frames} x {entry(field)} {crop}^2 is beyond the "
                f"limit of {MAX_CLIP_PIXELS:,} pixels a clip (octvideo.config.MAX_CLIP_PIXELS)"
            )
    try:
        p.data_config()
    except ValueError as err:  # a check DataConfig makes and the ones above do not
        return "", f"{entry('')} does not make a data section: {err}"
    return None


class _Entries:
    """The entries of one section of the stored metadata, read with their types checked; an
    error names ``section.key`` and the checkpoint."""

    def __init__(self, values: Any, section: str, path: str | os.PathLike[str] | None) -> None:
        self.section, self.path = section, path
        if not isinstance(values, Mapping):
            raise self._wrong("", values, "a mapping of entries")
        self.values = values

    def _key(self, key: str) -> str:
        return ".".join(k for k in (self.section, key) if k)

    def _wrong(self, key: str, value: Any, want: str) -> CheckpointError:
        return _metadata_error(self.path, _not(self._key(key), value, want), self._key(key))

    def _get(self, key: str, default: Any) -> Any:
        if key in self.values:
            return self.values[key]
        if default is _REQUIRED:
            raise CheckpointError(
                f"{_name(self.path)} has no {self._key(key)} metadata; {ADVICE}",
                field=self._key(key),
            )
        return default

    def _beyond(self, key: str, value: Any, limit: str | None) -> None:
        """Refuses a size over the bound ``LIMITS[limit]`` of the config field it comes from."""
        beyond = _over_limit(self._key(key), value, limit)
        if beyond is not None:
            raise _metadata_error(self.path, beyond, self._key(key))

    def whole(self, key: str, default: Any = _REQUIRED, *, limit: str | None = None) -> Any:
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not _is_whole(value):
            raise self._wrong(key, value, "a whole number of 1 or more")
        self._beyond(key, value, limit)
        return value

    def wholes(self, key: str, count: int, *, limit: str | None = None) -> tuple[int, ...]:
        value = self._get(key, _REQUIRED)
        ok = isinstance(value, list | tuple) and len(value) == count
        if not ok or not all(_is_whole(v) for v in value):
            raise self._wrong(key, value, f"a list of {count} whole numbers of 1 or more")
        for v in value:
            self._beyond(key, v, limit)
        return tuple(value)

    def number(self, key: str, default: Any = _REQUIRED) -> float:
        value = self._get(key, default)
        if not _is_number(value):
            raise self._wrong(key, value, "a number")
        return float(value)

    def rate(self, key: str, default: Any = _REQUIRED) -> float | None:
        value = self._get(key, default)
        if value is None:
            return None
        if not _is_number(value) or value <= 0:
            raise self._wrong(key, value, "a positive number or null")
        return float(value)

    def triple(self, key: str) -> tuple[float, float, float]:
        value = self._get(key, _REQUIRED)
        bad = _triple_problem(self._key(key), value)
        if bad is not None:
            raise _metadata_error(self.path, bad, self._key(key))
        return _floats(value)  # type: ignore[return-value]

    def alpha(self, key: str) -> float | list[float]:
        value = self._get(key, _REQUIRED)
        if _is_number(value):
            return float(value)
        if isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        raise self._wrong(key, value, "a number or a list of numbers (one per stage)")

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, value, "text or null" if default is None else "text")
        return value

    def names(self, key: str) -> tuple[str, ...]:
        """A list of class names that a classes file could hold (``annotations.read_classes``):
        each one non-blank, on one line and listed once, so that records, the predict table and a
        classes file written from them tell every class apart."""
        value = self._get(key, _REQUIRED)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, value, "a list of class names")
        first: dict[str, int] = {}
        for index, name in enumerate(value):
            if not name.strip():
                problem = f"{self._key(key)}[{index}] is {_short_repr(name)}, an empty class name"
            elif "\n" in name:
                problem = f"{self._key(key)}[{index}] {_short_repr(name)} holds a line break"
            elif name in first:
                problem = (
                    f"{self._key(key)} lists {_short_repr(name)} twice "
                    f"(entries {first[name]} and {index})"
                )
            else:
                first[name] = index
                continue
            raise _metadata_error(self.path, problem, self._key(key))
        return tuple(value)

    def mapping(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self._wrong(key, value, "a mapping of named entries")
        return plain(value)
