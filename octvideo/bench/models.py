"""``models``: speed and memory of an octave model against its alpha-0 twin, measured
interleaved in one run.

For a registered model and a clip shape this times inference (batch ``--batch``) and a training
step (forward, loss, backward, SGD step; batch ``--train-batch``) of the octave model and of the
same network at alpha 0, alternating the two on every repeat so that machine noise hits both
alike, and reports medians and ratios beside the FLOPs ratio (fvcore) and the analytic
activation-memory ratio (the OctConv3d outputs of one sample). Below the table, the ratio of
each round (the two models' calls back to back) is summarised by its median and range: on a
shared machine a ratio of medians can move by 10% between runs, and the range shows whether a
result is clear of a target or within that noise. Inference runs the model as the commands do,
fused by ``fuse_for_inference`` (eager runs; compiled ones keep the model). All inference repeats
run before the training steps, on fixed weights as in deployment: after a training step the next
inference fuses the model again.

Activation memory of a training step is the bytes autograd keeps for backward (unique storages
seen by ``torch.autograd.graph.saved_tensors_hooks``, parameters and buffers left out: the two
models hold the same parameters, and they are not activations), on any device; on CUDA the
allocator's peak during the step is reported as well.

``--stages`` also times each stage (stem, res2, ..., head) of the two models, eager inference,
interleaved, beside each stage's FLOPs: where the octave model keeps or loses its savings, and
which stages are worth an octave (alpha can be set per stage).

``--ops`` (CPU) also profiles three inference calls and three training steps of each of the two
models (``torch.profiler``, interleaved) and splits their operators' own time into convolutions
(forward and backward) and everything else (the training step's other operators include the SGD
step, as the timed step does): whether the octave model's convolutions keep their FLOPs share,
and which added passes (pooling, concatenation, upsample-add) cost what. The profiled calls'
page faults are printed with the split: the profiler's own allocations can make a call fault
where the timed ones do not, and the faulting time lands in whichever operator touched the page.

``--baseline pytorchvideo`` adds PyTorchVideo's zoo network of the same name
(``pytorchvideo.models.hub``, plain ``nn.Conv3d`` layers), timed interleaved with the other two,
to check that the alpha-0 octvideo model is no slower than it.

Like the octvideo commands, the run keeps freed memory in glibc's heap (``octvideo.allocator``);
``--malloc default`` measures with glibc's defaults, under which large tensors are page-faulted
in again on every step.

    python tools/bench.py models --model i3d_r50 --alpha 0.5 --frames 8 --size 224 \
        --threads 2 --compile none --append BENCHMARKS.md

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs and memory
savings that these measurements hold the implementation to.
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from octvideo import allocator
from octvideo.argtypes import bounded_int, number
from octvideo.bench.cli import model_name
from octvideo.bench.record import file_and_print
from octvideo.errors import UsageError
from octvideo.measure.steps import COMPILE_MODES, DTYPES, StepTimer
from octvideo.measure.timing import (
    paired_ratios,
    per_round_line,
    run_rounds,
    sync,
    time_interleaved,
)
from octvideo.models import create_model
from octvideo.models.cost import example_input, measure_cost, module_gflops
from octvideo.ops import OctConv3d


@dataclass
class Measured:
    infer_ms: float
    train_ms: float
    train_faults: float | None  # minor page faults per training step (median), where counted
    saved_mb: float
    cuda_peak_mb: float | None
    gflops: float
    analytic_mem: int
    stage_ms: dict[str, float] | None = None  # --stages: eager inference time of each stage
    stage_gflops: dict[str, float] | None = None
    ops: dict[str, OpSplit] | None = None  # --ops: "inference" / "training step" profiles
    infer_runs: list[float] = field(default_factory=list)  # ms of each timed round, in order
    train_runs: list[float] = field(default_factory=list)


@dataclass
class OpSplit:
    """Operators' own CPU time in one call (medians over the profiled calls), ms."""

    convolution_ms: float
    other_ms: float
    top_other: list[tuple[str, float, int]]  # (operator, ms, calls), largest first
    faults: float  # minor page faults per profiled call (median): their time is in the split


def model_alpha(values: Sequence[float]) -> float | tuple[float, ...]:
    """``--alpha``'s values as ``create_model`` takes them: one value, or one per stage."""
    return values[0] if len(values) == 1 else tuple(values)


def is_convolution(op: str) -> bool:
    """A PyTorch or oneDNN convolution operator (forward or backward; not a Python function
    such as OctConv3d's autograd node, whose own time is Python and bookkeeping)."""
    return op.startswith(("aten::", "mkldnn::")) and "conv" in op


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class FaultCounted:
    """A training step that also counts the minor page faults it takes (``counts``, in order)."""

    def __init__(self, step: Callable[[], object]) -> None:
        self.step = step
        self.counts: list[int] = []

    def __call__(self) -> None:
        faults = minor_faults()
        self.step()
        self.counts.append(minor_faults() - faults)


def op_times(call: Callable[[], object]) -> tuple[dict[str, tuple[float, int]], int]:
    """Own CPU time (ms) and call count of each operator in one ``call()``, and the minor page
    faults the call took (the profiler's own allocations can make a call fault where an
    unprofiled one does not; the faulting time is counted in the operators that touched the
    pages)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        faults = minor_faults()
        call()
        faults = minor_faults() - faults
    return {e.key: (e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()}, faults


def op_split(
    profiles: list[dict[str, tuple[float, int]]], faults: list[int] | None = None, top: int = 8
) -> OpSplit:
    """Medians of the convolution and other time over ``profiles`` and of the calls' page
    ``faults``, and the largest other operators (median time each, calls of the first profile)."""
    conv = [sum(t for op, (t, _) in p.items() if is_convolution(op)) for p in profiles]
    other = [sum(t for op, (t, _) in p.items() if not is_convolution(op)) for p in profiles]
    names = {op for p in profiles for op in p if not is_convolution(op)}
    per_op = [
        (op, statistics.median(p.get(op, (0.0, 0))[0] for p in profiles), profiles[0][op][1])
        for op in names
        if op in profiles[0]
    ]
    per_op.sort(key=lambda row: (-row[1], row[0]))
    fault_median = statistics.median(faults) if faults else 0.0
    return OpSplit(statistics.median(conv), statistics.median(other), per_op[:top], fault_median)


def analytic_activation_memory(model: nn.Module, clip) -> int:
    """Output elements of every OctConv3d for one sample, from the layers' own formula."""
    total = 0

    def hook(layer: OctConv3d, args: tuple) -> None:
        nonlocal total
        x = args[0]
        high = x[0] if isinstance(x, tuple) else x
        total += layer.activation_memory(tuple(high.shape[-3:]))

    handles = [
        m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, OctConv3d)
    ]
    try:
        with torch.no_grad():
            model.eval()(clip)
    finally:
        for h in handles:
            h.remove()
    return total


def step_timer(
    model: nn.Module,
    args: argparse.Namespace,
    memory_format: torch.memory_format,
    compile: str = "none",
) -> StepTimer:
    """``model`` with zero clips of ``args.frames`` x ``args.size`` (``args.batch`` of them for
    inference, ``args.train_batch`` for a training step) on ``args.device`` in ``args.dtype``."""
    return StepTimer(
        model,
        example_input(model, args.frames, args.size, args.batch),
        example_input(model, args.frames, args.size, args.train_batch),
        memory_format=memory_format,
        device=args.device,
        dtype=DTYPES[args.dtype],
        compile=compile,
    )


def step_memory(timer: StepTimer) -> tuple[float, float | None]:
    """MiB of activations one training step saves for backward, and on CUDA the allocator's
    peak above what was allocated before the step."""
    timer.optimizer.zero_grad(set_to_none=True)
    device = timer.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    saved = timer.saved_bytes()
    peak = None
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return saved / 2**20, peak


STAGES = ("stem", "res2", "pool2", "res3", "res4", "res5")


def stage_calls(model: nn.Module) -> list[tuple[str, Callable]]:
    """The stages of a single-pathway ResNet (``ResNet3D``) in the order its forward runs them,
    the global pool and classifier as "head"."""
    if not all(hasattr(model, n) for n in (*STAGES, "global_pool", "forward_head")):
        raise UsageError(
            f"--stages times the stages of the single-pathway ResNets (C2D, I3D, Slow); "
            f"{type(model).__name__} is not one of them"
        )
    calls = [(n, getattr(model, n)) for n in STAGES if getattr(model, n) is not None]

    def head(x):
        return model.forward_head(model.global_pool(x))

    return [*calls, ("head", head)]


def time_stages(timer: StepTimer) -> list[float]:
    """Seconds each stage takes in one inference forward (eager, fused, synchronised per
    stage)."""
    calls = stage_calls(timer.inference_model())
    x, times = timer.infer_clip, []
    with torch.inference_mode():
        for _, call in calls:
            sync(timer.device)
            start = time.perf_counter()
            x = call(x)
            sync(timer.device)
            times.append(time.perf_counter() - start)
    return times


def pytorchvideo_model(name: str, head_pool: tuple[int, ...]) -> nn.Module:
    """PyTorchVideo's zoo network ``name`` (``hub.i3d_r50`` etc.), untrained, no dropout, its
    head pool covering the (T, H, W) of the last stage's features."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its transforms warn about torchvision on import
        from pytorchvideo.models import hub

    if not hasattr(hub, name):
        raise UsageError(f"pytorchvideo.models.hub has no {name!r} to compare with")
    return getattr(hub, name)(
        pretrained=False, dropout_rate=0.0, head_pool_kernel_size=tuple(head_pool)
    )


def measure_pair(args: argparse.Namespace) -> list[Measured]:
    """Measures the octave model, its alpha-0 twin and any baseline, interleaved."""
    torch.manual_seed(0)
    models = [
        create_model(args.model, alpha=a, octave=args.octave, num_classes=400, dropout=0.0)
        for a in (model_alpha(args.alpha), 0.0)
    ]
    if args.baseline == "pytorchvideo":
        with torch.no_grad():
            clip = example_input(models[1], args.frames, args.size)
            features = models[1].eval().forward_stages(clip)  # type: ignore[operator]
        models.append(pytorchvideo_model(args.model, tuple(features.high.shape[2:])))
    costs = [measure_cost(m, args.frames, args.size).gflops for m in models[:2]]
    costs += costs[1:2] * (len(models) - 2)  # the baseline is the alpha-0 network
    analytic = [
        analytic_activation_memory(m, example_input(m, args.frames, args.size)) for m in models[:2]
    ]
    analytic += analytic[1:2] * (len(models) - 2)
    stage_gflops: list[dict[str, float] | None] = [None] * len(models)
    if args.stages:  # checked and counted before the models move to the device and dtype
        calls = [stage_calls(m) for m in models[:2]]
        names = [name for name, _ in calls[0]]
        for k in range(2):
            stage_gflops[k] = module_gflops(models[k], names, args.frames, args.size)
    fmt = torch.channels_last_3d if args.channels_last else torch.contiguous_format
    timers = [step_timer(m, args, fmt, args.compile) for m in models]
    memories = [step_memory(t) for t in timers]
    trains = [FaultCounted(t.train_step) for t in timers]
    for t, train in zip(timers, trains, strict=True):  # warm-up (and compilation), training
        for _ in range(0 if args.skip_train else args.warmup):  # first: it changes the weights
            train()
        for _ in range(args.warmup):
            t.infer()
        train.counts.clear()  # the timed training steps' faults only
    n = len(timers)
    # inference first, on fixed weights as in deployment: a training step changes every weight,
    # and the next inference would fuse the model and pack its weights again
    infer = time_interleaved([t.infer for t in timers], repeats=args.repeats, warmup=0)
    stage_ms: list[dict[str, float] | None] = [None] * n
    if args.stages:  # the octave model and its twin, interleaved; not the baseline
        per_stage = run_rounds(
            [functools.partial(time_stages, t) for t in timers[:2]],
            repeats=args.repeats,
            warmup=1,  # a stage's first call may pack weights
        )
        for k in range(2):
            stage_ms[k] = {
                name: statistics.median(t[i] for t in per_stage[k]) * 1e3
                for i, name in enumerate(names)
            }
    train_s: list[list[float]] = [[] for _ in range(n)]
    if not args.skip_train:
        train_s = time_interleaved(trains, repeats=args.repeats, warmup=0)
    faults = [list(train.counts) for train in trains]
    ops: list[dict[str, OpSplit] | None] = [None] * n
    if args.ops:  # the octave model and its twin, interleaved, after the timed repeats
        kinds: list[tuple[str, list[Callable[[], object]]]] = [
            ("inference", [t.infer for t in timers[:2]])
        ]
        kinds += [] if args.skip_train else [("training step", list(trains[:2]))]
        for k in range(2):
            ops[k] = {}
        for kind, methods in kinds:
            for method in methods:  # unprofiled: the first inference after training fuses again
                method()
            profiles = run_rounds([functools.partial(op_times, m) for m in methods], repeats=3)
            for k in range(2):
                ops[k][kind] = op_split([p for p, _ in profiles[k]], [f for _, f in profiles[k]])
    return [
        Measured(
            infer_ms=statistics.median(infer[k]) * 1e3,
            infer_runs=[t * 1e3 for t in infer[k]],
            train_runs=[t * 1e3 for t in train_s[k]],
            train_ms=statistics.median(train_s[k]) * 1e3 if train_s[k] else float("nan"),
            train_faults=statistics.median(faults[k]) if faults[k] else None,
            saved_mb=memories[k][0],
            cuda_peak_mb=memories[k][1],
            gflops=costs[k],
            analytic_mem=analytic[k],
            stage_ms=stage_ms[k],
            stage_gflops=stage_gflops[k],
            ops=ops[k],
        )
        for k in range(n)
    ]


def report(
    args: argparse.Namespace,
    octm: Measured,
    van: Measured,
    base: Measured | None = None,
    malloc: str = "left as it was",
) -> str:
    """The table of the octave model against its alpha-0 twin (and the baseline), each round's
    own ratios below it, then the stage and operator tables that were asked for."""
    flops_ratio = octm.gflops / van.gflops
    mem_ratio = octm.analytic_mem / van.analytic_mem
    infer_ratio = octm.infer_ms / van.infer_ms
    saved_ratio = octm.saved_mb / van.saved_mb
    lines = [
        f"{args.model} alpha={model_alpha(args.alpha)} octave={tuple(args.octave)} clip "
        f"{args.frames}x{args.size}x{args.size}, {args.device} {args.dtype}, threads "
        f"{torch.get_num_threads()}, compile={args.compile}, channels_last={args.channels_last}, "
        f"batch {args.batch} (train {args.train_batch}), {args.repeats} interleaved repeats "
        f"(medians), malloc: {malloc}",
        "",
        "| | alpha 0 | octave | ratio | ratio / FLOPs ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| GFLOPs / view | {van.gflops:.2f} | {octm.gflops:.2f} | {flops_ratio:.3f} | |",
        f"| inference ms | {van.infer_ms:.1f} | {octm.infer_ms:.1f} | {infer_ratio:.3f} | "
        f"{infer_ratio / flops_ratio:.3f} |",
    ]
    if not args.skip_train:
        lines += training_rows(van, octm, flops_ratio)
    lines += [
        f"| activation memory, analytic (OctConv outputs, M elements) | "
        f"{van.analytic_mem / 1e6:.1f} | {octm.analytic_mem / 1e6:.1f} | {mem_ratio:.3f} | |",
        f"| activations saved for backward, MB (train batch) | {van.saved_mb:.0f} | "
        f"{octm.saved_mb:.0f} | {saved_ratio:.3f} | (vs analytic {mem_ratio:.3f}: "
        f"{saved_ratio - mem_ratio:+.3f}) |",
        "",
        *paired_lines(octm, van, "octave / alpha 0", args.skip_train),
    ]
    if base is not None:
        lines += [
            "",
            f"| alpha-0 octvideo vs PyTorchVideo hub.{args.model} | PyTorchVideo | octvideo "
            f"alpha 0 | ratio | |",
            "| --- | --- | --- | --- | --- |",
            f"| inference ms | {base.infer_ms:.1f} | {van.infer_ms:.1f} | "
            f"{van.infer_ms / base.infer_ms:.3f} | |",
        ]
        if not args.skip_train:
            lines += training_rows(base, van)
        lines.append(
            f"| activations saved for backward, MB | {base.saved_mb:.0f} | {van.saved_mb:.0f} | "
            f"{van.saved_mb / base.saved_mb:.3f} | |"
        )
        lines += ["", *paired_lines(van, base, "alpha 0 / PyTorchVideo", args.skip_train)]
    if octm.cuda_peak_mb is not None and van.cuda_peak_mb is not None:
        lines.append(
            f"| CUDA peak during step, MB | {van.cuda_peak_mb:.0f} | {octm.cuda_peak_mb:.0f} | "
            f"{octm.cuda_peak_mb / van.cuda_peak_mb:.3f} | |"
        )
    if octm.stage_ms is not None and van.stage_ms is not None:
        lines += ["", *stage_table(octm, van)]
    if octm.ops is not None and van.ops is not None:
        lines += ["", *ops_table(octm, van, flops_ratio)]
    return "\n".join(lines)


def training_rows(first: Measured, second: Measured, flops_ratio: float | None = None) -> list[str]:
    """The training step's row (``second`` / ``first``, scaled by ``flops_ratio`` where given)
    and, where both were counted, its page faults' row."""
    ratio = second.train_ms / first.train_ms
    scaled = f"{ratio / flops_ratio:.3f} |" if flops_ratio else "|"
    rows = [
        f"| training step ms | {first.train_ms:.1f} | {second.train_ms:.1f} | {ratio:.3f} | "
        + scaled
    ]
    if first.train_faults is not None and second.train_faults is not None:
        rows.append(
            f"| minor page faults per training step | {first.train_faults:.0f} | "
            f"{second.train_faults:.0f} | | |"
        )
    return rows


def paired_lines(num: Measured, den: Measured, label: str, skip_train: bool) -> list[str]:
    """Each round's ratio (the two models timed back to back, so a slow spell of the machine
    slows both): median and range, to show how far a ratio of medians can be trusted."""
    kinds = [("inference", num.infer_runs, den.infer_runs)]
    kinds += [] if skip_train else [("training step", num.train_runs, den.train_runs)]
    return [per_round_line(f"{label}, {kind}", paired_ratios(a, b)) for kind, a, b in kinds]


def ops_table(octm: Measured, van: Measured, flops_ratio: float) -> list[str]:
    """The profiled split of each call into convolutions and other operators, and the octave
    model's largest other operators."""
    assert octm.ops is not None and van.ops is not None
    lines = [
        "| operators' own CPU time per call (profiled, median of 3) | alpha 0 ms | octave ms | "
        "ratio | ratio / FLOPs ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, split in octm.ops.items():
        twin = van.ops[kind]
        for part, t_van, t_oct in (
            ("convolutions", twin.convolution_ms, split.convolution_ms),
            ("other operators", twin.other_ms, split.other_ms),
        ):
            ratio = t_oct / t_van if t_van else float("nan")
            scaled = f"{ratio / flops_ratio:.3f}" if part == "convolutions" else ""
            lines.append(f"| {kind}: {part} | {t_van:.1f} | {t_oct:.1f} | {ratio:.3f} | {scaled} |")
        lines.append(
            f"| {kind}: minor page faults per profiled call | {twin.faults:.0f} | "
            f"{split.faults:.0f} | | |"
        )
    for kind, split in octm.ops.items():
        top = ", ".join(f"{op} {ms:.1f} ms ({calls} calls)" for op, ms, calls in split.top_other)
        lines += ["", f"Octave model, {kind}, largest other operators: {top}."]
    return lines


def stage_table(octm: Measured, van: Measured) -> list[str]:
    """Per-stage inference medians of the octave model and its twin beside their FLOPs."""
    assert octm.stage_ms and van.stage_ms and octm.stage_gflops and van.stage_gflops
    total_van = sum(van.stage_ms.values())
    lines = [
        "| stage (eager inference) | alpha 0 ms | octave ms | ratio | share of alpha-0 time | "
        "GFLOPs alpha 0 | GFLOPs octave | FLOPs ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [
        (n, van.stage_ms[n], octm.stage_ms[n], van.stage_gflops[n], octm.stage_gflops[n])
        for n in van.stage_ms
    ]
    rows.append(
        (
            "all stages",
            total_van,
            sum(octm.stage_ms.values()),
            sum(van.stage_gflops.values()),
            sum(octm.stage_gflops.values()),
        )
    )
    for name, t_van, t_oct, f_van, f_oct in rows:
        flops = f"{f_oct / f_van:.3f}" if f_van else ""
        lines.append(
            f"| {name} | {t_van:.1f} | {t_oct:.1f} | {t_oct / t_van:.3f} | "
            f"{t_van / total_van:.3f} | {f_van:.2f} | {f_oct:.2f} | {flops} |"
        )
    return lines


def add_step_options(parser: argparse.ArgumentParser) -> None:
    """The clip, batch, thread and device options of ``step_timer``'s timed calls (``models``
    and ``layouts`` take them alike)."""
    parser.add_argument("--frames", type=bounded_int(256), default=8)
    parser.add_argument("--size", type=bounded_int(1024), default=224)
    parser.add_argument("--batch", type=bounded_int(1024), default=1, help="inference clips")
    parser.add_argument("--train-batch", type=bounded_int(1024), default=2, help="training clips")
    parser.add_argument(
        "--threads", type=bounded_int(1024), default=None, help="torch threads (CPU)"
    )
    parser.add_argument("--device", default="cpu")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools/bench.py models``."""
    parser.add_argument("--model", type=model_name, default="i3d_r50")
    parser.add_argument(
        "--alpha",
        type=number,
        nargs="+",
        default=[0.5],
        help="one value (res2-res4; res5 vanilla) or one per stage (res2 res3 res4 res5)",
    )
    parser.add_argument("--octave", type=bounded_int(4), nargs=3, default=[1, 2, 2])
    add_step_options(parser)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="none")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="NDHWC memory (the fast OctConv path)",
    )
    parser.add_argument("--repeats", type=bounded_int(1000), default=10)
    parser.add_argument("--warmup", type=bounded_int(1000, low=0), default=2)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time each stage of the two models (eager inference, interleaved) beside its "
        "FLOPs: single-pathway ResNets only",
    )
    parser.add_argument(
        "--ops",
        action="store_true",
        help="also profile each model's calls (CPU) and split their time into convolutions and "
        "other operators",
    )
    parser.add_argument(
        "--baseline",
        choices=["none", "pytorchvideo"],
        default="none",
        help="also time PyTorchVideo's network of the same name against the alpha-0 model",
    )
    parser.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep freed memory in the heap as the octvideo commands do (octvideo.allocator), or "
        "glibc's defaults (freed large tensors go back to the kernel and fault in again)",
    )
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.set_defaults(check=check, run=run)


def check(args: argparse.Namespace) -> None:
    """Refuses option combinations that cannot be measured."""
    if args.ops and args.device != "cpu":
        raise UsageError(
            "--ops splits CPU operator time; on a GPU the kernels run asynchronously: use "
            "torch.profiler's trace there"
        )


def malloc_setting(choice: str) -> str:
    """Applies ``--malloc`` and says which allocator settings the run measures under."""
    if allocator.user_settings():
        return "the environment's own (GLIBC_TUNABLES / MALLOC_*)"
    if choice == "keep" and allocator.keep_freed_memory():
        return "freed memory kept"
    # --malloc default, or keeping was skipped (OCTVIDEO_MALLOC=default, not glibc) or refused
    return "glibc defaults" if choice == "default" else "left as it was"


def run(args: argparse.Namespace) -> int:
    malloc = malloc_setting(args.malloc)
    if args.threads:
        torch.set_num_threads(args.threads)
    octm, van, *base = measure_pair(args)
    table = report(args, octm, van, base[0] if base else None, malloc)
    file_and_print(args, table)
    return 0
