"""stdout and stderr of the commands (``octvideo`` and ``tools/bench.py``): a stream closed
before the command starts (``>&-``) is given /dev/null; while a command whose output is files
runs, a stream that cannot be written (its reader gone, or full) stops the view of its progress,
not the work (``progress_streams``); a full stream stops a command whose output is what it prints
in one line (``stream_stopped``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import TextIO

from octvideo.paths import TEXT_ERRORS

# errors of a write to stdout or stderr (``> /dev/full``): the output has nowhere to go
_STREAM_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG})

# ``logger.info(..., extra=RESULT)``: the line that says what a library call made (a run's
# folder, a test's accuracy, a dataset written or checked). A caller of the function gets it
# from its own logging; a command prints that result on stdout, and its logging
# (``octvideo.engine.logs``) leaves the line out of stderr, where it said the result twice.
RESULT_KEY = "octvideo_result"
RESULT = {RESULT_KEY: True}


def open_closed_streams() -> None:
    """Gives a stdout or stderr that was closed (``>&-``; Python sets it to None) /dev/null, on
    its own file descriptor: so that the command runs and prints nowhere instead of failing at
    its first print, and no file the command opens takes descriptor 1 or 2, where a library's
    messages would land in it."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            setattr(sys, name, open(fd, "w", errors=TEXT_ERRORS, closefd=False))  # noqa: SIM115


def stream_stopped(prog: str, err: OSError) -> int | None:
    """The exit status, 1, of a command that ``err`` stopped because stdout or stderr is full
    (``> /dev/full``), once it has said so in one line, ``PROG: stopped: cannot write to stdout
    or stderr (...)``, where stderr still takes it; None where ``err`` is another error (one
    that names a file is that file's), for the caller to report. stdout then points at
    /dev/null, so that the interpreter's own flush at exit fails on nothing."""
    if err.filename is not None or err.errno not in _STREAM_ERRNOS:
        return None
    to_devnull(sys.stdout)
    with contextlib.suppress(OSError):
        print(  # noqa: T201
            f"{prog}: stopped: cannot write to stdout or stderr ({err.strerror}); the files "
            "written are kept",
            file=sys.stderr,
            flush=True,
        )
    return 1


def to_devnull(stream: TextIO) -> None:
    """Points ``stream`` (stdout, stderr) at /dev/null, on its own file descriptor: the text it
    still holds, and the interpreter's own flush at exit, find no closed pipe to fail on (the
    recipe of Python's ``signal`` documentation)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # a stream without a descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class _ProgressStream:
    """stdout or stderr of a command whose output is files: what it prints there is a view of its
    progress, so a stream that cannot be written stops the view, not the work: a reader that goes
    away (``| head -1``, ``| true``) and a full one (``> /dev/full``, a log on a full disk:
    ``_STREAM_ERRNOS``). The first write or flush that fails so points the
    stream at /dev/null (``to_devnull``) and the command goes on, writing its files whole and
    ending with its own status (a stop there would leave the records of the inputs done in place
    of an earlier complete file); ``dropped`` keeps a full stream's error, which
    ``progress_streams`` names at the end. Anything else is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.dropped: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as err:
            self._stop_view(err)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            self._stop_view(err)

    def _stop_view(self, err: OSError) -> None:
        full = err.filename is None and err.errno in _STREAM_ERRNOS
        if not (isinstance(err, BrokenPipeError) or full):
            raise err
        to_devnull(self._stream)
        if full and self.dropped is None:
            self.dropped = err

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


@contextlib.contextmanager
def progress_streams(prog: str) -> Iterator[None]:
    """stdout and stderr as ``_ProgressStream``s while the command ``prog`` (``octvideo data
    synth``, ``tools/bench.py long-video``), whose output is files, runs; the streams themselves
    are put back after, for a caller of ``main`` in-process. When stdout was full, one line on
    stderr at the end, where it can still be written, says so: ``PROG: the lines to stdout from
    the first that could not be written on were dropped (No space left on device)``."""
    streams = sys.stdout, sys.stderr
    views = [_ProgressStream(stream) for stream in streams]
    sys.stdout, sys.stderr = views  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        out, err = views
        if out.dropped is not None and err.dropped is None:
            with contextlib.suppress(OSError, ValueError):  # stderr full or gone as well
                print(  # noqa: T201
                    f"{prog}: the lines to stdout from the first that could not be written on "
                    f"were dropped ({out.dropped.strerror})",
                    file=sys.stderr,
                    flush=True,
                )
