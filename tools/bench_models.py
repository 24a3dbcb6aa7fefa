"""Speed and memory of an octave model against its alpha-0 twin, measured interleaved in one run.

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

    python tools/bench_models.py --model i3d_r50 --alpha 0.5 --frames 8 --size 224 \
        --threads 2 --compile none --append BENCHMARKS.md

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): the FLOPs and memory
savings that these measurements hold the implementation to.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from octvideo import allocator
from octvideo.models import create_model
from octvideo.models.cost import example_input, measure_cost, module_gflops
from octvideo.ops import OctConv3d, fuse_for_inference

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def is_convolution(op: str) -> bool:
    """A PyTorch or oneDNN convolution operator (forward or backward; not a Python function
    such as OctConv3d's autograd node, whose own time is Python and bookkeeping)."""
    return op.startswith(("aten::", "mkldnn::")) and "conv" in op


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to_device(x, device: torch.device, dtype: torch.dtype, channels_last: bool):
    if isinstance(x, list):
        return [_to_device(t, device, dtype, channels_last) for t in x]
    x = x.to(device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x


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


def saved_bytes(step: Callable[[], torch.Tensor], model: nn.Module | None = None) -> float:
    """Bytes of the unique storages autograd saves for backward during ``step``'s forward,
    leaving out ``model``'s parameters and buffers."""
    seen: dict[int, int] = {}
    weights = set()
    if model is not None:
        weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    loss.backward()
    return float(sum(seen.values()))


class Runner:
    """One model prepared for timed inference and training steps."""

    def __init__(self, model: nn.Module, args: argparse.Namespace, device: torch.device) -> None:
        dtype = DTYPES[args.dtype]
        fmt = torch.channels_last_3d if args.channels_last else torch.contiguous_format
        self.device = device
        self.model = model.to(device=device, dtype=dtype, memory_format=fmt)
        self.infer_clip = _to_device(
            example_input(model, args.frames, args.size, args.batch),
            device,
            dtype,
            args.channels_last,
        )
        self.train_clip = _to_device(
            example_input(model, args.frames, args.size, args.train_batch),
            device,
            dtype,
            args.channels_last,
        )
        self.labels = torch.zeros(args.train_batch, dtype=torch.long, device=device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-6, momentum=0.9)
        compiled = self.model
        if args.compile != "none":
            # static shapes: the training and inference batches differ, and a dynamic-shape
            # recompile of these networks fails in inductor (torch 2.14: "cannot determine truth
            # value of Relational")
            compiled = torch.compile(
                self.model,
                mode=None if args.compile == "default" else args.compile,
                dynamic=False,
            )
        self.forward = compiled
        self.compiled = args.compile != "none"
        self._fused: nn.Module | None = None  # fused for inference from the current weights
        self.last_faults = 0  # minor page faults of the last training step

    def inference_model(self) -> nn.Module:
        """The model as the commands run inference: fused (``fuse_for_inference``) from the
        current weights, fused again after a training step; compiled runs keep the model."""
        if self.compiled:
            return self.forward
        if self._fused is None:
            self._fused = fuse_for_inference(self.model)
        return self._fused

    def loss(self) -> torch.Tensor:
        self.model.train()
        logits = self.forward(self.train_clip)
        return nn.functional.cross_entropy(logits.float(), self.labels)

    def infer(self) -> float:
        self.model.eval()
        model = self.inference_model()
        _sync(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            model(self.infer_clip)
        _sync(self.device)
        return time.perf_counter() - start

    def train_step(self) -> float:
        _sync(self.device)
        faults = minor_faults()
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss().backward()
        self.optimizer.step()
        _sync(self.device)
        elapsed = time.perf_counter() - start
        self._fused = None  # new weights
        self.last_faults = minor_faults() - faults
        return elapsed

    def memory(self) -> tuple[float, float | None]:
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
        saved = saved_bytes(self.loss, self.model)
        peak = None
        if self.device.type == "cuda":
            peak = (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
        return saved / 2**20, peak


STAGES = ("stem", "res2", "pool2", "res3", "res4", "res5")


def stage_calls(model: nn.Module) -> list[tuple[str, Callable]]:
    """The stages of a single-pathway ResNet (``ResNet3D``) in the order its forward runs them,
    the global pool and classifier as "head"."""
    if not all(hasattr(model, n) for n in (*STAGES, "global_pool", "forward_head")):
        raise SystemExit(
            f"--stages times the stages of the single-pathway ResNets (C2D, I3D, Slow); "
            f"{type(model).__name__} is not one of them"
        )
    calls = [(n, getattr(model, n)) for n in STAGES if getattr(model, n) is not None]

    def head(x):
        return model.forward_head(model.global_pool(x))

    return [*calls, ("head", head)]


def time_stages(runner: Runner) -> list[float]:
    """Seconds each stage takes in one inference forward (eager, fused, synchronised per
    stage)."""
    runner.model.eval()
    calls = stage_calls(runner.inference_model())
    x, times = runner.infer_clip, []
    with torch.inference_mode():
        for _, call in calls:
            _sync(runner.device)
            start = time.perf_counter()
            x = call(x)
            _sync(runner.device)
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
        raise SystemExit(f"pytorchvideo.models.hub has no {name!r} to compare with")
    return getattr(hub, name)(
        pretrained=False, dropout_rate=0.0, head_pool_kernel_size=tuple(head_pool)
    )


def measure_pair(args: argparse.Namespace) -> list[Measured]:
    """Measures the octave model, its alpha-0 twin and any baseline, interleaved."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = [
        create_model(args.model, alpha=a, octave=args.octave, num_classes=400, dropout=0.0)
        for a in (args.alpha, 0.0)
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
    runners = [Runner(m, args, device) for m in models]
    memories = [r.memory() for r in runners]
    for r in runners:  # warm-up (and compilation), training first: it changes the weights
        for _ in range(0 if args.skip_train else args.warmup):
            r.train_step()
        for _ in range(args.warmup):
            r.infer()
    n = len(runners)
    infer: list[list[float]] = [[] for _ in range(n)]
    train: list[list[float]] = [[] for _ in range(n)]
    faults: list[list[int]] = [[] for _ in range(n)]  # of the timed training steps only
    orders = [
        list(range(n)) if i % 2 == 0 else list(reversed(range(n))) for i in range(args.repeats)
    ]
    # inference first, on fixed weights as in deployment: a training step changes every weight,
    # and the next inference would fuse the model and pack its weights again
    for order in orders:
        for k in order:
            infer[k].append(runners[k].infer())
    stage_ms: list[dict[str, float] | None] = [None] * n
    if args.stages:  # the octave model and its twin, interleaved; not the baseline
        for k in range(2):
            time_stages(runners[k])  # warm-up: a stage's first call may pack weights
        per_stage: list[list[list[float]]] = [[], []]
        for order in orders:
            for k in (o for o in order if o < 2):
                per_stage[k].append(time_stages(runners[k]))
        for k in range(2):
            stage_ms[k] = {
                name: statistics.median(t[i] for t in per_stage[k]) * 1e3
                for i, name in enumerate(names)
            }
    for order in [] if args.skip_train else orders:
        for k in order:
            train[k].append(runners[k].train_step())
            faults[k].append(runners[k].last_faults)
    ops: list[dict[str, OpSplit] | None] = [None] * n
    if args.ops:  # the octave model and its twin, interleaved, after the timed repeats
        kinds = [("inference", Runner.infer)]
        kinds += [] if args.skip_train else [("training step", Runner.train_step)]
        for k in range(2):
            ops[k] = {}
        for kind, method in kinds:
            for k in range(2):  # unprofiled: the first inference after training fuses again
                method(runners[k])
            profiles: list[list[dict[str, tuple[float, int]]]] = [[], []]
            profile_faults: list[list[int]] = [[], []]
            for i in range(3):
                for k in (0, 1) if i % 2 == 0 else (1, 0):
                    times, n_faults = op_times(functools.partial(method, runners[k]))
                    profiles[k].append(times)
                    profile_faults[k].append(n_faults)
            for k in range(2):
                ops[k][kind] = op_split(profiles[k], profile_faults[k])
    return [
        Measured(
            infer_ms=statistics.median(infer[k]) * 1e3,
            infer_runs=[t * 1e3 for t in infer[k]],
            train_runs=[t * 1e3 for t in train[k]],
            train_ms=statistics.median(train[k]) * 1e3 if train[k] else float("nan"),
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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        names = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    if torch.cuda.is_available():
        cpu += f"; {torch.cuda.get_device_name(0)}"
    return f"{cpu}, torch {torch.__version__}"


def append_table(path: Path, tool: str, argv: list[str] | None, table: str) -> None:
    """Appends ``table`` to ``path`` under the command that made it, the date and the machine."""
    command = f"python tools/{tool}.py " + " ".join(sys.argv[1:] if argv is None else argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\n`{command}`\n\n{stamp}, {machine()}\n\n{table}\n")


def report(
    args: argparse.Namespace, octm: Measured, van: Measured, base: Measured | None = None
) -> str:
    flops_ratio = octm.gflops / van.gflops
    mem_ratio = octm.analytic_mem / van.analytic_mem
    infer_ratio = octm.infer_ms / van.infer_ms
    train_ratio = octm.train_ms / van.train_ms
    saved_ratio = octm.saved_mb / van.saved_mb
    lines = [
        f"{args.model} alpha={args.alpha} octave={tuple(args.octave)} clip {args.frames}x"
        f"{args.size}x{args.size}, {args.device} {args.dtype}, threads {torch.get_num_threads()}, "
        f"compile={args.compile}, channels_last={args.channels_last}, batch {args.batch} "
        f"(train {args.train_batch}), {args.repeats} interleaved repeats (medians), malloc: "
        f"{args.malloc_used}",
        "",
        "| | alpha 0 | octave | ratio | ratio / FLOPs ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| GFLOPs / view | {van.gflops:.2f} | {octm.gflops:.2f} | {flops_ratio:.3f} | |",
        f"| inference ms | {van.infer_ms:.1f} | {octm.infer_ms:.1f} | {infer_ratio:.3f} | "
        f"{infer_ratio / flops_ratio:.3f} |",
    ]
    if not args.skip_train:
        lines.append(
            f"| training step ms | {van.train_ms:.1f} | {octm.train_ms:.1f} | {train_ratio:.3f} | "
            f"{train_ratio / flops_ratio:.3f} |"
        )
        if octm.train_faults is not None and van.train_faults is not None:
            lines.append(
                f"| minor page faults per training step | {van.train_faults:.0f} | "
                f"{octm.train_faults:.0f} | | |"
            )
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
            lines.append(
                f"| training step ms | {base.train_ms:.1f} | {van.train_ms:.1f} | "
                f"{van.train_ms / base.train_ms:.3f} | |"
            )
            if base.train_faults is not None and van.train_faults is not None:
                lines.append(
                    f"| minor page faults per training step | {base.train_faults:.0f} | "
                    f"{van.train_faults:.0f} | | |"
                )
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


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    """``a[i] / b[i]``: the two models' times within each interleaved round."""
    return [x / y for x, y in zip(a, b, strict=True)]


def paired_lines(num: Measured, den: Measured, label: str, skip_train: bool) -> list[str]:
    """Each round's ratio (the two models timed back to back, so a slow spell of the machine
    slows both): median and range, to show how far a ratio of medians can be trusted."""
    kinds = [("inference", num.infer_runs, den.infer_runs)]
    kinds += [] if skip_train else [("training step", num.train_runs, den.train_runs)]
    return [per_round_line(f"{label}, {kind}", paired_ratios(a, b)) for kind, a, b in kinds]


def per_round_line(label: str, ratios: list[float]) -> str:
    """``label``, then the rounds' ratios as a median and a range."""
    return (
        f"{label}, per round: median {statistics.median(ratios):.3f}, range "
        f"{min(ratios):.3f}-{max(ratios):.3f} over {len(ratios)} rounds."
    )


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="i3d_r50")
    parser.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        default=[0.5],
        help="one value (res2-res4; res5 vanilla) or one per stage (res2 res3 res4 res5)",
    )
    parser.add_argument("--octave", type=int, nargs=3, default=[1, 2, 2])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument(
        "--compile", choices=["none", "default", "max-autotune", "reduce-overhead"], default="none"
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="NDHWC memory (the fast OctConv path)",
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
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
    args = parser.parse_args(argv)
    if args.ops and args.device != "cpu":
        parser.error(
            "--ops splits CPU operator time; on a GPU the kernels run asynchronously: use "
            "torch.profiler's trace there"
        )
    args.alpha = args.alpha[0] if len(args.alpha) == 1 else tuple(args.alpha)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if allocator.user_settings():
        args.malloc_used = "the environment's own (GLIBC_TUNABLES / MALLOC_*)"
    elif args.malloc == "keep" and allocator.keep_freed_memory():
        args.malloc_used = "freed memory kept"
    else:
        # --malloc default, or keeping was skipped (OCTVIDEO_MALLOC=default, not glibc) or refused
        args.malloc_used = "glibc defaults" if args.malloc == "default" else "left as it was"
    if args.threads:
        torch.set_num_threads(args.threads)
    octm, van, *base = measure_pair(args)
    table = report(args, octm, van, base[0] if base else None)
    print(table)  # noqa: T201
    if args.append:
        append_table(args.append, "bench_models", argv, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
