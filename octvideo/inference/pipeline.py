"""Prediction over many inputs at the model's speed: decoding in worker processes ahead of the
model, clips of several videos in one forward pass, and inputs that fail or hang alone.

Dataflow (``workers`` >= 1; with ``workers=0`` the readers run in this process, one input after
the other, and everything below the pipes is the same)::

    input paths ──> worker 1: open, plan, decode + transform a chunk of clips ─┐ (pipe; one
               └──> worker 2: ...                                             │ reader thread
                                                                              v per worker)
    model side (this process), inputs in order:  events of input i ──> batcher ──> forward
      "open" (frames, fps, windows), "clips" (views), an end (ENDS)     batch_size views a pass

The model side takes the inputs' events in input order and puts their views, in that order, into
forward passes of exactly ``batch_size`` views (the last one shorter), so a pass can hold the clips
of several short videos. The passes, and with them every probability, are the same whether the
views were decoded in workers or in this process: the model runs here either way, and a forward
pass's result depends on what else is in the batch (a few ulps), so the batches are the same too.
A result is handed out once all its views have been through the model, in input order.

Workers start from octvideo's fork server (``octvideo.data.workers``), never as forks of the
calling process, which may hold decoders mid-use (a forked decord reader can hang as it closes).
What a worker runs is taken when the pool starts and travels pickled: ``read_input`` and
``keep_freed_memory`` by reference, as this module holds them then (a caller or a test may have put
its own in their place), and the predictor without its network, which stays in this process.
Each worker sets its own niceness (the caller's plus ``worker_nice``), one torch thread and one
FFmpeg thread, and leaves Ctrl-C to the parent.

Workers decode one input at a time, chunk after chunk; each is given the next input as soon as it
has sent the end of the one before, whatever the model side is doing (a forward pass, say). A
chunk comes as its size first, then its views; a reader thread per worker takes the views once
``ReadAhead`` leaves room for them, which keeps the workers about two forward passes ahead of the
model side and bounds the decoded views in memory.

Faults stay with their input: an exception while reading an input is that input's error; a
worker that sends nothing for ``timeout`` seconds while it has work (opening and indexing a
file, or decoding one chunk of clips) is killed and its input fails with a timeout; a worker that
dies (a decoder's segfault) fails its input. Either way a fresh worker takes the next input. With
``workers=0`` a hanging decoder hangs the run: only a separate process can be stopped. A failed
input is its result's ``error``, logged only at DEBUG level: the caller reports it (``predict``
prints one line for it). A decoder out of open files (``open_files.out_of_open_files``) is no
input's fault: it stops the run with ``RunStopped``, its one line (``open_files_message``), once
the inputs before it have their results.

A result's ``seconds`` is the input's own time: the time its reader spent opening and decoding it
(in its worker or here; not the waits for room, nor the other inputs' time), to the time its
worker was stopped for one that hung or died, plus its share of each forward pass its views were
in (the pass's time times its views over the pass's). The same input takes about as long first
or last in a batch, or alone.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import multiprocessing as mp
import numbers
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import torch
from torch import Tensor

from octvideo.allocator import keep_freed_memory
from octvideo.argtypes import MAX_TIMEOUT  # seconds one step of one input may take
from octvideo.data import decoding
from octvideo.data.open_files import (
    FORK_SERVER_OPEN_FILES,
    open_files_message,
    out_of_open_files,
    reserve_open_files,
)
from octvideo.data.workers import (
    exit_reason,
    serve,
    usable_cores,
    worker_context,
)
from octvideo.errors import RunStopped, failure_reason
from octvideo.inference.inputs import folder_input_error
from octvideo.inference.predictor import (
    InputHeader,
    Predictor,
    VideoResult,
    parse_views,
    window_seconds,
)

logger = logging.getLogger(__name__)

MAX_WORKERS = 64  # decoding processes; each holds up to one decoded chunk of clips
DEFAULT_TIMEOUT = 60.0  # opening a 2-hour file or decoding a batch of clips takes seconds
POLL = 1.0  # seconds between looks at the workers when nothing arrives


def default_workers() -> int:
    """Decoding processes when none is asked for: 2, or 1 on a one-CPU machine. Two keep a
    CPU model fed with 320-pixel H.264 (``python tools/bench.py predict``); on a GPU ask for
    more."""
    return min(2, usable_cores())


def reserve_worker_files(setting: str, workers: int, inputs: int) -> None:
    """Makes room under the open-file limit for the decoding workers ``predict_many`` starts for
    ``inputs`` inputs: ``workers``, one an input at most (``open_files.reserve_open_files``, which
    names ``setting``, the setting as given).

    Raises:
        ValueError: the limit, raised to the hard one, is too low for them.
    """
    reserve_open_files(setting, min(workers, inputs), FORK_SERVER_OPEN_FILES)


@dataclass(frozen=True)
class ReadRequest:
    """What to read from each input (checked by ``predict_many`` before any input is read)."""

    views: str | tuple[int, int] = "center"
    window: float | None = None
    stride: float | None = None
    decoder: str = "auto"


@dataclass(frozen=True)
class ReadAhead:
    """How far the decoding workers may run ahead of the model side, counted in views (a clip at
    one crop position, the unit of a forward pass).

    A worker's reader thread takes a chunk's views only while the decoded views waiting for the
    model side, all workers together, stay within ``bound``; else that worker waits. The one
    exception is the first chunk not taken yet of the input the model side is reading: the model
    side takes those views as they come, while views of later inputs wait for that input's end,
    so refusing it would stop both sides (later inputs that filled the bound would block the one
    before them). Waiting views therefore never exceed ``bound + chunk``, and memory holds at
    most those, the pass in the model and one decoded chunk in each worker.

    Attributes:
        bound: decoded views that may wait for the model side, all workers together.
        chunk: views a worker sends at once, at most (one chunk of clips).
    """

    bound: int
    chunk: int

    @classmethod
    def passes(cls, batch_size: int, chunk: int) -> ReadAhead:
        """Two forward passes of ``batch_size`` views (two chunks where a chunk is larger): while
        the model runs a pass the workers decode up to two passes ahead, and a reader is only
        refused while more than ``bound - chunk``, at least one full pass, is decoded and
        waiting."""
        return cls(2 * max(batch_size, chunk), chunk)

    def may_take(self, views: int, waiting: int, *, head: bool, holds: int) -> bool:
        """Whether a reader may take a chunk of ``views`` views now (the rule in ``ReadAhead``).

        Args:
            views: the chunk's views (at most ``chunk``).
            waiting: decoded views waiting for the model side, all workers together.
            head: the chunk belongs to the input the model side is reading.
            holds: views of this worker the model side has not taken yet (with ``head``,
                all of that same input: earlier ones are done).
        """
        return waiting + views <= self.bound or (head and holds == 0)


@dataclass
class PipelineStats:
    """Where the time of a ``predict_many`` run went (filled in as it runs).

    Attributes:
        inputs: inputs handed out.
        views: clip views through the model.
        forwards: forward passes.
        model_seconds: time in forward passes (copies to the device and back included).
        wait_seconds: time the model side waited for decoded clips.
        waiting_peak: the most decoded views that waited for the model side at once (memory;
            0 with ``workers=0``, where each chunk goes to the model as it is decoded).
    """

    inputs: int = 0
    views: int = 0
    forwards: int = 0
    model_seconds: float = 0.0
    wait_seconds: float = 0.0
    waiting_peak: int = 0


Event = tuple[str, Any]  # (kind, payload), the kinds below
OPEN = "open"  # InputHeader: the input's frames, fps and clip plan
CLIPS = "clips"  # Tensor: a chunk of views, the crops of each clip together
END = "end"  # None: every planned clip was read
CUT = "cut"  # (InputHeader, reason): the clips before a frame that cannot be decoded
ERROR = "error"  # str: the input failed, no scores
STOP = "stop"  # str: out of open files, which stops the run (``open_files_message``)
ENDS = (END, CUT, ERROR, STOP)  # the events that end an input


def read_input(
    predictor: Predictor, path: str, request: ReadRequest, chunk: int
) -> Iterator[Event]:
    """The events of one input: "open", then "clips" of up to ``chunk`` clips (their crops
    together), then "end"; or "error" with the reason at the first failure, which ends them.

    A file that cannot be decoded to its end (``Predictor.read_views``) ends with "cut" instead
    of "end": the header of the clips read (those before the first frame that fails) and the
    error that says where that is. Their scores are kept; the input counts as failed.

    Anything raised while reading is the input's error (decoders raise many kinds); it is logged
    with its traceback at DEBUG level. Out of open files is no input's fault: "stop" with its
    one line. A folder (one that holds no video) is "error" with the line that says so.
    """
    folder_error = folder_input_error(path)
    if folder_error is not None:
        yield ERROR, folder_error
        return
    try:
        opened = predictor.open_input(
            path, request.views, request.window, request.stride, decoder=request.decoder
        )
        yield OPEN, opened.header()
        for views in predictor.read_views(opened, chunk):
            yield CLIPS, views
    except Exception as err:  # the input's failure, reported in its record
        logger.debug("%s failed", path, exc_info=True)
        if out_of_open_files(err):
            yield STOP, open_files_message(f"decoding {path}")
            return
        yield ERROR, failure_reason(err)
        return
    if opened.cut is None:
        yield END, None
    else:
        yield CUT, (opened.header(), opened.cut)


def _timed(events: Iterator[Event]) -> Iterator[tuple[Event, float]]:
    """``events``, each with the seconds spent in the reader so far: not the waits at its yields,
    where the caller is busy or the pipe full."""
    spent = 0.0
    while True:
        start = time.perf_counter()
        try:
            event = next(events)
        except StopIteration:
            return
        finally:
            spent += time.perf_counter() - start
        yield event, spent


def _worker_main(
    conn: Connection,
    read: Callable[[Predictor, str, ReadRequest, int], Iterator[Event]],
    keep_memory: Callable[[], object],
    predictor: Predictor,
    request: ReadRequest,
    chunk: int,
    niceness: int,
) -> None:
    """A decoding process: reads the inputs the parent sends with ``read``, one at a time, until
    it sends None or goes away. A chunk of clips goes as ``(index, "clips", views)`` and then its
    array, so that the parent can make room before it takes the views.

    ``niceness`` is the level to run at, not an increment: the caller's plus ``worker_nice``
    (the fork server's may be lower than the caller's).
    """
    if niceness > os.nice(0):
        os.nice(niceness - os.nice(0))
    # frames and clips of the same sizes are allocated and freed chunk after chunk: keep the
    # freed memory instead of faulting in fresh pages each time (15% of a worker's CPU on
    # 320-pixel H.264). A process started by the fork server has glibc's defaults.
    keep_memory()
    torch.set_num_threads(1)  # the model's process owns the intra-op threads
    decoding.PYAV_THREADS = 1  # and FFmpeg's: one thread a worker (decord's readers use one)

    def messages(task: tuple[int, str]) -> Iterator[object]:
        index, path = task
        for (kind, payload), seconds in _timed(read(predictor, path, request, chunk)):
            if kind == CLIPS:
                yield index, kind, len(payload), seconds
                yield payload.numpy()  # pickled as its bytes, not a shared-memory handle
            else:
                yield index, kind, payload, seconds

    serve(conn, messages)


@dataclass(eq=False)
class _Worker:
    """One decoding process, its pipe, its reader thread and what it holds (shared with the
    reader thread under the pool's condition)."""

    conn: Connection
    proc: mp.process.BaseProcess
    index: int | None = None  # the input it is reading
    given: float = 0.0  # when it was given that input
    buffered: int = 0  # views it sent that the model side has not taken yet
    last_seen: float = 0.0  # when it last sent something or was given work
    paused: bool = False  # its reader thread waits for room for a chunk (its clock stops)
    dead: bool = False  # its pipe closed: the process exited
    retired: bool = False  # being stopped; what it still sends is dropped
    thread: threading.Thread | None = None


class _Pool:
    """Worker processes that read inputs ahead of the model side, as far as ``ahead`` lets them,
    with timeouts and crashes failing only their input."""

    def __init__(
        self,
        predictor: Predictor,
        request: ReadRequest,
        chunk: int,
        paths: Sequence[str],
        workers: int,
        timeout: float,
        ahead: ReadAhead,
        worker_nice: int = 0,
    ) -> None:
        self._ctx = worker_context()  # a fork server that has imported this module
        # what each worker runs, looked up now (a caller may have replaced them) and pickled by
        # reference; the niceness is the caller's plus ``worker_nice``, as a fork would have had
        niceness = min(os.nice(0) + worker_nice, 19)
        reader = _without_model(predictor)
        self._args = (read_input, keep_freed_memory, reader, request, chunk, niceness)
        self._paths = list(paths)
        self._timeout = timeout
        self._ahead = ahead
        self._cv = threading.Condition()
        self._events: list[deque[tuple[str, Any, _Worker | None]]] = [deque() for _ in paths]
        self._todo = deque(range(len(paths)))
        self._seconds = [0.0] * len(paths)  # each input's reading time, once it ended
        self._head = 0  # the input the model side reads
        self.waiting = 0  # decoded views waiting for the model side, all workers together
        self.peak = 0  # the most that ever waited
        self._workers: list[_Worker] = []
        try:
            for _ in range(workers):
                self._workers.append(self._start())
        except BaseException:  # cannot start one (memory, process limits): stop those started
            self.close()
            raise
        with self._cv:
            self._assign()

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, *self._args), daemon=True)
        proc.start()
        child.close()  # the worker's end lives in the worker only: its death is EOF here
        worker = _Worker(parent, proc)
        worker.thread = threading.Thread(target=self._receive, args=(worker,), daemon=True)
        worker.thread.start()
        return worker

    def _receive(self, worker: _Worker) -> None:
        """A worker's reader thread: takes each message as it comes, and a chunk's views once
        ``ReadAhead`` leaves room for them; until the pipe closes or the worker is retired."""
        while True:
            try:
                index, kind, payload, seconds = worker.conn.recv()
                if kind == CLIPS:
                    if not self._make_room(worker, index, payload):
                        return
                    payload = torch.from_numpy(worker.conn.recv())
            except (EOFError, OSError):
                with self._cv:
                    worker.dead = True
                    self._cv.notify_all()
                return
            with self._cv:
                if worker.retired:
                    return
                worker.last_seen = time.monotonic()
                if kind == CLIPS:
                    worker.buffered += len(payload)
                    self.waiting += len(payload)
                    self.peak = max(self.peak, self.waiting)
                elif kind in ENDS:
                    worker.index = None
                    self._seconds[index] = seconds
                    self._assign()  # its next input, now: the model side may be busy
                self._events[index].append((kind, payload, worker))
                self._cv.notify_all()

    def _make_room(self, worker: _Worker, index: int, views: int) -> bool:
        """Waits until ``worker`` may take a chunk of ``views`` views of input ``index`` (its
        clock stopped meanwhile); False when it was retired instead."""
        with self._cv:
            while not worker.retired and not self._ahead.may_take(
                views, self.waiting, head=index == self._head, holds=worker.buffered
            ):
                if not worker.paused:  # a state the others read: its clock stops
                    worker.paused = True
                    self._cv.notify_all()
                self._cv.wait()
            if worker.paused:
                worker.paused, worker.last_seen = False, time.monotonic()
            return not worker.retired

    def seconds(self, index: int) -> float:
        """The time input ``index`` took to read, once it ended (``ENDS``)."""
        return self._seconds[index]

    def events(self, index: int) -> Iterator[Event]:
        """The events of input ``index`` as they arrive, up to the one that ends it (``ENDS``)."""
        with self._cv:
            self._head = index
            self._cv.notify_all()  # its worker may be waiting for room
        while True:
            kind, payload = self._next(index)
            yield kind, payload
            if kind in ENDS:
                return

    def _next(self, index: int) -> Event:
        while True:
            with self._cv:
                self._assign()
                if self._events[index]:
                    kind, payload, worker = self._events[index].popleft()
                    if kind == CLIPS and worker is not None:
                        worker.buffered -= len(payload)
                        self.waiting -= len(payload)
                        self._cv.notify_all()
                    return kind, payload
                broken = self._broken()
                if not broken:
                    self._cv.wait(self._wait_time())
                    continue
            for worker, reason in broken:
                self._replace(worker, reason)

    def _assign(self) -> None:
        """Gives the next inputs, in order, to idle workers (under the condition; the message is
        a few bytes, so sending it does not block)."""
        for worker in self._workers:
            if not self._todo:
                return
            if worker.index is None and not (worker.dead or worker.retired):
                worker.index, worker.last_seen = self._todo.popleft(), time.monotonic()
                worker.given = worker.last_seen
                try:
                    worker.conn.send((worker.index, self._paths[worker.index]))
                except OSError:  # died while idle: the input goes back, the worker is replaced
                    self._todo.appendleft(worker.index)
                    worker.index, worker.dead = None, True

    def _broken(self) -> list[tuple[_Worker, str | None]]:
        """Workers to replace (under the condition): dead ones, and those past their timeout;
        each retired here, with the reason its input fails (None: it held none)."""
        now, broken = time.monotonic(), []
        for worker in self._workers:
            if worker.retired:
                continue
            if worker.dead:
                broken.append((worker, "died"))
            elif (
                worker.index is not None
                and not worker.paused
                and now - worker.last_seen > self._timeout
            ):
                broken.append((worker, "timeout"))
        for worker, _ in broken:
            worker.retired = True
        self._cv.notify_all()
        return broken

    def _wait_time(self) -> float:
        """Seconds until the nearest deadline of a busy worker, at most ``POLL``."""
        now = time.monotonic()
        left = [
            w.last_seen + self._timeout - now
            for w in self._workers
            if w.index is not None and not (w.paused or w.retired)
        ]
        return max(0.0, min([POLL, *left])) + 1e-3

    def _replace(self, worker: _Worker, reason: str) -> None:
        """Stops ``worker``, fails its input with ``reason`` and starts a fresh worker."""
        worker.proc.kill()
        _stop_worker(worker)
        if worker.index is not None:
            if reason == "timeout":
                error = (
                    f"DecodeTimeout: no progress in {self._timeout:g} s (opening the file or "
                    f"decoding one batch of clips); raise --timeout if it is just slow"
                )
            else:
                error = f"DecoderDied: the decoding process died ({exit_reason(worker.proc)})"
            with self._cv:
                self._events[worker.index].append((ERROR, error, None))
                self._seconds[worker.index] = time.monotonic() - worker.given
        self._workers[self._workers.index(worker)] = self._start()

    def close(self) -> None:
        """Stops every worker: idle ones are asked to exit, busy ones are killed."""
        with self._cv:
            for worker in self._workers:
                worker.retired = True
            self._cv.notify_all()
        for worker in self._workers:
            if worker.index is None and not worker.dead:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            else:
                worker.proc.kill()
        for worker in self._workers:
            _stop_worker(worker)


def _stop_worker(worker: _Worker) -> None:
    """Waits for ``worker``'s process to exit (asked to or killed; killed after 10 s), then for
    its reader thread, and closes its pipe."""
    worker.proc.join(timeout=10)
    if worker.proc.is_alive():
        worker.proc.kill()
        worker.proc.join()
    if worker.thread is not None:
        worker.thread.join(timeout=10)
    worker.conn.close()


def _without_model(predictor: Predictor) -> Predictor:
    """``predictor`` as a worker gets it: what opens, decodes and transforms an input, without the
    network, which only the model side runs (pickled, its weights would be copied to every
    worker, and a CUDA model would start CUDA there)."""
    reader = copy.copy(predictor)
    del reader.model
    return reader


class _Local:
    """The readers in this process, one input after the other (``workers=0``)."""

    peak = 0  # no decoded views wait: each chunk goes to the model as it is decoded

    def __init__(
        self, predictor: Predictor, request: ReadRequest, chunk: int, paths: Sequence[str]
    ) -> None:
        self._args = (predictor, request, chunk)
        self._paths = list(paths)
        self._seconds = [0.0] * len(paths)

    def seconds(self, index: int) -> float:
        return self._seconds[index]

    def events(self, index: int) -> Iterator[Event]:
        predictor, request, chunk = self._args
        for event, seconds in _timed(read_input(predictor, self._paths[index], request, chunk)):
            self._seconds[index] = seconds
            yield event

    def close(self) -> None:
        pass


@dataclass(eq=False)
class _Pending:
    """An input on the model side: its result so far and the views of it still to run."""

    index: int
    result: VideoResult
    header: InputHeader | None = None
    read_seconds: float = 0.0  # its reader's time (``_Pool.seconds``)
    model_seconds: float = 0.0  # its share of the forward passes its views were in
    rows: list[Tensor] = field(default_factory=list)  # (n, K) probabilities, in clip order
    views_sent: int = 0
    views_done: int = 0
    read: bool = False  # the event that ends it came (``ENDS``)

    @property
    def complete(self) -> bool:
        return self.read and self.views_done == self.views_sent


class _Batcher:
    """Forward passes of exactly ``batch_size`` views, filled in the order the views come;
    ``on_views`` is called with the views of each pass once it has run, and ``on_clips`` with
    each input's clips run so far and in all, for the inputs whose views were in it."""

    def __init__(
        self,
        predictor: Predictor,
        stats: PipelineStats,
        on_views: Callable[[int], None] | None = None,
        on_clips: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self._predictor = predictor
        self.stats = stats
        self._on_views = on_views
        self._on_clips = on_clips
        self._queue: deque[tuple[_Pending, Tensor]] = deque()
        self._queued = 0

    def add(self, owner: _Pending, views: Tensor) -> None:
        owner.views_sent += len(views)
        self._queue.append((owner, views))
        self._queued += len(views)
        while self._queued >= self._predictor.batch_size:
            self._forward(self._predictor.batch_size)

    def drop(self, owner: _Pending) -> None:
        """Removes ``owner``'s views that have not run (they are the last in the queue)."""
        while self._queue and self._queue[-1][0] is owner:
            _, views = self._queue.pop()
            self._queued -= len(views)
            owner.views_sent -= len(views)

    def flush(self) -> None:
        if self._queued:
            self._forward(self._queued)

    def _forward(self, size: int) -> None:
        parts: list[tuple[_Pending, Tensor]] = []
        taken = 0
        while taken < size:
            owner, views = self._queue.popleft()
            if taken + len(views) > size:  # split: the rest waits for the next pass
                views, rest = views[: size - taken], views[size - taken :]
                self._queue.appendleft((owner, rest))
            parts.append((owner, views))
            taken += len(views)
        self._queued -= size
        batch = parts[0][1] if len(parts) == 1 else torch.cat([v for _, v in parts])
        start = time.perf_counter()
        probs = self._predictor.view_probs(batch)  # (size, K) float64, as test fuses views
        seconds = time.perf_counter() - start
        self.stats.model_seconds += seconds
        self.stats.forwards += 1
        self.stats.views += size
        for owner, rows in zip(
            (o for o, _ in parts), probs.split([len(v) for _, v in parts]), strict=True
        ):
            owner.rows.append(rows)
            owner.views_done += len(rows)
            owner.model_seconds += seconds * len(rows) / size
        if self._on_views is not None:
            self._on_views(size)
        if self._on_clips is not None:
            for owner in dict.fromkeys(o for o, _ in parts):  # each input once, in order
                header = owner.header
                assert header is not None  # views come after their input's OPEN
                self._on_clips(owner.index, owner.views_done // header.crops, header.clips)


def _finish(pending: _Pending) -> VideoResult:
    result = pending.result
    header = pending.header
    if header is not None:  # read to its end, or to the first frame that cannot be decoded
        probs = torch.cat(pending.rows) if pending.rows else torch.empty(0)
        # (clips, crops, K) -> the crops' mean, as Predictor.predict averages them
        probs = probs.reshape(header.clips, header.crops, -1).mean(1)
        result.set_scores(header, probs, result.error)  # NaN scores fail it
    if result.error is not None:  # the caller reports it, with the result
        logger.debug("%s: %s", result.path, result.error)
    result.seconds = pending.read_seconds + pending.model_seconds
    return result


def check_request(request: ReadRequest) -> ReadRequest:
    """``request`` with its window and stride checked (``window_seconds``, numbers as well as
    text) and its views read and bounded (``parse_views``: "NxC" becomes (N, C)).

    Raises:
        ValueError: a window or stride below ``MIN_WINDOW_SECONDS`` or not finite, a stride
            without a window, views that are not a view protocol or are outside the bounds, or
            a decoder that is not one of ``DECODERS``.
    """
    window = window_seconds(request.window, "window")
    stride = window_seconds(request.stride, "stride")
    if stride is not None and window is None:
        raise ValueError("a stride needs a window")
    decoding.check_decoder(request.decoder)
    return ReadRequest(parse_views(request.views), window, stride, request.decoder)


def predict_many(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike[str]],
    *,
    views: str | tuple[int, int] = "center",
    window: float | str | None = None,
    stride: float | str | None = None,
    decoder: str = "auto",
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stats: PipelineStats | None = None,
    on_views: Callable[[int], None] | None = None,
    on_clips: Callable[[int, int, int], None] | None = None,
    worker_nice: int = 0,
) -> Iterator[VideoResult]:
    """Predicts video files, decoding in ``workers`` processes ahead of the model; yields one
    ``VideoResult`` per path, in order, each as soon as its last clip has been through the model.

    Args:
        predictor: the model, its classes and clip protocol; ``batch_size`` views a forward pass,
            filled across inputs.
        paths: a list (or other sequence) of video files; an unreadable one gives a result
            with ``error`` set. One path alone (a str, bytes or ``os.PathLike``) is
            refused, not read as a sequence of one-character paths: pass ``[path]``.
        views, window, stride, decoder: as in ``Predictor.predict``.
        workers: decoding processes, a whole number 0 to ``MAX_WORKERS`` (0: decode here, in
            turn with the model); None: ``default_workers()``. Never more than there are paths.
        timeout: seconds a worker may take for one step of an input (opening it, or one chunk of
            clips) before the input fails; 0 < timeout <= ``MAX_TIMEOUT``.
        stats: filled in with where the time went.
        on_views: called with the number of views after each forward pass (progress).
        on_clips: called after each forward pass with ``(index, done, clips)`` for each input
            whose views were in it: its index in ``paths``, its clips (windows) run so far and
            in all (progress within a long input).
        worker_nice: added to the workers' niceness (0 to 19): a higher one leaves the cores to
            the model's threads first (``python tools/bench.py predict --nice`` measures it).

    Raises:
        ValueError: an argument out of its bounds, or an open-file limit too low for the workers
            even when raised to the hard one (``reserve_worker_files``), before any input is
            read.
        RunStopped: the process ran out of open files starting a worker anyway, or a decoder
            ran out of them reading an input: the inputs before it are predicted and yielded
            first.
    """
    if isinstance(paths, str | bytes | os.PathLike):
        raise ValueError(
            f"paths must be a list of paths; got the single path {os.fsdecode(paths)!r}: pass "
            f"[{os.fsdecode(paths)!r}]"
        )
    request = check_request(ReadRequest(views, window, stride, decoder))
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral):
        # a count of processes: 2.5 would reach range() and min() as it is, True reads as 1
        raise ValueError(f"workers must be 0 to {MAX_WORKERS}, got {workers!r}: a whole number")
    if not 0 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be 0 to {MAX_WORKERS}, got {workers}")
    workers = int(workers)
    reserve_worker_files(f"workers {workers}", workers, len(paths))  # after predict's: a no-op
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise ValueError(f"timeout must be above 0 and at most {MAX_TIMEOUT:g} s, got {timeout}")
    if (
        isinstance(worker_nice, bool)
        or not isinstance(worker_nice, int)
        or not 0 <= worker_nice <= 19
    ):
        raise ValueError(f"worker_nice must be 0 to 19, got {worker_nice}")
    crops = len(predictor.crop_positions(request.views, request.window))  # "multi" checked
    paths = [os.fsdecode(p) for p in paths]  # a bytes path is its name, as predict reads it
    batcher = _Batcher(predictor, PipelineStats() if stats is None else stats, on_views, on_clips)
    return _predict_many(
        predictor, paths, request, crops, workers, timeout, batcher, worker_nice=worker_nice
    )


def _predict_many(
    predictor: Predictor,
    paths: list[str],
    request: ReadRequest,
    crops: int,
    workers: int,
    timeout: float,
    batcher: _Batcher,
    *,
    worker_nice: int,
) -> Iterator[VideoResult]:
    stats = batcher.stats
    batch = predictor.batch_size
    chunk = max(1, batch // crops)  # clips a worker sends at once: about one forward pass
    workers = min(workers, len(paths))
    ahead = ReadAhead.passes(batch, chunk * crops)
    source: _Pool | _Local | None = None
    order: deque[_Pending] = deque()

    def done() -> Iterator[VideoResult]:
        while order and order[0].complete:
            yield _finish(order.popleft())

    try:
        if workers:
            source = _Pool(predictor, request, chunk, paths, workers, timeout, ahead, worker_nice)
        else:
            source = _Local(predictor, request, chunk, paths)
        for index, path in enumerate(paths):
            pending = _Pending(index, VideoResult(path=path))
            order.append(pending)
            stats.inputs += 1
            events = source.events(index)
            while True:
                start = time.perf_counter()
                kind, payload = next(events)
                stats.wait_seconds += time.perf_counter() - start
                stats.waiting_peak = source.peak
                if kind == OPEN:
                    pending.header = payload
                elif kind == CLIPS:
                    batcher.add(pending, payload)
                elif kind == STOP:  # out of open files: the inputs read before it finish
                    batcher.drop(pending)
                    order.pop()
                    batcher.flush()
                    yield from done()
                    raise RunStopped(payload)
                elif kind == ERROR:  # no scores: the views not run yet are dropped
                    batcher.drop(pending)
                    pending.header, pending.result.error = None, payload
                elif kind == CUT:  # the clips read so far are scored, and it fails
                    pending.header, pending.result.error = payload
                if kind in ENDS:
                    pending.read, pending.read_seconds = True, source.seconds(index)
                    break
                yield from done()
            yield from done()
        batcher.flush()
        yield from done()
    finally:
        if source is not None:
            source.close()
