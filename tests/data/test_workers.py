"""``worker_context``: worker processes come from one fork server that has imported every module a
worker runs, and are not children of the process that starts them."""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection

from octvideo.data.workers import PRELOAD, worker_context
from tests.deadline import run_with_deadline


def _report(conn: Connection) -> None:
    """Runs in a worker: sends the preloaded modules it found imported, and its parent."""
    conn.send(([name for name in PRELOAD if name in sys.modules], os.getppid()))
    conn.close()


def _start_one() -> tuple[list[str], int]:
    ctx = worker_context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_report, args=(send,))
    proc.start()
    send.close()
    try:
        return receive.recv()
    finally:
        proc.join()
        receive.close()


def test_a_worker_starts_with_every_worker_module_imported_and_not_as_a_fork_of_its_caller():
    # the fork server skips a module it cannot import without a word: a misspelt name would
    # cost every worker that import instead
    loaded, parent = run_with_deadline(120, _start_one)
    assert loaded == list(PRELOAD)
    assert parent != os.getpid()
