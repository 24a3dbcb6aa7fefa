"""Signal handlers set for a block of code and put back after it, and the program's exit.

Python runs a signal's handler in the main thread and lets only that thread set one
(``signal.signal`` raises ``ValueError`` elsewhere). A command run in another thread (a test, a
notebook's worker thread) keeps the handlers it has: ``handler`` and ``restored`` do nothing
there.

``finishing`` marks the moment a command's work is written and its status known (it is about to
print its last line): from then on SIGINT, SIGTERM and SIGHUP stop nothing. ``exit_now`` ends the
program with that status, with SIGTERM, SIGHUP and Ctrl-C unable to turn a finished command into
a stopped one. ``hangup_as_terminate`` makes SIGHUP (the terminal closed, an ssh session dropped)
do what SIGTERM does at that moment, whoever handles SIGTERM.
``end_with_parent`` makes a command that another started (a ``sweep``'s runs) get SIGTERM when
that one ends, SIGKILL included. ``ignore_stops`` is what every worker process octvideo starts
runs first: a stop sent to the whole process group (a terminal's Ctrl-C or SIGHUP, a scheduler's
SIGTERM to a job) is its caller's, which stops its workers itself.
SIGQUIT (Ctrl-\\) keeps its default, an immediate end with a core dump: what it is asked for.
This module imports nothing of octvideo, so that every layer may use it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

# what ``signal.signal`` takes: a function, ``signal.SIG_DFL`` or ``signal.SIG_IGN``
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers

# the signals that stop a command: Ctrl-C, SIGTERM and SIGHUP (the terminal closed)
STOPS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def in_main_thread() -> bool:
    """Whether this is the main thread, the one thread where signal handlers can be set."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def restored(*signums: int) -> Iterator[None]:
    """Puts back, when the block ends, the handler each of ``signums`` has when it begins,
    whatever the block (or a library it calls) sets in between. A handler that was not set from
    Python (``signal.getsignal`` gives None) cannot be put back: the default is, in its place."""
    if not in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in signums}
    try:
        yield
    finally:
        for signum, fn in previous.items():
            signal.signal(signum, signal.SIG_DFL if fn is None else fn)


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


def ignore_stops() -> None:
    """This process (a worker) ignores SIGINT, SIGTERM and SIGHUP from now on: a stop sent to the
    whole process group (Ctrl-C, ``scancel``, a SLURM time limit, systemd's stop, a terminal
    closed) is its caller's, which stops at a safe point, ends its workers and reports the stop
    once. A worker killed by that stop instead lost the caller its last steps, and its death was
    taken for a bad video. The caller ends its workers itself: it asks them (a closed pipe, a last
    task), else kills them (SIGKILL). A stop held since the fork (``held_for_fork``) is dropped."""
    for signum in STOPS:
        signal.signal(signum, signal.SIG_IGN)  # which drops one pending
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


@contextlib.contextmanager
def held_for_fork() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP are blocked in this thread inside the block, so that a process
    forked in it starts with them blocked: a stop sent to the process group as it starts stays
    pending in it until it ignores it (``ignore_stops``), instead of ending it before then. This
    process loses none: another thread takes them meanwhile (Python runs the handler in the main
    thread all the same), or this one as the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal this process gets when its parent ends


def end_with_parent(parent: int) -> None:
    """This process gets SIGTERM when ``parent``, the process that started it, ends, even of
    SIGKILL (the out-of-memory killer, ``kill -9``), and at once where ``parent`` has ended
    already: a ``sweep``'s run stops as on any SIGTERM (a training run keeps last.ckpt) instead of
    running on unseen, holding its run folder against the restarted sweep. Linux only
    (``prctl(PR_SET_PDEATHSIG)``, a signal sent as the thread that started this process ends);
    elsewhere it does nothing.

    Raises:
        OSError: the kernel refused the setting.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != parent:  # it ended before the setting took: nobody is left to stop this
        os.kill(os.getpid(), signal.SIGTERM)


def _terminate(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGTERM)  # its handler runs here, in the main thread


@contextlib.contextmanager
def hangup_as_terminate() -> Iterator[None]:
    """Inside the block SIGHUP raises SIGTERM, so that it does what SIGTERM does then, whatever
    handles SIGTERM: the command line's ``Terminated``, Lightning's stop at a batch boundary, a
    sweep's; by default SIGHUP ends the process at once, leaving temporary files and losing what
    was done. A SIGHUP that is ignored (``nohup``) stays ignored."""
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL:
        yield
        return
    with handler(signal.SIGHUP, _terminate):
        yield


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP that arrive inside the block are held, and the first of them is
    raised again, to the handler before the block, as it ends: a step that must finish whole (a
    process started and recorded as the caller's, so that a stop kills it; a library's import,
    whose code may catch the ``KeyboardInterrupt`` or be left half made) is not cut. A block
    that fails still raises the held signal, which then stands for the failure. Outside the main
    thread it does nothing."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    try:
        with restored(*STOPS):
            if in_main_thread():
                for signum in STOPS:
                    if signal.getsignal(signum) is not signal.SIG_IGN:
                        signal.signal(signum, hold)
            yield
    finally:  # also where the block failed of the same stop (a fork server it killed)
        if held:
            signal.raise_signal(held[0])


def _finished(signum: int, frame: FrameType | None) -> None:
    """What SIGINT, SIGTERM and SIGHUP do once a command is finishing: nothing."""


def finishing() -> None:
    """The command's work is written and its status known: from here on SIGINT, SIGTERM and
    SIGHUP stop nothing, as ``exit_now`` will not let them a moment later. Called as a command
    prints its last line: a stop after it reported a finished command as stopped (status 130),
    and a Ctrl-C while the command's objects were freed printed a traceback from one's
    ``__del__`` (a progress bar's). A caller that goes on after the command puts the handlers
    back (``restored(*STOPS)``). An ignored signal (``nohup``'s SIGHUP) stays ignored, and
    outside the main thread nothing is set.

    A handler that does nothing rather than ``SIG_IGN``: a program the command starts after this
    gets the default, not an ignored Ctrl-C, and ``exit_now`` tells ``nohup``'s apart.
    """
    if not in_main_thread():
        return
    for signum in STOPS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _finished)


def exit_now(status: int) -> NoReturn:
    """Ends the process with ``status`` once its last line is printed: the other threads are
    joined, the ``atexit`` functions run (worker pools, log handlers) and stdout and stderr
    flushed, as at the interpreter's exit, and SIGTERM, SIGHUP or Ctrl-C meanwhile ends it at
    once with ``status``.

    The interpreter's exit would then free every module's objects one by one, seconds with torch
    loaded, and a signal during that killed a finished command. Here the operating system frees
    the memory whole.
    """

    def leave(signum: int, frame: FrameType | None) -> None:
        _flush_streams()
        os._exit(status)

    if in_main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, leave)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup's stays ignored
            signal.signal(signal.SIGHUP, leave)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # private, but the only way to run them before os._exit
    _flush_streams()
    os._exit(status)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a stream closed, gone or full: nothing to keep
            if stream is not None:
                stream.flush()
