"""Export a trained checkpoint to TorchScript or ONNX, checked against the checkpoint's logits.

The exported network takes the normalised clip the predictor builds, (B, 3, T, S, S) with T, S from
the checkpoint's clip protocol ([slow, fast] for SlowFast): the spatial and temporal sizes are fixed
at export time (odd-size handling in the octave layers is resolved for that shape), the batch size
is free. A clip of another (T, H, W) is refused: by the TorchScript file with a ValueError (raised
as ``torch.jit.Error``) naming the input, the export's size and the clip's
(``octvideo.ops.guard_traced_size``), by ONNX Runtime as an input of invalid dimensions. A JSON
file beside the model states the preprocessing (frames, stride, short side, crop, mean, std, class
names) that a deployment must reproduce.

The traced network is the predictor's, fused for inference (``octvideo.ops.fuse_for_inference``):
each batch norm folded into its convolution's weights and bias. Traced, a fused layer records
standard operators only (convolution, add, ReLU; no oneDNN calls), so the exported graph is a
plain one with fewer nodes.

TorchScript is written by ``torch.jit.trace``, channels-last on CPU (the fast OctConv path: feed it
channels-last clips, ``clip.contiguous(memory_format=torch.channels_last_3d)``, to avoid a copy);
ONNX by ``torch.onnx.export`` (TorchScript-based exporter, opset 17) and checked with onnxruntime.
Both are serialised in memory and written by ``octvideo.paths.AtomicOutput``: torch's own file
writer aborts the whole process on a full disk (``c10::Error``), a plain file write fails with an
``OSError`` that becomes one line, with no temporary file left. The model and its preprocessing
file are one result (``octvideo.paths.AtomicOutputs``): both replace the earlier pair, or neither
does.
"""

from __future__ import annotations

import functools
import io
import json
import os
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from octvideo.checkpoint_meta import ClipProtocol
from octvideo.errors import ExportError, UsageError, first_line
from octvideo.inference.predictor import Predictor
from octvideo.ops import guard_traced_size, memory_format_for, to_memory_format
from octvideo.ops.capture import script_quietly
from octvideo.paths import (
    AtomicOutput,
    AtomicOutputs,
    ReadFiles,
    check_output_file,
    keep_unless_earlier,
)

FORMATS = ("torchscript", "onnx")
# default output: <checkpoint stem><suffix> beside the checkpoint; ".torchscript.pt" rather than
# ".pt", so that a checkpoint named model.pt is never the default output
SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
# what --out may end in: never a checkpoint's .ckpt, a config or a video
EXTENSIONS = {"torchscript": (".pt", ".torchscript"), "onnx": (".onnx",)}
_TITLE = {"torchscript": "a TorchScript", "onnx": "an ONNX"}
# torch 2.14 warns that each torch.jit call it makes is deprecated (in favour of torch.export):
# four lines on every TorchScript export, about a format the user chose; docs/commands.md says it
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"
# the most of a preprocessing file beside an existing output that is read to tell whether it is
# an earlier export's (one of 1000 classes is under 100 kB)
MAX_EXPORT_NOTES = 16 << 20
# the version of the preprocessing file's layout: 2 added "format_version" and the exact rules
# ("clip", "resize", "crop", "normalise", "views", "slow_pathway") beside version 1's fields
NOTES_VERSION = 2


@dataclass
class ExportResult:
    path: Path
    preprocessing: Path
    max_abs_diff: float


def example_clip(protocol: ClipProtocol, batch: int, seed: int = 0) -> Tensor | list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    s, t = protocol.test_crop_size, protocol.num_frames
    fast = torch.randn(batch, 3, t, s, s, generator=g)
    if not protocol.slowfast_alpha:
        return fast
    return [fast.index_select(2, torch.tensor(_slow_frames(protocol))), fast]


class _Pathways(nn.Module):
    """Takes SlowFast's two pathways as two arguments (exporters prefer flat inputs)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, slow: Tensor, fast: Tensor) -> Tensor:
        return self.model([slow, fast])  # (B, K)


def _layout_check(x: Tensor, name: str, size: list[int], advice: str) -> Tensor:
    """Refuses ``x`` unless it is a float32 batch of 3-channel clips (B, 3, T, H, W); TorchScript,
    scripted by ``_scripted_layout_check``, so that a trace records the check and the raise (the
    first convolution refused another rank or dtype in torch's words: "Expected 5-dimensional
    input", "expected scalar type Byte but found Float")."""
    if x.dim() != 5 or x.size(1) != 3 or x.dtype != torch.float32:
        dtype = "another dtype"
        for known, spelt in [
            (torch.uint8, "uint8"),
            (torch.float64, "float64"),
            (torch.float16, "float16"),
            (torch.bfloat16, "bfloat16"),
            (torch.int64, "int64"),
            (torch.int32, "int32"),
            (torch.bool, "bool"),
            (torch.float32, "float32"),
        ]:
            if x.dtype == known:
                dtype = spelt
        dims = ", ".join([str(n) for n in size])
        raise ValueError(
            f"{name} takes float32 clips (B, 3, {dims}), got {dtype} "
            f"({', '.join([str(n) for n in x.shape])}): {advice}"
        )
    return x


@functools.cache
def _scripted_layout_check() -> torch.jit.ScriptFunction:
    """``_layout_check`` scripted, on the first TorchScript export."""
    return script_quietly(_layout_check)


class _FixedSize(nn.Module):
    """Checks, in the traced graph, that each clip is a float32 batch (B, 3, T, H, W) of the
    export's (T, H, W), so that a clip without its batch axis, of raw uint8 frames, in float64 or
    of another size is refused in the words of the export, before the first layer refuses it in
    a layer's."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *clips: Tensor) -> Tensor:
        advice = "prepare clips as the .json file beside the model says (frames, crop)"
        layout = (
            "prepare clips as the .json file beside the model says: normalised float32, with a "
            "batch axis first (clip[None] for one clip)"
        )
        checked = [
            guard_traced_size(
                _scripted_layout_check()(
                    clip,
                    f"the exported model's {name} input",
                    [int(n) for n in clip.shape[-3:]],
                    layout,
                ),
                f"the exported model's {name} input",
                advice,
            )
            for name, clip in zip(self.names, clips, strict=True)
        ]
        return self.model(*checked)  # (B, K)


def _inputs(clip: Tensor | list[Tensor]) -> tuple[Tensor, ...]:
    return tuple(clip) if isinstance(clip, list) else (clip,)


def export(
    ckpt: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str] | None = None,
    *,
    tol: float = 1e-4,
) -> ExportResult:
    """Exports ``ckpt`` and checks the file against the checkpoint on a batch of 2 random clips.

    The output (default: ``<stem>.torchscript.pt`` or ``<stem>.onnx`` beside the checkpoint) is
    checked before the checkpoint is loaded, and written through a temporary file that replaces
    it only when the check passed: the checkpoint is never written over, and a failed export
    leaves an earlier file of that name as it was. An existing file there, or at its
    preprocessing file, is replaced only when it is an earlier export (``is_export``,
    ``is_export_notes``) and not read-only (``paths.keep_unless_earlier``).

    Raises:
        ValueError: an unknown format.
        UsageError: the output is the checkpoint, a folder, a symbolic link, cannot be written,
            does not end in one of the format's ``EXTENSIONS``, or it or its preprocessing file
            exists and is no earlier export's, or is read-only.
        OutputWriteError: the export or its preprocessing file cannot be written (full disk, an
            append-only earlier file); both are as they were (``paths.AtomicOutputs``).
        ExportError: the checkpoint's own model gives NaN or infinite logits, or the exported
            model's logits differ from the checkpoint's by more than ``tol`` times the largest
            logit (at least 1): float32 rounding grows with the logits, which reach 1e3-1e5 in
            a run that diverged; or torch cannot write the ONNX graph, or ONNX Runtime cannot run
            it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = default_output(ckpt, fmt) if out is None else Path(out)
    option = "--out" if out is not None else "the default --out"  # a name the user did not give
    reads = ReadFiles([("the checkpoint", ckpt)])
    if out is not None and not os.fspath(out):
        raise UsageError("--out is empty; give a file name, or no --out for the default")
    check_output_file(option, path, reads)
    if path.suffix.lower() not in EXTENSIONS[fmt]:
        raise UsageError(
            f"--out {path}: {_TITLE[fmt]} export is written to a "
            f"{' or '.join(EXTENSIONS[fmt])} file; give such a name (default: "
            f"{default_output(ckpt, fmt).name})"
        )
    sidecar = path.with_suffix(path.suffix + ".json")
    check_output_file(f"{option} {path}: its preprocessing file", sidecar, reads, folder=False)
    title = "ONNX" if fmt == "onnx" else "TorchScript"
    what = (
        f"an earlier {title} export (a model octvideo export wrote, with {sidecar.name} beside it)"
    )
    keep_unless_earlier(option, path, lambda p: is_export(p, fmt), what)
    what = "the preprocessing file of an earlier export"
    keep_unless_earlier(f"{option} {path}: its preprocessing file", sidecar, is_export_notes, what)
    predictor = Predictor.from_checkpoint(ckpt)
    protocol = predictor.protocol
    model: nn.Module = predictor.model.float().eval()
    if protocol.slowfast_alpha:
        model = _Pathways(model).eval()
    notes = preprocessing(protocol, predictor.classes, _names(protocol))
    with AtomicOutputs() as pair:  # the model and its notes: both new, or both as they were
        out, notes_out = pair.add(path, "--out"), pair.add(sidecar, "--out")
        notes_out.write(json.dumps(notes, indent=2, allow_nan=False))
        diff = _export_to(model, protocol, predictor.device, fmt, out, tol, predictor.broken_advice)
    return ExportResult(path, sidecar, diff)


def is_export(path: Path, fmt: str) -> bool:
    """Whether ``path`` is a model ``export`` wrote in ``fmt``: a TorchScript archive (a zip
    holding the model's code, which a plain ``torch.save`` file does not) or an ONNX graph that
    PyTorch produced, with its preprocessing file beside it (``is_export_notes``).

    Raises:
        OSError: a file cannot be read.
    """
    notes = path.with_suffix(path.suffix + ".json")
    if not (notes.is_file() and is_export_notes(notes)):
        return False
    if fmt == "torchscript":
        try:
            with zipfile.ZipFile(path) as archive:
                return any("/code/__torch__/" in name for name in archive.namelist())
        except zipfile.BadZipFile:
            return False
    with open(path, "rb") as f:  # ModelProto: ir_version (field 1), producer_name (field 2)
        return b"\x12\x07pytorch" in f.read(16)


def is_export_notes(path: Path) -> bool:
    """Whether ``path`` is the preprocessing file ``export`` writes beside a model (a JSON
    object with its ``input_layout``, ``protocol`` and ``classes``; at most
    ``MAX_EXPORT_NOTES`` read).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        text = f.read(MAX_EXPORT_NOTES + 1)
    try:
        notes = json.loads(text)
    except ValueError:  # not JSON, not UTF-8, longer than the bound
        return False
    return isinstance(notes, dict) and {"input_layout", "protocol", "classes"} <= set(notes)


def logit_gap(got: np.ndarray, expected: np.ndarray, tol: float) -> tuple[float, float]:
    """The largest difference between two sets of logits, and the most an export may show:
    ``tol`` times the largest expected logit, at least ``tol``."""
    return float(np.abs(got - expected).max()), tol * max(1.0, float(np.abs(expected).max()))


def default_output(ckpt: str | os.PathLike[str], fmt: str) -> Path:
    """``<stem>.torchscript.pt`` or ``<stem>.onnx`` beside the checkpoint."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + SUFFIX[fmt])


def _names(protocol: ClipProtocol) -> list[str]:
    return ["slow", "fast"] if protocol.slowfast_alpha else ["clip"]


def _export_to(
    model: nn.Module,
    protocol: ClipProtocol,
    device: torch.device,
    fmt: str,
    out: AtomicOutput,
    tol: float,
    advice: str,
) -> float:
    """Writes the model to ``out``'s temporary file and returns its largest logit difference
    from ``model``; ``advice`` is what to do about its checkpoint where its own logits are not
    finite (``Predictor.broken_advice``)."""
    trace_inputs = _inputs(example_clip(protocol, 1))
    if fmt == "torchscript":
        # a trace records the path its inputs take: channels-last records OctConv3d's fast path
        # (on CPU an Oct-I3D-R50 alpha-0.5 forward 168 ms against 309 ms traced contiguous);
        # ONNX runtimes choose their own layout, so ONNX gets the plain graph
        layout = memory_format_for(device)
        model = model.to(memory_format=layout)
        trace_inputs = tuple(to_memory_format(list(trace_inputs), layout))
    names = _names(protocol)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Shape checks turn into constants when traced; the shapes are fixed by design here.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", _JIT_DEPRECATED, FutureWarning)
        if fmt == "torchscript":
            # without autograd: the fast path's training-only autograd Functions cannot be traced
            with torch.no_grad():
                traced = torch.jit.trace(_FixedSize(model, names), trace_inputs, check_trace=False)
                torch.jit.save(traced, buffer)
        else:
            try:
                torch.onnx.export(
                    model,
                    trace_inputs,
                    buffer,
                    dynamo=False,
                    opset_version=17,
                    input_names=names,
                    output_names=["logits"],
                    dynamic_axes={n: {0: "batch"} for n in [*names, "logits"]},
                )
            except torch.onnx.errors.OnnxExporterError as err:  # a node ONNX cannot hold
                raise _onnx_failed(
                    "torch.onnx cannot export the model", err, protocol, out
                ) from err
    with buffer.getbuffer() as data:
        out.write(data)
    check_inputs = _inputs(example_clip(protocol, 2, seed=1))
    with torch.no_grad():
        expected = model(*check_inputs).numpy()
    if not np.isfinite(expected).all():  # else "differs by nan", which does not say why
        raise ExportError(
            f"the checkpoint's own model gives {int(np.isnan(expected).sum())} NaN and "
            f"{int(np.isinf(expected).sum())} infinite logits of {expected.size} on random clips "
            "(weights so large that its activations overflow float32: a diverged run?): nothing "
            f"exported; {advice}"
        )
    try:
        got = run_exported(out.tmp, fmt, check_inputs)
    except Exception as err:  # onnxruntime's errors share no base class below Exception
        if fmt != "onnx":
            raise
        raise _onnx_failed(
            "ONNX Runtime cannot run the graph exported", err, protocol, out
        ) from err
    diff, allowed = logit_gap(got, expected, tol)
    if not diff <= allowed:
        raise ExportError(
            f"exported {fmt} model {out.path} differs from the checkpoint by {diff:.3g} "
            f"(> {allowed:.3g}, {tol:g} of the largest logit)"
        )
    return diff


def _onnx_failed(
    what: str, err: Exception, protocol: ClipProtocol, out: AtomicOutput
) -> ExportError:
    """One line for an ONNX graph that torch cannot write or ONNX Runtime cannot run (``err``),
    naming the clip size and the format that traces any size."""
    t, s = protocol.num_frames, protocol.test_crop_size
    return ExportError(
        f"{what} at (T, H, W) {t}x{s}x{s} ({first_line(err)}): nothing written to {out.path}; "
        "export with --format torchscript, which traces any clip size the checkpoint takes"
    )


def run_exported(path: Path, fmt: str, inputs: tuple[Tensor, ...]) -> np.ndarray:
    """Logits of an exported model on ``inputs`` (TorchScript via torch, ONNX via onnxruntime).

    The file is read here and handed over as bytes: torch and onnxruntime take a path only as
    UTF-8 text (a name's bytes that are not UTF-8 failed there, after the export was made)."""
    data = Path(path).read_bytes()
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _JIT_DEPRECATED, FutureWarning)
            loaded = torch.jit.load(io.BytesIO(data))
        with torch.no_grad():
            return loaded(*inputs).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
    return session.run(None, feeds)[0]


# halves to the even integer, as numpy.rint and Python's round
_ROUND = "round_half_even"


def preprocessing(protocol: ClipProtocol, classes: list[str], inputs: list[str]) -> dict:
    """What a deployment must do to frames before the exported model, as plain values: prose
    ``steps``, and each rule as ``predict`` and ``test`` compute it (formulas of the video's
    frame count N, frame rate fps and decoded frame size, in integer arithmetic where
    ``floor``), so that a program following them gets ``predict``'s numbers."""
    p = protocol
    size, short = p.test_crop_size, p.test_short_side
    stride = "sampling_rate * fps / target_fps" if p.target_fps else "sampling_rate"
    at_rate = (
        f" at {p.target_fps:g} fps (frame k of the clip is start + {_ROUND}(k * stride), "
        f"stride = {p.sampling_rate} * fps / {p.target_fps:g}: each offset rounded, not the "
        "stride)"
        if p.target_fps
        else ""
    )
    return {
        "format_version": NOTES_VERSION,
        "inputs": inputs,
        "input_layout": "(B, 3, T, S, S) float32, RGB",
        "steps": [
            f"decode the centre clip: {p.num_frames} frames {p.sampling_rate} apart{at_rate}, "
            "starting at floor(max(N - span, 0) / 2) of the video's N frames (clamped to the "
            "last frame for short videos; see clip)",
            f"resize the uint8 frames so the short side is {short} px (bilinear, antialiased, "
            "rounded back to uint8; see resize)",
            f"crop {size}x{size} at left floor((width - {size}) / 2), top floor((height - "
            f"{size}) / 2): the centre rounded down, not torchvision's center_crop",
            "scale to [0, 1], subtract mean and divide by std per channel",
            *([_slow_step(p)] if p.slowfast_alpha else []),
        ],
        "clip": {
            "num_frames": p.num_frames,
            "stride": stride,
            "span": f"{_ROUND}((num_frames - 1) * stride) + 1",
            "start": "floor(max(N - span, 0) / 2)",
            "frame_index": f"min(start + {_ROUND}(k * stride), N - 1) for k in 0 .. num_frames - 1",
            "note": f"N: the frames the video decodes to; {_ROUND}: halves to the even "
            "integer (numpy.rint)"
            + (
                "; fps: the video's frame rate (stride = sampling_rate where it gives none)"
                if p.target_fps
                else "; the stride is a whole number of frames"
            ),
        },
        "resize": {
            "short_side": short,
            "long_side": f"floor({short} * long / short)",
            "interpolation": "bilinear",
            "antialias": True,
            "align_corners": False,
            "dtype": "uint8",
            "note": "resize the uint8 frames and keep uint8 (torchvision.transforms.v2."
            f"functional.resize(frames, {short}, antialias=True) on (T, 3, H, W) uint8; on the "
            "CPU torch's uint8 kernel); resizing float frames moves the probabilities by ~1e-3",
        },
        "crop": {
            "size": size,
            "left": f"floor((width - {size}) / 2)",
            "top": f"floor((height - {size}) / 2)",
            "note": "width, height: the resized frame's; torchvision's center_crop rounds the "
            "offset instead, one pixel further right or down when width - size is odd",
        },
        "normalise": {
            "formula": "(pixel / 255 - mean[c]) / std[c], c in R, G, B",
            "mean": list(p.mean),
            "std": list(p.std),
        },
        "views": _views(p),
        **({"slow_pathway": _slow_pathway(p)} if p.slowfast_alpha else {}),
        "output": "logits (B, num_classes); softmax gives class probabilities",
        "protocol": asdict(p),
        "classes": classes,
    }


def _views(protocol: ClipProtocol) -> dict:
    """Which views ``predict`` averages: one by default, the protocol's with ``--views multi``."""
    clips, crops = protocol.test_num_clips, protocol.test_num_crops
    return {
        "default": "predict --views center (and test with test_num_clips 1, test_num_crops 1): "
        "one clip at clip.start, the centre crop; its softmax is the video's probabilities",
        "multi": {
            "num_clips": clips,
            "num_crops": crops,
            "clip_start": "floor(i * max(N - span, 0) / num_clips) for i in 0 .. num_clips - 1"
            " (num_clips 1: clip.start)",
            "crop_positions": "num_crops 1: the centre crop; else 0, 1, 2: along the long side "
            "at floor((long - size) * position / 2), the short side at floor((short - size) / 2)",
            "note": "predict --views multi and test only: the mean over clips of the mean over "
            "crops of each view's softmax; test_num_clips and test_num_crops apply to nothing "
            "else",
        },
    }


def _slow_frames(protocol: ClipProtocol) -> list[int]:
    """The clip frames SlowFast's slow pathway takes, as ``pack_pathways`` picks them."""
    t = protocol.num_frames
    return torch.linspace(0, t - 1, max(protocol.slow_frames, 1)).long().tolist()


def _slow_pathway(protocol: ClipProtocol) -> dict:
    return {
        "num_frames": protocol.slow_frames,
        "clip_frames": _slow_frames(protocol),
        "rule": "trunc(linspace(0, num_frames - 1, slow frames)) in float32 "
        "(torch.linspace(...).long()), not rounded",
    }


def _slow_step(protocol: ClipProtocol) -> str:
    return (
        f"slow pathway: frames {_slow_frames(protocol)} of the clip (truncated linspace; see "
        "slow_pathway)"
    )
