"""Inference and training-step time of models in contiguous (NCDHW) against channels-last (NDHWC)
memory, interleaved in one run: the measurement behind ``trainer.memory_format: auto``.

For each alpha the same weights run in both layouts; every repeat times each (alpha, layout) once,
in alternating order, inference repeats first (fixed weights), then training steps (forward, loss,
backward, SGD step). Medians, and the channels-last / contiguous ratio per alpha.

    python tools/bench_layouts.py --model i3d_r50 --alphas 0.5 0 --threads 2 --repeats 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from octvideo import allocator
from octvideo.models import create_model
from octvideo.models.cost import example_input
from octvideo.ops import to_memory_format

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last_3d}


class Case:
    """One model in one memory layout, with its clips and optimiser."""

    def __init__(self, model: nn.Module, layout: torch.memory_format, args: argparse.Namespace):
        self.model = model.to(memory_format=layout)
        self.infer_clip = to_memory_format(
            example_input(model, args.frames, args.size, args.batch), layout
        )
        self.train_clip = to_memory_format(
            example_input(model, args.frames, args.size, args.train_batch), layout
        )
        self.labels = torch.zeros(args.train_batch, dtype=torch.long)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-6, momentum=0.9)

    def infer(self) -> float:
        self.model.eval()
        start = time.perf_counter()
        with torch.inference_mode():
            self.model(self.infer_clip)
        return time.perf_counter() - start

    def train_step(self) -> float:
        self.model.train()
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(self.model(self.train_clip), self.labels)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def interleaved(cases: list[Case], run, repeats: int) -> list[float]:
    """Median seconds of ``run(case)`` per case, the order reversed on every other repeat."""
    times: list[list[float]] = [[] for _ in cases]
    for i in range(repeats):
        order = range(len(cases)) if i % 2 == 0 else reversed(range(len(cases)))
        for k in order:
            times[k].append(run(cases[k]))
    return [statistics.median(t) for t in times]


def measure(args: argparse.Namespace) -> list[tuple[float, str, float, float]]:
    """(alpha, layout, inference ms, training-step ms) for every alpha and layout."""
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
    return [(a, n, i * 1e3, t * 1e3) for (a, n), i, t in zip(keys, infer, train, strict=True)]


def report(args: argparse.Namespace, rows: list[tuple[float, str, float, float]]) -> str:
    lines = [
        f"{args.model}, clip {args.frames}x{args.size}x{args.size}, batch {args.batch} (training "
        f"step {args.train_batch}), CPU float32, threads {torch.get_num_threads()}, "
        f"{args.repeats} interleaved repeats (medians)",
        "",
        "| alpha | layout | inference ms | training step ms | inference ratio | training ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(a, n): (i, t) for a, n, i, t in rows}
    for alpha, name, infer_ms, train_ms in rows:
        ratios = "| |"
        if name == "channels-last":
            base_i, base_t = by_key[(alpha, "contiguous")]
            ratios = f"| {infer_ms / base_i:.3f} | {train_ms / base_t:.3f} |"
        lines.append(f"| {alpha} | {name} | {infer_ms:.1f} | {train_ms:.1f} {ratios}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="i3d_r50")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    allocator.keep_freed_memory()  # as the octvideo commands run
    if args.threads:
        torch.set_num_threads(args.threads)
    print(report(args, measure(args)))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
