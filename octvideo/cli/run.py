"""``octvideo train`` and ``octvideo test`` subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from octvideo.argtypes import shown_path
from octvideo.cli import CFG_HELP, print_last
from octvideo.config import short_names
from octvideo.errors import Interrupted

if TYPE_CHECKING:
    from octvideo.engine.run import TestResult, TrainResult


# Lightning is imported by the two commands that train and test, when they run: building the
# parser for any command (``octvideo predict --help``) registers these and must not import it.
def run_train(
    cfg: str, overrides: Sequence[str], *, resume: str | None, out: str | None
) -> TrainResult:
    # seconds, under the command line's SIGTERM handler: the engine's own, which Lightning's
    # loops replace by their stop at a batch boundary
    from octvideo.engine import run

    return run.run_train(cfg, overrides, resume=resume, out=out)


def run_test(cfg: str, overrides: Sequence[str], *, ckpt: str, out: str | None) -> TestResult:
    from octvideo.engine import run

    return run.run_test(cfg, overrides, ckpt=ckpt, out=out)


def train(args: argparse.Namespace) -> int:
    result = run_train(args.cfg, args.overrides, resume=args.resume, out=args.out)
    try:  # until print_last, after which a stop changes nothing: the run's files are written
        lines: list[str] = []
        if result.run_dir and _is_rank_zero():
            lines.append(f"run directory: {shown_path(result.run_dir.resolve())}")
            # only files that are there: a run that trained nothing has no last.ckpt of its own
            if result.last_ckpt.is_file():
                lines.append(f"last checkpoint: {shown_path(result.last_ckpt.resolve())}")
            if result.best_ckpt and result.best_ckpt.is_file():
                lines.append(f"best checkpoint: {shown_path(result.best_ckpt.resolve())}")
        print_last(*lines)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM and SIGHUP (Terminated)
        kind = type(err) if isinstance(err, Interrupted) else Interrupted
        raise kind(f"stopped by {kind.cause} {result.finished()}") from err
    return 0


def test(args: argparse.Namespace) -> int:
    result = run_test(args.cfg, args.overrides, ckpt=args.ckpt, out=args.out)
    if not _is_rank_zero():
        print_last()
        return 0
    m = result.metrics
    print_last(
        f"video top-1 {100 * m['video_top1']:.2f}%  top-{m['top5_k']} "
        f"{100 * m['video_top5']:.2f}%  "
        f"clip top-1 {100 * m['clip_top1']:.2f}%  mean class acc "
        f"{100 * m['mean_class_accuracy']:.2f}%  ({m['num_videos']} videos, "
        f"{m['num_failed']} failed)",
        f"report: {shown_path(result.out_dir.resolve())}",
    )
    return 0


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a config",
        description=(
            "Train with PyTorch Lightning. CFG is a path, a shipped config name "
            "(kinetics400/i3d_r50_oct_a0.1_8x8.yaml, or its file name alone) or a short name "
            f"of the paper's Kinetics-400 recipes: {short_names()}."
        ),
    )
    p.add_argument("--cfg", required=True, help=CFG_HELP)
    p.add_argument("--resume", metavar="auto|PATH", help="resume: auto = the run's last.ckpt")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=train)

    p = subparsers.add_parser(
        "test",
        help="multi-view evaluation of a checkpoint",
        description="Evaluate a checkpoint with multi-view testing; writes a report.",
    )
    p.add_argument("--cfg", required=True, help=CFG_HELP)
    p.add_argument("--ckpt", required=True, help="checkpoint to evaluate")
    p.add_argument(
        "--out", help="run directory; the report goes to OUT/test (default: runs/<config name>)"
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=test)
