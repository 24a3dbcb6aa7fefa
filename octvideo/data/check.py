"""``octvideo data check``: decode every listed video in worker processes that may crash.

Decoders are C code; a corrupt file can make one segfault or hang. Each video is decoded, every
frame in chunks, by a long-lived worker process; the parent watches them. A worker that dies while
decoding a video (signal or exit) marks that video bad with its exit code and is replaced; a video
that takes longer than ``timeout`` seconds marks it bad and its worker is killed and replaced. So a
bad file can only take down its own worker, never the check.

The result lists every bad file with its error, and is written as ``path<TAB>error`` lines.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from octvideo.data.annotations import load_annotations

logger = logging.getLogger(__name__)

CHUNK = 64  # frames decoded per call, to bound memory on long videos


@dataclass
class CheckReport:
    """Outcome of a check."""

    total: int  # videos listed (with a file, for Kinetics CSVs)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    missing_rows: int = 0  # Kinetics CSV rows without a file

    @property
    def ok(self) -> int:
        """Videos that decoded completely."""
        return self.total - len(self.bad)


def check_one(path: str, decoder: str) -> str:
    """Decode every frame of one video; return "" if it is fine, else the error."""
    from octvideo.data.decoding import decode_clip, probe

    try:
        info = probe(path, decoder=decoder)
        for start in range(0, info.num_frames, CHUNK):
            chunk = np.arange(start, min(start + CHUNK, info.num_frames))
            decode_clip(path, lambda _, c=chunk: c, decoder=decoder)
    except Exception as err:  # any failure is the finding being reported, not swallowed
        return f"{type(err).__name__}: {err}"
    return ""


def _worker(tasks: mp.Queue, results: mp.Queue, current: Any, decoder: str) -> None:
    while True:
        task = tasks.get()
        if task is None:
            return
        index, path = task
        # Shared memory, written before decoding: it survives a crash (a queue message might not).
        with current.get_lock():
            current[0], current[1] = index, time.monotonic()
        results.put((index, check_one(path, decoder)))


class _Pool:
    """Worker processes fed from one queue, replaceable one at a time."""

    def __init__(self, size: int, decoder: str) -> None:
        # fork: workers inherit the imported modules (spawn would re-import torch per worker)
        self.ctx = mp.get_context("fork")
        self.tasks = self.ctx.Queue()
        self.results = self.ctx.Queue()
        self.decoder = decoder
        self.procs: dict[int, tuple[mp.Process, Any]] = {}  # pid -> (process, [index, started])
        for _ in range(size):
            self.spawn()

    def spawn(self) -> None:
        current = self.ctx.Array("d", [-1.0, 0.0])
        proc = self.ctx.Process(
            target=_worker, args=(self.tasks, self.results, current, self.decoder)
        )
        proc.start()
        self.procs[proc.pid] = (proc, current)

    def close(self) -> None:
        for _ in self.procs:
            self.tasks.put(None)
        for proc, _ in self.procs.values():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()


def check_videos(
    annotations: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    fmt: str = "auto",
    out: str | os.PathLike[str] | None = None,
    workers: int = 2,
    decoder: str = "auto",
    timeout: float = 300.0,
    progress: bool = True,
) -> CheckReport:
    """Decode every video of an annotation file, each in an isolated worker process.

    Args:
        annotations: a lines file, Kinetics CSV or class-folder root.
        root: where relative paths are resolved (default: the annotation's folder).
        fmt: annotation format (``"auto"`` detects it).
        out: file to write the bad videos to (``path<TAB>error`` lines); None writes nothing.
        workers: decoding processes.
        decoder: ``"decord"``, ``"pyav"`` or ``"auto"``.
        timeout: seconds one video may take before it is declared bad.
        progress: show a progress bar.

    Returns:
        The report: total, bad files with errors, Kinetics rows without a file.
    """
    found = load_annotations(annotations, root=root, fmt=fmt)
    paths = [r.path for r in found.records]
    errors: dict[int, str] = {}
    pool = _Pool(max(1, min(workers, len(paths) or 1)), decoder)
    pending = set(range(len(paths)))
    for index, path in enumerate(paths):
        pool.tasks.put((index, path))
    bar = tqdm(total=len(paths), desc="check", unit="video", disable=not progress)

    def finish(index: int, error: str) -> None:
        if index in pending:
            pending.discard(index)
            if error:
                errors[index] = error
            bar.update()

    try:
        while pending:
            with contextlib.suppress(queue.Empty):  # nothing finished in this slice: poll workers
                finish(*pool.results.get(timeout=0.2))
            for pid, (proc, current) in list(pool.procs.items()):
                with current.get_lock():
                    index, started = int(current[0]), current[1]
                busy = index >= 0 and index in pending
                overdue = busy and time.monotonic() - started > timeout
                if proc.is_alive() and not overdue:
                    continue
                if overdue:
                    proc.kill()
                proc.join()
                del pool.procs[pid]
                if busy:
                    finish(
                        index,
                        f"timed out after {timeout:.0f} s"
                        if overdue
                        else f"decoder process died (exit code {proc.exitcode})",
                    )
                pool.spawn()
    finally:
        bar.close()
        pool.close()
    report = CheckReport(
        total=len(paths),
        bad=[(paths[i], errors[i]) for i in sorted(errors)],
        missing_rows=found.missing,
    )
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("".join(f"{p}\t{e}\n" for p, e in report.bad))
    logger.info(
        "%d of %d videos decode; %d bad%s",
        report.ok,
        report.total,
        len(report.bad),
        f" (listed in {out})" if out else "",
    )
    return report
