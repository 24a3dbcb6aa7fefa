"""``octvideo sweep``: a study over config values (``octvideo.engine.sweep``)."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from types import FrameType

from octvideo import signals
from octvideo.argtypes import MAX_TIMEOUT, MIN_TIMEOUT, check_timeout, number, shown_path, whole
from octvideo.cli import CFG_HELP, print_last
from octvideo.data.workers import usable_cores
from octvideo.engine.sweep import AGAIN, CHECKPOINTS, SubprocessRunner, run_study, split_groups
from octvideo.engine.sweep_report import iter_rows
from octvideo.errors import Interrupted, Terminated, UsageError, usage_errors


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # raised inside the wait on the current run, which then stops that run (it keeps last.ckpt);
    # the study then says what it kept (``engine.sweep.stopped_study``)
    raise Terminated(f"stopped by SIGTERM; {AGAIN}")


def sweep(args: argparse.Namespace) -> int:
    if args.run_timeout is not None:  # the bounds that every command's timeout shares
        with usage_errors(ValueError):
            check_timeout("--run-timeout", f"{args.run_timeout:g}", args.run_timeout)
    cores = usable_cores()  # each run trains a network: one core a run at the least
    if not 1 <= args.jobs <= cores:  # the machine's range, not only run_study's own bound
        unit = "core" if cores == 1 else "cores"
        raise UsageError(
            f"--jobs {args.jobs}: give 1 to {cores} (at most one run per CPU core; this machine "
            f"has {cores} CPU {unit} available)"
        )
    threads = max(1, cores // args.jobs) if args.jobs > 1 else None
    with signals.handler(signal.SIGTERM, _on_sigterm):
        try:
            result = run_study(
                args.cfg,
                split_groups(args.grid or []),
                seeds=args.seeds,
                out=args.out,
                overrides=args.overrides,
                runner=SubprocessRunner(args.ckpt, args.run_timeout, threads),
                measure=not args.no_measure,
                repeats=args.time_repeats,
                batch=args.bench_batch,
                command="octvideo " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "",
                jobs=args.jobs,
            )
        except KeyboardInterrupt as err:
            if isinstance(err, Interrupted):  # the study's line, saying what it kept
                raise
            raise Interrupted(f"stopped by Ctrl-C; {AGAIN}") from None
    print_last(*iter_rows(result.rows), f"study: {shown_path(result.files['md'].resolve())}")
    failed = sum(record.status == "failed" for record in result.records)
    if failed:  # the study is written, but not whole: a script must be able to tell
        print(  # noqa: T201
            f"octvideo sweep: {failed} of {len(result.records)} runs failed; the study names "
            "each one's reason",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a study over config values and tabulate accuracy against cost",
        description=(
            "Train and test every grid point x seed as an ordinary run in its own folder under "
            "--out, skipping finished runs (run the same command again to continue a stopped "
            "study), then write study.csv/json/md/png: accuracy (mean and spread over seeds) "
            "beside GFLOPs, parameters, saved activations and interleaved time ratios against "
            "the first point. Example: octvideo sweep --cfg oct_i3d_synth.yaml --grid "
            "model.alpha=0,0.125,0.25,0.5 --seeds 3 --out runs/study"
        ),
    )
    p.add_argument("--cfg", required=True, help=CFG_HELP)
    p.add_argument("--out", required=True, help="study folder")
    p.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2,...",
        help="a config key and its values (lists in brackets: model.octave=[1,2,2],[2,2,2]); "
        "several --grid make a product; the first point is the baseline",
    )
    p.add_argument(
        "--plus",
        dest="grid",
        action="append_const",
        const=None,
        help="start another group of --grid options: its points join the study's",
    )
    p.add_argument("--seeds", type=whole, default=1, help="runs per point")
    p.add_argument(
        "--ckpt",
        choices=CHECKPOINTS,
        default="last",
        help="checkpoint each run is tested with (last: the same budget for every point, no "
        "choice made on validation accuracy)",
    )
    p.add_argument(
        "--time-repeats",
        type=whole,
        default=10,
        help="interleaved timing rounds per network (0: no timing)",
    )
    p.add_argument("--bench-batch", type=whole, default=2, help="clips per timed training step")
    p.add_argument("--no-measure", action="store_true", help="no cost, memory or timing columns")
    p.add_argument(
        "--run-timeout",
        type=number,
        default=None,
        metavar="SECONDS",
        help=f"stop a train or test command that runs longer ({MIN_TIMEOUT:g} to "
        f"{MAX_TIMEOUT:g}, a day; recorded as failed; a rerun continues it from last.ckpt)",
    )
    p.add_argument(
        "--jobs",
        type=whole,
        default=1,
        help="runs side by side, the cores shared between them (small networks train faster "
        "as 2 runs of 1 thread than as 1 run of 2 threads)",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every run")
    p.set_defaults(func=sweep)
