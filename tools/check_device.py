"""Check, in float64, that the octave networks compute on a device what they compute on the CPU.

The CPU's plain path (NCDHW tensors, four convolution paths, batch norm as a layer) is the
reference; each model is run on ``--device`` with channels-last tensors (the fast path: merged
low convolutions, 2D views), in inference (fused by ``fuse_for_inference``: batch norm folded,
residual and ReLU fused where that device has them; no autograd) and in a training step
(train-mode batch norm, forward and backward). The check prints the largest difference of the
logits and of the weight gradients, relative to the reference's largest magnitude, for each
model, and exits 1 if any is above ``--rtol``.

The CPU test suite holds the CPU's fast paths to the same standard (tests/ops/test_fast.py,
tests/ops/test_fusion.py); this is the same question for a GPU, run by tools/bench_gpu.sh
before it times anything there:

    python tools/check_device.py --device cuda
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys

import torch
from torch import nn

from octvideo.argtypes import number, shown, whole
from octvideo.bench.cli import OneLineParser
from octvideo.models import create_model
from octvideo.models.cost import example_input
from octvideo.ops import fuse_for_inference

# (model, alpha, octave): vanilla, the paper's spatial octave, a spatio-temporal octave, and
# SlowFast's two pathways with their lateral connections
CASES = [
    ("i3d_r50", 0.0, (1, 2, 2)),
    ("i3d_r50", 0.5, (1, 2, 2)),
    ("c2d_r18", 0.25, (1, 2, 2)),
    ("i3d_r18", 0.5, (2, 2, 2)),
    ("slowfast_r50", 0.5, (1, 2, 2)),
]


PROG = "tools/check_device.py"
# Clip bounds. On smaller clips the last stages' train-mode batch norm normalises a handful of
# values per channel (batch 2, 1 frame, 1 pixel: 2 values), whose backward amplifies rounding
# past any rtol, so the CPU's own fast path "fails" on them: c2d_r18's weight gradients differ by
# up to 3e+00 at 2 frames (2 to 35 pixels), and above 1e-9 at 4x16; 4x19 (the tests' clip) and
# the default 4x35 pass. Above 64 frames or 256 pixels the float64 reference (slowfast_r50 at
# full width, on the CPU) grows to many GB and minutes per model, and shows no rounding that a
# small odd side does not.
MIN_FRAMES, MAX_FRAMES = 4, 64
MIN_SIDE, MAX_SIDE = 19, 256


def _device(text: str) -> str:
    """argparse type: ``cpu``, ``cuda`` or ``cuda:N`` (whether this machine has it is checked
    in ``main``)."""
    if not re.fullmatch(r"cpu|cuda(?::[0-9]{1,3})?", text):
        raise argparse.ArgumentTypeError(f"{shown(text)}: give cpu, cuda or cuda:N")
    return text


def _rtol(text: str) -> float:
    """argparse type: a relative difference, from 0 to 1."""
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{shown(text)}: give a relative difference from 0 to 1 (default 1e-9)"
        )
    return value


def _model(name: str, alpha: float, octave: tuple[int, int, int]) -> nn.Module:
    torch.manual_seed(0)
    narrow = {} if name.startswith("slowfast") else {"width": 8}  # ResNet3D's width option
    model = create_model(name, num_classes=5, alpha=alpha, octave=octave, dropout=0.0, **narrow)
    model = model.double()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():  # statistics away from (0, 1), so that folding them changes numbers
        if isinstance(m, nn.BatchNorm3d):
            with torch.no_grad():
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g, dtype=torch.float64))
                m.running_var.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g, dtype=torch.float64) - 0.5)
    return model


def _inputs(model: nn.Module, size: tuple[int, int, int]) -> list[torch.Tensor] | torch.Tensor:
    x = example_input(model, size[0], size[1], batch=2)
    g = torch.Generator().manual_seed(2)
    if isinstance(x, list):
        return [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in x]
    return torch.randn(x.shape, generator=g, dtype=torch.float64)


def _move(x, device: torch.device, channels_last: bool):
    if isinstance(x, list):
        return [_move(t, device, channels_last) for t in x]
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x


def _run(model: nn.Module, x, device: torch.device, channels_last: bool):
    """Inference logits, training logits and weight gradients of ``model`` on ``device``."""
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(device=device, memory_format=fmt)
    x = _move(x, device, channels_last)
    with torch.no_grad():  # the fast path runs fused for inference, as the commands do
        infer = (fuse_for_inference(model) if channels_last else model.eval())(x)
    model.train()
    logits = model(x)
    # a loss that weighs every logit differently, so that no gradient is a plain sum
    weights = torch.linspace(-1.0, 1.0, logits.numel(), dtype=logits.dtype, device=device)
    (logits.flatten() * weights).sum().backward()
    grads = {k: p.grad.detach().cpu() for k, p in model.named_parameters() if p.grad is not None}
    return infer.detach().cpu(), logits.detach().cpu(), grads


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest |a - ref| over the largest |ref|; a NaN anywhere counts as infinitely far."""
    rel = float((a - ref).abs().max() / ref.abs().max().clamp_min(1e-300))
    return math.inf if math.isnan(rel) else rel


def check(device: torch.device, size: tuple[int, int], rtol: float) -> list[str]:
    """One line per model; the lines of models above ``rtol`` start with 'FAIL'."""
    lines = []
    for name, alpha, octave in CASES:
        model = _model(name, alpha, octave)
        x = _inputs(model, (size[0], size[1], size[1]))
        ref_infer, ref_train, ref_grads = _run(model, x, torch.device("cpu"), channels_last=False)
        infer, train, grads = _run(model, x, device, channels_last=True)
        if grads.keys() != ref_grads.keys():
            missing = sorted(ref_grads.keys() ^ grads.keys())
            lines.append(f"FAIL {name} alpha={alpha}: gradients differ in which exist: {missing}")
            continue
        worst_grad = max(_rel(grads[k], ref_grads[k]) for k in ref_grads)
        diffs = (_rel(infer, ref_infer), _rel(train, ref_train), worst_grad)
        verdict = "ok  " if max(diffs) <= rtol else "FAIL"
        lines.append(
            f"{verdict} {name} alpha={alpha} octave={octave}: inference {diffs[0]:.1e}, "
            f"training logits {diffs[1]:.1e}, worst weight gradient {diffs[2]:.1e}"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, each bounded: a value out of bounds is one line naming the option, the
    bound and what to write, exit status 2, before any model is built."""
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=_device, default="cuda", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--size",
        type=whole,
        nargs=2,
        default=(4, 35),
        metavar=("FRAMES", "SIDE"),
        help=f"clip frames ({MIN_FRAMES}-{MAX_FRAMES}) and side ({MIN_SIDE}-{MAX_SIDE}; odd "
        "sides test the cropped upsampling)",
    )
    parser.add_argument(
        "--rtol", type=_rtol, default=1e-9, help="largest difference allowed, 0 to 1"
    )
    args = parser.parse_args(argv)
    frames, side = args.size
    fits = f"--size {min(max(frames, MIN_FRAMES), MAX_FRAMES)} {min(max(side, MIN_SIDE), MAX_SIDE)}"
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        parser.error(
            f"argument --size: FRAMES {frames}: give {MIN_FRAMES} to {MAX_FRAMES} frames ({fits})"
        )
    if not MIN_SIDE <= side <= MAX_SIDE:
        parser.error(f"argument --size: SIDE {side}: give {MIN_SIDE} to {MAX_SIDE} pixels ({fits})")
    if args.device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            parser.error(f"--device {args.device}: this torch sees no CUDA device; use cpu")
        index = torch.device(args.device).index
        if index is not None and index >= count:
            parser.error(
                f"--device {args.device}: this torch sees {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    frames, side = args.size
    head = (
        f"float64, {frames}x{side}x{side} clips, batch 2: {device} (channels-last) against the "
        f"CPU's plain path (torch {torch.__version__}); rtol {args.rtol}"
    )
    lines = check(device, (frames, side), args.rtol)
    print("\n".join([head, *lines]))  # noqa: T201
    return 1 if any(line.startswith("FAIL") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
