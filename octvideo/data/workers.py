"""Where octvideo's worker processes come from: one fork server, never a fork of the caller.

A process forked from the caller inherits everything the caller holds, decoders included: forked
from a process that had decoded with decord (a notebook, a test session), a worker could hang for
ever as its reader closed, in decord's ``~FFMPEGThreadedDecoder`` waiting on a packet queue that
the fork copied mid-use. So the workers of ``data check``, the jobs of ``data prepare`` and the
decoding workers of ``predict --workers`` all start from a fork server: a clean process, started
once per calling process, that has imported the modules the workers run but has never decoded.
Forking it costs milliseconds where ``spawn`` would import torch again in every worker; starting
it (importing ``PRELOAD``: torch, torchvision and the decoders, 2-3 s on 2 CPUs) is a one-off
cost, which ``start_worker_server`` lets a caller overlap with its own start-up.

What a worker runs travels pickled: a module-level function by reference, its arguments by value
(pipes as file descriptors). A worker inherits nothing else of the caller: not a function a test
replaced, not its signal handlers, thread counts, malloc settings or later changes to its
environment or niceness (it has the fork server's, taken when the server started); each worker
sets up what it needs itself. The one exception is logging: a worker logs to stderr at the level
and in the format the caller's root logger had when the worker was made (``-v`` shows the
workers' debug lines too), and not at all where the caller configured none.

How many workers a command may start is bounded by the machine (``check_worker_count``):
``WORKERS_PER_CORE`` per CPU core the caller may run on, under the command's own fixed bound, and
by the open-file limit (``reserve_open_files``, called once where the workers start): a command
that starts workers first raises its soft limit to the hard one, then refuses, in one line and
before any work, workers the limit cannot hold. Past that
limit they would fail on their pipes, or in PyTorch's data loader hang for ever while its workers
log "Too many open files" without end.
An EMFILE met anyway ends the command with one line naming the limit (``open_files_message``);
``stop_forked_workers_out_of_files`` makes a forked worker that meets one exit instead of hang.

A worker that takes tasks one at a time (``data check``, ``predict --workers``) runs ``serve``:
the task comes through its pipe, its answers go back through it, and None or a closed pipe ends it.
A worker that sends its one result itself (a ``data prepare`` job) sends it with
``send_to_caller``: a caller that stopped (Ctrl-C) and closed its end ends the worker quietly, while
a ``BrokenPipeError`` of the work itself fails the worker with its traceback.

Before a worker runs anything, Python runs the caller's main script again in it (as
``__mp_main__``, so that what the script defines can be unpickled there). A script that starts
workers at its top level, outside ``if __name__ == "__main__":``, would start them again there,
which Python refuses: the worker exits. ``start()`` therefore waits until the worker runs, and
raises ``WorkerStartError`` for one that exits first, instead of each caller taking it for a
worker that died at its work and starting the next one, input after input.

The server is started as ``python -c``, which would put the current folder first on its
``sys.path``: its imports (PyAV and torch import ``grp``, ``socket``, ...) would then run a
``grp.py`` of whatever folder the user is in. It starts with ``PYTHONSAFEPATH=1``, which leaves the
folder out. Ctrl-C is the caller's: the server and every worker ignore it (a terminal sends it to
the whole process group), and the caller, which stops its workers as it unwinds, reports it once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import multiprocessing as mp
import os
import pickle
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any

from octvideo import signals
from octvideo.errors import RunStopped, WorkerStartError

logger = logging.getLogger(__name__)

# The fork server is one per process and imports its preload list once, when it starts: the list
# is the union of what every kind of worker runs, so no caller's list replaces another's. Names,
# not imports: a module of a higher layer (the pipeline) is only imported in the server.
PRELOAD = (
    "av",  # a prepare job encodes one video and exits: importing PyAV once, not once a job
    "octvideo.data.decoding",
    "octvideo.data.check",
    "octvideo.data.prepare",
    "octvideo.inference.pipeline",
)

WORKERS_PER_CORE = 4
"""Worker processes a command may start per CPU core. A worker decodes or encodes with one
thread, so past a core each they add memory (a decoded batch each) and no speed, unless they wait
on slow storage: four leave room for that."""


# Open files a command holds (base, per worker), from /proc/PID/fd of every process of the command
# sampled every 50 ms on Linux (2 CPUs, the demo config's tiny clips), with a margin of a third or
# more for the files a decoder, a writer or a checkpoint opens between two samples.
# Fork-server workers (predict, data check, data prepare): the caller held 11-13 with 1 worker and
# 29-33 with 8 (pipes to each), the server 10 + 1 a worker, a worker 4-19 (a child of the server
# inherits its pipes).
FORK_SERVER_OPEN_FILES = (16, 4)
# PyTorch's data-loader workers (train, test): the caller held 42 with 2 workers, 62 with 4 (a
# queue and a sentinel per worker, and one descriptor per tensor it shares, alive until used), and
# a forked worker as many as its caller had when it started; data.prefetch_factor 8 held no more.
DATA_LOADER_OPEN_FILES = (32, 12)


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity set on Linux (``taskset``, a
    container's CPU set), else every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_worker_limit() -> int:
    """The most worker processes this machine takes: ``WORKERS_PER_CORE`` per usable core."""
    return WORKERS_PER_CORE * usable_cores()


def check_worker_count(option: str, count: int, *, low: int, cap: int) -> int:
    """``count`` if it lies from ``low`` to this machine's limit: ``WORKERS_PER_CORE`` per usable
    core (``usable_cores``), and at most ``cap``, the command's fixed bound. A check alone: the
    open-file limit is reserved where the workers start (``reserve_open_files``).

    Raises:
        ValueError: one line naming ``option``, the limit and the machine's cores.
    """
    cores = usable_cores()
    limit = min(cap, machine_worker_limit())
    if low <= count <= limit:
        return count
    unit = "core" if cores == 1 else "cores"
    raise ValueError(
        f"{option} {count}: give {low} to {limit} (at most {WORKERS_PER_CORE} per CPU core and "
        f"{cap} in all; this machine has {cores} CPU {unit} available)"
    )


def open_file_limit() -> int | None:
    """This process's soft open-file limit (``ulimit -n``); None where it has none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def _raise_open_file_limit(needed: int) -> None:
    """Raises the soft open-file limit to the hard one, as many tools do (a shell's default soft
    limit, often 1024, is a guard for programs that use ``select``, which octvideo does not);
    where the hard limit is unlimited, which some systems refuse as a soft limit, to ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if soft in (infinite, hard):
        return
    for target in (hard, max(soft, needed)) if hard == infinite else (hard,):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as err:
            logger.debug("could not raise the open-file limit %d to %s: %s", soft, target, err)
            continue
        shown = "unlimited" if target == infinite else target
        logger.debug("raised the open-file limit from %d to %s (hard limit %s)", soft, shown, hard)
        return


def reserve_open_files(setting: str, workers: int, open_files: tuple[int, int]) -> None:
    """Makes room for the ``workers`` worker processes a command is about to start under the
    open-file limit: raises the soft limit to the hard one, then refuses a limit still below
    ``base + per_worker * workers``, for ``open_files`` ``(base, per_worker)``
    (``FORK_SERVER_OPEN_FILES``, ``DATA_LOADER_OPEN_FILES``). ``setting``: the setting and its
    value as given (``--workers 8``), which may ask for more workers than start (one per input at
    most). No worker, no change. Called once, before the workers (and the fork server, whose
    limit they inherit) start.

    Raises:
        ValueError: one line naming the limit, ``setting`` and the limit it needs.
    """
    if workers <= 0:
        return
    base, per_worker = open_files
    needed = base + per_worker * workers
    _raise_open_file_limit(needed)
    limit = open_file_limit()
    if limit is not None and limit < needed:
        noun = "worker" if workers == 1 else "workers"
        raise ValueError(
            f"the open-file limit {limit} is too low for {workers} {noun} ({setting}); "
            f"raise `ulimit -n` to at least {needed} or use fewer workers"
        )


def out_of_open_files(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from or during, is EMFILE or ENFILE."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.EMFILE, errno.ENFILE):
            return True
        current = current.__cause__ or current.__context__
    return False


def open_files_message(what: str) -> str:
    """One line for an EMFILE that ``what`` met: names the limit and what to do."""
    limit = open_file_limit()
    shown = "unlimited" if limit is None else str(limit)
    return (
        f"{what} ran out of open files (the open-file limit is {shown}); raise `ulimit -n` or "
        "use fewer workers"
    )


@contextlib.contextmanager
def stop_forked_workers_out_of_files() -> Iterator[Callable[[], bool]]:
    """Inside, a process forked from this one (PyTorch's data-loader workers) that meets EMFILE or
    ENFILE in a thread that reports it through ``sys.excepthook`` exits at once, instead of
    logging it without end while its caller waits for ever: multiprocessing's ``resource_sharer``
    thread, which hands the caller each tensor's descriptor, retries a failed ``accept`` so.
    Yields a function that says whether a forked process exited so: its caller, told that its
    worker "exited unexpectedly", then blames the limit, not the video it was decoding. A shared
    anonymous map carries the flag, since a process out of files can open nothing."""
    flag = mmap.mmap(-1, 1)
    caller, previous = os.getpid(), sys.excepthook

    def hook(kind, value, traceback) -> None:
        if os.getpid() != caller and value is not None and out_of_open_files(value):
            flag[0] = 1
            os._exit(1)
        previous(kind, value, traceback)

    sys.excepthook = hook
    try:
        yield lambda: flag[0] == 1
    finally:
        sys.excepthook = previous
        flag.close()


class _WorkerProcess(ForkServerProcess):
    """A fork-server process that has run when ``start()`` returns, and logs as its caller did:
    the root logger's level, and a handler on the same standard stream with the same formatter
    for each of its handlers on stdout or stderr, taken when the process is made."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        root = logging.getLogger()
        self._log_level = root.level
        self._log_handlers = [
            (name, h.formatter)
            for h in root.handlers
            for name in ("stdout", "stderr")
            if isinstance(h, logging.StreamHandler)
            and h.stream is getattr(sys, name)
            and _pickles(h.formatter)
        ]

    def start(self) -> None:
        """Starts the process and waits until it runs (a few milliseconds).

        Raises:
            WorkerStartError: it exited before it ran (its error is on stderr).
        """
        try:
            running, self._running = mp.Pipe(duplex=False)
        except OSError as err:
            if out_of_open_files(err):
                raise RunStopped(open_files_message("starting a worker process")) from err
            raise
        try:
            start_worker_server()
            super().start()
        except OSError as err:
            running.close()
            if out_of_open_files(err):
                raise RunStopped(open_files_message("starting a worker process")) from err
            raise
        finally:
            self._running.close()  # the worker has its own end: its exit is EOF here
        with running:
            try:
                running.recv_bytes()
            except EOFError:
                self.join()
                raise WorkerStartError(
                    f"a worker process exited as it started ({exit_reason(self)}; its error is "
                    "above); a script that starts octvideo's workers must keep its top-level "
                    'code under `if __name__ == "__main__":`'
                ) from None
            except BaseException:  # Ctrl-C while it starts: no process is left behind
                self.kill()
                self.join()
                raise

    def run(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller stops its workers on Ctrl-C
        try:
            self._running.send_bytes(b"")
        except BrokenPipeError:  # the caller stopped (Ctrl-C) as this started: it wants none
            return
        self._running.close()
        if self._log_handlers:
            root = logging.getLogger()
            root.setLevel(self._log_level)
            for name, formatter in self._log_handlers:
                handler = logging.StreamHandler(getattr(sys, name))
                handler.setFormatter(formatter)
                root.addHandler(handler)
        super().run()  # a BrokenPipeError of the work itself fails the worker, traceback and all


def send_to_caller(conn: Connection, message: object) -> bool:
    """Sends ``message`` to the worker's caller; False where the caller has closed its end (it
    stopped, on Ctrl-C, and wants no more), which ends the worker's work quietly: no
    ``BrokenPipeError`` traceback after the caller's one "stopped" line."""
    try:
        conn.send(message)
    except BrokenPipeError:
        return False
    return True


def serve(conn: Connection, handle: Callable[[Any], Iterable[object]]) -> None:
    """A worker's loop: takes the tasks the parent sends on ``conn``, one at a time, and sends
    back each message ``handle(task)`` yields, in order; returns when the parent sends None or
    goes away (its end closed: EOF on a read, a broken pipe on a send)."""
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        for message in handle(task):
            if not send_to_caller(conn, message):
                return


def exit_reason(proc: mp.process.BaseProcess) -> str:
    """How a process that has exited ended: ``exit code 1``, ``signal SIGKILL``."""
    code = proc.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _pickles(obj: object) -> bool:
    """Whether ``obj`` can travel to a worker (a formatter of some logging library may not)."""
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


class _WorkerContext(ForkServerContext):
    Process = _WorkerProcess


_CONTEXT = _WorkerContext()


def worker_context() -> ForkServerContext:
    """The multiprocessing context every octvideo worker process is started from."""
    _CONTEXT.set_forkserver_preload(list(PRELOAD))
    return _CONTEXT


# one server start at a time: each sets the process-wide environment and SIGINT handler it needs
_server_start_lock = threading.Lock()


def start_worker_server() -> None:
    """Start the fork server now, without waiting for it: it imports ``PRELOAD`` while the caller
    goes on (``octvideo predict`` loads its model meanwhile), instead of when the first worker is
    asked for. Starting it again is a no-op."""
    worker_context()
    # the environment and Ctrl-C as the server is to start with
    with _server_start_lock, signals.handler(signal.SIGINT, signal.SIG_IGN):
        saved = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"  # no current folder on its sys.path
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = saved
