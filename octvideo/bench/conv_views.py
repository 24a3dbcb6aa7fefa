"""``conv-views``: one convolution run as 3D or on the free 2D view of channels-last memory that
the fast OctConv path uses, forward and backward, interleaved: the measurement behind
``octconv._geometry``'s choice of view.

A k x 1 x 1 kernel runs on a (B, C, T, H*W) view ("tubes") and a 1 x k x k kernel on a
(B*T, C, H, W) view ("frames"); both are the same numbers as the 3D convolution. Each line times
the 3D convolution and its 2D view (the backward computes the input and weight gradients, as in
training) and prints medians and the 2D / 3D ratio, and the forward's throughput (multiply-adds
per second, faster view): cases that differ only in channel counts show what a count off
the CPU's vector width costs (on AVX-512, 58 -> 58 channels take 0.92-0.96 of the 64 -> 64
time for 0.82 of the work).

    python tools/bench.py conv-views --threads 2
    python tools/bench.py conv-views --case 2,256,8,56,56,64,3,1,1 --repeats 15
    python tools/bench.py conv-views --threads 2 --case 1,64,8,56,56,64,1,1,1 \
        --case 1,58,8,56,56,58,1,1,1 --case 1,48,8,56,56,48,1,1,1

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the octave layers whose
k x 1 x 1 and 1 x k x k convolutions these are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from octvideo.argtypes import bounded_int, whole
from octvideo.measure.timing import time_interleaved

# (B, C_in, T, H, W, C_out, kT, kH, kW): I3D-R50's k x 1 x 1 and 1 x k x k layers, batch 2 (a
# training step of the issue-7 benchmark) and batch 1 (inference)
CASES = [
    (2, 256, 8, 56, 56, 64, 3, 1, 1),
    (2, 256, 4, 56, 56, 128, 3, 1, 1),
    (2, 512, 4, 28, 28, 256, 3, 1, 1),
    (2, 1024, 4, 14, 14, 256, 3, 1, 1),
    (2, 128, 8, 56, 56, 32, 3, 1, 1),
    (2, 64, 8, 56, 56, 256, 1, 1, 1),
    (2, 64, 8, 56, 56, 64, 1, 3, 3),
    (2, 256, 4, 14, 14, 1024, 1, 1, 1),
    (1, 256, 8, 56, 56, 64, 3, 1, 1),
    (1, 1024, 4, 14, 14, 256, 3, 1, 1),
]


MAX_ELEMENTS = 2**28  # a tensor of the case: 1 GB of float32


def _case(text: str) -> tuple[int, ...]:
    try:
        values = tuple(whole(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        values = ()
    if len(values) != 9 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"--case wants nine positive integers B,C_in,T,H,W,C_out,kT,kH,kW; got {text!r}"
        )
    if values[7:] != (1, 1) and values[6] != 1:
        raise argparse.ArgumentTypeError(
            f"--case {text!r}: the kernel must be k x 1 x 1 or 1 x k x k to have a 2D view"
        )
    b, c_in, t, h, w, c_out, kt, kh, kw = values
    if max(b * c_in * t * h * w, b * c_out * t * h * w, c_out * c_in * kt * kh * kw) > MAX_ELEMENTS:
        raise argparse.ArgumentTypeError(
            f"--case {text!r}: its input, output or weight is over {MAX_ELEMENTS} elements"
        )
    return values


def macs(case: tuple[int, ...]) -> int:
    """Multiply-adds of the case's convolution (stride 1, "same" padding)."""
    b, c_in, t, h, w, c_out, kt, kh, kw = case
    return b * t * h * w * c_in * c_out * kt * kh * kw


def _views(case: tuple[int, ...]) -> dict[str, tuple[torch.Tensor, ...]]:
    """(grad_out, input, weight, padding) of the 3D convolution and of its 2D view."""
    b, c_in, t, h, w, c_out, kt, kh, kw = case
    x = torch.randn(b, c_in, t, h, w).contiguous(memory_format=torch.channels_last_3d)
    weight = torch.randn(c_out, c_in, kt, kh, kw) * 0.01
    pad = [kt // 2, kh // 2, kw // 2]
    grad = torch.randn(b, c_out, t, h, w).contiguous(memory_format=torch.channels_last_3d)
    if kt == 1:  # frames: (B*T, C, H, W)
        x2 = x.permute(0, 2, 1, 3, 4).reshape(b * t, c_in, h, w)
        g2 = grad.permute(0, 2, 1, 3, 4).reshape(b * t, c_out, h, w)
        w2, pad2 = weight[:, :, 0], pad[1:]
    else:  # tubes: (B, C, T, H*W)
        x2, g2, w2, pad2 = x.flatten(3), grad.flatten(3), weight.flatten(3), [pad[0], 0]
    return {"3d": (grad, x, weight, pad), "2d": (g2, x2, w2, pad2)}


def measure(
    case: tuple[int, ...], repeats: int, timer: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Median ms of the 3D convolution and its 2D view, forward and backward, over ``repeats``
    interleaved rounds (one call each per round, after one untimed call each: oneDNN builds its
    kernels on first use)."""
    views = _views(case)
    runs: dict[str, Callable[[], object]] = {}
    for name, (grad, x, weight, pad) in views.items():
        conv = F.conv3d if x.dim() == 5 else F.conv2d
        ones = [1] * (x.dim() - 2)

        def forward(conv=conv, x=x, weight=weight, pad=pad) -> object:
            return conv(x, weight, None, 1, pad)

        def backward(grad=grad, x=x, weight=weight, pad=pad, ones=ones) -> object:
            return torch.ops.aten.convolution_backward(
                grad, x, weight, None, ones, pad, ones, False, [0] * len(ones), 1,
                [True, True, False],
            )  # fmt: skip

        runs[f"forward {name}"], runs[f"backward {name}"] = forward, backward
    with torch.no_grad():
        times = time_interleaved(list(runs.values()), repeats=repeats, warmup=1, timer=timer)
    return {k: statistics.median(t) * 1e3 for k, t in zip(runs, times, strict=True)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py conv-views``."""
    parser.add_argument("--case", type=_case, action="append", help="B,C_in,T,H,W,C_out,kT,kH,kW")
    parser.add_argument("--repeats", type=bounded_int(1000), default=7)
    parser.add_argument("--threads", type=bounded_int(1024), default=None, help="torch threads")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, channels-last"
    ]
    columns = ["B, C_in, T, H, W -> C_out", "kernel", "fwd 3D ms", "fwd 2D ms", "2D/3D"]
    columns += ["bwd 3D ms", "bwd 2D ms", "2D/3D", "fwd GMAC/s"]
    lines += ["| " + " | ".join(columns) + " |", "| " + " | ".join(["---"] * len(columns)) + " |"]
    print("\n".join(lines), flush=True)  # noqa: T201
    for case in args.case or CASES:
        ms = measure(case, args.repeats)
        f3, f2, b3, b2 = (ms[k] for k in ("forward 3d", "forward 2d", "backward 3d", "backward 2d"))
        shape = ", ".join(map(str, case[:5]))
        kernel = "x".join(map(str, case[6:]))
        row = f"| {shape} -> {case[5]} | {kernel} | {f3:.1f} | {f2:.1f} | {f2 / f3:.2f} | "
        rate = macs(case) / min(f3, f2) / 1e6  # per ms -> G per s
        row += f"{b3:.1f} | {b2:.1f} | {b2 / b3:.2f} | {rate:.1f} |"
        print(row, flush=True)  # noqa: T201
    return 0
