"""``octvideo predict``: clip-level predictions for video files from a checkpoint.

Prints a table per video, writes JSON Lines or CSV records with ``--out``, draws the predictions
into a copy of the video with ``--render``. One unreadable input is reported and skipped; the exit
status is 0 when every input succeeded, 1 when any failed.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from tqdm import tqdm

from octvideo.cli import UsageError
from octvideo.inference.output import RecordWriter, format_result, records
from octvideo.inference.predictor import CheckpointError, Predictor, expand_inputs, parse_seconds

logger = logging.getLogger(__name__)


def _views(text: str) -> str | tuple[int, int]:
    if text in ("center", "multi"):
        return text
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise UsageError(f"--views {text!r}: use center, multi or NxC (e.g. 10x3)")
    return int(match[1]), int(match[2])


def _render_path(render: str, source: str, many: bool) -> Path:
    if not many:
        return Path(render)
    return Path(render) / f"{Path(source).stem}.pred.mp4"


def predict(args: argparse.Namespace) -> int:
    """Runs the predictor on every input; returns 1 when any input failed."""
    try:
        window, stride = parse_seconds(args.window), parse_seconds(args.stride)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if stride is not None and window is None:
        raise UsageError("--stride needs --window")
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise UsageError("no inputs: give video files, folders of videos or a .txt list")
    try:
        predictor = Predictor.from_checkpoint(
            args.ckpt, device=args.device, batch_size=args.batch_size
        )
    except (CheckpointError, ValueError) as err:
        raise UsageError(str(err)) from err
    views = _views(args.views)
    writer = RecordWriter(args.out, args.topk) if args.out else None
    failed = 0
    # disable=None: bars only on a terminal, so piped output and logs stay readable
    progress = tqdm(
        inputs,
        desc="predict",
        unit="video",
        disable=True if len(inputs) < 2 or args.quiet else None,
    )
    try:
        for path in progress:
            quiet = True if args.quiet else None
            with tqdm(desc=Path(path).name, unit="clip", leave=False, disable=quiet) as bar:
                result = predictor.predict(
                    path,
                    views=views,
                    window=window,
                    stride=stride,
                    decoder=args.decoder,
                    on_batch=bar.update,
                )
            failed += not result.ok
            if not args.quiet:
                tqdm.write(format_result(result, predictor.classes, args.topk))
            if writer is not None:
                writer.write(records(result, predictor.classes, args.topk))
            if args.render and result.ok:
                from octvideo.inference.render import render

                out = render(
                    result, predictor.classes, _render_path(args.render, path, len(inputs) > 1)
                )
                tqdm.write(f"  rendered {out}")
    finally:
        if writer is not None:
            writer.close()
    summary = f"{len(inputs) - failed} of {len(inputs)} inputs predicted"
    if failed:
        summary += f", {failed} failed"
    if writer is not None:
        summary += f"; records in {writer.path}"
    print(summary)  # noqa: T201
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="top-k classes for video files, per video and per sliding window",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--ckpt", required=True, help="checkpoint written by 'octvideo train'")
    p.add_argument(
        "inputs", nargs="+", help="video files, folders of videos, or .txt lists of paths"
    )
    p.add_argument(
        "--views", default="center", help="center (one clip), multi (the checkpoint's NxC) or NxC"
    )
    p.add_argument("--window", default=None, help="sliding window length, e.g. 2s (long videos)")
    p.add_argument("--stride", default=None, help="step between windows, e.g. 1s (default: window)")
    p.add_argument("--topk", type=int, default=5, help="classes per record")
    p.add_argument("--out", default=None, help="write records to a .jsonl or .csv file")
    p.add_argument(
        "--render",
        default=None,
        help="write the video with predictions drawn (a folder for several inputs)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    p.add_argument("--decoder", default="auto", choices=["auto", "decord", "pyav"])
    p.add_argument("--quiet", action="store_true", help="no table, no progress bars")
    p.set_defaults(func=predict)
    register_export(subparsers)


def export_command(args: argparse.Namespace) -> int:
    """Exports a checkpoint and reports the file, its preprocessing notes and the check."""
    from octvideo.inference.export import ExportError, export

    try:
        result = export(args.ckpt, args.format, args.out)
    except (CheckpointError, ExportError, ValueError) as err:
        raise UsageError(str(err)) from err
    print(  # noqa: T201
        f"wrote {result.path} (logits within {result.max_abs_diff:.2e} of the checkpoint)\n"
        f"preprocessing: {result.preprocessing}"
    )
    return 0


def register_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a checkpoint as TorchScript or ONNX, checked against its logits",
        description="Export a trained checkpoint; the spatial/temporal size is fixed, batch free.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint written by 'octvideo train'")
    p.add_argument("--format", required=True, choices=["torchscript", "onnx"])
    p.add_argument("--out", default=None, help="output file (default: beside the checkpoint)")
    p.set_defaults(func=export_command)
