"""``predict``: ``octvideo predict`` over a folder of videos against the model's own time, in one
run.

Over N clips (H.264, 320-pixel short side, 10 s at 30 fps, a moving texture; made once with PyAV
and kept in ``--folder``) and a checkpoint this tool writes (random weights; default Oct-I3D-R50,
alpha 0.1, 8x224x224 clips, 400 classes), each round times, in a rotating order:

- ``model``: the model's forward passes over the same clips, decoded and cropped beforehand (not
  timed), in the passes of ``--batch-size`` clips that predict makes: the decode-free time;
- ``workers 0``: predict with decoding in the model's process, in turn with it;
- ``workers W`` for each ``--workers`` W (default 2): decoding in W processes ahead of the model.

The predict runs are ``octvideo.inference.pipeline.predict_many``, what ``octvideo predict`` runs
once the checkpoint has loaded. The report gives each variant's median, the ratios
``workers W / model`` (target at most 1.15 at W = 2 on 2 cores) and ``workers 0 / workers W``
(target at least 1.3), each as a ratio of medians and as each round's own ratio (median and range:
the machine's noise), and where a predict run's time went: forward passes inside the run, and time
the model side waited for decoded clips. The model uses ``--threads`` intra-op threads and the
decoding workers one each, on the same cores: the forward time inside a run above the decode-free
time is that competition.

    python tools/bench.py predict --clips 40 --threads 2 --rounds 3

Reference: Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019: the
centre-clip test views whose decoding and forward passes this times.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np
import torch

from octvideo.argtypes import bounded_int, number
from octvideo.bench.cli import model_name
from octvideo.bench.record import file_and_print
from octvideo.checkpoint_meta import model_config
from octvideo.data.workers import start_worker_server, worker_context
from octvideo.engine.checkpoint import atomic_save
from octvideo.errors import UsageError
from octvideo.inference.pipeline import (
    MAX_WORKERS,
    PipelineStats,
    ReadRequest,
    check_request,
    predict_many,
    read_input,
)
from octvideo.inference.predictor import Predictor
from octvideo.measure.timing import run_rounds, spread_text
from octvideo.network import build_network
from octvideo.paths import check_folder

MODEL = "model"
TARGET_WORKERS_OVER_MODEL = 1.15
TARGET_SEQUENTIAL_OVER_WORKERS = 1.3
MAX_SECONDS = 3600  # one video's length: an hour


@dataclass(frozen=True)
class Timing:
    """One timed run: its wall time, and for a predict run where the time went."""

    seconds: float
    model_seconds: float = 0.0  # forward passes inside the run
    wait_seconds: float = 0.0  # the model side waiting for decoded clips


def variant_name(workers: int) -> str:
    return f"workers {workers}"


# ---------------------------------------------------------------------------------- the inputs


def _clip_size(short_side: int) -> tuple[int, int]:
    """(width, height) of a 16:9 landscape clip with this short side, even for yuv420p."""
    return (short_side * 16 // 9) // 2 * 2, short_side // 2 * 2


def make_clip(path: Path, seed: int, seconds: float, fps: int, short_side: int) -> Path:
    """A texture scrolling right under a square moving down, H.264 (libx264's default preset),
    written to a temporary name first so that an interrupted run leaves no half clip."""
    import av

    width, height = _clip_size(short_side)
    rng = np.random.default_rng(seed)
    cell = max(1, short_side // 40)
    texture = rng.integers(0, 256, (height // cell + 1, width // cell + 1, 3), dtype=np.uint8)
    texture = texture.repeat(cell, 0).repeat(cell, 1)[:height, :width]
    texture = np.concatenate([texture, texture], axis=1)  # (H, 2W, 3): scrolls without a seam
    part = path.with_name(path.name + ".part")
    with av.open(str(part), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        side = max(2, height // 6)
        for i in range(round(seconds * fps)):
            x = (i * 3 + seed * 17) % width
            frame = np.ascontiguousarray(texture[:, x : x + width])
            y = (i * 2) % max(1, height - side)
            frame[y : y + side, width // 3 : width // 3 + side] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    part.replace(path)
    return path


def make_clips(folder: Path, count: int, seconds: float, fps: int, short_side: int) -> list[Path]:
    """``count`` clips in ``folder``, made in parallel; those already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip_{i:03d}.mp4" for i in range(count)]
    missing = [(p, i, seconds, fps, short_side) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        started = time.perf_counter()
        processes = max(1, min(len(missing), os.cpu_count() or 1, 8))
        with worker_context().Pool(processes) as pool:  # as every octvideo worker
            pool.starmap(make_clip, missing)
        print(  # noqa: T201
            f"made {len(missing)} clips in {folder} in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    return paths


def default_folder(seconds: float, fps: int, short_side: int) -> Path:
    name = f"octvideo_bench_predict_{short_side}p_{seconds:g}s_{fps}fps"
    return Path(tempfile.gettempdir()) / name


def write_checkpoint(args: argparse.Namespace, path: Path) -> Path:
    """A checkpoint in the format ``octvideo train`` writes, with random weights."""
    torch.manual_seed(0)
    model_section = {
        "name": args.model,
        "num_classes": args.classes,
        "alpha": args.alpha,
        "octave": [1, 2, 2],
        "dropout": 0.0,
        "extra": {},
    }
    meta = {
        "name": f"bench_predict {args.model}",
        "model": model_section,
        "classes": [f"class{i:03d}" for i in range(args.classes)],
        "normalization": {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]},
        "clip": {
            "num_frames": args.frames,
            "sampling_rate": args.sampling_rate,
            "slowfast_alpha": None,
            "test_short_side": round(args.size * 256 / 224),
            "test_crop_size": args.size,
            "test_num_clips": 10,
            "test_num_crops": 3,
        },
    }
    model = build_network(model_config(model_section))
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta}}, path)
    return path


# ------------------------------------------------------------------------------ the variants


def model_runner(predictor: Predictor, paths: Sequence[Path]) -> Callable[[], Timing]:
    """The decode-free variant: the clips of ``paths`` decoded and cropped here, once; each call
    times the forward passes over them, ``batch_size`` clips a pass, as predict fills them."""
    request = check_request(ReadRequest())
    views = []
    for path in paths:
        for kind, payload in read_input(predictor, str(path), request, predictor.batch_size):
            if kind == "error":
                raise RuntimeError(f"{path}: {payload}")
            if kind == "clips":
                views.append(payload)
    clips = torch.cat(views)  # (N, 3, T, S, S)

    def run() -> Timing:
        start = time.perf_counter()
        for batch in clips.split(predictor.batch_size):
            predictor.logits(batch).softmax(-1)
        seconds = time.perf_counter() - start
        return Timing(seconds, model_seconds=seconds)

    return run


def predict_runner(
    predictor: Predictor, paths: Sequence[Path], workers: int, nice: int = 0
) -> Callable[[], Timing]:
    """A predict variant: ``predict_many`` over ``paths`` with ``workers`` decoding processes."""

    def run() -> Timing:
        stats = PipelineStats()
        start = time.perf_counter()
        results = list(
            predict_many(predictor, paths, workers=workers, stats=stats, worker_nice=nice)
        )
        seconds = time.perf_counter() - start
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} inputs failed: {failed[0].error}")
        return Timing(seconds, stats.model_seconds, stats.wait_seconds)

    return run


def interleaved(variants: dict[str, Callable[[], Timing]], rounds: int) -> dict[str, list[Timing]]:
    """Each round runs every variant once, the order rotated by one each round (so no variant
    always follows the same one: a cache or a slow spell it leaves behind is shared)."""
    runs = run_rounds(list(variants.values()), repeats=rounds, order="rotate")
    return dict(zip(variants, runs, strict=True))


# ---------------------------------------------------------------------------------- the report


def ratio_lines(times: dict[str, list[Timing]], workers: Sequence[int]) -> list[str]:
    """The done-when ratios: ``workers W / model`` and ``workers 0 / workers W`` for each W in
    ``workers`` (counts above 0, as ``check`` leaves them), as a ratio of medians with each
    round's own ratio."""
    lines = []
    model = [t.seconds for t in times[MODEL]]
    sequential = [t.seconds for t in times[variant_name(0)]]
    for w in workers:
        run = [t.seconds for t in times[variant_name(w)]]
        over_model = median(run) / median(model)
        speedup = median(sequential) / median(run)
        over_model_rounds = [a / b for a, b in zip(run, model, strict=True)]
        speedup_rounds = [a / b for a, b in zip(sequential, run, strict=True)]
        lines.append(
            f"workers {w} / model: {over_model:.3f} (target <= {TARGET_WORKERS_OVER_MODEL}, "
            f"{'met' if over_model <= TARGET_WORKERS_OVER_MODEL else 'NOT met'}); "
            f"each round: {spread_text(over_model_rounds)}"
        )
        lines.append(
            f"workers 0 / workers {w}: {speedup:.3f} (target >= "
            f"{TARGET_SEQUENTIAL_OVER_WORKERS}, "
            f"{'met' if speedup >= TARGET_SEQUENTIAL_OVER_WORKERS else 'NOT met'}); "
            f"each round: {spread_text(speedup_rounds)}"
        )
    return lines


def report(
    args: argparse.Namespace, times: dict[str, list[Timing]], clips: int, device: str
) -> str:
    """The table (medians over the rounds) and the ratio lines."""
    model_median = median([t.seconds for t in times[MODEL]])
    head = (
        f"{args.model} alpha {args.alpha}, {args.frames}x{args.size}x{args.size} centre clips, "
        f"{clips} clips ({args.short_side}-pixel H.264, {args.seconds:g} s at {args.fps} fps), "
        f"{device}, {args.threads} model threads, workers at nice {args.nice}, batch "
        f"{args.batch_size}, {args.rounds} interleaved rounds (medians)"
    )
    lines = [
        head,
        "",
        "| variant | s | ms a clip | / model | forward s in the run | waiting for clips s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, runs in times.items():
        seconds = median([t.seconds for t in runs])
        forward = median([t.model_seconds for t in runs])
        waiting = "" if name == MODEL else f"{median([t.wait_seconds for t in runs]):.2f}"
        lines.append(
            f"| {name} | {seconds:.2f} | {1e3 * seconds / clips:.0f} | "
            f"{seconds / model_median:.3f} | {forward:.2f} | {waiting} |"
        )
    lines += ["", *ratio_lines(times, args.workers)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the tool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py predict``."""
    parser.add_argument(
        "--clips", type=bounded_int(10_000), default=40, help="videos in the folder"
    )
    parser.add_argument("--seconds", type=number, default=10.0, help="length of each video")
    parser.add_argument("--fps", type=bounded_int(240), default=30)
    parser.add_argument("--short-side", type=bounded_int(1080, low=16), default=320, help="pixels")
    parser.add_argument(
        "--folder", type=Path, default=None, help="where the videos are made and kept"
    )
    parser.add_argument("--model", type=model_name, default="i3d_r50")
    parser.add_argument("--alpha", type=number, default=0.1)
    parser.add_argument("--classes", type=bounded_int(100_000), default=400)
    parser.add_argument("--frames", type=bounded_int(256), default=8)
    parser.add_argument(
        "--sampling-rate", type=bounded_int(64), default=8, help="frames between clip frames"
    )
    parser.add_argument("--size", type=bounded_int(1024), default=224, help="crop size")
    parser.add_argument(
        "--batch-size", type=bounded_int(512), default=8, help="clips a forward pass"
    )
    parser.add_argument(
        "--threads", type=bounded_int(1024), default=2, help="the model's torch threads"
    )
    parser.add_argument(
        "--workers",
        type=bounded_int(MAX_WORKERS, low=0),
        nargs="+",
        default=[2],
        help="worker counts to time besides 0",
    )
    parser.add_argument(
        "--nice",
        type=bounded_int(19, low=0),
        default=0,
        help="the workers' niceness (0 to 19): cores to the model",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=bounded_int(1000), default=3, help="interleaved rounds")
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.set_defaults(check=check, run=run)


def check(args: argparse.Namespace) -> None:
    """Refuses a video length outside (0, MAX_SECONDS] and a ``--folder`` where no video can be
    written, and keeps the worker counts above 0 once each, in order (0 is always timed);
    argparse bounds the other numbers."""
    if not (math.isfinite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        raise UsageError(
            f"--seconds {args.seconds:g}: give a length above 0, at most {MAX_SECONDS}"
        )
    if args.folder is not None:
        check_folder("--folder", args.folder)
    args.workers = sorted({w for w in args.workers if w > 0})
    if not args.workers:
        raise UsageError("--workers: give at least one count above 0 (0 is always timed)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    folder = args.folder or default_folder(args.seconds, args.fps, args.short_side)
    paths = make_clips(folder, args.clips, args.seconds, args.fps, args.short_side)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_checkpoint(args, Path(tmp) / f"{args.model}.ckpt")
        start_worker_server()  # as octvideo predict does, while the checkpoint loads
        predictor = Predictor.from_checkpoint(
            checkpoint, device=args.device, batch_size=args.batch_size
        )
        variants = {MODEL: model_runner(predictor, paths)}
        variants[variant_name(0)] = predict_runner(predictor, paths, 0)
        for w in args.workers:
            variants[variant_name(w)] = predict_runner(predictor, paths, w, args.nice)
        variants[MODEL]()  # warm-up: the first passes set up the kernels
        times = interleaved(variants, args.rounds)
        table = report(args, times, len(paths), args.device)
        commands = [
            f"octvideo predict --ckpt CKPT {folder} --workers {w} --batch-size "
            f"{args.batch_size} --device {args.device} --quiet"
            for w in (0, *args.workers)
        ]
    file_and_print(
        args,
        table,
        "\nthe same runs from the command line (CKPT: a checkpoint of the model):",
        "\n".join(f"    {c}" for c in commands),
    )
    return 0
