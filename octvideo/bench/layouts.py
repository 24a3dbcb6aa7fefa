"""``layouts``: inference and training-step time of models in contiguous (NCDHW) against
channels-last (NDHWC) memory, interleaved in one run: the measurement behind
``trainer.memory_format: auto``.

For each alpha the same weights run in both layouts; every repeat times each (alpha, layout) once,
in alternating order, inference repeats first (fixed weights; the model fused for inference as the
commands run it), then training steps (forward, loss, backward, SGD step). Medians, and the
channels-last / contiguous ratio per alpha, then each round's own ratio as a median and a range
(the machine's noise, as in ``models``). On CUDA (``--device cuda``, ``tools/bench_gpu.sh``) this
is what decides whether ``auto`` should pick channels-last there too.

    python tools/bench.py layouts --model i3d_r50 --alphas 0.5 0 --threads 2 --repeats 4

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the octave layers whose
layout this chooses.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from octvideo import allocator
from octvideo.argtypes import bounded_int, number
from octvideo.bench.cli import model_name
from octvideo.bench.models import add_step_options, step_timer
from octvideo.bench.record import file_and_print
from octvideo.measure.timing import paired_ratios, per_round_line, time_interleaved
from octvideo.models import create_model

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last_3d}


Row = tuple[float, str, list[float], list[float]]


def measure(args: argparse.Namespace) -> list[Row]:
    """(alpha, layout, inference ms per round, training-step ms per round) for every alpha and
    layout."""
    keys, timers = [], []
    for alpha in args.alphas:
        torch.manual_seed(0)
        first = create_model(args.model, alpha=alpha, num_classes=400, dropout=0.0)
        for name, layout in LAYOUTS.items():
            model = create_model(args.model, alpha=alpha, num_classes=400, dropout=0.0)
            model.load_state_dict(first.state_dict())
            keys.append((alpha, name))
            timers.append(step_timer(model, args, layout))
    for timer in timers:  # warm-up: first calls allocate, pack weights, pick kernels
        for _ in range(args.warmup):
            timer.train_step()
            timer.infer()
    infer = time_interleaved([t.infer for t in timers], repeats=args.repeats, warmup=0)
    train = time_interleaved([t.train_step for t in timers], repeats=args.repeats, warmup=0)
    return [
        (a, n, [s * 1e3 for s in i], [s * 1e3 for s in t])
        for (a, n), i, t in zip(keys, infer, train, strict=True)
    ]


def report(args: argparse.Namespace, rows: list[Row]) -> str:
    lines = [
        f"{args.model}, clip {args.frames}x{args.size}x{args.size}, batch {args.batch} (training "
        f"step {args.train_batch}), {args.device} {args.dtype}, threads {torch.get_num_threads()}, "
        f"{args.repeats} interleaved repeats (medians)",
        "",
        "| alpha | layout | inference ms | training step ms | inference ratio | training ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(a, n): (i, t) for a, n, i, t in rows}
    med = statistics.median
    rounds = []
    for alpha, name, infer_ms, train_ms in rows:
        ratios = "| | |"
        if name == "channels-last":
            base_i, base_t = by_key[(alpha, "contiguous")]
            ratios = f"| {med(infer_ms) / med(base_i):.3f} | {med(train_ms) / med(base_t):.3f} |"
            for kind, a, b in (
                ("inference", infer_ms, base_i),
                ("training step", train_ms, base_t),
            ):
                label = f"alpha {alpha}, channels-last / contiguous, {kind}"
                rounds.append(per_round_line(label, paired_ratios(a, b)))
        lines.append(f"| {alpha} | {name} | {med(infer_ms):.1f} | {med(train_ms):.1f} {ratios}")
    return "\n".join([*lines, "", *rounds])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py layouts``."""
    parser.add_argument("--model", type=model_name, default="i3d_r50")
    parser.add_argument("--alphas", type=number, nargs="+", default=[0.5, 0.0])
    add_step_options(parser)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="float32")
    parser.add_argument("--repeats", type=bounded_int(1000), default=4)
    parser.add_argument("--warmup", type=bounded_int(1000, low=0), default=1)
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    allocator.keep_freed_memory()  # as the octvideo commands run
    if args.threads:
        torch.set_num_threads(args.threads)
    table = report(args, measure(args))
    file_and_print(args, table)
    return 0
