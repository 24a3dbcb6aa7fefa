"""Signal handlers set for a block of code and put back after it, in the main thread only.

Python runs a signal's handler in the main thread and lets only that thread set one
(``signal.signal`` raises ``ValueError`` elsewhere). A command run in another thread (a test, a
notebook's worker thread) keeps the handlers it has: ``handler`` and ``restored`` do nothing
there. This module imports nothing of octvideo, so that every layer may use it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

# what ``signal.signal`` takes: a function, ``signal.SIG_DFL`` or ``signal.SIG_IGN``
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


def in_main_thread() -> bool:
    """Whether this is the main thread, the one thread where signal handlers can be set."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def restored(signum: int) -> Iterator[None]:
    """Puts back, when the block ends, the handler ``signum`` has when it begins, whatever the
    block (or a library it calls) sets in between. A handler that was not set from Python
    (``signal.getsignal`` gives None) cannot be put back: the default is, in its place."""
    if not in_main_thread():
        yield
        return
    previous = signal.getsignal(signum)
    try:
        yield
    finally:
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def handler(signum: int, fn: Handler) -> Iterator[None]:
    """``fn`` handles ``signum`` inside the block, and the handler before it does again after.

    Example::

        with handler(signal.SIGINT, signal.SIG_IGN):  # Ctrl-C waits until the block ends
            start_the_server()
    """
    with restored(signum):
        if in_main_thread():
            signal.signal(signum, fn)
        yield


def exit_now(status: int) -> NoReturn:
    """Ends the process with ``status``, as the interpreter's exit does, but as soon as its
    work is done: for a program whose last line is printed and whose status is decided.

    The interpreter's own exit joins the other threads, runs the ``atexit`` functions (worker
    pools, log handlers) and flushes stdout and stderr, then frees every module's objects one by
    one (up to seconds with torch loaded), with Ctrl-C and SIGTERM at their default action: a
    signal there killed a finished command, as though its work were lost. Here the first three
    steps run with SIGTERM and Ctrl-C ending the process at once with ``status``, and the
    fourth is skipped: the operating system frees a process's memory whole.
    """

    def leave(signum: int, frame: FrameType | None) -> None:
        _flush_streams()
        os._exit(status)

    if in_main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, leave)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    _flush_streams()
    os._exit(status)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a stream closed, gone or full: nothing to keep
            if stream is not None:
                stream.flush()
