"""``worker_context``: worker processes come from one fork server that has imported every module a
worker runs, are not children of the process that starts them, log as their caller does, and
have run when ``start()`` returns: one that exits first (a script without a main guard) is a
``WorkerStartError``, and one interrupted while it starts is killed. ``serve``: a worker answers
its tasks in order until None or a closed pipe. ``check_worker_count``: a worker count is bounded
by the machine's cores."""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerProcess

import pytest

from octvideo.data import workers as workers_module
from octvideo.data.open_files import open_file_limit
from octvideo.data.workers import (
    PRELOAD,
    check_worker_count,
    serve,
    start_worker_server,
    worker_context,
)
from octvideo.errors import RunStopped
from tests.deadline import run_with_deadline
from tests.scripts import run_code, run_script


def _report(conn: Connection) -> None:
    """Runs in a worker: sends the preloaded modules it found imported, and its parent."""
    conn.send(([name for name in PRELOAD if name in sys.modules], os.getppid()))
    conn.close()


def _reply_of(target) -> tuple[object, int | None]:
    """What one worker running ``target(conn)`` sends first, and its exit code."""
    ctx = worker_context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(send,))
    proc.start()
    send.close()
    try:
        reply = run_with_deadline(120, receive.recv)
    finally:
        proc.join()
        receive.close()
    return reply, proc.exitcode


def test_a_worker_starts_with_every_worker_module_imported_and_not_as_a_fork_of_its_caller():
    # the fork server skips a module it cannot import without a word: a misspelt name would
    # cost every worker that import instead
    (loaded, parent), _ = _reply_of(_report)
    assert loaded == list(PRELOAD)
    assert parent != os.getpid()


def _log_a_line() -> None:
    """Runs in a worker: one debug line."""
    logging.getLogger("octvideo.test").debug("a debug line from a worker")


_LOGGING_CALLER = """
import logging
from octvideo.data.workers import worker_context
from tests.data.test_workers import _log_a_line

ctx = worker_context()
logging.basicConfig(level=logging.DEBUG, format="caller's %(levelname)s %(name)s: %(message)s")
for _ in range(2):
    worker = ctx.Process(target=_log_a_line)
    worker.start()
    worker.join()
    logging.getLogger().handlers.clear()  # the second worker: a caller that configured none
"""


def test_a_worker_logs_at_its_callers_level_and_format_and_not_at_all_without_one():
    # ``octvideo -v`` shows the workers' debug lines (a decoder's fallback, a traceback)
    done = run_code(_LOGGING_CALLER)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "octvideo.test" in ln]
    assert lines == ["caller's DEBUG octvideo.test: a debug line from a worker"]


_UNGUARDED_SCRIPT = """
from octvideo.data.workers import worker_context
from octvideo.errors import WorkerStartError

try:  # at the top level: the worker runs this file again before anything else
    worker_context().Process(target=print, args=("the worker ran",)).start()
except WorkerStartError as err:
    print("refused:", err)
"""


def test_a_script_that_starts_a_worker_outside_a_main_guard_gets_one_worker_start_error(
    tmp_path,
):
    # the worker runs the script again first, and Python refuses the start in there: the worker
    # exits before it runs, and start() says so instead of returning as if it had started
    done = run_script(tmp_path, _UNGUARDED_SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "refused: a worker process exited as it started (exit code 1; its error is above); a "
        "script that starts octvideo's workers must keep its top-level code under "
        '`if __name__ == "__main__":`'
    ]
    assert "bootstrapping phase" in done.stderr  # Python's own reason, from the worker


def test_ctrl_c_while_a_worker_starts_leaves_no_worker_behind(monkeypatch):
    def interrupted(self, *args):
        raise KeyboardInterrupt

    worker = worker_context().Process(target=time.sleep, args=(600,))
    monkeypatch.setattr(Connection, "recv_bytes", interrupted)  # here, not in the worker
    with pytest.raises(KeyboardInterrupt):
        run_with_deadline(120, worker.start)
    assert worker.exitcode == -signal.SIGKILL


def _open_fds() -> set[str]:
    """The descriptors this process holds, after a collection: a finaliser of an earlier test's
    object (a pipe, a file) closes its descriptor when the collector runs, which may be inside
    the step a test watches."""
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    ("fails", "error"),
    [
        ("pipe", OSError(errno.EMFILE, "Too many open files")),
        ("start", OSError(errno.EMFILE, "")),
        ("start", KeyboardInterrupt()),
    ],
)
def test_a_worker_that_cannot_start_stops_in_one_line_and_leaves_no_pipe_open(
    monkeypatch, fails, error
):
    # out of open files is the limit's fault: one line naming it; a Ctrl-C while the process
    # started left the pipe it waits on open
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(workers_module, "start_worker_server", lambda: None)
    if fails == "pipe":
        monkeypatch.setattr(workers_module.mp, "Pipe", fail)
    else:
        monkeypatch.setattr(ForkServerProcess, "start", fail)
    worker = worker_context().Process(target=os.getpid)
    before = _open_fds()
    with pytest.raises(RunStopped if isinstance(error, OSError) else KeyboardInterrupt) as caught:
        worker.start()
    assert _open_fds() - before == set()  # one an earlier test's object held may have closed
    if isinstance(error, OSError):
        assert str(caught.value) == (
            f"starting a worker process ran out of open files (the open-file limit is "
            f"{open_file_limit()}); raise `ulimit -n` or use fewer workers"
        )


_GUARDED_SCRIPT = """
import os
from octvideo.data.workers import worker_context

if __name__ == "__main__":
    proc = worker_context().Process(target=os.getpid)
    proc.start()
    proc.join()
    print("exit", proc.exitcode)
"""


def test_the_worker_server_runs_no_module_of_the_folder_it_is_started_in(tmp_path):
    # as `octvideo predict` run from a downloads folder: the server's imports (PyAV, torch) import
    # the standard library's grp and socket, which Python would take from there first
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in ("grp", "socket", "tarfile"):
        (folder / f"{name}.py").write_text(f"open({name!r} + '.ran', 'w').close()\n")
    done = run_script(tmp_path, _GUARDED_SCRIPT, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["exit 0"]
    assert sorted(p.name for p in folder.iterdir()) == ["grp.py", "socket.py", "tarfile.py"]


def test_starting_the_worker_server_leaves_the_callers_ctrl_c_and_environment_as_they_were(
    monkeypatch,
):
    # the server starts with Ctrl-C ignored and PYTHONSAFEPATH=1; the caller keeps its own
    monkeypatch.delenv("PYTHONSAFEPATH", raising=False)
    previous = signal.signal(signal.SIGINT, _caller_sigint)
    try:
        start_worker_server()  # in the main thread: the one where it sets a handler
        assert signal.getsignal(signal.SIGINT) is _caller_sigint
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "PYTHONSAFEPATH" not in os.environ


def _caller_sigint(signum: int, frame: object) -> None:
    """A caller's own Ctrl-C handler."""


def _wait_for_sigint(conn: Connection) -> None:
    """Runs in a worker: signals itself SIGINT, then reports that it is still running."""
    os.kill(os.getpid(), signal.SIGINT)
    conn.send("running")
    conn.close()


def test_a_worker_leaves_ctrl_c_to_its_caller():
    # a terminal's Ctrl-C reaches every process of the group: the caller stops its workers and
    # reports it once, rather than each worker printing a KeyboardInterrupt traceback
    assert _reply_of(_wait_for_sigint) == ("running", 0)


def _wait_for_the_groups_stops(conn: Connection) -> None:
    """Runs in a worker: signals itself each stop, reports that it still runs, then waits."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        os.kill(os.getpid(), signum)
    conn.send("running")
    conn.recv()  # until its caller ends it


def test_a_worker_leaves_the_groups_sigterm_and_sighup_to_its_caller_whose_terminate_kills_it():
    # a scheduler's SIGTERM or a closed terminal's SIGHUP reaches the whole group: `data check`
    # took the worker killed by it for a video that killed its decoder
    ctx = worker_context()
    receive, send = ctx.Pipe()
    proc = ctx.Process(target=_wait_for_the_groups_stops, args=(send,))
    proc.start()
    try:
        assert run_with_deadline(120, receive.recv) == "running"
    finally:
        proc.terminate()
        proc.join()
        receive.close()
    assert proc.exitcode == -signal.SIGKILL


def _answer_after_the_caller_left(conn: Connection, ready: Connection) -> None:
    """Runs in a worker: serves tasks, answering each only once its caller has closed its end."""

    def answer(task: object) -> Iterator[object]:
        ready.recv()
        yield task

    serve(conn, answer)
    print("the worker returned")  # noqa: T201  (to the caller's stdout, which the test reads)


def _break_a_pipe() -> None:
    """Runs in a worker: its own work fails on a broken pipe (a pipe of its work, not its
    caller's)."""
    raise BrokenPipeError(32, "a pipe of the work")


_CLOSED_PIPE_CALLER = """
from octvideo.data.workers import exit_reason, worker_context
from tests.data.test_workers import _answer_after_the_caller_left, _break_a_pipe

ctx = worker_context()
mine, theirs = ctx.Pipe()
go, ready = ctx.Pipe(duplex=False)
proc = ctx.Process(target=_answer_after_the_caller_left, args=(theirs, go))
proc.start()
theirs.close()
mine.send(1)
mine.close()  # the caller stopped before the answer came
ready.send("closed")
proc.join(120)
print("caller gone:", exit_reason(proc))
proc = ctx.Process(target=_break_a_pipe)
proc.start()
proc.join(120)
print("own work:", exit_reason(proc))
"""


def test_a_worker_whose_caller_closed_its_pipe_exits_quietly_and_one_whose_work_did_fails():
    # the caller stopped (Ctrl-C) and closed the pipe a worker sends its result to: the worker
    # ends with no BrokenPipeError traceback after the caller's one "stopped" line. A broken
    # pipe of the work itself is a failure the caller reports ("decoder process died (exit code
    # 1)") with its traceback above, not a worker that ended well (exit code 0)
    done = run_code(_CLOSED_PIPE_CALLER)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "the worker returned",
        "caller gone: exit code 0",
        "own work: exit code 1",
    ]
    assert done.stderr.count("Traceback") == 1
    assert done.stderr.rstrip().endswith("BrokenPipeError: [Errno 32] a pipe of the work")


def _twice(task: int):
    """A task's messages: the task, then its double."""
    yield task
    yield 2 * task


def test_serve_answers_each_task_in_order_and_stops_at_none():
    parent, child = Pipe()
    for message in (1, 5, None, 7):  # 7 comes after the stop: never taken
        parent.send(message)
    serve(child, _twice)
    assert [parent.recv() for _ in range(4)] == [1, 2, 5, 10]
    assert not parent.poll()  # nothing more was sent
    assert child.recv() == 7


def test_serve_stops_when_the_parent_goes_away():
    parent, child = Pipe()
    parent.send(3)
    parent.close()  # the task already sent is still taken, then EOF ends the loop
    taken = []

    def take(task: int) -> tuple[()]:
        taken.append(task)
        return ()

    serve(child, take)
    assert taken == [3]


@pytest.mark.parametrize(
    ("cores", "low", "count", "refused"),
    [(2, 0, 8, False), (2, 0, 9, True), (2, 1, 0, True), (1, 0, 4, False), (32, 1, 65, True)],
)
def test_a_worker_count_is_bounded_by_the_cores_and_the_commands_cap(
    monkeypatch, cores, low, count, refused
):
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    if not refused:
        assert check_worker_count("--workers", count, low=low, cap=64) == count
        return
    limit, unit = min(64, 4 * cores), "core" if cores == 1 else "cores"
    with pytest.raises(ValueError) as info:
        check_worker_count("--workers", count, low=low, cap=64)
    assert str(info.value) == (
        f"--workers {count}: give {low} to {limit} (at most 4 per CPU core and 64 in all; this "
        f"machine has {cores} CPU {unit} available)"
    )


def test_usable_cores_are_the_ones_this_process_may_run_on():
    assert 1 <= workers_module.usable_cores() <= (os.cpu_count() or 1)
