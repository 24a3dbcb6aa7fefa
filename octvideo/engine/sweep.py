"""``octvideo sweep``: a study over config values, each point and seed an ordinary run, gathered
into one table and one figure of accuracy against cost (written by ``sweep_report``).

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049), Table 8 and its
accuracy-vs-GFLOPs figure: what a user keeps in accuracy and saves in compute, time and memory
when swapping a network for its octave version at a given alpha, measured on their own data.

    result = run_study("oct_i3d_synth.yaml", [[parse_grid("model.alpha=0,0.25,0.5")]],
                       seeds=3, out="runs/study")

Layout of ``out``::

    out/
      alpha-0/seed0/        an ordinary run folder (config.yaml, checkpoints/, test/summary.json)
      alpha-0/seed0/sweep.log     the run's output; sweep.json: its status, reason, wall time
      ...
      measured.json         cost, memory and interleaved times of every point (made once)
      study.csv  study.json  study.md  study.png

Each run is a fresh process (``octvideo train`` then ``octvideo test``), so a crash, a leak or a
hard kill of one run leaves the study going. A run is finished when its test summary exists;
starting the study again skips finished runs and continues unfinished ones from their
``last.ckpt`` (``--resume auto``). A point whose config is refused, or whose run fails, is
recorded with its one-line reason and the study goes on.

``plan.json`` records the resolved base config (the config file's content and the overrides),
the points and the checkpoint each run is tested on (``--ckpt``); a study started again in the
same ``out`` with another config, overrides or ``--ckpt``, or with a point whose folder an
earlier point of other settings holds, is refused: its finished runs are not this command's.
More or fewer points or seeds continue the study. A study has at most ``MAX_RUNS`` runs
(points x seeds), counted before the grid is expanded. A second sweep into an ``out`` that a
sweep is writing is refused before it writes (``paths.hold_folder``), as is a ``train`` into a
run folder whose run is going on.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import errno
import functools
import itertools
import json
import logging
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octvideo.config import (
    LIMITS,
    SECTIONS,
    RunConfig,
    canonical,
    flatten,
    load_config,
    parse_overrides,
    resolve_config_path,
    to_dict,
)
from octvideo.engine.sweep_report import METRICS, finite, write_study
from octvideo.errors import (
    ConfigError,
    Interrupted,
    OutputWriteError,
    RunFailed,
    RunStopped,
    UsageError,
    one_line,
)
from octvideo.measure.machine import machine
from octvideo.paths import (
    ReadFiles,
    check_output_file,
    check_outside_data,
    hold_folder,
    write_atomically,
    write_failure,
)

if TYPE_CHECKING:
    from octvideo.measure.steps import StepTimer

logger = logging.getLogger(__name__)

# keys the study sets itself on every run
RESERVED_KEYS = ("trainer.seed", "output.dir", "output.root", "output.name", "test.out_dir")
CHECKPOINTS = ("last", "best")
SUMMARY = Path("test") / "summary.json"
RECORD = "sweep.json"
LOG = "sweep.log"
AGAIN = "run the same command again to continue the study"
# a train stopped after its last step, its files written (``octvideo.engine.run._finished``)
TRAINED_THEN_STOPPED = re.compile(
    r"octvideo train: stopped by (SIGTERM|Ctrl-C) after the run finished at global step \d+, "
)
MEASURED = "measured.json"
# Bounds of the study's own counts, far beyond a real study (3-5 seeds, 10 timing rounds, batch
# 2, tens of runs): a typo is one line before the plan is written, not a 10^9-run plan or a week
# of timing. MAX_RUNS bounds points x seeds (the points counted before duplicates are dropped).
MAX_SEEDS = 1000
MAX_RUNS = 10_000
MAX_TIME_REPEATS = 1000
MAX_BENCH_BATCH = int(LIMITS["data.batch_size"][0])
MAX_JOBS = 1024  # runs side by side; the command bounds them by the machine's cores
MAX_RUN_TIMEOUT = 86_400.0  # seconds one train or test command may run: a day, as every duration


# ------------------------------------------------------------------------------------ the grid


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid KEY=V1,V2,...``: a config key and its values as override text."""

    key: str
    values: tuple[str, ...]


def split_values(text: str) -> list[str]:
    """``text`` split at commas outside brackets and quotes: ``0,[2,2,2],'a,b'`` gives three."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {ch!r}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ValueError("unbalanced brackets or quotes")
    items.append(text[start:])
    return [item.strip() for item in items]


def parse_grid(spec: str) -> GridAxis:
    """``KEY=V1,V2,...`` to a ``GridAxis``; lists in brackets (``model.octave=[1,2,2],[2,2,2]``).

    Raises:
        UsageError: no ``=``, an empty key or value, a reserved key, or a repeated value (also
            one written two ways, ``0,0.0``).
    """
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key or " " in key:
        raise UsageError(f"--grid {spec!r} is not KEY=V1,V2,... (e.g. model.alpha=0,0.25,0.5)")
    try:
        values = split_values(text)
    except ValueError as err:
        raise UsageError(f"--grid {spec!r}: {err} in the values") from None
    if any(not v for v in values):
        raise UsageError(
            f"--grid {spec!r} has an empty value; give values separated by single commas"
        )
    for v in values:
        reserved = _reserved_key(key, v)
        if reserved:
            raise UsageError(
                f"--grid {key}: the study sets {reserved} itself (seeds come from --seeds, "
                "folders from --out); grid over other keys"
            )
    repeated = sorted(v for v, n in collections.Counter(values).items() if n > 1)
    if repeated:
        raise UsageError(f"--grid {key} lists {', '.join(repeated)} more than once")
    spellings: dict[frozenset, list[str]] = collections.defaultdict(list)
    for v in values:
        spellings[frozenset(_sets(key, v).items())].append(v)
    for texts in spellings.values():
        if len(texts) > 1:  # 0 and 0.0: the runs would be the same
            raise UsageError(
                f"--grid {key} lists {' and '.join(texts)}, which are the same value; give it once"
            )
    return GridAxis(key, tuple(values))


def _sets(key: str, text: str) -> dict[str, Any]:
    """The config keys ``key=text`` sets, each to what it sets it to, read as ``load_config``
    applies the override: a mapping given for a section sets each key it names
    (``model={alpha: 0.5}`` sets ``model.alpha``, as ``model.alpha=0.5`` does); any other value,
    a mapping for ``model.extra`` included, sets ``key`` whole, and so everything under it.

    Each value is in a form that compares and hashes (``0`` and ``0.0`` are one value, ``true``
    and ``1`` are not); the text itself where it is no YAML value (its runs then fail with their
    reason)."""
    try:
        ((_, value),) = parse_overrides([f"{key}={text}"])
    except ConfigError:
        return {key: ("text", text)}
    sets: dict[str, Any] = {}

    def split(key: str, value: Any) -> None:
        if key in SECTIONS and isinstance(value, dict):
            for name, item in value.items():
                split(f"{key}.{name}", item)
        else:
            sets[key] = _comparable(value)

    split(key, value)
    return sets


def _reserved_key(key: str, text: str) -> str | None:
    """The first of ``RESERVED_KEYS`` that ``key=text`` sets (``trainer={seed: 3}`` sets
    ``trainer.seed``); None where it sets none."""
    return next((k for k in _sets(key, text) if k in RESERVED_KEYS), None)


def _overlap(a: Sequence[str], b: Sequence[str]) -> str | None:
    """A key that both key lists set: one key in both, or one under a key the other sets whole
    (``model.extra.width`` under ``model.extra``); None where they set apart."""
    for x in a:
        for y in b:
            if x == y or x.startswith(f"{y}."):
                return x
            if y.startswith(f"{x}."):
                return y
    return None


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1 in Python, not in a config
        return ("bool", value)
    if isinstance(value, float) and math.isnan(value):  # nan != nan
        return ("nan",)
    if isinstance(value, list):
        return ("list", tuple(_comparable(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((k, _comparable(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class Point:
    """One grid point: the (key, value text) pairs it sets, in grid order."""

    settings: tuple[tuple[str, str], ...]

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.settings]

    @property
    def label(self) -> str:
        """Short text for tables and the figure: ``alpha=0.25 octave=[2,2,2]``."""
        if not self.settings:
            return "config as given"
        return " ".join(f"{_short(k, self.settings)}={v}" for k, v in self.settings)

    @property
    def name(self) -> str:
        """A folder name made of the settings: ``alpha-0.25_octave-2-2-2``."""
        if not self.settings:
            return "base"
        parts = []
        for k, v in self.settings:
            value = re.sub(r"[^A-Za-z0-9.+-]+", "-", v).strip("-") or "x"
            parts.append(f"{_short(k, self.settings)}-{value}")
        return "_".join(parts)


def _short(key: str, settings: Sequence[tuple[str, str]]) -> str:
    """The key's last component, or the whole key where another key shares it."""
    leaf = key.rsplit(".", 1)[-1]
    same = [k for k, _ in settings if k.rsplit(".", 1)[-1] == leaf]
    return leaf if len(same) == 1 else key


def expand(groups: Sequence[Sequence[GridAxis]]) -> list[Point]:
    """The points of each group (the product of its axes), groups one after another, each point
    once. The first point is the study's baseline. A point that sets what an earlier one sets
    (the same keys to the same values, in any order or spelling: ``0`` and ``0.0``,
    ``model.alpha=0.5`` and ``model={alpha: 0.5}``) is that point, as it was first given.

    Raises:
        UsageError: two ``--grid`` of one group that set one key (``model.alpha`` and
            ``model={alpha: ...}``, ``model.extra.width`` and ``model.extra={...}``), or two
            points sharing a folder name.
    """
    points: dict[frozenset, Point] = {}  # by what each sets, in grid order, each once
    for axes in groups or [[]]:
        keys = [a.key for a in axes]
        sets = [{v: _sets(a.key, v) for v in a.values} for a in axes]
        sets_keys = [[k for s in by_value.values() for k in s] for by_value in sets]
        for (i, a), (j, b) in itertools.combinations(enumerate(axes), 2):
            both = _overlap(sets_keys[i], sets_keys[j])
            if both:
                raise UsageError(
                    f"--grid {a.key}={','.join(a.values)} and --grid {b.key}={','.join(b.values)} "
                    f"both set {both} in one group; give its values in one --grid, or start "
                    "another group with --plus"
                )
        for values in itertools.product(*(a.values for a in axes)):
            settings = tuple(zip(keys, values, strict=True))
            point_sets = frozenset(
                item
                for by_value, v in zip(sets, values, strict=True)
                for item in by_value[v].items()
            )
            points.setdefault(point_sets, Point(settings))
    names: dict[str, Point] = {}
    for p in points.values():
        if p.name in names:
            raise UsageError(
                f"grid points {names[p.name].label!r} and {p.label!r} would share the folder "
                f"{p.name} (a folder name keeps only the letters, digits and . + - of a value); "
                "give one of them a value that differs in those: for a file, a link to it or a "
                "copy of it under another name"
            )
        names[p.name] = p
    return list(points.values())


def count_runs(groups: Sequence[Sequence[GridAxis]], seeds: int) -> int:
    """Runs of a study: its points (each group's product of its axes' value counts, before the
    points that several groups share are dropped) x ``seeds``; counted, not expanded."""
    return sum(math.prod(len(a.values) for a in axes) for axes in groups or [[]]) * seeds


def split_groups(items: Sequence[str | None]) -> list[list[GridAxis]]:
    """``--grid`` specs with ``None`` where ``--plus`` starts another group."""
    groups: list[list[GridAxis]] = [[]]
    for item in items:
        if item is None:
            groups.append([])
        else:
            groups[-1].append(parse_grid(item))
    if len(groups) > 1 and any(not g for g in groups):
        raise UsageError("--plus needs --grid options on both sides")
    return groups


# ------------------------------------------------------------------------------------ the runs


def run_folder(out: Path, point: Point, seed: int) -> Path:
    return out / point.name / f"seed{seed}"


def is_finished(run_dir: Path) -> bool:
    """A run is finished when its multi-view test wrote its summary."""
    return (run_dir / SUMMARY).is_file()


Runner = Callable[[str, Sequence[str], Path], None]


def _cli_command(*args: str) -> list[str]:
    # the command stops (SIGTERM: a training run keeps last.ckpt) when the sweep ends, even of
    # SIGKILL: run on, unseen, it held its run folder against the restarted sweep. -P: no module
    # of the folder the sweep runs in (a grp.py) is imported in place of Python's own
    code = (
        f"import sys; from octvideo import signals; signals.end_with_parent({os.getpid()}); "
        "from octvideo.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-P", "-c", code, *args]


def _log_tail(run_dir: Path) -> list[str]:
    """The last lines of the run's output (``sweep.log``), none where it cannot be read."""
    try:
        return (run_dir / LOG).read_text(errors="replace").splitlines()[-40:]
    except OSError:
        return []


def _trained_then_stopped(log_tail: Sequence[str]) -> bool:
    """Whether the run's last command was a ``train`` that a stop ended after its last step, its
    files written, by its own last line (``TRAINED_THEN_STOPPED``): its training is done, and its
    test is what is left (``train --resume auto`` has nothing to train)."""
    lines = [ln.strip() for ln in log_tail if ln.strip()]
    return bool(lines) and TRAINED_THEN_STOPPED.match(lines[-1]) is not None


def _reason(log_tail: list[str], returncode: int) -> str:
    """One line saying why a command failed: its own one-line error where it printed one, else
    its last line (a traceback's exception), else its exit status."""
    lines = [ln.strip() for ln in log_tail if ln.strip()]
    for line in reversed(lines):
        if line.startswith("octvideo ") and (": error: " in line or ": stopped: " in line):
            return line
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        last = f": {lines[-1]}" if lines else ""
        return f"killed by {name}{last}"
    return lines[-1] if lines else f"exit status {returncode}"


class SubprocessRunner:
    """Runs one point and seed as ``octvideo train`` then ``octvideo test``, each its own process,
    their output appended to ``<run>/sweep.log``.

    Args:
        ckpt: which checkpoint is tested: "last" (every point gets the same training budget, no
            choice made on the validation set) or "best".
        timeout: seconds one command may run, above 0 and at most ``MAX_RUN_TIMEOUT`` (a day;
            None: no limit); a command past it is stopped.
        threads: intra-op threads of each command (``OMP_NUM_THREADS``); None: torch's default,
            one per core. Runs side by side (``run_points(jobs=...)``) share the cores this way.
    """

    def __init__(
        self, ckpt: str = "last", timeout: float | None = None, threads: int | None = None
    ) -> None:
        if ckpt not in CHECKPOINTS:
            raise UsageError(f"--ckpt {ckpt!r}: give {' or '.join(CHECKPOINTS)}")
        if timeout is not None:
            if (
                not isinstance(timeout, int | float)
                or isinstance(timeout, bool)
                or not 0 < timeout < math.inf
            ):
                raise UsageError(f"--run-timeout {timeout!r}: give a number of seconds above 0")
            if timeout > MAX_RUN_TIMEOUT:
                raise UsageError(
                    f"--run-timeout {timeout:g}: give at most {MAX_RUN_TIMEOUT:g} seconds (a day)"
                )
        if threads is not None and (
            not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
        ):
            raise ValueError(
                f"threads must be a whole number of 1 or more or None, got {threads!r}"
            )
        self.ckpt = ckpt
        self.timeout = timeout
        self.threads = threads
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def __call__(self, cfg: str, overrides: Sequence[str], run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self._run(
            run_dir,
            "train",
            "--cfg",
            cfg,
            "--out",
            str(run_dir),
            "--resume",
            "auto",
            "trainer.progress_bar=false",
            *overrides,
        )
        ckpt = run_dir / "checkpoints" / f"{self.ckpt}.ckpt"
        if not ckpt.is_file():
            raise RunFailed(f"training left no {ckpt.name} in {ckpt.parent}")
        self._run(
            run_dir,
            "test",
            "--cfg",
            str(run_dir / "config.yaml"),
            "--ckpt",
            str(ckpt),
            "--out",
            str(run_dir),
        )

    def _run(self, run_dir: Path, *args: str) -> None:
        log = run_dir / LOG
        try:  # appended to, never through a symbolic link (it would grow the file it points to)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise RunFailed(f"{log} is a symbolic link; remove it to run this point") from None
        with open(fd, "a") as fh:
            fh.write(f"\n$ octvideo {' '.join(args)}\n")
            fh.flush()
            env = (
                None
                if self.threads is None
                else {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
            )
            proc = subprocess.Popen(
                _cli_command(*args), stdout=fh, stderr=subprocess.STDOUT, env=env
            )
            with self._lock:
                self._live.add(proc)
                if self._stopped:  # started as the study was being stopped
                    proc.terminate()
            try:
                returncode = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                raise RunFailed(
                    f"octvideo {args[0]} ran past --run-timeout {self.timeout:g} s and was "
                    "stopped (its last.ckpt is kept: a rerun continues it)"
                ) from None
            finally:
                if proc.poll() is None:  # interrupted: the child keeps its checkpoint and ends
                    _stop(proc)
                with self._lock:
                    self._live.discard(proc)
        if returncode != 0:
            tail = _log_tail(run_dir)
            # stopped from outside the study after its training, its files written: it goes on
            if args[0] == "train" and not self._stopped and _trained_then_stopped(tail):
                logger.info("%s: stopped after its training had finished; testing it", run_dir)
                return
            raise RunFailed(_reason(tail, returncode))

    def stop_all(self) -> None:
        """Stops every command running now (from another thread: the study was told to stop)."""
        with self._lock:
            self._stopped = True
            live = list(self._live)
        for proc in live:
            if proc.poll() is None:
                proc.terminate()  # each run's own thread waits for it and escalates


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a training run writes last.ckpt first), then SIGKILL after a minute."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class RunRecord:
    """What the study knows of one run (``<run>/sweep.json``)."""

    point: str
    seed: int
    status: str  # "finished" | "failed"
    reason: str = ""
    wall_s: float | None = None  # train + test, summed over the attempts that ended


def _read_record(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def check_point(cfg: str, overrides: Sequence[str], point: Point) -> str:
    """'' when the point's config loads, else the config's one-line refusal."""
    try:
        load_config(cfg, [*overrides, *point.overrides])
    except ConfigError as err:
        return str(err)
    return ""


def _triage(
    cfg: str, points: Sequence[Point], seeds: Sequence[int], out: Path, overrides: Sequence[str]
) -> tuple[list[RunRecord | None], list[tuple[int, int, Point]]]:
    """Every run in study order (seed by seed): the record of each finished run (skipped) and
    each refused point (recorded), None in the slot of each run to do; and the runs to do as
    (slot, seed, point)."""
    refused = {p: check_point(cfg, overrides, p) for p in points}
    records: list[RunRecord | None] = []
    todo: list[tuple[int, int, Point]] = []
    for seed in seeds:
        for point in points:
            run_dir = run_folder(out, point, seed)
            what = f"[{point.label}, seed {seed}]"
            if is_finished(run_dir):
                logger.info("%s finished before: skipped (%s)", what, run_dir)
                wall = _read_record(run_dir).get("wall_s")
                records.append(RunRecord(point.name, seed, "finished", wall_s=wall))
            elif refused[point]:
                logger.warning("%s refused: %s", what, refused[point])
                record = RunRecord(point.name, seed, "failed", refused[point])
                run_dir.mkdir(parents=True, exist_ok=True)
                _write_json(run_dir / RECORD, dataclasses.asdict(record))
                records.append(record)
            else:
                todo.append((len(records), seed, point))
                records.append(None)
    return records, todo


def _run_one(
    slot: int,
    seed: int,
    point: Point,
    *,
    runner: Runner,
    cfg: str,
    overrides: Sequence[str],
    out: Path,
    runs: int,
    clock: Callable[[], float],
    stopping: threading.Event,
) -> RunRecord | None:
    """Runs one point and seed (run ``slot + 1`` of ``runs``) and writes its record; None, and
    no record, where ``stopping`` was set meanwhile (stopped from outside: not its result)."""
    run_dir = run_folder(out, point, seed)
    what = f"[{point.label}, seed {seed}]"
    previous = _read_record(run_dir)
    logger.info("%s run %d of %d: %s", what, slot + 1, runs, run_dir)
    start = clock()
    reason = ""
    try:
        runner(cfg, [*overrides, *point.overrides, f"trainer.seed={seed}"], run_dir)
    except RunFailed as err:
        reason = str(err) or "failed"
    if stopping.is_set():
        return None
    wall = clock() - start + (previous.get("wall_s") or 0.0)
    if not reason and not is_finished(run_dir):
        reason = f"the run ended without a test summary ({run_dir / SUMMARY})"
    record = RunRecord(point.name, seed, "failed" if reason else "finished", reason, wall)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / RECORD, dataclasses.asdict(record))
    if reason:
        logger.warning("%s failed: %s", what, reason)
    return record


def run_points(
    cfg: str,
    points: Sequence[Point],
    seeds: Sequence[int],
    out: Path,
    overrides: Sequence[str] = (),
    *,
    runner: Runner | None = None,
    clock: Callable[[], float] = time.monotonic,
    jobs: int = 1,
) -> list[RunRecord]:
    """Runs every point and seed not finished yet, seed by seed (every point's first seed before
    any second seed, so a study stopped early still has a whole first row); a point whose config
    is refused, or whose run fails, is recorded with its reason and the others go on.

    With ``jobs`` above 1, that many runs go side by side (in this order), each in its own
    thread waiting on its commands; give the runner ``threads`` so that they share the cores.
    Stopped (SIGTERM, Ctrl-C), the study stops every running command and records none of them.
    """
    runner = runner or SubprocessRunner()
    records, todo = _triage(cfg, points, seeds, out, overrides)
    stopping = threading.Event()
    one = functools.partial(
        _run_one,
        runner=runner,
        cfg=cfg,
        overrides=overrides,
        out=out,
        runs=len(records),
        clock=clock,
        stopping=stopping,
    )
    live: dict[int, tuple[int, Point]] = {}  # the runs under way, and those a stop ended

    def tracked(slot: int, seed: int, point: Point) -> RunRecord | None:
        live[slot] = (seed, point)
        record = one(slot, seed, point)
        if record is not None:  # None: stopped from outside, as the study was
            del live[slot]
        return record

    try:
        if jobs <= 1:
            for slot, seed, point in todo:
                records[slot] = tracked(slot, seed, point)
        else:
            _run_side_by_side(tracked, todo, records, jobs, stopping, runner)
    except KeyboardInterrupt as err:  # every command under way has ended, keeping last.ckpt
        raise stopped_study(err, out, points, seeds, [live[k] for k in sorted(live)]) from None
    return [r for r in records if r is not None]


def _run_side_by_side(
    run: Callable[[int, int, Point], RunRecord | None],
    todo: Sequence[tuple[int, int, Point]],
    records: list[RunRecord | None],
    jobs: int,
    stopping: threading.Event,
    runner: Runner,
) -> None:
    """Runs each ``(slot, seed, point)`` of ``todo`` with ``run``, ``jobs`` at a time in threads,
    its record into ``records[slot]``. Whatever stops this (Ctrl-C, SIGTERM, an error) sets
    ``stopping``, cancels the runs not started and stops the runner's commands under way
    (``SubprocessRunner.stop_all``) before it goes on up."""
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep-run") as pool:
        futures: dict[Future, int] = {}
        try:
            for slot, seed, point in todo:
                futures[pool.submit(run, slot, seed, point)] = slot
            pending = set(futures)
            while pending:
                # short waits: a signal that lands on a run's thread is handled in this (the
                # main) thread only when it runs Python code again
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    records[futures[future]] = future.result()
        except BaseException:
            stopping.set()
            for future in futures:
                future.cancel()
            stop_all = getattr(runner, "stop_all", None)
            if stop_all is not None:
                stop_all()
            raise


def stopped_study(
    err: KeyboardInterrupt,
    out: Path,
    points: Sequence[Point],
    seeds: Sequence[int],
    stopped: Sequence[tuple[int, Point]],
    doing: str = "",
) -> Interrupted:
    """The line of a study that Ctrl-C or SIGTERM (``err``) stopped, once its commands have
    ended: the runs finished (kept: the next start skips them), each run ``stopped`` (seed,
    point) with its last checkpoint, or as trained where the stop came after its last training
    step (the next start tests it), and how to continue; ``doing`` follows the cause
    (``" while measuring the points"``).

    Returns:
        ``Terminated`` for SIGTERM, else ``Interrupted``: "stopped by Ctrl-C; 1 of 2 runs
        finished and kept; [alpha=0.25, seed 0] stopped: R/checkpoints/last.ckpt (global step
        3) is kept; run the same command again to continue the study".
    """
    from octvideo.engine.checkpoint import last_good  # imports torch: only on a stop

    kind = type(err) if isinstance(err, Interrupted) else Interrupted
    runs = [run_folder(out, point, seed) for seed in seeds for point in points]
    finished = sum(is_finished(run_dir) for run_dir in runs)
    parts = [f"stopped by {kind.cause}{doing}", f"{finished} of {len(runs)} runs finished and kept"]
    for seed, point in stopped:
        run_dir = run_folder(out, point, seed)
        if not is_finished(run_dir):  # else its test ended as the stop came
            last = last_good(run_dir / "checkpoints" / "last.ckpt")
            done = "trained, its test not run" if _trained_then_stopped(_log_tail(run_dir)) else ""
            parts.append(f"[{point.label}, seed {seed}] {done or 'stopped'}: {last}")
    return kind("; ".join([*parts, AGAIN]))


# --------------------------------------------------------------------------------- measurement


@dataclass
class Measured:
    """One point's cost, measured once per study (not per seed)."""

    gflops: float | None = None  # per test view, convolutions + classifier (the paper's count)
    params: int | None = None
    saved_mib_per_clip: float | None = None  # activations saved for backward in a training step
    infer_ms: float | None = None
    infer_ratio: float | None = None  # per-round ratios against the baseline point
    infer_ratio_min: float | None = None
    infer_ratio_max: float | None = None
    train_ms: float | None = None
    train_ratio: float | None = None
    train_ratio_min: float | None = None
    train_ratio_max: float | None = None
    error: str = ""


def measure_points(
    cfg: str,
    points: Sequence[Point],
    overrides: Sequence[str] = (),
    *,
    repeats: int = 10,
    batch: int = 2,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[str, Measured]:
    """Cost of each point's network: GFLOPs of one test view, parameters, activations a training
    step saves (per clip, at ``batch`` training clips), and inference (one test view) and
    training-step (``batch`` clips) times measured interleaved in this one process, as per-round
    ratios against the first point (``repeats`` rounds; 0 skips the timing)."""
    results: dict[str, Measured] = {}
    timers: dict[str, StepTimer] = {}
    for point in points:
        m = results[point.name] = Measured()
        try:
            timers[point.name] = _measure_point(cfg, [*overrides, *point.overrides], batch, m)
        except (ConfigError, ValueError, TypeError, RuntimeError) as err:
            m.error = one_line(err)
            logger.warning("[%s] not measured: %s", point.label, m.error)
    base = points[0].name if points else ""
    if repeats and base in timers:
        _time_points(timers, results, repeats, timer)
    elif repeats:
        logger.warning("the baseline point could not be built: no time ratios")
    return results


def _measure_point(cfg: str, overrides: Sequence[str], batch: int, m: Measured) -> StepTimer:
    """Builds the network of ``cfg`` with ``overrides`` and fills ``m`` with its GFLOPs of one
    test view, its parameters and the activations a training step saves per clip (at ``batch``
    clips); returns the timer of its inference and training step, on the config's device."""
    import torch

    from octvideo.engine.build import build_model, on_gpu
    from octvideo.measure.steps import StepTimer
    from octvideo.models.cost import clip_cost, example_input
    from octvideo.ops import memory_format_for

    run_cfg = load_config(cfg, overrides)
    torch.manual_seed(0)
    model = build_model(run_cfg.model, pretrained=False)
    d = run_cfg.data
    cost = clip_cost(model, example_input(model, d.slow_frames, d.test_crop_size))
    m.gflops, m.params = cost.gflops, cost.params
    gpu = on_gpu(run_cfg.trainer.accelerator) and torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    step_timer = StepTimer(
        model,
        example_input(model, d.slow_frames, d.test_crop_size, fill=torch.randn),
        example_input(model, d.slow_frames, d.train_crop_size, batch, torch.randn),
        memory_format=memory_format_for(device, run_cfg.trainer.memory_format),
        device=device,
    )
    m.saved_mib_per_clip = step_timer.saved_bytes() / 2**20 / batch
    return step_timer


def _time_points(
    timers: dict[str, StepTimer],
    results: dict[str, Measured],
    repeats: int,
    timer: Callable[[], float],
) -> None:
    """Times every network of ``timers`` (the baseline first) interleaved, ``repeats`` rounds,
    and fills each one's ``results`` with its median times and per-round ratios to the
    baseline."""
    from octvideo.measure.timing import ratio_stats, time_interleaved

    names = list(timers)
    logger.info("timing %d networks, %d interleaved rounds", len(names), repeats)
    runs = [timers[n] for n in names]
    infer = ratio_stats(time_interleaved([r.infer for r in runs], repeats=repeats, timer=timer), 0)
    train = ratio_stats(
        time_interleaved([r.train_step for r in runs], repeats=repeats, timer=timer), 0
    )
    for n, i, t in zip(names, infer, train, strict=True):
        m = results[n]
        m.infer_ms, m.train_ms = i.median_s * 1e3, t.median_s * 1e3
        m.infer_ratio, m.infer_ratio_min, m.infer_ratio_max = i.ratio, i.ratio_min, i.ratio_max
        m.train_ratio, m.train_ratio_min, m.train_ratio_max = t.ratio, t.ratio_min, t.ratio_max


# ------------------------------------------------------------------------------------ the table


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, sample standard deviation (None for one value), min and max."""
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }


def collect(
    out: Path, points: Sequence[Point], seeds: Sequence[int], measured: dict[str, Measured]
) -> list[dict[str, Any]]:
    """One row per point from the run folders: accuracies over the finished seeds (mean, sample
    std, min, max), the measured cost, wall time, and the status with the first failure's
    reason; ``sweep_report`` turns the rows into the study's table and figure."""
    rows = []
    for index, point in enumerate(points):
        values: dict[str, list[float]] = {k: [] for k in METRICS}
        walls, failures, finished = [], [], 0
        for seed in seeds:
            run_dir = run_folder(out, point, seed)
            record = _read_record(run_dir)
            if is_finished(run_dir):
                finished += 1
                summary = json.loads((run_dir / SUMMARY).read_text())
                for k in METRICS:
                    v = (summary.get("metrics") or {}).get(k)
                    if v is not None:
                        values[k].append(float(v))
                if record.get("wall_s") is not None:
                    walls.append(float(record["wall_s"]))
            elif record.get("status") == "failed":
                failures.append(f"seed {seed}: {record.get('reason', '')}")
        if finished == len(seeds):
            status = "ok"
        elif failures:
            status = "failed" if not finished else f"{finished}/{len(seeds)} seeds"
            status += f": {failures[0]}"
        else:
            status = f"{finished}/{len(seeds)} seeds (not run yet)"
        m = measured.get(point.name, Measured())
        row: dict[str, Any] = {
            "point": point.label,
            "folder": point.name,
            "baseline": index == 0,
            "settings": dict(point.settings),
            "status": status,
            "seeds_finished": finished,
        }
        for k in METRICS:
            for stat, v in _spread(values[k]).items():
                row[f"{k}_{stat}"] = v
        row.update({k: v for k, v in dataclasses.asdict(m).items() if k != "error"})
        row["measure_error"] = m.error
        row["wall_s_mean"] = statistics.fmean(walls) if walls else None
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- the study


@dataclass
class StudyResult:
    out: Path
    rows: list[dict[str, Any]]
    files: dict[str, Path]
    records: list[RunRecord] = field(default_factory=list)


def _check_base(
    cfg: str, overrides: Sequence[str], groups: Sequence[Sequence[GridAxis]]
) -> RunConfig:
    """The config and overrides must load (returned), and each grid axis must have a value that
    loads.

    Raises:
        UsageError: the base config is refused, an override sets a reserved key, or every value
            of an axis is refused (a misspelt key): the refusal of its first value.
    """
    for item in overrides:
        key, _, text = item.partition("=")
        reserved = _reserved_key(key.strip(), text)
        if reserved:
            raise UsageError(
                f"override {key.strip()}: the study sets {reserved} itself (seeds from "
                "--seeds, folders from --out)"
            )
    base = load_config(cfg, overrides)  # a ConfigError is a UsageError: one line
    for axis in (a for g in groups for a in g):
        reasons = []
        for value in axis.values:
            try:
                load_config(cfg, [*overrides, f"{axis.key}={value}"])
                break
            except ConfigError as err:
                reasons.append(str(err))
        else:
            raise UsageError(f"--grid {axis.key}: every value is refused; {reasons[0]}")
    return base


PLAN = "plan.json"
STUDY_FILES = (PLAN, MEASURED, "study.csv", "study.json", "study.md", "study.png")


def _plan_differences(stored: dict[str, Any], plan: dict[str, Any]) -> tuple[list[str], bool]:
    """What makes the runs of ``stored`` (an earlier plan.json) others than ``plan``'s, and
    whether the checkpoint they were tested on is one of those things: settings of the resolved
    base config (the config file's content and the overrides; its ``name`` is only a label), the
    checkpoint (not compared where a plan names none: its runner tests no named checkpoint), or
    a run folder that another point's settings would share. More or fewer points or seeds are
    the same study grown or cut."""
    there = dict(flatten(canonical(stored["base"])))  # as written then, in today's spelling
    here = dict(flatten(json.loads(json.dumps(plan["base"]))))
    keys = [k for k in dict.fromkeys([*there, *here]) if k != "name"]
    differ = [
        f"{k}={_as_text(there.get(k))} there, {_as_text(here.get(k))} here"
        for k in keys
        if there.get(k) != here.get(k)
    ]
    there_ckpt, here_ckpt = stored.get("ckpt"), plan.get("ckpt")
    other_ckpt = there_ckpt is not None and here_ckpt is not None and there_ckpt != here_ckpt
    if other_ckpt:
        differ.insert(0, f"runs tested with --ckpt {_as_text(there_ckpt)} there, {here_ckpt} here")
    ours = {p.name: p for p in map(_point_of, plan["points"])}
    for point in map(_point_of, stored.get("points") or []):
        other = ours.get(point.name)
        if other is not None and other != point:
            differ.append(
                f"folder {point.name} holds {' '.join(point.overrides)} there, "
                f"{' '.join(other.overrides)} here"
            )
    return differ, other_ckpt


def _point_of(overrides: Sequence[str]) -> Point:
    """The point a plan's ``key=value`` list stands for."""
    return Point(tuple((k, v) for k, _, v in (str(o).partition("=") for o in overrides)))


def _as_text(value: Any) -> str:
    """A plan's value as a message shows it: text as it is, anything else as compact JSON."""
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else value


def check_study_files(out: Path, cfg_file: Path) -> None:
    """Refuses, before the first run, a study file in ``out`` that would be written through a
    symbolic link (over the file it points to), over the ``--cfg`` file, or over a folder: the
    study's table is written only after all its runs. A study file in an ``out`` without a
    ``plan.json``, which a study writes before any other, is another's (a ``study.md`` of
    notes) and is refused too, rather than replaced.

    Raises:
        UsageError: names the file and what it is.
    """
    reads = ReadFiles([("--cfg", cfg_file)])
    for path in (out / name for name in STUDY_FILES):
        check_output_file("the study's file", path, reads, folder=False)
    if (out / PLAN).exists():  # an earlier study's: check_same_study refuses another's plan
        return
    # a study writes its plan.json before any other file: these are none of a study's
    for path in (out / name for name in STUDY_FILES):
        if os.path.lexists(path):
            raise UsageError(
                f"--out {out} holds {path.name}, which the study would replace, but no "
                f"{PLAN}, which a study writes first: it is not an earlier study's; move it "
                "away, or choose another --out (nothing was changed)"
            )


def check_same_study(out: Path, plan: dict[str, Any]) -> None:
    """Refuses to continue a study in ``out`` whose plan.json says its runs are of another config
    or overrides, or were tested on another checkpoint (their results would be tabulated under
    this command); the same study, or one with more or fewer points or seeds, continues.

    Raises:
        UsageError: names the first differences and the way out.
    """
    path = out / PLAN
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict) or not isinstance(stored.get("base"), dict):
            raise ValueError("no resolved base config")
    except OSError as err:
        raise UsageError(
            f"--out {out}: its {PLAN} cannot be read ({err.strerror or err}); choose another --out"
        ) from err
    except ValueError as err:
        raise UsageError(
            f"--out {out}: its {PLAN} is not a study's plan ({err}); choose another --out"
        ) from err
    differ, other_ckpt = _plan_differences(stored, plan)
    if differ:
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        given = "config, overrides and --ckpt" if other_ckpt else "config and overrides"
        raise UsageError(
            f"--out {out} holds a study of other runs ({'; '.join(differ[:3])}{more}); choose "
            f"another --out, or continue it with the {given} of its {PLAN}"
        )


def run_study(
    cfg: str,
    groups: Sequence[Sequence[GridAxis]],
    *,
    seeds: int,
    out: str | Path,
    overrides: Sequence[str] = (),
    runner: Runner | None = None,
    measure: bool = True,
    repeats: int = 10,
    batch: int = 2,
    clock: Callable[[], float] = time.monotonic,
    timer: Callable[[], float] = time.perf_counter,
    command: str = "",
    jobs: int = 1,
) -> StudyResult:
    """Runs (or continues) a study and writes its table and figure.

    Args:
        cfg: config path or shipped name every run starts from.
        groups: grid groups: each the product of its axes; the groups' points are joined.
        seeds: runs per point, with ``trainer.seed`` 0, 1, ...
        out: the study folder.
        overrides: ``key=value`` applied to every run before the point's own.
        runner: runs one point and seed (default: ``SubprocessRunner()``).
        measure: measure cost, memory and times of each point (``measured.json``, made once and
            reused while the points are the same).
        repeats: interleaved timing rounds (0: cost and memory only).
        batch: training clips per timed step.
        clock: wall clock of the runs; timer: clock of the timed calls (tests inject both).
        command: the command line, written into the table.
        jobs: runs side by side (see ``run_points``).

    Raises:
        UsageError: a bad grid or config (see ``_check_base``), ``seeds``, ``repeats``,
            ``batch`` or ``jobs`` not a whole number within its bound (``MAX_SEEDS``, ...), an
            unwritable ``out``, or an ``out`` another sweep is writing ("--out OUT is in use by
            octvideo sweep (pid N); ..."); all before anything is written.
        RunStopped: a run's folder or record, or the measurements, cannot be written (a full
            disk); the runs that finished are kept for the next start.
    """
    _check_counts(seeds=seeds, repeats=repeats, batch=batch, jobs=jobs)
    runs = count_runs(groups, seeds)
    if runs > MAX_RUNS:  # before the grid is expanded and each of its points loaded
        raise UsageError(
            f"--grid and --seeds make {runs} runs ({runs // seeds} points x {seeds} seed(s)), "
            f"more than {MAX_RUNS}; give fewer values, or split the study over several --out"
        )
    out = Path(out)
    base = _check_base(cfg, overrides, groups)
    # imports Lightning: once the grid is read
    from octvideo.engine.run import check_run_text, data_folders

    check_run_text(base, out)  # every run would be refused, after the study's files are made
    check_outside_data("--out", out, data_folders(base), "choose another --out")
    points = expand(groups)
    check_study_files(out, resolve_config_path(cfg))
    runner = runner or SubprocessRunner()
    plan = _plan(cfg, overrides, base, points, seeds, runner)
    # the only sweep writing out: another would run the same points into the same run folders
    with hold_folder(out, "sweep", name=f"--out {out}", advice="choose another --out"):
        check_same_study(out, plan)
        try:
            _write_json(out / PLAN, plan)
        except (OSError, OutputWriteError) as err:
            raise UsageError(f"--out {out}: cannot write there ({write_failure(err)})") from err
        seed_list = list(range(seeds))
        try:
            records = run_points(
                str(cfg), points, seed_list, out, overrides, runner=runner, clock=clock, jobs=jobs
            )
            measured: dict[str, Measured] = {}
            taken: dict[str, str | None] = {}
            if measure:
                try:
                    measured, taken = _measured(
                        out, str(cfg), points, overrides, repeats, batch, timer
                    )
                except KeyboardInterrupt as err:
                    doing = " while measuring the points"
                    raise stopped_study(err, out, points, seed_list, [], doing) from None
        except OSError as err:  # the study's own folders and records (a full disk)
            where = f" {err.filename}" if err.filename else f" in {out}"
            raise RunStopped(
                f"cannot write{where} ({write_failure(err)}); the finished runs are kept: free "
                "space and run the same command again to continue"
            ) from err
        rows = collect(out, points, seed_list, measured)
        timing = {"repeats": repeats, "train_batch": batch, **taken} if measure else None
        meta = _study_meta(cfg, overrides, seeds, out, command, jobs, timing)
        files = write_study(out, rows, meta)
        return StudyResult(out, rows, files, records)


def _check_counts(*, seeds: int, repeats: int, batch: int, jobs: int) -> None:
    """Refuses a count of ``run_study`` that is not a whole number within its bound.

    Raises:
        UsageError: "--seeds 0: give 1 to 1000", naming the option.
    """
    for option, value, low, high in (
        ("--seeds", seeds, 1, MAX_SEEDS),
        ("--time-repeats", repeats, 0, MAX_TIME_REPEATS),
        ("--bench-batch", batch, 1, MAX_BENCH_BATCH),
        ("--jobs", jobs, 1, MAX_JOBS),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise UsageError(f"{option} {value!r}: give {low} to {high}")


def _plan(
    cfg: str | Path,
    overrides: Sequence[str],
    base: RunConfig,
    points: Sequence[Point],
    seeds: int,
    runner: Runner,
) -> dict[str, Any]:
    """What ``plan.json`` records of the study (``check_same_study`` compares it): the resolved
    base config, the points, the seeds and the checkpoint the runner tests."""
    plan = {
        "config": str(cfg),
        "overrides": list(overrides),
        "base": to_dict(base),
        "points": [p.overrides for p in points],
        "seeds": seeds,
    }
    tested = getattr(runner, "ckpt", None)  # a runner that tests no named checkpoint records none
    if tested is not None:
        plan["ckpt"] = tested
    return plan


def _study_meta(
    cfg: str | Path,
    overrides: Sequence[str],
    seeds: int,
    out: Path,
    command: str,
    jobs: int,
    timing: dict[str, Any] | None,
) -> dict[str, Any]:
    """How the study was made, for the head of its table: the command, the date and machine
    the table was written on, the timing settings with the date and machine the timings were
    taken on (None: not measured) and what the spread columns mean."""
    return {
        "config": str(cfg),
        "overrides": list(overrides),
        "seeds": seeds,
        "command": command or f"octvideo sweep --cfg {cfg} --out {out}",
        "date": _now(),
        "machine": machine(threads=True),
        "jobs": jobs,
        "timing": timing,
        "spread": "std: sample standard deviation over seeds; min/max: over seeds; time "
        "ratios: median and range of per-round ratios against the baseline point",
    }


def _measured(
    out: Path,
    cfg: str,
    points: Sequence[Point],
    overrides: Sequence[str],
    repeats: int,
    batch: int,
    timer: Callable[[], float],
) -> tuple[dict[str, Measured], dict[str, str | None]]:
    """``measured.json`` when it holds these points at these settings, else a new measurement;
    with the ``date`` and ``machine`` the measurement was taken on (None: a measured.json of an
    older octvideo, which did not record them)."""
    key = {
        "points": [p.overrides for p in points],
        "overrides": list(overrides),
        "repeats": repeats,
        "batch": batch,
    }
    path = out / MEASURED
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            taken = {k: stored.get(k) for k in ("date", "machine")}
            taken = {k: v if isinstance(v, str) else None for k, v in taken.items()}
            return {n: Measured(**m) for n, m in stored["points"].items()}, taken
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # not ours: measured again
        pass
    taken = {"date": _now(), "machine": machine(threads=True)}  # the timings' own, kept with them
    measured = measure_points(cfg, points, overrides, repeats=repeats, batch=batch, timer=timer)
    data = {
        n: {k: finite(v) for k, v in dataclasses.asdict(m).items()} for n, m in measured.items()
    }
    _write_json(path, {"key": key, **taken, "points": data})
    return measured, taken


def _now() -> str:
    """The date and time in UTC, to the minute, as the table's head gives it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
