"""``octvideo predict``: clip-level predictions for video files from a checkpoint.

Prints a table per video, writes JSON Lines or CSV records with ``--out``, draws the predictions
into a copy of the video with ``--render``. One unreadable input, or one that cannot be rendered, is
reported and skipped; one cut short (a file that cannot be decoded to its end) keeps the records of
the windows before the cut. Each input is one of predicted, cut short or failed in the summary
line; the exit status is 0 when every input was predicted, 1 when any was cut short or failed.

Inputs are decoded in ``--workers`` processes ahead of the model and their clips share forward
passes (``octvideo.inference.pipeline``); an input whose decoder hangs fails after ``--timeout``
seconds without progress, one whose decoder crashes fails alone. Progress: a bar over the inputs
when stdout is a terminal, else one line per input on stderr (and, within a long input, one every
``PROGRESS_CLIPS`` of its windows or clips); an input cut short or failed is that one line (in
the table on a terminal), also under ``--quiet``, which leaves the other lines out but the summary
line, the last, on stdout.

Every argument is parsed, bounded and checked before any output is opened: a refused command
(exit 2, one line naming the option and its bound) leaves every file as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from octvideo.argtypes import (
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    bounded_int,
    check_timeout,
    shown,
    shown_path,
    whole,
)
from octvideo.cli import print_last
from octvideo.data.workers import (
    WORKERS_PER_CORE,
    check_worker_count,
    start_worker_server,
)
from octvideo.errors import UsageError, first_line, usage_errors
from octvideo.inference.inputs import (
    RENDER_EXTENSIONS,
    RENDER_SUFFIX,
    expand_inputs,
)
from octvideo.inference.output import (
    RecordWriter,
    check_record_path,
    format_result,
    records,
)
from octvideo.inference.output import (
    check_replaceable as check_replaceable_records,
)
from octvideo.inference.pipeline import (
    DEFAULT_TIMEOUT,
    MAX_WORKERS,
    default_workers,
    predict_many,
    reserve_worker_files,
)
from octvideo.inference.predictor import (
    MIN_WINDOW_SECONDS,
    Predictor,
    VideoResult,
    parse_seconds,
    parse_views,
    window_seconds,
)
from octvideo.paths import (
    ReadFiles,
    check_folder,
    check_output_file,
    fitted_name,
    name_limit,
)

MAX_TOPK = 1000  # classes per record; more than any video dataset's (Kinetics-700)
# clips (windows) of one input between its progress lines: a 2-hour video in 2 s windows gets a
# line every 200 s of video, where a terminal's bar is not drawn
PROGRESS_CLIPS = 100
MAX_BATCH_SIZE = 512  # clips per forward pass; one batch's frames are decoded at full size
# seconds of --window and --stride: a day, past any one recording that predict is for (a longer
# window is the whole video, as is no --window)
MAX_WINDOW = 86_400.0
# what an input comes to (``_outcome``), each counted in the summary line
PREDICTED, CUT_SHORT, FAILED = "predicted", "cut short", "failed"
OUTCOMES = (PREDICTED, CUT_SHORT, FAILED)


def _views(text: str) -> str | tuple[int, int]:
    try:
        return parse_views(text)
    except ValueError as err:
        raise UsageError(f"--views {shown(text)}: {err}") from err


def _device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` for a CUDA device this machine has."""
    match = re.fullmatch(r"cpu|cuda(?::(\d{1,3}))?", text)
    if not match:
        raise UsageError(f"--device {shown(text)}: use cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {text}: no CUDA device is available; use cpu")
        if match[1] is not None and int(match[1]) >= count:
            raise UsageError(
                f"--device {text}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    return text


def _window(option: str, text: str | None) -> float | None:
    """``--window`` or ``--stride`` in seconds, from ``MIN_WINDOW_SECONDS`` to ``MAX_WINDOW``:
    a value that is no duration, 0 or below, names the bound too."""
    try:
        parse_seconds(text)
    except ValueError as err:
        raise UsageError(
            f"{option} {shown(text)}: {err}; give at least {MIN_WINDOW_SECONDS:g}s"
        ) from None
    with usage_errors(ValueError):
        seconds = window_seconds(text, option)
    if seconds is not None and seconds > MAX_WINDOW:
        raise UsageError(f"{option} {shown(text)}: give at most {MAX_WINDOW:g}s (a day)")
    return seconds


def _timeout(text: str | None, workers: int) -> float:
    """``--timeout`` in seconds (``60s``, ``90``, ``1500ms``), from ``MIN_TIMEOUT`` to
    ``MAX_TIMEOUT`` (``argtypes.check_timeout``); only with workers, since a decoder in this
    process cannot be stopped."""
    if text is None:
        return DEFAULT_TIMEOUT
    if workers == 0:
        raise UsageError(
            f"--timeout {shown(text)} needs --workers 1 or more: a decoder in the model's own "
            "process cannot be stopped"
        )
    try:
        seconds = parse_seconds(text)
    except ValueError as err:
        raise UsageError(f"--timeout {shown(text)}: {err}") from None
    assert seconds is not None
    with usage_errors(ValueError):
        return check_timeout("--timeout", text, seconds)


def _workers(count: int) -> int:
    """``--workers`` from 0 to what this machine's cores take (``check_worker_count``)."""
    with usage_errors(ValueError):
        return check_worker_count("--workers", count, low=0, cap=MAX_WORKERS)


def _render_paths(render: str, inputs: list[str]) -> list[Path]:
    """Where each input's video goes: ``render`` itself for one input unless it is a folder, else
    ``render/<stem>.pred.mp4``, numbered (``<stem>.2.pred.mp4``) when names repeat, so that two
    inputs of one name in different folders do not overwrite each other. A name past the file
    system's limit (an input named near it) is cut to fit (``paths.fitted_name``)."""
    if len(inputs) == 1 and not Path(render).is_dir():
        return [Path(render)]
    limit = name_limit(Path(render))
    taken: set[str] = set()
    paths = []
    for source in inputs:
        stem = Path(source).stem
        name, n = fitted_name(stem, RENDER_SUFFIX, limit), 1
        while name.lower() in taken:  # case-insensitive file systems too
            n += 1
            name = fitted_name(stem, f".{n}{RENDER_SUFFIX}", limit)
        taken.add(name.lower())
        paths.append(Path(render) / name)
    return paths


def _check_outputs(args: argparse.Namespace, inputs: list[str]) -> list[Path] | None:
    """Checks ``--out`` and ``--render`` before any work; returns the render path of each input.
    An existing ``--out`` is replaced only when it holds records (``is_record_file``), an
    existing render only when it is one (``render.is_render``: tagged, or named
    ``<name>.pred.<ext>``); neither when it is read-only.

    Raises:
        UsageError: a path that cannot be written, that is the checkpoint or an input video, or
            an existing file that is no earlier output of its kind.
    """
    reads = ReadFiles([("the checkpoint", args.ckpt), *(("the input", p) for p in inputs)])
    if args.out:
        check_replaceable_records(check_output_file("--out", args.out, reads))
    if not args.render:
        return None
    paths = _render_paths(args.render, inputs)
    if paths == [Path(args.render)]:  # one input, and no folder there: the video itself
        if paths[0].suffix.lower() not in RENDER_EXTENSIONS:
            raise UsageError(
                f"--render {shown_path(args.render)}: use a {', '.join(RENDER_EXTENSIONS)} file "
                "name, or an existing folder"
            )
        check_output_file("--render", paths[0], reads)
    else:
        if Path(args.render).suffix.lower() in RENDER_EXTENSIONS and not Path(args.render).is_dir():
            raise UsageError(
                f"--render {shown_path(args.render)} names a video file, but the inputs are "
                f"{len(inputs)} videos: give a folder, which gets one <name>.pred.mp4 each"
            )
        check_folder("--render", args.render, create=False)  # several inputs: a folder of videos
        for path in paths:
            check_output_file("--render", path, reads, folder=False)
    from octvideo.inference.render import check_replaceable  # PyAV: only with --render

    for path in paths:
        check_replaceable(path)
    return paths


def _render(result: VideoResult, classes: list[str], out: Path, k: int) -> bool:
    """Renders one result with its top ``k`` classes; a failure becomes the result's error
    (reported with its record), and the next input goes on."""
    import av

    from octvideo.inference.render import render

    try:
        render(result, classes, out, k=k)
    # UsageError: a file put at ``out`` since ``_check_outputs``, which the render keeps
    except (av.FFmpegError, OSError, ValueError, RuntimeError, UsageError) as err:
        reason = first_line(err, empty="")
        result.error = f"cannot render {shown_path(out)}: {type(err).__name__}: {reason}"
        return False
    return True


@dataclass(frozen=True)
class _Settings:
    """``predict``'s arguments, parsed, bounded and checked against each other and the files."""

    views: str | tuple[int, int]
    topk: int  # classes per record, in the table and in --render
    batch_size: int
    window: float | None  # seconds; None: the whole video
    stride: float | None
    inputs: list[str]  # the video files, folders and lists expanded
    workers: int
    timeout: float
    device: str
    render_to: list[Path] | None  # each input's rendered video; None without --render


def _settings(args: argparse.Namespace) -> _Settings:
    """Checks every argument and output path, before the checkpoint is loaded and any output
    opened.

    Raises:
        UsageError: one line naming the option and what to give.
    """
    views = _views(args.views)
    window = _window("--window", args.window)
    stride = _window("--stride", args.stride)
    if stride is not None and window is None:
        raise UsageError("--stride needs --window")
    for option, value in (("--out", args.out), ("--render", args.render)):
        if value == "":  # was taken as no output at all
            raise UsageError(f"{option} is empty; give a path, or no {option}")
    if window is not None and args.views != "center":
        raise UsageError(
            f"--views {shown(args.views)} does not apply with --window: each window is one "
            "centre clip"
        )
    with usage_errors(ValueError):
        if args.out:
            check_record_path(args.out)
        inputs = expand_inputs(args.inputs)
    if not inputs:
        raise UsageError("no inputs: give video files, folders of videos or a .txt list")
    workers = default_workers() if args.workers is None else _workers(args.workers)
    return _Settings(
        views=views,
        topk=args.topk,
        batch_size=args.batch_size,
        window=window,
        stride=stride,
        inputs=inputs,
        workers=workers,
        timeout=_timeout(args.timeout, workers),
        device=_device(args.device),
        render_to=_check_outputs(args, inputs),
    )


class _Progress:
    """What a person waiting sees: a bar over the inputs when stdout is a terminal; elsewhere a
    line on stderr as each input ends (under ``-q`` only for one that did not predict) and,
    within a long input, one every ``PROGRESS_CLIPS`` of its clips or windows, so that logs stay
    readable."""

    def __init__(self, inputs: list[str], *, quiet: bool, unit: str) -> None:
        self.inputs = inputs
        self.quiet = quiet
        self.unit = unit  # "clips", or "windows" under --window
        self.show_bar = not quiet and sys.stdout.isatty()
        self.bar = tqdm(total=len(inputs), desc="predict", unit="video", disable=not self.show_bar)
        self._views_run = 0
        self._lines_at: dict[int, int] = {}  # input -> its clips at its last progress line

    def on_views(self, count: int) -> None:
        self._views_run += count
        self.bar.set_postfix_str(f"{self._views_run} clips")

    def on_clips(self, index: int, done: int, clips: int) -> None:
        """A line within a long input, in the style of the line each input ends with (no bar
        draws them; not under -q)."""
        if self.show_bar or self.quiet or done >= clips:
            return
        if done // PROGRESS_CLIPS > self._lines_at.get(index, 0) // PROGRESS_CLIPS:
            self._lines_at[index] = done
            print(  # noqa: T201
                f"predict {index + 1}/{len(self.inputs)} {self.inputs[index]}: {done} of "
                f"{clips} {self.unit}",
                file=sys.stderr,
                flush=True,
            )

    def input_done(
        self, number: int, result: VideoResult, outcome: str, note: str | None = None
    ) -> None:
        """The line of an input done; ``note`` ends it (an output not written)."""
        self.bar.update()
        if not self.show_bar and not (self.quiet and result.ok):  # -q: failures only
            state = "ok" if result.ok else f"{outcome.upper()}: {result.error}"
            state += f"; {note}" if note else ""
            print(  # noqa: T201
                f"predict {number}/{len(self.inputs)} {shown_path(result.path)}: {state} "
                f"({result.seconds:.2f} s)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        self.bar.close()


def _report(
    settings: _Settings,
    quiet: bool,
    results: Iterable[VideoResult],
    classes: list[str],
    writer: RecordWriter | None,
    progress: _Progress,
    counts: dict[str, int],
) -> None:
    """Renders, records and prints each result as it comes; ``counts`` gets each input's
    outcome once its records are written, so that a run stopped midway counts those done.

    An input cut short is not rendered: a render draws every frame of the video, and the
    frames past the cut cannot be decoded. Its table and its line say so."""
    k, render_to = settings.topk, settings.render_to
    for number, result in enumerate(results, 1):
        outcome, rendered, note = _outcome(result), False, None
        out = None if render_to is None else render_to[number - 1]
        if out is not None and result.ok:
            rendered = _render(result, classes, out, k)
            outcome = PREDICTED if rendered else FAILED  # its error says why
        elif out is not None and outcome == CUT_SHORT:
            note = f"{shown_path(out)} not rendered: only an input decoded to its end is rendered"
        if writer is not None:  # kept before anything is printed, which may fail
            writer.write(records(result, classes, k))
        if not quiet:
            tqdm.write(format_result(result, classes, k, failure=outcome.upper()))
            if rendered or note:
                tqdm.write(f"  rendered {shown_path(out)}" if rendered else f"  {note}")
            # each video's table as it is done, also into a pipe; a reader that went away
            # (``| head``) stops a run whose records are these tables here, rather than after
            # the last input, and one with --out or --render goes on (``octvideo.cli``)
            sys.stdout.flush()
        counts[outcome] += 1  # its records are written
        progress.input_done(number, result, outcome, note)


def predict(args: argparse.Namespace) -> int:
    """Runs the predictor on every input; returns 1 when any input was cut short or failed.

    Every argument and output path is checked before the checkpoint is loaded, and ``--out`` is
    opened only after it loaded, so a refused command changes no file; its records replace an
    earlier file when the run ends, or stops after its first input is done.
    """
    settings = _settings(args)
    if settings.workers:
        # before the model loads, and before the fork server starts: its workers inherit its limit
        with usage_errors(ValueError):
            count = settings.workers
            reserve_worker_files(f"--workers {count}", count, len(settings.inputs))
        start_worker_server()  # its imports overlap the model's loading
    # its refusals are CheckpointErrors, UsageErrors; --device and --batch-size are checked
    predictor = Predictor.from_checkpoint(
        args.ckpt, device=settings.device, batch_size=settings.batch_size
    )
    inputs = settings.inputs
    unit = "windows" if settings.window is not None else "clips"
    progress = _Progress(inputs, quiet=args.quiet, unit=unit)
    results = predict_many(
        predictor,
        inputs,
        views=settings.views,
        window=settings.window,
        stride=settings.stride,
        decoder=args.decoder,
        workers=settings.workers,
        timeout=settings.timeout,
        on_views=progress.on_views,
        on_clips=progress.on_clips,
    )
    writer: RecordWriter | None = None
    counts = dict.fromkeys(OUTCOMES, 0)  # of the inputs whose records are written
    try:
        with contextlib.ExitStack() as stack:  # closed in reverse order: the records last
            if args.out:  # stopped before its first record, it leaves an earlier file as it was
                # no empty label and prob columns past the model's classes
                k = min(settings.topk, len(predictor.classes))
                writer = stack.enter_context(RecordWriter(args.out, k))
            stack.callback(results.close)
            stack.callback(progress.close)
            _report(settings, args.quiet, results, predictor.classes, writer, progress, counts)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the records of the inputs done are kept
        print(_summary(counts, len(inputs), writer))  # noqa: T201
        raise
    print_last(_summary(counts, len(inputs), writer))
    return 1 if counts[CUT_SHORT] or counts[FAILED] else 0


def _outcome(result: VideoResult) -> str:
    """``PREDICTED`` whole; ``CUT_SHORT``: a file that cannot be decoded to its end, whose clips
    (windows) before the first frame that fails keep their scores and records, and whose error
    says where that is; ``FAILED``: no scores. Of a result before it is rendered (a render that
    fails fails a predicted input)."""
    if result.ok:
        return PREDICTED
    return CUT_SHORT if result.video is not None else FAILED


def _summary(counts: dict[str, int], total: int, writer: RecordWriter | None) -> str:
    """``6 of 9 inputs predicted, 1 cut short, 2 failed; records in FILE``: each input done is
    one of ``OUTCOMES``, and those not done (a run stopped) are not counted."""
    summary = f"{counts[PREDICTED]} of {total} inputs predicted"
    for outcome in (CUT_SHORT, FAILED):
        if counts[outcome]:
            summary += f", {counts[outcome]} {outcome}"
    if writer is None:
        return summary
    if not writer.discarded:
        return f"{summary}; records in {shown_path(writer.path)}"
    if writer.existed:
        return f"{summary}; {writer.path} is left as it was"
    return f"{summary}; no {writer.path} written"


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
    p.add_argument(
        "--topk",
        type=bounded_int(MAX_TOPK),
        default=5,
        help=f"classes per record and in --render (1 to {MAX_TOPK})",
    )
    p.add_argument("--out", default=None, help="write records to a .jsonl or .csv file")
    p.add_argument(
        "--render",
        default=None,
        help="write the video with predictions drawn (a folder for several inputs, of "
        "<name>.pred.mp4 files, which a folder given as input leaves out: predicting it again "
        "does not predict its renders)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--batch-size",
        type=bounded_int(MAX_BATCH_SIZE),
        default=8,
        help=f"clips per forward pass (1 to {MAX_BATCH_SIZE})",
    )
    p.add_argument(
        "--decoder",
        default="auto",
        choices=["auto", "decord", "pyav"],
        help="auto: decord, then PyAV for a file decord cannot read",
    )
    p.add_argument(
        "--workers",
        type=whole,
        default=None,
        help=f"decoding processes ahead of the model (0 to {WORKERS_PER_CORE} per CPU core, at "
        f"most {MAX_WORKERS}; 0: decode in turn with the model) (default: 2, or 1 on one CPU: "
        f"{default_workers()} here)",
    )
    p.add_argument(
        "--timeout",
        default=None,
        help=f"seconds a worker may make no progress on an input before it fails, e.g. 90s "
        f"({MIN_TIMEOUT:g}s to {MAX_TIMEOUT:g}s, a day; needs workers) "
        f"(default: {DEFAULT_TIMEOUT:g}s)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no table, no progress bar: a line only for an input cut short or failed, and the "
        "last line, N of M inputs predicted (on stdout, for a script)",
    )
    p.set_defaults(func=predict)
    register_export(subparsers)


def export_command(args: argparse.Namespace) -> int:
    """Exports a checkpoint and reports the file, its preprocessing notes and the check. An
    existing output is replaced only when it is an earlier export (``export`` checks it before
    the checkpoint loads)."""
    from octvideo.errors import ExportError
    from octvideo.inference.export import export

    with usage_errors(ExportError):  # a CheckpointError is a UsageError already
        result = export(args.ckpt, args.format, args.out)
    print_last(
        f"wrote {shown_path(result.path)} (logits within {result.max_abs_diff:.2e} of the "
        "checkpoint)\n"
        f"preprocessing: {shown_path(result.preprocessing)}"
    )
    return 0


def register_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a checkpoint as TorchScript or ONNX, checked against its logits",
        description="Export a trained checkpoint; the spatial/temporal size is fixed, batch free.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint written by 'octvideo train'")
    p.add_argument(
        "--format", required=True, choices=["torchscript", "onnx"], help="the file to write"
    )
    p.add_argument("--out", default=None, help="output file (default: beside the checkpoint)")
    p.set_defaults(func=export_command)
