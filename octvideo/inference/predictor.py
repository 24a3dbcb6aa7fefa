"""Clip-level inference on video files from a self-describing checkpoint.

A training checkpoint carries, besides the weights, the model section, the class names, the input
normalisation and the clip protocol (frames, stride, crop), so ``Predictor.from_checkpoint(path)``
needs nothing else. Clips are sampled and transformed exactly as in testing (Chen et al., "Drop an
Octave", ICCV 2019, following the Non-local video ResNets: T frames tau apart, short side
``test_short_side``, square crops of ``test_crop_size``):

- one centre clip (the default), or the multi-view protocol (N temporal clips x 1 or 3 crops,
  softmax averaged);
- sliding windows over long videos: which windows a video gets is ``window_times``'s rule,
  kept where a window holds a frame (``Predictor._window_plan``); each window is
  classified from one clip at the trained stride centred in it, from its own frames where they
  are enough, so the model sees the temporal scale it was trained on, and the video-level
  scores are the mean of the windows' distinct clips' probabilities (a clip that neighbouring
  windows share, as where the clip spans more than a window, counts once).

Every number is bounded before a video is read: windows and strides are finite and at least
``MIN_WINDOW_SECONDS``, views at most ``MAX_VIEW_CLIPS`` temporal clips, and a video that would get
more than ``MAX_WINDOWS`` windows is a failed input (its frame count and rate decide, so a corrupt
header cannot make the window list exhaust memory); frames given as a tensor take an ``fps`` within
``TARGET_FPS_RANGE``. A window or stride under one frame of the input would only repeat clips: it
is taken as one frame, with a warning (``Predictor._window_plan``).

A video file is opened and indexed once; its clips are decoded ``batch_size`` at a time from that
one reader, so a long video costs time in proportion to its length and memory for one batch.

Whether a network takes a protocol is decided in ``fit`` (``misfit``); command-line arguments
become input paths in ``inputs`` (``expand_inputs``).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from octvideo.argtypes import DECIMAL, shown
from octvideo.checkpoint_meta import CheckpointMeta, ClipProtocol
from octvideo.config import TARGET_FPS_RANGE
from octvideo.data.decoding import Video, VideoInfo, check_decoder
from octvideo.data.open_files import open_files_message, out_of_open_files
from octvideo.data.sampling import clip_indices, clip_stride, clip_window, multiview_clip_indices
from octvideo.data.transforms import eval_transform, pack_pathways
from octvideo.engine.checkpoint import (
    RUN_ADVICE,
    broken_advice,
    load_checkpoint,
    model_state_dict,
)
from octvideo.engine.evaluate import ranked, view_probs
from octvideo.errors import (
    CheckpointError,
    DecodeError,
    RunStopped,
    TooManyWindows,
    failure_reason,
    first_line,
)
from octvideo.inference.fit import MisfitError, checkpoint_misfit, first_clip_misfit, misfit
from octvideo.network import build_network
from octvideo.ops import fuse_for_inference
from octvideo.ops.meta import has_lazy

logger = logging.getLogger(__name__)

# a tenth of a second: three frames at 30 fps; shorter windows or strides only repeat a clip
MIN_WINDOW_SECONDS = 0.1
# a day of video at a 1 s stride; each window keeps its clip's frame indices and K probabilities
MAX_WINDOWS = 100_000
# multi-view protocols use 10 or 30 temporal clips; each clip is one forward pass per crop
MAX_VIEW_CLIPS = 100
# clips per forward pass (``octvideo predict --batch-size``); one batch's frames are decoded at
# full size
MAX_BATCH_SIZE = 512
# seconds within which a frame's time and a window's edge are one time: under any container's
# tick (1/90000 s in MPEG, 1 ms in Matroska), over the rounding of seconds up to a day
TIME_EPS = 1e-6
# what records and messages call an input of frames given, which has no path (a result of one
# says so in ``VideoResult.from_frames``: a file of this name is never taken for it)
FRAMES_NAME = "<frames>"


@dataclass
class Prediction:
    """Scores of one window or one whole video.

    Attributes:
        probs: (K,) float64 class probabilities (``VideoResult.set_scores``).
        start: start time in seconds (windows; 0 for a whole video).
        end: end time in seconds.
    """

    probs: Tensor
    start: float
    end: float

    def top(self, classes: Sequence[str], k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first, as (name, probability); every
        class where ``k`` is more than there are.

        Args:
            classes: one name per class, by index (``Predictor.classes``).
            k: a whole number of 1 or more.

        Raises:
            ValueError: ``classes`` of another length than ``probs``, or ``k`` out of bounds.
        """
        count = self.probs.numel()
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise _not_class_names(classes)
        if len(classes) != count:
            raise ValueError(
                f"classes has {len(classes)} names for {count} classes: give one name per class, "
                f"by index (Predictor.classes)"
            )
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a whole number of 1 or more, got {k!r}")
        indices = ranked(self.probs, int(k))  # ties: the lower index first, as ``test`` ranks
        return [(classes[i], float(self.probs[i])) for i in indices.tolist()]


def _not_class_names(classes: object) -> ValueError:
    """The one line for class names given as anything but a list or tuple of str: a str (it
    would be split into letters), a set (its order differs from one process to the next, so the
    outputs would get other names), an iterator (read once) or None."""
    shown = repr(classes)
    shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
    return ValueError(
        "classes must be a list or tuple of class names, name i for output i; got "
        f"{type(classes).__name__} {shown}"
    )


class InputHeader(NamedTuple):
    """What a reader reports once an input is open (``OpenInput.header``; ``predict_many``'s
    workers send it): the fields of its records and its clips."""

    num_frames: int
    fps: float
    duration: float
    times: list[tuple[float, float]]  # windows; empty without
    clips: int
    crops: int
    # what to do where the model's logits of it are not finite: its predictor's checkpoint's
    # advice (``Predictor.broken_advice``), sent along so that the scores' reader words it so
    broken_advice: str = RUN_ADVICE
    # the windows whose clip is the window before's (``_repeats``): the video's scores count
    # each clip once
    repeats: tuple[int, ...] = ()


@dataclass
class OpenInput:
    """An input opened for prediction (``Predictor.open_input``): what its records say about it,
    the frame indices of its clips, and a reader of its frames.

    Attributes:
        num_frames: frames in the video.
        fps: frame rate used for times.
        duration: seconds the windows span (see ``VideoResult.duration``).
        plan: frame indices of every clip, in order.
        times: (start, end) of each window; empty without windows.
        crops: crop positions run for each clip (their softmax averaged).
        frames_of: decodes frames by index -> uint8 (N, H, W, 3).
        cut: why the clips past ``plan`` were dropped (``Predictor.read_views``: a file that
            cannot be decoded to its end); ``plan`` and ``times`` then hold the clips read. Or,
            with every clip read, why the file is not whole (``Video.check_whole``: a partial
            download whose frames all decode).
        broken_advice: the predictor's ``broken_advice``.
        check_whole: raises the ``DecodeError`` of a file that holds less than it lists
            (``Video.check_whole``); None for frames given.
    """

    num_frames: int
    fps: float
    duration: float
    plan: list[np.ndarray]
    times: list[tuple[float, float]]
    crops: tuple[int, ...]
    frames_of: Callable[[np.ndarray], Tensor]
    cut: str | None = None
    broken_advice: str = RUN_ADVICE
    check_whole: Callable[[], None] | None = None

    def header(self) -> InputHeader:
        return InputHeader(
            self.num_frames,
            self.fps,
            self.duration,
            self.times,
            len(self.plan),
            len(self.crops),
            self.broken_advice,
            _repeats(self.plan) if self.times else (),
        )


@dataclass
class VideoResult:
    """What ``Predictor.predict`` returns for one input.

    Attributes:
        path: the input (a file path, or ``FRAMES_NAME`` for frames given).
        video: video-level prediction (None when the input failed).
        windows: per-window predictions (empty unless windows were asked for).
        error: the decoder's or reader's error; None when the input succeeded. An input that
            cannot be decoded to its end keeps the scores of the clips (windows) before the
            first frame that fails, and its error says where that is.
        duration: seconds of video (frames / fps; with windows over a variable-frame-rate file,
            the last frame's time).
        num_frames: frames in the video.
        fps: frame rate used for times.
        seconds: the input's own time: opening and decoding it plus its forward passes (by
            ``predict_many``: its reader's time, in a worker or not, plus its share of each
            forward pass its clips were in; not the time spent on other inputs).
        from_frames: the input was frames given, not a file: ``path`` names no file, and
            nothing can read the input again (``source_file``). Records leave it out.
    """

    path: str
    video: Prediction | None = None
    windows: list[Prediction] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    num_frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    from_frames: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def source_file(self, what: str) -> str:
        """The file this result was predicted from, for ``what`` to read it again (``render``).

        Raises:
            ValueError: the result was predicted from frames given (``from_frames``), which no
                file holds, whatever the current folder holds under ``path``'s name.
        """
        if self.from_frames:
            raise ValueError(
                f"cannot {what}: this result was predicted from frames given, not from a file; "
                f"predict the video file (Predictor.predict(path)) to {what}"
            )
        return self.path

    def set_scores(self, header: InputHeader, probs: Tensor, error: str | None = None) -> None:
        """Fills in the input's numbers from ``header``, its scores from ``probs`` (clips, K;
        crops averaged: a window's are its clip's, the video's are the mean of its clips, a clip
        that windows repeat (``header.repeats``) counted once) and its ``error`` (None: it was
        read whole). Probabilities that are not all finite are no prediction: the input gets
        none, and fails with ``non_finite_scores``'s reason. The means are taken in float64,
        as ``test`` takes them (``Predictor.view_probs``): float32 would round two classes that
        differ in the 8th digit into a tie."""
        self.num_frames, self.fps, self.duration = header.num_frames, header.fps, header.duration
        probs = probs.double()  # (clips, K)
        bad = non_finite_scores(probs, header.broken_advice)
        self.error = bad or error
        if bad:
            return
        if header.times:
            self.windows = [
                Prediction(p, s, e) for p, (s, e) in zip(probs, header.times, strict=True)
            ]
        counted = torch.ones(len(probs), dtype=torch.bool)
        counted[list(header.repeats)] = False
        self.video = Prediction(probs[counted].mean(0), 0.0, self.duration)


def check_result(result: object, who: str) -> VideoResult:
    """``result`` if it is a ``VideoResult``.

    Raises:
        TypeError: one line naming ``who`` and what it takes.
    """
    if not isinstance(result, VideoResult):
        raise TypeError(
            f"{who} takes a VideoResult (what Predictor.predict returns), "
            f"got {type(result).__name__}"
        )
    return result


def non_finite_scores(probs: Tensor, advice: str = RUN_ADVICE) -> str | None:
    """Why probabilities ``probs`` (clips, K) are no prediction: the clips whose logits hold a
    NaN or an infinity (softmax turns them into NaN); None when every probability is finite.

    The clips are finite (decoded uint8 frames, normalised), so the model is at fault: its
    weights are finite (checkpoints with others are refused as they are read) but so large that
    its activations overflow float32. ``advice`` says what to do about the checkpoint
    (``engine.checkpoint.broken_advice``: an imported one is imported anew).
    """
    bad = int((~torch.isfinite(probs)).any(dim=-1).sum())
    if not bad:
        return None
    return (
        f"NonFiniteLogits: the model gives NaN or infinite logits for {bad} of its "
        f"{len(probs)} clips (weights so large that its activations overflow float32: a "
        f"diverged run?); the checkpoint is broken: {advice}"
    )


def parse_seconds(text: str | float | None) -> float | None:
    """``"2s"``, ``"1.5"``, ``"500ms"`` or a number -> seconds; None stays None.

    Raises:
        ValueError: text that is no duration, or a duration (text or number) that is not a
            finite positive number of seconds.
    """
    if text is None:
        return None
    if isinstance(text, bool):  # an int to Python: True would be a 1 s window
        raise ValueError(f"cannot read {text!r} as a duration; write e.g. 2s, 1.5 or 500ms")
    if isinstance(text, int | float):  # a number is held to the same bounds as text
        seconds = float(text)
    else:
        value = text.strip().lower()
        scale = 1.0
        if value.endswith("ms"):
            value, scale = value[:-2], 1e-3
        elif value.endswith("s"):
            value = value[:-1]
        value = value.strip()
        # float() also reads 2_0 and other scripts' digits; inf and nan are refused below
        if not DECIMAL.fullmatch(value) and value.lstrip("+-") not in ("inf", "infinity", "nan"):
            raise ValueError(f"cannot read {text!r} as a duration; write e.g. 2s, 1.5 or 500ms")
        seconds = float(value) * scale
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {text!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


def window_seconds(text: str | float | None, name: str = "window") -> float | None:
    """A window length or stride in seconds (``parse_seconds``), at least ``MIN_WINDOW_SECONDS``.

    Raises:
        ValueError: a message that starts with ``name`` and the text given.
    """
    given = shown(text) if isinstance(text, str) else repr(text)  # text quoted, a number not
    try:
        seconds = parse_seconds(text)
    except ValueError as err:
        raise ValueError(f"{name} {given}: {err}") from None
    if seconds is not None and seconds < MIN_WINDOW_SECONDS:
        raise ValueError(
            f"{name} {given}: give at least {MIN_WINDOW_SECONDS:g}s (a shorter window "
            "or stride only repeats clips)"
        )
    return seconds


def check_views(clips: int, crops: int) -> None:
    """Raises ValueError unless ``clips`` x ``crops`` is a view protocol: 1 to ``MAX_VIEW_CLIPS``
    temporal clips x 1 or 3 spatial crops."""
    if not 1 <= clips <= MAX_VIEW_CLIPS or crops not in (1, 3):
        raise ValueError(
            f"views must be N temporal clips (1 to {MAX_VIEW_CLIPS}) x 1 or 3 crops, "
            f"got {clips}x{crops}"
        )


def parse_views(views: object) -> str | tuple[int, int]:
    """The view protocol ``Predictor.predict`` and ``predict_many`` take: ``"center"``,
    ``"multi"``, ``"NxC"`` as ``--views`` spells it (``"10x3"``: N temporal clips x C crops) or
    a (clips, crops) pair of integers, bounded by ``check_views``.

    Returns:
        ``"center"``, ``"multi"`` or (clips, crops).

    Raises:
        ValueError: one line naming what was given and what is taken.
    """
    pair: tuple[int, int] | None = None
    if isinstance(views, str):
        if views in ("center", "multi"):
            return views
        match = re.fullmatch(r"([0-9]+)x([0-9]+)", views)
        if match:  # past 9 digits only "too many" matters (and int() refuses past 4300)
            pair = (_count(match[1]), _count(match[2]))
    elif (
        isinstance(views, tuple | list)
        and len(views) == 2
        and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in views)
    ):
        pair = (int(views[0]), int(views[1]))
    if pair is None:
        raise ValueError(
            f"views must be 'center', 'multi', 'NxC' (e.g. '10x3') or (clips, crops), got {views!r}"
        )
    check_views(*pair)
    return pair


def _count(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else 10**9


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` when it is a whole number from 1 to ``MAX_BATCH_SIZE``.

    Raises:
        ValueError: anything else, in one line.
    """
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise ValueError(
            f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}"
        )
    return int(batch_size)


def _torch_device(device: object) -> torch.device:
    """``device`` as a ``torch.device``; one line for anything torch does not read as one."""
    try:
        return torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is no torch device: use cpu, cuda or cuda:N") from None


def check_device(device: object) -> torch.device:
    """``device`` when it is one ``octvideo predict --device`` takes: the CPU, or a CUDA device
    this machine has (``cuda`` or ``cuda:N``).

    Raises:
        ValueError: another device, or a CUDA device this machine lacks, in one line.
    """
    found = _torch_device(device)
    if found.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: use cpu, cuda or cuda:N")
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: no CUDA device is available; use cpu")
        if found.index is not None and found.index >= count:
            raise ValueError(
                f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    return found


def check_fps(fps: object) -> float:
    """``fps`` when it is a frame rate within ``TARGET_FPS_RANGE`` (a frame every 10 s to a
    high-speed camera's rate; ``data.target_fps``'s bounds): beyond it, seconds (windows, the
    trained stride at ``target_fps``) map to frames that no video has.

    Raises:
        ValueError: anything else, in one line.
    """
    low, high = TARGET_FPS_RANGE
    if (
        not isinstance(fps, numbers.Real)
        or isinstance(fps, bool)
        or not (math.isfinite(fps) and low <= fps <= high)
    ):
        raise ValueError(
            f"fps must be a frame rate from {low:g} to {high:g} frames per second, got {fps!r}"
        )
    return float(fps)


def window_times(
    duration: float,
    window: float,
    stride: float,
    *,
    limit: int = MAX_WINDOWS,
    last_frame: float | None = None,
) -> list[tuple[float, float]]:
    """Windows [k * stride, min(k * stride + window, duration)] over [0, duration].

    The first window starts at 0; windows follow while they start before ``duration``, up to the
    first that reaches it, so every window has a positive length. With ``stride <= window`` they
    cover the video and the last ends at ``duration``; with a longer stride they leave gaps and the
    last may end before it. A video shorter than one window gets one window over all of it.

    Given ``last_frame`` (the last frame's time; a frame at t is shown over [t, t + a frame), so
    a window [start, end) holds the frames from start to before end), windows also start at or
    before it, and end at the first that holds it: none is made of the time after the last
    frame's start alone (at 29.97 fps a "2 s" video is 2.002 s, a window past 2 s would hold
    none of its frames).

    Raises:
        TypeError: a duration, window, stride or ``last_frame`` that is no number of seconds, or
            a ``limit`` that is no whole number.
        ValueError: a window, stride or duration that is not finite, or not positive.
        TooManyWindows: more than ``limit`` windows (counted before any is made).
    """
    seconds = {"duration": duration, "window": window, "stride": stride, "last_frame": last_frame}
    for name, value in seconds.items():
        if not _is_number(value) and not (name == "last_frame" and value is None):
            raise TypeError(f"window_times: {name} must be a number of seconds, got {value!r:.80}")
    if not isinstance(limit, numbers.Integral) or isinstance(limit, bool):
        raise TypeError(f"window_times: limit must be a whole number, got {limit!r:.80}")
    if not (math.isfinite(window) and math.isfinite(stride)) or window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive and finite, got {window}, {stride}")
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"a video's duration must be finite and not negative, got {duration}")
    if duration <= window:
        return [(0.0, duration)]
    reaching = math.ceil((duration - window) / stride - 1e-9) + 1  # up to the one reaching the end
    starting = math.ceil(duration / stride - 1e-9)  # those starting before the end
    if last_frame is not None:  # up to the one holding the last frame: its end past its time
        first = math.floor((last_frame + TIME_EPS - window) / stride) + 1  # end - eps > it
        reaching = min(reaching, max(first, 0) + 1)
        starting = min(starting, math.floor((last_frame + TIME_EPS) / stride) + 1)
    # the window at 0 starts before the end however long the stride (the epsilon would drop it)
    count = max(1, min(reaching, starting))
    if count > limit:
        least = math.ceil(duration / limit * 1e3) / 1e3  # rounded up: it gives at most ``limit``
        raise TooManyWindows(
            f"windows {stride:g}s apart over {duration:g}s of video make {count}, more than "
            f"{limit} a video; use a stride of at least {least:g}s"
        )
    return [(k * stride, min(k * stride + window, duration)) for k in range(count)]


def _is_number(value: object) -> bool:
    """A real number that is no bool (numpy's included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _read(path: str | os.PathLike[str]) -> tuple[CheckpointMeta, dict[str, Tensor], str]:
    """The checkpoint's metadata, its weights, and what to do were they broken (its origin's
    ``broken_advice``)."""
    checkpoint = load_checkpoint(path)  # a dict: anything else is refused there
    meta = CheckpointMeta.from_checkpoint(checkpoint, path)
    state = model_state_dict(checkpoint)
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} has a state_dict that is not all tensors: it was "
            f"not written by 'octvideo train'"
        )
    return meta, state, broken_advice(checkpoint)


class Predictor:
    """Runs a trained model on videos: centre clip, multi-view, or sliding windows.

    Every argument is checked before any work, each out of its bounds one ``ValueError`` line:
    the bounds ``octvideo predict`` sets on its options (``check_batch_size``, ``check_device``,
    ``parse_views``, ``window_seconds``, ``check_decoder``, ``check_fps``), and the model, its
    class names and the protocol against each other as ``from_checkpoint`` checks a checkpoint's
    (``ClipProtocol.check``: types and the config's bounds, the ones ``ClipProtocol.from_dict``
    sets on a checkpoint's clip entry; ``misfit``: SlowFast pathways, the protocol's test clip,
    one name per output).

    Args:
        model: the network (its fused copy runs, in eval mode; the model itself is left as is,
            but for lazy modules (``nn.Lazy*``), which get their shapes and initial weights from
            one zero test clip here, in place, as at a first forward: ``first_clip_misfit``).
        classes: class names, by index: one per output of the model (a list or tuple of str;
            a set, whose order changes from one process to the next, is refused).
        protocol: clip sampling and normalisation.
        device: where the model runs: cpu, cuda or cuda:N for a CUDA device this machine has
            (``check_device``).
        batch_size: clips per forward pass, 1 to ``MAX_BATCH_SIZE``.

    Attributes:
        broken_advice: what an input's ``NonFiniteLogits`` reason (and ``export``'s refusal)
            says to do about the weights: ``engine.checkpoint.broken_advice`` of the checkpoint
            (``from_checkpoint``: an imported one is got again and imported anew), else
            ``RUN_ADVICE``.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        protocol: ClipProtocol,
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
        ordered = isinstance(classes, Sequence) and not isinstance(classes, str)
        if not ordered or not all(isinstance(c, str) for c in classes):
            raise _not_class_names(classes)
        if not isinstance(protocol, ClipProtocol):
            raise ValueError(f"protocol must be a ClipProtocol, got {type(protocol).__name__}")
        protocol.check("protocol")  # the bounds a checkpoint's clip entry has, before any work
        self.batch_size = check_batch_size(batch_size)
        self.device = check_device(device)
        bad = misfit(model, classes, protocol)
        if bad is None and has_lazy(model):  # shapes first: the fused copy shares its weights
            bad = first_clip_misfit(model.to(self.device), classes, protocol, self.device)
        if bad is not None:
            raise MisfitError(bad)
        # the test clip's shape (SlowFast: [slow, fast]): fusion folds what its forward shows;
        # shapes, not ``example_input``'s float32 tensors, so fusion runs it in the model's dtype
        side = protocol.test_crop_size
        clip = [1, 3, protocol.num_frames, side, side]
        clip = [[1, 3, protocol.slow_frames, side, side], clip] if protocol.slowfast_alpha else clip
        self.model = fuse_for_inference(model.to(self.device), clip)  # a fused copy, in eval mode
        self.classes = list(classes)
        self.protocol = protocol
        # what to do where its logits are not finite: from_checkpoint's is the checkpoint's
        self.broken_advice = RUN_ADVICE
        self._data_cfg = protocol.data_config()
        self._transforms = {i: eval_transform(self._data_cfg, i) for i in (0, 1, 2)}

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
    ) -> Predictor:
        """Builds the model, loads its weights (``weights_only=True``) and reads the protocol.

        Args:
            path: a checkpoint written by ``octvideo train`` (or ``octvideo import``).
            device: cpu, cuda or cuda:N for a CUDA device this machine has (``check_device``).
            batch_size: clips per forward pass, 1 to ``MAX_BATCH_SIZE``.

        Raises:
            TypeError: ``path`` is no path (str or ``os.PathLike``).
            ValueError: ``device`` or ``batch_size`` out of its bounds, before the checkpoint
                is read.
            CheckpointError: metadata that is missing or malformed, weights that do not fit the
                model it describes, or classes or a clip that model cannot take
                (``checkpoint_misfit``).
        """
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"Predictor.from_checkpoint takes a checkpoint's path (str or os.PathLike), "
                f"got {type(path).__name__}"
            )
        device = check_device(device)
        check_batch_size(batch_size)
        from octvideo.models.weights import state_mismatch

        meta, state, advice = _read(path)
        try:
            model = build_network(meta.model)
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint {os.fspath(path)!r} describes a model that cannot be built "
                f"({type(err).__name__}: {first_line(err, empty='')})"
            ) from None
        mismatch = state_mismatch(model, state)
        if mismatch:
            raise CheckpointError(
                f"checkpoint {os.fspath(path)!r} does not fit the model its metadata describes "
                f"({meta.model.name!r}): {mismatch}"
            )
        model.load_state_dict(state)
        try:  # the constructor checks the fit (``misfit``: a run on the meta device) once
            predictor = cls(model, meta.classes, meta.clip, device=device, batch_size=batch_size)
        except MisfitError as err:  # worded for the checkpoint, with the fewest frames
            raise checkpoint_misfit(err.misfit, meta, path) from None
        predictor.broken_advice = advice
        return predictor

    # ---------------------------------------------------------------------------------- pieces

    def preprocess(self, frames: Tensor, crop: int = 1) -> Tensor:
        """uint8 frames (T, H, W, 3) -> normalised clip (3, T, S, S) at crop position ``crop``
        (0, 1, 2: left or top, centre, right or bottom)."""
        if isinstance(crop, bool) or crop not in self._transforms:
            raise ValueError(
                f"crop must be 0, 1 or 2 (left or top, centre, right or bottom), got {crop!r}"
            )
        short = min(frames.shape[1], frames.shape[2])
        if short < 1:
            raise ValueError(f"frames of size {tuple(frames.shape[1:3])} cannot be cropped")
        return self._transforms[crop](frames)

    @torch.inference_mode()
    def logits(self, clips: Tensor) -> Tensor:
        """(N, 3, T, S, S) normalised clips -> (N, K) logits, in batches of ``batch_size``."""
        outputs = []
        for chunk in clips.split(self.batch_size):
            chunk = chunk.to(self.device)
            if self.protocol.slowfast_alpha:
                pathways = [pack_pathways(c, self.protocol.slowfast_alpha) for c in chunk]
                chunk = [torch.stack([p[i] for p in pathways]) for i in range(2)]
            outputs.append(self.model(chunk).float().cpu())
        return torch.cat(outputs)

    def view_probs(self, clips: Tensor) -> Tensor:
        """(N, 3, T, S, S) normalised clips -> (N, K) float64 softmax, as ``test`` takes it
        (``evaluate.view_probs``), so that both rank a near tie alike."""
        return view_probs(self.logits(clips))

    def crop_positions(self, views: str | tuple[int, int], window: float | None) -> tuple[int, ...]:
        """Crop positions each clip runs at (0, 1, 2: left or top, centre, right or bottom): the
        centre with a ``window``, else those of ``views`` (``parse_views``; "multi": the
        checkpoint's protocol, bounded by ``check_views``).

        Raises:
            ValueError: views, or a checkpoint's multi-view protocol, out of the bounds.
        """
        return (1,) if window is not None else self._clips_and_crops(views)[1]

    def _clips_and_crops(self, views: str | tuple[int, int]) -> tuple[int, tuple[int, ...]]:
        """Temporal clips and crop positions of ``views`` (``parse_views``; "multi": the
        checkpoint's protocol)."""
        views = parse_views(views)
        if views == "center":
            return 1, (1,)
        if views == "multi":
            clips, crops = self.protocol.test_num_clips, self.protocol.test_num_crops
            check_views(clips, crops)
        else:
            clips, crops = views
        return clips, (1,) if crops == 1 else (0, 1, 2)

    def _clip_plan(
        self,
        info: VideoInfo,
        views: str | tuple[int, int],
        window: float | None,
        stride: float | None,
        frame_times: np.ndarray | None = None,
        name: str = FRAMES_NAME,
    ) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
        """Frame indices of every clip to run, and the window times (``window_times``; empty
        without windows): the clips of ``views`` over the whole video, or one clip a window
        (``_window_plan``, which takes ``frame_times`` and ``name``).

        Raises:
            TooManyWindows: more than ``MAX_WINDOWS`` windows.
        """
        p = self.protocol
        step = clip_stride(p.sampling_rate, info.fps, p.target_fps)  # frames between clip frames
        if window is None:
            clips, _ = self._clips_and_crops(views)
            return multiview_clip_indices(info.num_frames, p.num_frames, step, clips), []
        return self._window_plan(info, window, stride, step, frame_times, name)

    def _window_plan(
        self,
        info: VideoInfo,
        window: float,
        stride: float | None,
        step: float,
        frame_times: np.ndarray | None,
        name: str,
    ) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
        """The clip of each window of ``window`` seconds, ``stride`` apart, that holds a frame,
        and those windows' times; ``step`` frames between a clip's frames.

        Seconds count from the first frame: ``frame_times`` (one per frame) maps them to frames
        in a variable-frame-rate video (``_variable_frame_times``), where the windows end at the
        last frame's time (``_duration``); None maps them as ``seconds x fps``. A frame is shown
        from its time to the next frame's, so a window [start, end) holds the frames from its
        start to before its end (the one ending the video, those up to its end too).

        A window or stride under one frame of the video (``_one_frame``: at a variable rate, the
        median step between frames) is taken as one frame (a stride of None as the window,
        raised with it, so the windows still cover the video), with a warning that names the
        input ``name``, what was given and the frame used. Windows end at the first that holds
        the last frame (``window_times``), and a window is made only where it holds a frame.
        At a constant rate every window does, and windows starting a stride (one frame or more)
        apart up to the last frame are no more than the frames. At a variable rate the windows
        of a pause hold none, and are counted in one warning; windows no closer than their
        length hold frames of their own, so they are no more than the frames either, but
        overlapping ones may share the few frames of a slow stretch (one whose clip is the
        window before's counts once in the video's scores).

        Each window's clip is T frames at the trained stride tau (counted at the trained
        ``data.target_fps`` when it was set, else at the video's own rate), centred on the
        window's middle, within the window's frames where they are enough for the clip, and
        within the video (``_window_clip``). Clips that span more than their window are
        warned of (``_warn_wide_clips``).

        Raises:
            TooManyWindows: more than ``MAX_WINDOWS`` windows.
        """
        p = self.protocol
        total = info.num_frames
        duration = _duration(info, frame_times)
        frame = _one_frame(info, frame_times)  # closer windows repeat clips
        under = _under_one_frame(window, stride, frame)
        if under is not None:
            logger.warning(
                "%s: %s would be under one frame (%d frames over %gs%s): they are taken one "
                "frame, %gs, %s",
                name,
                under[0],
                total,
                duration,
                "" if frame_times is None else "; one frame is the median step between them",
                frame,
                under[1],
            )
        window = max(window, frame)
        # a stride not given is the window's, raised with it: the windows still cover the video
        stride = window if stride is None else max(stride, frame)
        planned = window_times(
            duration, window, stride, limit=MAX_WINDOWS, last_frame=_last_frame(info, frame_times)
        )
        fps = _frame_rate(info.fps)
        first, after = _window_frames(planned, duration, frame_times, fps, total)
        # a frame in it (at a constant rate every window has one, ``window_times`` ending at the
        # last frame; a pause leaves windows none); one whose clip is the window before's counts
        # once in the video's scores (``_repeats``)
        made = after > first
        if not made.all():
            logger.warning(
                "%s: %d of %d windows hold no frame%s: they get no records",
                name,
                int((~made).sum()),
                len(planned),
                _longest_pause(frame_times),
            )
        span = clip_window(p.num_frames, step) - 1
        times, indices = [], []
        for k in np.flatnonzero(made).tolist():
            start, end = planned[k]
            if frame_times is None:
                centre = (start + end) / 2 * fps
            else:
                centre = float(np.interp((start + end) / 2, frame_times, np.arange(total)))
            clip = _window_clip(centre, int(first[k]), int(after[k]) - 1, span, total)
            times.append(planned[k])
            indices.append(clip_indices(clip, p.num_frames, step, total))
        self._warn_wide_clips(name, indices, window, span, frame, frame_times)
        return indices, times

    def _warn_wide_clips(
        self,
        name: str,
        indices: list[np.ndarray],
        window: float,
        span: int,
        frame: float,
        frame_times: np.ndarray | None,
    ) -> None:
        """Warns, once for the input ``name``, where the clips (``indices``, one a window, each
        ``span + 1`` frames from first to last) of more than one window span more than a
        ``window``: they read frames outside their windows, and neighbouring windows may share
        one (``_repeats``, counted once in the video's scores). The warning counts those windows
        and says what window would hold the clips.

        A clip's seconds are the times of the frames it reads (``_clip_seconds``), so at a
        variable rate the clips of a slow stretch count, however short the median step.
        """
        # each window's own clip: a slow stretch of a variable rate spreads a clip over seconds
        seconds = _clip_seconds(indices, frame_times, frame)
        over = int((seconds > window + TIME_EPS).sum())
        windows = len(indices)
        if windows < 2 or not over:
            return
        repeats = len(_repeats(indices))
        longest = (span + 1) * frame if frame_times is None else float(seconds.max())
        if frame_times is None:
            spans = f"{longest:g}s at {1 / frame:g} fps"
        else:
            spans = f"up to {longest:g}s at this video's variable frame rate"
        if over == windows:
            outside = "each window's clip reads frames outside it"
        else:
            outside = f"the clips of {over} of {windows} windows read frames outside them"
        repeated = (
            f", and {repeats} of {windows} windows repeat the clip of the window before "
            "(the video's scores count it once)"
            if repeats
            else ""
        )
        retrain = (
            ""
            if self.protocol.target_fps or frame_times is not None
            else ", or a model trained with data.target_fps set (its clip then spans the same "
            "seconds at any frame rate)"
        )
        logger.warning(
            "%s: the model's clip spans %d frames, %s, more than a %gs window: %s%s; use a "
            "window of at least %gs%s",
            name,
            span + 1,
            spans,
            window,
            outside,
            repeated,
            longest,
            retrain,
        )

    # ---------------------------------------------------------------------------------- predict

    def predict(
        self,
        source: str | bytes | os.PathLike[str] | Tensor | np.ndarray,
        *,
        views: str | tuple[int, int] = "center",
        window: float | str | None = None,
        stride: float | str | None = None,
        fps: float = 30.0,
        decoder: str = "auto",
        on_batch: Callable[[int], None] | None = None,
    ) -> VideoResult:
        """Predicts one video.

        Args:
            source: a video file (a path as str, bytes or ``os.PathLike``), or uint8 frames
                (T, H, W, 3) already decoded (a tensor or a numpy array, of any strides).
            views: "center" (one centre clip), "multi" (the checkpoint's N x crops protocol),
                "NxC" (e.g. "10x3") or (N, crops) (``parse_views``); checked, then ignored with
                windows, where each window runs one centre-cropped clip.
            window: window length ("2s", seconds); None classifies the whole video at once. One
                under a frame of the input is taken as one frame, with a warning.
            stride: step between windows; defaults to the window length (after the window is
                raised to one frame, so the windows cover the video); one under a frame of the
                input is taken as one frame, with a warning.
            fps: frame rate of ``source`` frames (a file's own rate is read from it).
            decoder: "decord", "pyav" or "auto".
            on_batch: called with the number of clips after each forward batch (progress bars).

        Returns:
            A ``VideoResult``; a file that cannot be read gives ``error`` instead of raising, and
            one that cannot be decoded to its end keeps the scores of the clips (windows) before
            the first frame that fails, with ``error`` saying where that is (``read_views``).

        Raises:
            ValueError: a source that is neither a path nor frames; views, a window, stride,
                fps or decoder out of their bounds; an ``on_batch`` that cannot be called;
                or frames that are not uint8 (T, H, W, 3) with at least one frame; before any
                input is read.
            RunStopped: a decoder ran out of open files reading ``source``
                (``open_files.out_of_open_files``), which is no video's fault: one line naming the
                open-file limit (``open_files.open_files_message``), as ``predict_many`` stops.
        """
        start_time = time.perf_counter()
        if not isinstance(source, str | bytes | os.PathLike | Tensor | np.ndarray):
            raise ValueError(
                f"source must be a video file's path or uint8 frames (T, H, W, 3), a tensor or a "
                f"numpy array; got {type(source).__name__}"
            )
        window_s, stride_s = window_seconds(window, "window"), window_seconds(stride, "stride")
        views = parse_views(views)  # fps and decoder: checked by open_input before it reads
        if on_batch is not None and not callable(on_batch):
            raise ValueError(f"on_batch must be callable or None, got {type(on_batch).__name__}")
        if isinstance(source, np.ndarray):  # what decord, PyAV and OpenCV return
            source = _frames_tensor(source)
        name = _input_name(source)
        result = VideoResult(path=name, from_frames=isinstance(source, Tensor))
        try:
            opened = self.open_input(source, views, window_s, stride_s, fps=fps, decoder=decoder)
            probs = self._clip_probs(opened, on_batch)  # (clips, K)
        except (DecodeError, OSError, TooManyWindows) as err:  # a result, not a crash
            if out_of_open_files(err):  # the file may be fine: the caller is to act, not skip it
                raise RunStopped(open_files_message(f"decoding {name}")) from err
            result.error = failure_reason(err)
        else:  # the clips before a frame that cannot be decoded count
            result.set_scores(opened.header(), probs, opened.cut)
        result.seconds = time.perf_counter() - start_time
        if result.error is not None:
            logger.warning("%s: %s", name, result.error)
        return result

    def open_input(
        self,
        source: str | bytes | os.PathLike[str] | Tensor,
        views: str | tuple[int, int],
        window: float | None,
        stride: float | None,
        *,
        fps: float = 30.0,
        decoder: str = "auto",
    ) -> OpenInput:
        """Opens one input (a file once, indexed once) and plans its clips; no model involved,
        so decoding workers call it too.

        Args:
            source: a video file (a path as str, bytes or ``os.PathLike``), or uint8 frames
                (T, H, W, 3).
            views: as in ``predict``; ignored with windows.
            window: window length in seconds (checked by ``window_seconds``), or None.
            stride: step between windows in seconds, or None for the window length; at least
                one frame of the input is taken.
            fps: frame rate of ``source`` frames (a file's own rate is read from it).
            decoder: "decord", "pyav" or "auto".

        Raises:
            FileNotFoundError, DecodeError: the file cannot be opened.
            TooManyWindows: more than ``MAX_WINDOWS`` windows.
            ValueError: frames that are not uint8 (T, H, W, 3) or hold no frame, or views, fps
                or decoder out of bounds; before the input is read.
        """
        fps = check_fps(fps)
        check_decoder(decoder)
        check_whole = None
        if isinstance(source, Tensor):
            info, frames_of, frame_times = _tensor_source(source, fps)
        else:
            video = Video(os.fsdecode(source), decoder=decoder)
            info, frames_of, frame_times = _file_source(video, timed=window is not None)
            check_whole = video.check_whole
        plan, times = self._clip_plan(info, views, window, stride, frame_times, _input_name(source))
        return OpenInput(
            num_frames=info.num_frames,
            fps=_frame_rate(info.fps),
            duration=_duration(info, frame_times),
            plan=plan,
            times=times,
            crops=self.crop_positions(views, window),
            frames_of=frames_of,
            broken_advice=self.broken_advice,
            check_whole=check_whole,
        )

    def clip_views(
        self,
        group: Sequence[np.ndarray],
        crops: Sequence[int],
        frames_of: Callable[[np.ndarray], Tensor],
    ) -> Tensor:
        """Decodes the clips of ``group`` in one pass and transforms them: (len(group) x
        len(crops), 3, T, S, S), each clip's crops next to each other."""
        wanted = np.unique(np.concatenate(group))
        frames = frames_of(wanted)  # (U, H, W, 3), one decode pass per group
        position = {int(f): i for i, f in enumerate(wanted)}
        return torch.stack(
            [
                self.preprocess(frames[[position[int(f)] for f in idx]], crop)
                for idx in group
                for crop in crops
            ]
        )

    def read_views(self, opened: OpenInput, size: int) -> Iterator[Tensor]:
        """The views of ``opened``'s clips, ``size`` clips at a time (``clip_views``).

        A file that cannot be decoded from some frame on (a recording cut short, a partial
        download: a ``DecodeError`` that names the frame) ends them there: the clips wholly
        before that frame are read, those after it dropped, ``opened.plan`` and ``opened.times``
        cut to the clips read and ``opened.cut`` set to the error and what was kept, so that
        the windows before a bad tail keep their scores. A file whose frames all decode but that
        holds less than its index or header lists (a partial download cut between two frames:
        ``opened.check_whole``) is cut short too, every clip read: its windows, centre clip or
        views are of the part it holds.

        Raises:
            DecodeError: a decoding error that names no frame, or one before the first clip's
                frames: nothing of the input can be read.
        """
        for start in range(0, len(opened.plan), size):
            group = opened.plan[start : start + size]
            try:
                views = self.clip_views(group, opened.crops, opened.frames_of)
            except DecodeError as err:
                views, before, error = self._views_before(group, opened, err)
                kept = start + before  # the clips read, this group's and the earlier groups'
                if kept == 0:
                    raise error from None
                total, kind = len(opened.plan), "windows" if opened.times else "clips"
                opened.plan, opened.times = opened.plan[:kept], opened.times[:kept]
                opened.cut = (
                    f"{type(error).__name__}: {error}; {kept} of {total} {kind} predicted, the "
                    f"last {total - kept} dropped"
                )
                if views is not None:
                    yield views
                return
            yield views
        try:
            if opened.check_whole is not None:  # its clips are placed in what it holds
                opened.check_whole()
        except DecodeError as err:
            total, kind = len(opened.plan), "windows" if opened.times else "clips"
            opened.cut = (
                f"{type(err).__name__}: {err}; {total} of {total} {kind} predicted, none dropped"
            )

    def _views_before(
        self, group: list[np.ndarray], opened: OpenInput, err: DecodeError
    ) -> tuple[Tensor | None, int, DecodeError]:
        """The views of the clips of ``group`` that lie wholly before the frame ``err`` names
        (the first clips: frame indices grow clip after clip), their number, and the error of
        the earliest frame found undecodable (decoding them may find an earlier one).

        Raises:
            DecodeError: ``err`` when it names no frame.
        """
        frame = err.frame
        if frame is None:
            raise err
        while True:
            kept = group[: _clips_before(group, frame)]
            if not kept:
                return None, 0, err
            try:
                return self.clip_views(kept, opened.crops, opened.frames_of), len(kept), err
            except DecodeError as again:
                if again.frame is None or again.frame >= frame:  # failing for another reason
                    return None, 0, err
                group, err, frame = kept, again, again.frame

    def _clip_probs(self, opened: OpenInput, on_batch: Callable[[int], None] | None) -> Tensor:
        """Softmax of every clip of ``opened`` that can be read (``read_views``; crops
        averaged), decoding ``batch_size`` clips at a time."""
        crops = len(opened.crops)
        out = []
        for views in self.read_views(opened, self.batch_size):
            probs = self.view_probs(views)  # (clips * crops, K) float64
            out.append(probs.reshape(len(views) // crops, crops, -1).mean(1))
            if on_batch is not None:
                on_batch(len(views) // crops)
        return torch.cat(out)


# an input as ``open_input`` reads it: its info, a reader of its frames by index -> uint8
# (N, H, W, 3), and its frames' times where ``index / fps`` does not give them (else None)
_Source = tuple[VideoInfo, Callable[[np.ndarray], Tensor], np.ndarray | None]


def _input_name(source: str | bytes | os.PathLike[str] | Tensor) -> str:
    """What records and messages call an input: its path, or ``FRAMES_NAME`` for frames given."""
    return FRAMES_NAME if isinstance(source, Tensor) else os.fsdecode(source)


def _tensor_source(frames: Tensor, fps: float) -> _Source:
    """Frames given as a tensor: their info at ``fps``, a reader of them by index, and no frame
    times (``index / fps`` gives them), as ``_file_source`` returns a file's.

    Raises:
        ValueError: frames that are not uint8 (T, H, W, 3), or hold no frame.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(
            f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    if frames.shape[0] < 1:  # no clip can be sampled from it
        raise ValueError(f"frames must hold at least 1 frame, got {frames.shape[0]}")
    info = VideoInfo(frames.shape[0], fps, frames.shape[2], frames.shape[1], "tensor")

    def frames_of(indices: np.ndarray) -> Tensor:
        return frames[torch.as_tensor(indices)]

    return info, frames_of, None


def _file_source(video: Video, *, timed: bool) -> _Source:
    """The info of the file ``video`` opened, a reader of its frames (full size: the clip
    transform resizes once, exactly as in testing) from that one open file, and, when windows
    need them (``timed``), its frame times if its frame rate is variable (None when
    ``index / fps`` gives them)."""
    times = _variable_frame_times(video, _frame_rate(video.info.fps)) if timed else None
    return video.info, video.read, times


def _frames_tensor(frames: np.ndarray) -> Tensor:
    """uint8 numpy frames as a tensor, sharing their memory where torch can: frames with a
    negative stride (``frames[..., ::-1]``, OpenCV's BGR to RGB) are copied once.

    Raises:
        ValueError: frames that are not uint8 (T, H, W, 3), as ``predict`` names them.
    """
    if frames.dtype != np.uint8:  # torch.from_numpy refuses some dtypes with a TypeError
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if any(step < 0 for step in frames.strides):
        frames = frames.copy()
    return torch.from_numpy(frames)


def _frame_rate(fps: float) -> float:
    """A container's frame rate, or 30 when it gives none (0) or one that is not a number."""
    return fps if math.isfinite(fps) and fps > 0 else 30.0


def _duration(info: VideoInfo, frame_times: np.ndarray | None) -> float:
    """Seconds the windows span: up to the last frame's time when the frame rate varies (the
    average rate of a few long gaps puts ``frames / fps`` before or after the last frame), else
    ``frames / fps``, the end of the last frame."""
    if frame_times is not None:
        return float(frame_times[-1])
    return info.num_frames / _frame_rate(info.fps)


def _under_one_frame(window: float, stride: float | None, frame: float) -> tuple[str, str] | None:
    """For the one-frame warning: the windows as asked (``windows of 0.1s``, ``windows 0.15s
    apart`` or both: only what was given and is under ``frame`` seconds) and what is raised to one
    frame (``long``, ``apart``, or ``long and apart``, a stride not given following the window);
    None when nothing is under one frame."""
    short, close = window < frame, stride is not None and stride < frame
    if short and close:
        return f"windows of {window:g}s, {stride:g}s apart,", "long and apart"
    if short:
        return f"windows of {window:g}s", "long and apart" if stride is None else "long"
    return (f"windows {stride:g}s apart", "apart") if close else None


def _one_frame(info: VideoInfo, frame_times: np.ndarray | None) -> float:
    """Seconds of one frame: ``1 / fps``, or the median step between the frames' times when the
    frame rate varies (the mean would count a pause in the recording as frames' time).

    Windows at least this far apart are no more than the frames at a constant rate, each
    starting at or before the last frame (``Predictor._window_plan``).
    """
    if frame_times is not None and frame_times.size > 1:
        steps = np.diff(frame_times)
        steps = steps[steps > 0]
        if steps.size:
            return float(np.median(steps))
    return 1.0 / _frame_rate(info.fps)


def _last_frame(info: VideoInfo, frame_times: np.ndarray | None) -> float:
    """The last frame's time: its timestamp, else ``(frames - 1) / fps``."""
    if frame_times is not None:
        return float(frame_times[-1])
    return (info.num_frames - 1) / _frame_rate(info.fps)


def _frames_before(
    seconds: np.ndarray, frame_times: np.ndarray | None, fps: float, total: int
) -> np.ndarray:
    """How many of the ``total`` frames have a time before each of ``seconds``."""
    if frame_times is None:
        return np.clip(np.ceil(seconds * fps), 0, total).astype(np.int64)
    return np.searchsorted(frame_times, seconds, side="left").astype(np.int64)


def _window_frames(
    times: list[tuple[float, float]],
    duration: float,
    frame_times: np.ndarray | None,
    fps: float,
    total: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each window's first frame, and how many frames come before its end: it holds the frames
    from one to the other. A frame at t is shown until the next, so a window [start, end) holds
    those from its start to before its end; the one ending the video also holds a frame at its
    end (a variable-frame-rate video ends at its last frame's time)."""
    bounds = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    ends = np.where(bounds[:, 1] < duration - TIME_EPS, bounds[:, 1] - TIME_EPS, np.inf)
    return (
        _frames_before(bounds[:, 0] - TIME_EPS, frame_times, fps, total),
        _frames_before(ends, frame_times, fps, total),
    )


def _window_clip(centre: float, low: int, high: int, span: int, total: int) -> int:
    """The first frame of the clip of ``span + 1`` frames for a window whose middle is frame
    ``centre`` and whose frames are ``low`` to ``high``: centred on its middle, within its frames
    when they are enough for the clip, else holding them all; within the video."""
    # half up (round() takes ties to even): windows a frame apart get clips a frame apart
    first = math.floor(centre - span / 2 + 0.5 + 1e-6)
    # the first frames that keep the clip within the window's frames (or, where the window has
    # fewer frames than the clip, keep all of them within the clip)
    earliest, latest = sorted((low, high - span))
    first = min(max(first, earliest), latest)
    return min(max(first, 0), max(total - 1 - span, 0))


def _clip_seconds(
    plan: list[np.ndarray], frame_times: np.ndarray | None, frame: float
) -> np.ndarray:
    """Seconds each clip of ``plan`` spans: the frames from its first to its last, each shown
    for one step at the clip's own pace (the time from its first frame to its last over the
    steps between them), so a clip of a slow stretch spans its seconds, and one whose last frame
    comes before a pause does not span the pause; at a constant rate (no ``frame_times``), its
    frames times ``frame``, as is a clip of one frame."""
    if not plan:
        return np.zeros(0)
    clips = np.stack(plan)  # (windows, T)
    first, last = clips.min(axis=1), clips.max(axis=1)
    if frame_times is None:
        return (last - first + 1) * frame
    steps = last - first
    pace = (frame_times[last] - frame_times[first]) / np.maximum(steps, 1)
    return (steps + 1) * np.where(steps > 0, pace, frame)


def _repeats(plan: list[np.ndarray]) -> tuple[int, ...]:
    """The clips of ``plan`` that are the clip before them (windows' clips go forward, so a
    clip that several windows share is theirs one after another)."""
    if len(plan) < 2:
        return ()
    clips = np.stack(plan)  # (windows, T)
    return tuple((np.flatnonzero((clips[1:] == clips[:-1]).all(axis=1)) + 1).tolist())


def _longest_pause(frame_times: np.ndarray | None) -> str:
    """``; the video has no frame for 20.033s from 0.967s``: its longest step between frames
    (a variable frame rate's; empty for a constant one)."""
    if frame_times is None or frame_times.size < 2:
        return ""
    steps = np.diff(frame_times)
    k = int(np.argmax(steps))
    return f"; the video has no frame for {steps[k]:.3f}s from {frame_times[k]:.3f}s"


def _variable_frame_times(video: Video, fps: float) -> np.ndarray | None:
    """The frames' times (seconds from the first frame) when some frame is half a frame or more
    away from ``index / fps``; None for a constant frame rate or a file without timestamps."""
    times = video.times()
    if times is None:
        return None
    uniform = np.arange(times.size) / fps
    return times if np.abs(times - uniform).max() >= 0.5 / fps else None


def _clips_before(clips: list[np.ndarray], frame: int) -> int:
    """How many of the first ``clips`` need only frames before ``frame``."""
    count = 0
    while count < len(clips) and int(clips[count].max()) < frame:
        count += 1
    return count
