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
``WORKERS_PER_CORE`` per CPU core the caller may run on, under the command's own fixed bound. The
open-file limit they need is ``octvideo.data.open_files``'s.

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
folder out. A stop is the caller's: the server and every worker ignore SIGINT, SIGTERM and SIGHUP
(``signals.ignore_stops``; a terminal, a scheduler or systemd sends them to the whole process
group), and the caller, which stops its workers as it unwinds, reports the stop once. So
``terminate()`` of such a worker kills it (SIGKILL, ``KillingPopen``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from multiprocessing import forkserver, popen_fork, popen_forkserver
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any

from octvideo import signals
from octvideo.data.open_files import stops_when_out_of_files
from octvideo.errors import WorkerStartError

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


class KillingPopen(popen_fork.Popen):
    """How a forked worker that ignores SIGTERM (``signals.ignore_stops``) is started, so that its
    ``terminate()`` kills it (SIGKILL): multiprocessing terminates every daemonic worker left at the
    caller's exit, through this object, and a SIGTERM ignored kept that exit waiting for ever."""

    def terminate(self) -> None:
        self.kill()


class _KillingForkServerPopen(popen_forkserver.Popen, KillingPopen):
    """``KillingPopen`` for a worker forked from the fork server."""


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
            RunStopped: this process ran out of open files starting it.
        """
        with stops_when_out_of_files("starting a worker process"):
            running, self._running = mp.Pipe(duplex=False)
            try:
                start_worker_server()
                super().start()
            except BaseException:  # an error, or Ctrl-C: no pipe is left open
                running.close()
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

    @staticmethod
    def _Popen(process_obj: ForkServerProcess) -> _KillingForkServerPopen:
        return _KillingForkServerPopen(process_obj)

    def run(self) -> None:
        signals.ignore_stops()  # the caller stops its workers on Ctrl-C and SIGTERM
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


# one server start at a time: each sets the process-wide environment and stop handlers it needs
_server_start_lock = threading.Lock()


def start_worker_server() -> None:
    """Start the fork server now, without waiting for it: it imports ``PRELOAD`` while the caller
    goes on (``octvideo predict`` loads its model meanwhile), instead of when the first worker is
    asked for. Starting it again is a no-op."""
    worker_context()
    # the environment and the stops (ignored: see the module's docstring) the server starts with
    with _server_start_lock, signals.restored(*signals.STOPS):
        if signals.in_main_thread():
            signals.ignore_stops()
        saved = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"  # no current folder on its sys.path
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = saved
