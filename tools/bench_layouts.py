"""Inference and training-step time of models in contiguous (NCDHW) against channels-last (NDHWC)
memory, interleaved in one run: the measurement behind ``trainer.memory_format: auto``.

For each alpha the same weights run in both layouts; every repeat times each (alpha, layout) once,
in alternating order, inference repeats first (fixed weights), then training steps (forward, loss,
backward, SGD step). Medians, and the channels-last / contiguous ratio per alpha, then each
round's own ratio as a median and a range (the machine's noise, as in ``bench_models``). On CUDA
(``--device cuda``, ``tools/bench_gpu.sh``) this is what decides whether ``auto`` should pick
channels-last there too.

    python tools/bench_layouts.py --model i3d_r50 --alphas 0.5 0 --threads 2 --repeats 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_models import (  # tools/ is the script's path
    DTYPES,
    _sync,
    _to_device,
    append_table,
    paired_ratios,
    per_round_line,
)
from torch import nn

from octvideo import allocator
from octvideo.models import create_model
from octvideo.models.cost import example_input

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last_3d}


class Case:
    """One model in one memory layout, with its clips and optimiser."""

    def __init__(self, model: nn.Module, layout: torch.memory_format, args: argparse.Namespace):
        self.device = torch.device(args.device)
        dtype = DTYPES[args.dtype]
        self.model = model.to(device=self.device, dtype=dtype, memory_format=layout)

        def clip(batch: int):
            x = example_input(model, args.frames, args.size, batch)
            return _to_device(x, self.device, dtype, layout == torch.channels_last_3d)

        self.infer_clip, self.train_clip = clip(args.batch), clip(args.train_batch)
        self.labels = torch.zeros(args.train_batch, dtype=torch.long, device=self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-6, momentum=0.9)

    def infer(self) -> float:
        self.model.eval()
        _sync(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            self.model(self.infer_clip)
        _sync(self.device)
        return time.perf_counter() - start

    def train_step(self) -> float:
        self.model.train()
        _sync(self.device)
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(self.train_clip)
        nn.functional.cross_entropy(logits.float(), self.labels).backward()
        self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start


def interleaved(cases: list[Case], run, repeats: int) -> list[list[float]]:
    """Milliseconds of ``run(case)`` in each round, per case, the order reversed on every other
    round."""
    times: list[list[float]] = [[] for _ in cases]
    for i in range(repeats):
        order = range(len(cases)) if i % 2 == 0 else reversed(range(len(cases)))
        for k in order:
            times[k].append(run(cases[k]) * 1e3)
    return times


Row = tuple[float, str, list[float], list[float]]


def measure(args: argparse.Namespace) -> list[Row]:
    """(alpha, layout, inference ms per round, training-step ms per round) for every alpha and
    layout."""
    keys, cases = [], []
    for alpha in args.alphas:
        torch.manual_seed(0)
        first = create_model(args.model, alpha=alpha, num_classes=400, dropout=0.0)
        for name, layout in LAYOUTS.items():
            model = create_model(args.model, alpha=alpha, num_classes=400, dropout=0.0)
            model.load_state_dict(first.state_dict())
            keys.append((alpha, name))
            cases.append(Case(model, layout, args))
    for case in cases:  # warm-up: first calls allocate, pack weights, pick kernels
        for _ in range(args.warmup):
            case.train_step()
            case.infer()
    infer = interleaved(cases, Case.infer, args.repeats)
    train = interleaved(cases, Case.train_step, args.repeats)
    return [(a, n, i, t) for (a, n), i, t in zip(keys, infer, train, strict=True)]


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="i3d_r50")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="float32")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    allocator.keep_freed_memory()  # as the octvideo commands run
    if args.threads:
        torch.set_num_threads(args.threads)
    table = report(args, measure(args))
    print(table)  # noqa: T201
    if args.append:
        append_table(args.append, "bench_layouts", argv, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
