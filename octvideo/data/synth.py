"""A synthetic action dataset that needs temporal modelling, written as real H.264 files.

Six classes, one asymmetric shape per clip doing one motion:

    0 move_left   1 move_right   2 rotate_cw   3 rotate_ccw   4 grow   5 shrink

A single frame carries no class information. Per clip the background colour, shape colour, shape,
orientation and noise are random, and every class draws its frames' position, orientation and size
from the same distribution: a moving shape travels a distance ``d`` through a random centre, and a
shape of another class sits at a uniformly random point of such a path; likewise for size (grow and
shrink span a log-size interval; other classes take a uniform point of one) and orientation
(uniform). Since each motion is the time reversal of its partner (left/right, cw/ccw,
grow/shrink), the per-frame distributions of partners are equal too. Only the change between
frames tells the classes apart: the direction of motion, of rotation, of scaling. Motions are
strong (a few pixels or 15-25 degrees per frame, well inside the frame: no wrap-around), so a
small 3D network learns them in minutes on a CPU.

``--preset yardstick`` (``generate_synthetic(..., preset="yardstick")``) writes the study's set
instead, twelve classes under nuisances (``octvideo.data.yardstick``), with the same layout,
determinism and bounds.

Layout written under ``out``: ``train.txt`` and ``val.txt`` (``relative/path.mp4 label`` lines),
``classes.txt``, ``train/<class>/<n>.mp4`` and ``val/<class>/<n>.mp4``. The output is a function of
the arguments (for one build of PyAV's libx264; another x264 version may encode the same frames
differently): clip ``n`` of a split draws from ``numpy.random.default_rng([seed, split, n])``,
x264 runs single-threaded and without MB-tree rate control (x264's MB-tree reads memory it has not
written: with it the same frames encode to different bytes depending on what the allocator hands
out: 3 of 12 clips at 32x32 differed between two ``MALLOC_PERTURB_`` values).

Bounds: ``--size`` 16 to ``MAX_SIZE``, ``--frames`` 2 to ``MAX_FRAMES``, ``--num-train`` and
``--num-val`` up to ``MAX_CLIPS``, ``--seed`` 0 to 2**63 - 1; a value outside is refused before
anything is written. A clip is rendered and encoded one frame at a time, so memory does not grow
with ``--frames``.

``out`` is new, holds none of the names synth writes, or holds an earlier synth set (its
``classes.txt``, the first file written, lists a preset's classes), which is replaced: its lists
and its clips (``NNNNN.mp4`` in a preset's class folders) are removed first, so that ``out`` holds
exactly the new set; other files there are kept. Another dataset's lists or class list there is
refused before anything is written, as is an ``out`` another synth is writing (``--out D is in use
by octvideo data synth (pid N)``, ``paths.hold_folder``): two would remove each other's clips.

Every file is written to a temporary name and renamed when complete; a write that fails (a full
disk) stops the run with ``RunStopped``, leaving only complete files (the lists are written last).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from octvideo.data import yardstick
from octvideo.data.annotations import write_classes
from octvideo.data.limits import check_range
from octvideo.data.shapes import SHAPES
from octvideo.errors import OutputWriteError, RunStopped
from octvideo.paths import (
    AtomicOutputs,
    atomic_output,
    check_output_file,
    hold_folder,
    temporaries,
    write_failure,
)
from octvideo.streams import RESULT

logger = logging.getLogger(__name__)

CLASSES = ("move_left", "move_right", "rotate_cw", "rotate_ccw", "grow", "shrink")

FPS = 8
NOISE_STD = 6.0  # per-pixel noise, redrawn each frame
SIZE_RANGE = (0.12, 0.25)  # shape half-size as a share of the frame side
TRAVEL = (0.25, 0.35)  # distance a moving shape covers in a clip, as a share of the frame side
SPIN = (8.0, 14.0)  # degrees per frame of a rotating shape
GROWTH = 0.8  # share of the log-size range a growing / shrinking shape crosses
MAX_SIZE = 1024  # frame side limit: 16 frames of 1024x1024 are 48 MiB per clip
MAX_FRAMES = 1024  # frames per clip: 128 s at FPS
MAX_CLIPS = 100_000  # clips per split: 5 GB at the default size
MAX_SEED = 2**63 - 1


def iter_clip(label: int, size: int, frames: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Draw one clip of class ``label``, a frame at a time: ``frames`` uint8 (size, size, 3)."""
    # A bright shape on a dark background, colours random within those ranges: one contrast
    # polarity, so a motion's direction is one oriented pattern, not two of opposite sign.
    background = rng.integers(0, 90, 3)
    colour = rng.integers(150, 256, 3)
    outline = SHAPES[list(SHAPES)[rng.integers(len(SHAPES))]]
    steps = max(frames - 1, 1)
    # Position: a path of length `travel` through a random centre, inside the frame.
    travel = rng.uniform(*TRAVEL) * size
    lo, hi = math.log(SIZE_RANGE[0] * size), math.log(SIZE_RANGE[1] * size)
    span = GROWTH * (hi - lo)  # log-size interval a grow/shrink clip crosses
    log_mid = rng.uniform(lo + span / 2, hi - span / 2)
    margin = 0.1 * size  # the shape's centre stays inside the frame; its edges may leave it
    cx = rng.uniform(margin + travel / 2, size - margin - travel / 2)
    cy = rng.uniform(margin, size - margin)
    angle0 = rng.uniform(0, 2 * math.pi)
    spin = math.radians(rng.uniform(*SPIN))  # per frame
    u = rng.uniform()  # where on its path a static property sits (same law as a moving one)
    kind = label // 2  # 0 move, 1 rotate, 2 scale
    forward = label in (1, 2, 4)  # right, clockwise, grow
    for t in range(frames):
        f = t / steps if forward else 1 - t / steps  # place along the path, 0 -> 1 or 1 -> 0
        x = cx + travel * ((f if kind == 0 else u) - 0.5)
        # y points down, so a positive angle step turns clockwise on screen
        angle = angle0 + (spin * t * (1.0 if forward else -1.0) if kind == 1 else 0.0)
        half = math.exp(log_mid + span * ((f if kind == 2 else u) - 0.5))
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        points = outline @ rot.T * half + (x, cy)
        mask_img = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask_img).polygon([tuple(p) for p in points], fill=255)
        mask = np.asarray(mask_img, np.float32)[..., None] / 255.0  # (H, W, 1)
        frame = background * (1 - mask) + colour * mask + rng.normal(0, NOISE_STD, (size, size, 3))
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_video(
    path: str | os.PathLike[str],
    clip: np.ndarray | Iterable[np.ndarray],
    fps: int = FPS,
    crf: int = 18,
    *,
    comment: str | None = None,
) -> None:
    """Encode uint8 frames (T, H, W, 3), an array or frames (H, W, 3) one at a time, as H.264
    (yuv420p, one thread, no MB-tree: reproducible) at constant rate factor ``crf``, with
    ``comment`` as the container's comment tag (``video_comment`` reads it back): the mark by
    which a writer knows its own earlier output."""
    frames = iter(clip)
    first = next(frames)
    with av.open(os.fspath(path), "w") as container:
        if comment is not None:
            container.metadata["comment"] = comment
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        for array in itertools.chain([first], frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def video_comment(path: str | os.PathLike[str]) -> str | None:
    """The container's comment tag of the file ``path`` (MP4, MOV, M4V, AVI and MKV keep one;
    MKV reads it back as ``COMMENT``), or None: no comment, or no container FFmpeg knows (an
    empty file, a text). Only the container's header is read.

    Raises:
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as f:
        try:
            with av.open(f, metadata_errors="replace") as container:
                tags = container.metadata
        except (av.FFmpegError, OSError):
            return None
    return next((value for key, value in tags.items() if key.lower() == "comment"), None)


@dataclass(frozen=True)
class Preset:
    """A built-in set: its classes, how a clip is drawn and encoded, and its default clip counts."""

    classes: tuple[str, ...]
    iter_clip: Callable[[int, int, int, np.random.Generator], Iterator[np.ndarray]]
    num_train: int
    num_val: int
    encode: dict[str, int] = field(default_factory=dict)  # write_video keyword arguments


PRESETS = ("demo", "yardstick")


def get_preset(name: str) -> Preset:
    """The built-in set called ``name`` (one of ``PRESETS``).

    Raises:
        ValueError: an unknown name.
    """
    if name == "demo":
        return Preset(CLASSES, iter_clip, num_train=360, num_val=120)
    if name == "yardstick":
        return Preset(
            yardstick.CLASSES,
            yardstick.iter_clip,
            num_train=yardstick.NUM_TRAIN,
            num_val=yardstick.NUM_VAL,
            encode={"crf": yardstick.CRF},
        )
    raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}")


def _earlier_set(classes_file: Path) -> bool:
    """Whether ``classes_file`` is a regular file listing a preset's classes: the first file a
    synth run writes, so it marks a folder synth wrote (an interrupted run too)."""
    if classes_file.is_symlink() or not classes_file.is_file():
        return False
    if classes_file.stat().st_size > 4096:  # far more than a preset's names; not read whole
        return False
    names = classes_file.read_bytes().decode("utf-8", errors="replace").splitlines()
    return tuple(names) in {get_preset(name).classes for name in PRESETS}


def _refuse_foreign_out(out: Path) -> bool:
    """Refuse an ``out`` whose files synth would replace (lists, ``classes.txt``, split
    folders) unless it holds an earlier synth set (its ``classes.txt`` is a preset's class
    list): a prepared Kinetics folder, say, would lose its lists and class list.

    Returns:
        Whether ``out`` holds an earlier synth set.

    Raises:
        ValueError: one line naming the files in the way.
        UsageError: a list name is a link, a folder or a file that is not regular.
    """
    if not out.is_dir():
        return False
    earlier = _earlier_set(out / "classes.txt")
    if not earlier:
        names = ("train.txt", "val.txt", "classes.txt", "train", "val")
        in_the_way = [name for name in names if os.path.lexists(out / name)]
        if in_the_way:
            raise ValueError(
                f"--out {out} holds {', '.join(in_the_way)} of another dataset (its classes.txt "
                "is no synth class list), which synth would replace; choose an empty or new --out"
            )
    for name in ("train.txt", "val.txt", "classes.txt"):  # a link, folder, device or pipe
        check_output_file("--out", out / name, folder=False)
    return earlier


_CLIP_NAME = re.compile(r"\d{5,}\.mp4")  # f"{n:05d}.mp4"


def _earlier_clips(out: Path) -> Iterator[Path]:
    """The clips an earlier synth run wrote in ``out``: ``NNNNN.mp4`` files (and temporaries of
    them that a killed run left) in the class folders of any preset under ``train/`` and ``val/``.
    Nothing else is synth's: other files there, and folders reached through a link, are left."""
    names = sorted({name for preset in PRESETS for name in get_preset(preset).classes})
    for split in ("train", "val"):
        if (out / split).is_symlink():
            continue
        for name in names:
            folder = out / split / name
            if folder.is_symlink() or not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if not (entry.is_symlink() or entry.is_file()):
                    continue
                if _CLIP_NAME.fullmatch(entry.name):
                    yield entry
                elif entry.name.startswith(".") and ".mp4." in entry.name:
                    clip = folder / f"{entry.name[1:].split('.mp4.')[0]}.mp4"
                    if _CLIP_NAME.fullmatch(clip.name) and entry in temporaries(clip):
                        yield entry


def _clear_earlier_set(out: Path) -> None:
    """Remove what an earlier synth run wrote in ``out`` but ``classes.txt``: its lists first (a
    list means a finished run), then its clips, then the class and split folders they leave
    empty, so that ``out`` ends up holding exactly the new set.

    Raises:
        RunStopped: one line naming a file that could not be removed.
    """
    clips = list(_earlier_clips(out))
    for path in [out / "train.txt", out / "val.txt", *clips]:
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise RunStopped(
                f"removing {path} of the earlier synth set failed ({write_failure(err)}); "
                "remove it or choose another --out"
            ) from err
    for folder in sorted({path.parent for path in clips}) + [out / "train", out / "val"]:
        with contextlib.suppress(OSError):  # not empty: it holds other files (or the new set's)
            folder.rmdir()
    if clips:
        logger.info("removed %d clips of the earlier synth set in %s", len(clips), out)


def _check_arguments(size: int, frames: int, num_train: int, num_val: int, seed: int) -> None:
    """Raises a ValueError naming the first argument outside its bound (see the module
    docstring), before anything is allocated or written."""
    if size < 16 or size % 2:
        raise ValueError(f"--size must be an even number >= 16, got {size}")
    if size > MAX_SIZE:
        raise ValueError(
            f"--size must be at most {MAX_SIZE} (a synthetic clip of {size}x{size} pixels would "
            f"need {frames * size * size * 3 / 2**30:.0f} GiB of memory), got {size}"
        )
    check_range("--frames", frames, 2, MAX_FRAMES, " frames per clip")
    check_range("--num-train", num_train, 1, MAX_CLIPS, " clips")
    check_range("--num-val", num_val, 0, MAX_CLIPS, " clips")
    check_range("--seed", seed, 0, MAX_SEED)


def _make_out(out: Path) -> None:
    """Create the folder ``out`` (and its parents), or raise a ValueError saying why it cannot
    be the output folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file of that name, or a folder that cannot be written
        reason = "it is a file" if out.is_file() else err.strerror or str(err)
        raise ValueError(
            f"--out {out} cannot be the output folder ({reason}); choose another --out"
        ) from err


def generate_synthetic(
    out: str | os.PathLike[str],
    num_train: int | None = None,
    num_val: int | None = None,
    size: int = 64,
    frames: int = 16,
    seed: int = 0,
    progress: bool = True,
    preset: str = "demo",
) -> Path:
    """Write a built-in synthetic set (see the module docstring; the yardstick's is
    ``octvideo.data.yardstick``).

    Args:
        out: output folder (created): new, without synth's names (``train.txt``, ``val.txt``,
            ``classes.txt``, ``train``, ``val``), or holding an earlier synth set, whose lists
            and clips are removed first (other files are kept).
        num_train: training clips, classes in turn (clip n has label n % number of classes);
            None: the preset's (demo 360).
        num_val: validation clips; None: the preset's (demo 120).
        size: frame side in pixels (even, 16 to ``MAX_SIZE``: H.264 yuv420p needs even sizes).
        frames: frames per clip.
        seed: base seed.
        progress: show a progress bar.
        preset: ``"demo"`` (six classes, the demo's set) or ``"yardstick"`` (twelve classes
            under nuisances, the study's set).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: an unknown preset, an argument outside its bound, an ``out`` that cannot
            be a folder or holds another dataset's files; before anything is written.
        UsageError: another synth is writing ``out`` ("--out D is in use by octvideo data synth
            (pid N); ..."), before anything is written.
        RunStopped: a file could not be written (a full disk), no file is left half written; or
            a file of the earlier set could not be removed.
    """
    chosen = get_preset(preset)
    num_train = chosen.num_train if num_train is None else num_train
    num_val = chosen.num_val if num_val is None else num_val
    _check_arguments(size, frames, num_train, num_val, seed)
    out = Path(out)
    _refuse_foreign_out(out)  # before anything is made
    _make_out(out)
    # the only synth writing ``out``: two would remove each other's clips and lists
    with hold_folder(out, "data synth", name=f"--out {out}", advice="choose another --out"):
        # checked again holding it: a synth that ended meanwhile may have written a set there
        earlier = _refuse_foreign_out(out)
        return _write_set(out, chosen, num_train, num_val, size, frames, seed, progress, earlier)


def _write_set(
    out: Path,
    chosen: Preset,
    num_train: int,
    num_val: int,
    size: int,
    frames: int,
    seed: int,
    progress: bool,
    earlier: bool,
) -> Path:
    """``generate_synthetic`` past its checks, holding ``out``: removes the ``earlier`` set
    there and writes the new one."""
    classes = chosen.classes
    jobs = [("train", 0, n) for n in range(num_train)] + [("val", 1, n) for n in range(num_val)]
    lines: dict[str, list[str]] = {"train": [], "val": []}
    if earlier:
        _clear_earlier_set(out)
    target = out / "classes.txt"
    try:
        write_classes(target, classes)
        for split, split_id, n in tqdm(jobs, desc="synth", unit="clip", disable=not progress):
            label = n % len(classes)
            target = out / split / classes[label] / f"{n:05d}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, split_id, n])
            with atomic_output(target) as part:
                write_video(part, chosen.iter_clip(label, size, frames, rng), **chosen.encode)
            lines[split].append(f"{target.relative_to(out).as_posix()} {label}\n")
        with AtomicOutputs() as lists:  # both new or neither: a list means a finished run
            parts = {split: lists.add(out / f"{split}.txt") for split in lines}
            for split, rows in lines.items():
                target = parts[split].path
                parts[split].write("".join(rows))
    except (OSError, OutputWriteError) as err:  # a full disk: the files there are whole
        done = len(lines["train"]) + len(lines["val"])
        failed = err.path if isinstance(err, OutputWriteError) else target
        raise RunStopped(
            f"writing {failed} failed ({write_failure(err)}); {done} of {len(jobs)} clips were "
            f"written, the lists not yet; free space in {out} and run again"
        ) from err
    logger.info("wrote %d train and %d val clips to %s", num_train, num_val, out, extra=RESULT)
    return out
