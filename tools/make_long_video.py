"""Joins synthetic clips of different classes into one long video, for sliding-window prediction.

Takes the first validation clip of each class of an ``octvideo data synth`` folder, in the order of
``classes.txt``, and writes them one after another as a single H.264 file, printing which class
occupies which seconds. ``make demo`` runs it to show ``octvideo predict --window``.

    python tools/make_long_video.py data/synth --out runs/demo/long_video.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from octvideo.data import decode, probe
from octvideo.data.synth import write_video


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("synth", type=Path, help="folder written by 'octvideo data synth'")
    parser.add_argument("--out", type=Path, required=True, help="the long video to write")
    args = parser.parse_args(argv)
    classes = (args.synth / "classes.txt").read_text().split()
    first: dict[int, str] = {}
    for line in (args.synth / "val.txt").read_text().splitlines():
        rel, label = line.rsplit(maxsplit=1)
        first.setdefault(int(label), rel)
    clips, fps, t = [], 0.0, 0.0
    for index, name in enumerate(classes):
        path = args.synth / first[index]
        info = probe(path)
        fps = info.fps
        clips.append(decode(path).numpy())  # (T, H, W, 3)
        duration = info.num_frames / info.fps
        print(f"{t:5.1f}-{t + duration:5.1f} s  {name}")  # noqa: T201
        t += duration
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_video(args.out, np.concatenate(clips), fps=round(fps))
    print(f"wrote {args.out} ({t:.1f} s)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
