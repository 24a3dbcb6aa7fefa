"""``octvideo data prepare``: re-encode a raw Kinetics tree at a fixed short side.

Raw Kinetics clips come at many sizes (up to 1080p) and codecs; decoding them at training time
costs more than the network on small models. PySlowFast and the Non-local recipes train on copies
scaled to short side 256 or 320, which is what this writes:

- every video under SRC -> the same relative path under DST, extension ``.mp4``, H.264 (crf 23,
  yuv420p, even sizes), video stream only, frames re-timed at the source's average rate (frame
  order and count are kept; that is all the frame-index sampler uses);
- in parallel (processes), with a progress bar;
- resumable: a file is written as ``*.part.mp4`` and renamed when complete, so a finished output
  means a finished file and a rerun skips it;
- failures do not stop the run: they are listed in ``DST/prepare_errors.txt``;
- annotation files: with ``--csv`` Kinetics CSVs, ``DST/<csv stem>.txt`` for each CSV (rows without
  a prepared file are counted and left out) and ``DST/classes.txt`` from the first CSV's labels;
  without, one ``DST/<split>.txt`` per top-level folder of a ``<split>/<class>/<video>`` tree and
  ``DST/classes.txt`` from the sorted class folders.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from octvideo.data.annotations import VIDEO_EXTENSIONS, read_kinetics_csv, write_classes

logger = logging.getLogger(__name__)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side = short_side, both even (H.264 yuv420p)."""
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def transcode(src: str, dst: str, short_side: int) -> int:
    """Re-encode one video at the given short side; return the number of frames written."""
    import av

    part = dst[: -len(".mp4")] + ".part.mp4"
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    frames = 0
    with av.open(src, metadata_errors="ignore") as source:
        if not source.streams.video:
            raise ValueError(f"{src}: no video stream")
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 30
        width, height = scaled_size(
            stream.codec_context.width, stream.codec_context.height, short_side
        )
        with av.open(part, "w", format="mp4") as target:
            out = target.add_stream("libx264", rate=rate)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            time_base = Fraction(1) / Fraction(rate)
            out.codec_context.time_base = time_base
            out.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
            for frame in source.decode(stream):
                image = frame.reformat(width=width, height=height, format="yuv420p")
                image.pts, image.time_base = frames, time_base  # constant rate, same order
                target.mux(out.encode(image))
                frames += 1
            target.mux(out.encode())
    if frames == 0:
        os.remove(part)
        raise ValueError(f"{src}: no frame decoded")
    os.replace(part, dst)
    return frames


def _job(src: str, dst: str, short_side: int) -> tuple[str, str]:
    try:
        transcode(src, dst, short_side)
    except Exception as err:  # reported per file in prepare_errors.txt, the run goes on
        return src, f"{type(err).__name__}: {err}"
    return src, ""


def write_annotations(dst: Path, csvs: list[str] | None) -> list[Path]:
    """Write the annotation files of a prepared tree (see the module docstring)."""
    written = []
    if csvs:
        classes = None
        for csv_path in csvs:
            found = read_kinetics_csv(csv_path, root=dst, classes=classes)
            classes = found.classes
            target = dst / f"{Path(csv_path).stem}.txt"
            target.write_text(
                "".join(
                    f"{Path(r.path).relative_to(dst).as_posix()} {r.label}\n" for r in found.records
                )
            )
            logger.info(
                "%s: %d videos, %d rows without a file", target, len(found.records), found.missing
            )
            written.append(target)
        assert classes is not None
        write_classes(dst / "classes.txt", classes)
        return written + [dst / "classes.txt"]
    splits = sorted(p for p in dst.iterdir() if p.is_dir())
    classes = sorted({c.name for s in splits for c in s.iterdir() if c.is_dir()})
    label_of = {name: i for i, name in enumerate(classes)}
    for split in splits:
        lines = [
            f"{video.relative_to(dst).as_posix()} {label_of[folder.name]}\n"
            for folder in sorted(p for p in split.iterdir() if p.is_dir())
            for video in sorted(folder.glob("*.mp4"))
            if not video.name.endswith(".part.mp4")
        ]
        if lines:
            (dst / f"{split.name}.txt").write_text("".join(lines))
            written.append(dst / f"{split.name}.txt")
    write_classes(dst / "classes.txt", classes)
    return written + [dst / "classes.txt"]


def prepare_dataset(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    short_side: int = 320,
    workers: int = 2,
    csvs: list[str] | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Re-encode every video under ``src`` into ``dst`` and write annotation files.

    Args:
        src: the raw tree (``<split>/<class>/<video>`` or any layout with ``csvs``).
        dst: the output tree (created).
        short_side: 256 or 320 in the usual recipes; any value >= 16 works.
        workers: encoding processes.
        csvs: official Kinetics CSVs to build the annotation files from.
        progress: show a progress bar.

    Returns:
        Counts: ``encoded``, ``skipped`` (already done), ``failed``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"source folder {src} does not exist")
    if short_side < 16:
        raise ValueError(f"--short-side must be >= 16, got {short_side}")
    jobs, skipped = [], 0
    for folder, _, files in os.walk(src):
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS:
                continue
            rel = Path(folder, name).relative_to(src).with_suffix(".mp4")
            if (dst / rel).is_file():
                skipped += 1
            else:
                jobs.append((str(Path(folder, name)), str(dst / rel)))
    dst.mkdir(parents=True, exist_ok=True)
    errors = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_job, s, d, short_side) for s, d in jobs]
        for future in tqdm(
            as_completed(futures),
            total=len(futures),
            desc="prepare",
            unit="video",
            disable=not progress,
        ):
            path, error = future.result()
            if error:
                errors.append((path, error))
    (dst / "prepare_errors.txt").write_text("".join(f"{p}\t{e}\n" for p, e in sorted(errors)))
    write_annotations(dst, csvs)
    counts = {"encoded": len(jobs) - len(errors), "skipped": skipped, "failed": len(errors)}
    logger.info(
        "prepared %s: %d encoded, %d already done, %d failed (see %s)",
        dst,
        counts["encoded"],
        skipped,
        len(errors),
        dst / "prepare_errors.txt",
    )
    return counts
