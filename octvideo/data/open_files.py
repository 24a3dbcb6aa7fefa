"""The open-file limit of a command that starts worker processes.

A command that starts workers (``train`` and ``test`` with ``data.num_workers``, ``predict``,
``data check``, ``data prepare``) calls ``reserve_open_files`` once, before they start: it raises
the soft limit to the hard one, then refuses, in one line and before any work, workers the limit
cannot hold. ``FORK_SERVER_OPEN_FILES`` and ``DATA_LOADER_OPEN_FILES`` say how many files each
kind of worker needs. Past the limit workers would fail on their pipes, or in PyTorch's data
loader hang for ever while its workers log "Too many open files" without end.

An EMFILE or ENFILE met anyway (``out_of_open_files``, also a decoder's: the file may be fine, so
no video is to blame) ends the command with one line naming the limit (``open_files_message``,
``stops_when_out_of_files``);
``stop_forked_workers_out_of_files`` makes a forked data-loader worker that meets one exit instead
of hang.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import resource
import sys
from collections.abc import Callable, Iterator

from octvideo.errors import RunStopped

logger = logging.getLogger(__name__)

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
# errno values of running out of open files: the process's (EMFILE) or the system's (ENFILE). A
# decoder's FFmpeg reports them as AVERROR(errno) codes, like a file's faults. Not ENOMEM: FFmpeg
# returns it for a corrupt header's absurd allocation too, the file's fault.
OUT_OF_FILES_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE})


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
    # some systems refuse an unlimited soft limit: then the files needed, at least
    targets = (hard, max(soft, needed)) if hard == infinite else (hard,)
    for target in targets:
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


def out_of_files_error(err: BaseException) -> OSError | None:
    """The ``OSError`` out of open files (``OUT_OF_FILES_ERRNOS``) that ``err`` is, or was raised
    from or during; None when there is none."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in OUT_OF_FILES_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


def out_of_open_files(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from or during, is EMFILE or ENFILE
    (``out_of_files_error``)."""
    return out_of_files_error(err) is not None


def open_files_message(what: str) -> str:
    """One line for an EMFILE that ``what`` met: names the limit and what to do."""
    limit = open_file_limit()
    shown = "unlimited" if limit is None else str(limit)
    return (
        f"{what} ran out of open files (the open-file limit is {shown}); raise `ulimit -n` or "
        "use fewer workers"
    )


@contextlib.contextmanager
def stops_when_out_of_files(what: str) -> Iterator[None]:
    """Inside, an ``OSError`` that is EMFILE or ENFILE (``out_of_open_files``) stops the command:
    ``RunStopped`` with the one line of ``open_files_message(what)``. Other errors pass as they
    are."""
    try:
        yield
    except OSError as err:
        if not out_of_open_files(err):
            raise
        raise RunStopped(open_files_message(what)) from err


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
