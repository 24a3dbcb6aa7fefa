"""``long-video``: joins synthetic clips of different classes into one long video, for
sliding-window prediction.

Takes the first validation clip of each class of an ``octvideo data synth`` folder, in the order of
``classes.txt``, and writes them one after another as a single H.264 file, printing which class
occupies which seconds once the video is written. ``make demo`` runs it to show ``octvideo
predict --window``; it is also an input for timing sliding-window prediction.

    python tools/bench.py long-video data/synth --out runs/demo/long_video.mp4

A file already at ``--out`` is replaced only when it is an earlier long video (``is_long_video``:
one carrying ``LONG_VIDEO_TAG`` in its container's comment, the demo's ``long_video.mp4`` in a
run folder, or an empty file) that is writable (``paths.keep_unless_earlier``); a user's file
(notes, a holiday video, a read-only one) is refused before any clip is decoded.

Reference: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019: clips
sampled along a video, as the windows over this one are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from octvideo.data import decode, probe
from octvideo.data.synth import video_comment, write_video
from octvideo.errors import UsageError
from octvideo.paths import (
    RUN_MARK,
    ReadFiles,
    atomic_output,
    check_output_file,
    is_marked,
    keep_unless_earlier,
)

# the container comment every long video carries: ``is_long_video`` knows an earlier one by it
LONG_VIDEO_TAG = "octvideo bench long-video"
# the name ``make demo`` gives it in the demo's run folder, where one written before the tag is
DEMO_NAME = "long_video.mp4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py long-video``."""
    parser.add_argument("synth", type=Path, help="folder written by 'octvideo data synth'")
    parser.add_argument("--out", type=Path, required=True, help="the long video to write")
    parser.set_defaults(run=run)


def is_long_video(path: Path) -> bool:
    """Whether the file ``path`` is an earlier long video, which ``--out`` may replace: one
    carrying ``LONG_VIDEO_TAG``; one written before the tag where ``make demo`` puts it (named
    ``DEMO_NAME`` in a folder ``octvideo train`` marked as its run's: no user file is named so
    there); or an empty file, which holds nothing to lose.

    Raises:
        OSError: the file cannot be read.
    """
    if path.stat().st_size == 0 or (path.name == DEMO_NAME and is_marked(path.parent, RUN_MARK)):
        return True
    return video_comment(path) == LONG_VIDEO_TAG


def run(args: argparse.Namespace) -> int:
    lists = [args.synth / "classes.txt", args.synth / "val.txt"]
    if not all(p.is_file() for p in lists):
        raise UsageError(
            f"{args.synth} has no classes.txt and val.txt: pass a folder written by "
            "'octvideo data synth'"
        )
    classes = lists[0].read_text().split()
    first: dict[int, str] = {}
    for line in lists[1].read_text().splitlines():
        rel, label = line.rsplit(maxsplit=1)
        first.setdefault(int(label), rel)
    missing = [name for index, name in enumerate(classes) if index not in first]
    if missing:
        raise UsageError(f"{lists[1]} has no clip of {', '.join(missing)}")
    picked = [args.synth / first[index] for index in range(len(classes))]
    reads = ReadFiles(
        [("the class list", lists[0]), ("the validation list", lists[1])]
        + [("a clip it joins", path) for path in picked]
    )
    check_output_file("--out", args.out, reads)
    what = f"a long video of this command (one it wrote, or the demo's <run>/{DEMO_NAME})"
    keep_unless_earlier("--out", args.out, is_long_video, what)
    clips, lines, fps, t = [], [], 0.0, 0.0
    for name, path in zip(classes, picked, strict=True):
        info = probe(path)
        fps = info.fps
        clips.append(decode(path).numpy())  # (T, H, W, 3)
        duration = info.num_frames / info.fps
        lines.append(f"{t:5.1f}-{t + duration:5.1f} s  {name}")
        t += duration
    with atomic_output(args.out, "--out") as tmp:  # a stopped run leaves no half video
        write_video(tmp, np.concatenate(clips), fps=round(fps), comment=LONG_VIDEO_TAG)
    # printed once the video is written: a stdout that fails (``| true``, a full disk) loses
    # only the lines, never the video they describe
    print(*lines, f"wrote {args.out} ({t:.1f} s)", sep="\n")  # noqa: T201
    return 0
