"""Every exception octvideo raises, in one module that imports nothing of octvideo.

Any layer may import this module (``octvideo.ops`` and ``octvideo.models`` need none of it and
import none); the command line (``octvideo.cli``) sits on top and reports three families as one
line without a traceback:

    OctvideoError
    |-- UsageError            what the user passed cannot be used: ``octvideo CMD: error: ...``,
    |   |                     exit status 2
    |   |-- ConfigError       a config file or ``key=value`` override that does not fit the schema
    |   |-- InputPathError    an input file or folder that is not there (also a
    |   |                     FileNotFoundError)
    |   |-- AnnotationError   an annotation file, video folder or class list (also a ValueError)
    |   `-- CheckpointError   a checkpoint without what it is used for, or with malformed
    |                         metadata (also a ValueError)
    |-- RunStopped            a run that ended on a fault outside the code (a full disk, a
    |   |                     non-finite loss, a dead data-loader worker): ``octvideo CMD:
    |   |                     stopped: ...``, exit status 1, saying what was kept
    |   |-- OutputWriteError  an output file that cannot be written; nothing half-written is left
    |   |   `-- CheckpointWriteError  a checkpoint that cannot be written; the old file is intact
    |   |-- NonFiniteLoss     a NaN or infinite training loss or gradient; the step was not taken
    |   `-- WorkerStartError  a worker process exited before it ran its work (a script that
    |                         starts workers outside ``if __name__ == "__main__":``)
    |-- DecodeError           a video that exists but cannot be decoded (a RuntimeError)
    |-- TooManyBadVideos      a training item found no decodable video in its retries (a
    |                         RuntimeError)
    |-- TooManyWindows        a video that would get more sliding windows than allowed (a
    |                         ValueError)
    |-- TextFileError         a text file over its size bound or not UTF-8 (a ValueError)
    |-- ExportError           an exported model that does not reproduce the checkpoint's logits
    |                         (a RuntimeError)
    `-- RunFailed             one run of a sweep failed; the sweep records it and goes on

    KeyboardInterrupt
    `-- Interrupted           Ctrl-C stopped a command: ``octvideo CMD: stopped by Ctrl-C``, exit
        |                     status 130; ``train`` and ``test`` go on to say where they
        |                     stopped and what was kept (``str(err)`` is the line after CMD)
        `-- Terminated        SIGTERM, raised where a command is so that it unwinds as on Ctrl-C
                              (``train`` and ``test`` stop at a batch boundary first): ``octvideo
                              CMD: stopped by SIGTERM``, exit status 143

The others are caught where they happen and become part of a result: a ``DecodeError`` makes a
failed input (predict), a bad-file row (data check) or a skipped or failed video (train, test);
``TooManyBadVideos`` ends a training run as a ``RunStopped``;
``ExportError`` is reported by export as a usage error;
``TooManyWindows`` fails one input of predict; ``RunFailed`` is one failed row of a sweep;
``TextFileError`` is worded by the reader of that file as its own error (a ``ConfigError``, an
``AnnotationError``).
Classes also raised to library callers as ``ValueError`` or ``RuntimeError`` keep that base, so
``except ValueError`` around a library call catches them.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import signal as _signal
from collections.abc import Iterator
from pathlib import Path


class OctvideoError(Exception):
    """The base of every exception octvideo raises on purpose."""


class UsageError(OctvideoError):
    """A problem with the user's input, reported as one line without a traceback."""


class RunStopped(OctvideoError):
    """A run that stopped on a fault outside the code (a full disk, a non-finite loss, a
    data-loader worker that died): one line without a traceback, saying what was kept."""


class ConfigError(UsageError):
    """A config file or override that does not fit the schema; the message names the key."""


class InputPathError(UsageError, FileNotFoundError):
    """An input file or folder the user named that is not there; the message names it and what
    to do. A ``FileNotFoundError`` too, so that a library caller's ``except FileNotFoundError``
    catches it, while the command line reports only this one as the user's mistake: any other
    ``FileNotFoundError`` keeps its traceback."""


class AnnotationError(UsageError, ValueError):
    """An annotation file, folder or class list that cannot be used as given; the message names
    it and what to fix."""


# what to do about an output that cannot be written, by the OSError's errno
_WRITE_ADVICE = {
    _errno.ENOSPC: "free space there or choose another folder",
    _errno.EDQUOT: "free space within your quota or choose another folder",
    _errno.EROFS: "choose a folder on a writable file system",
    _errno.EFBIG: "choose a file system that takes larger files",
}


class OutputWriteError(RunStopped):
    """An output file could not be written (full disk, quota, read-only file system, lost
    permission); its temporary file is removed and an earlier file of that name is as it was.

    Attributes:
        path: the output file.
        errno: the ``OSError``'s errno (None when it had none).
        reason: the ``OSError``'s text (``No space left on device``).
        existed: whether an earlier file of that name was there (and is kept).
        kept: what is left of the files written with it as one result (``the earlier a.txt and
            b.txt are kept``, ``paths.AtomicOutputs``); None for a file written alone.

    ``kept`` replaces the message's "the earlier file is kept" (or "no part of it is left"): the
    files written with it as one result say what is left of them all (``paths.AtomicOutputs``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        err: OSError,
        *,
        existed: bool,
        kept: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.errno = err.errno
        self.reason = err.strerror or str(err) or type(err).__name__
        self.existed = existed
        self.kept = kept
        if kept is None:
            kept = "the earlier file is kept" if existed else "no part of it is left"
        advice = _WRITE_ADVICE.get(
            err.errno, "check the folder and its permissions, or choose another"
        )
        super().__init__(f"cannot write {self.path} ({self.reason}); {kept}; {advice}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command: a ``KeyboardInterrupt``, so that ``except Exception`` around a
    library call does not swallow it. ``str()`` is the command's line after its name: the
    message it was raised with, which says where the command stopped and what it kept (``stopped
    by Ctrl-C at global step 6; .../last.ckpt (global step 4) is kept; continue with --resume
    auto``), or ``stopped by Ctrl-C`` without one.

    Attributes:
        cause: ``"Ctrl-C"`` (``"SIGTERM"`` for ``Terminated``), the words after ``stopped by``.
        signum: the signal, SIGINT (SIGTERM); the command's exit status is ``status``,
            128 + signum: 130 (143).
    """

    cause = "Ctrl-C"
    signum = _signal.SIGINT

    @property
    def status(self) -> int:
        return 128 + int(self.signum)

    def __str__(self) -> str:
        return super().__str__() or f"stopped by {self.cause}"


class Terminated(Interrupted):
    """SIGTERM, as ``Interrupted`` is Ctrl-C. The command line raises it in the main thread of a
    command that does not stop on it by itself, so that the command unwinds as on Ctrl-C,
    stopping its workers, committing what it finished and removing what it had not; ``train``
    and ``test`` raise it where Lightning stops at a batch boundary, with their line."""

    cause = "SIGTERM"
    signum = _signal.SIGTERM


def raise_terminated(signum: int, frame: object) -> None:
    """The SIGTERM handler of the command line and the engine: raises ``Terminated`` where the
    main thread is. Lightning's loops recognise it (``octvideo.engine.run._lightning_loop``)
    and put their own stop at a batch boundary in its place."""
    raise Terminated


class WorkerStartError(RunStopped):
    """A worker process exited before it ran its work: Python first runs the caller's main script
    again in it (as ``__mp_main__``), and a script that starts workers outside ``if __name__ ==
    "__main__":`` fails there; a broken install can fail there too. The process's own error is
    on stderr above the message."""


class CheckpointWriteError(OutputWriteError):
    """A checkpoint could not be written (full disk, lost permission); the old file is intact.
    The message says which checkpoint is kept and how to continue the run; ``path``, ``errno``,
    ``reason`` and ``existed`` are those of ``written``, the failed write it reports."""

    def __init__(self, message: str, written: OutputWriteError) -> None:
        self.path, self.errno, self.reason = written.path, written.errno, written.reason
        self.existed = written.existed
        RunStopped.__init__(self, message)  # its own message, not OutputWriteError's


class NonFiniteLoss(RunStopped):
    """The training loss, or a gradient of the step, was NaN or infinite; the step was not taken.
    One class for both: a run stops the same way and names the last good checkpoint either way."""


class DecodeError(OctvideoError, RuntimeError):
    """A video that exists but cannot be decoded.

    The message is ``"<path>: <reason>"``. Under ``decoder="auto"`` it is the error of the
    decoder tried last (PyAV's, when decord failed first; decord's own is logged at DEBUG).

    Attributes:
        path: the video file.
        reason: what went wrong, in the decoder's own words where it gave any, without the path.
        decoder: ``"decord"`` or ``"pyav"``, the decoder that failed; None where none is known.
        frame: the frame index that could not be read, where one is known; else None.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        *,
        decoder: str | None = None,
        frame: int | None = None,
    ) -> None:
        super().__init__(os.fspath(path), reason)  # the args pickle rebuilds it from
        self.path = os.fspath(path)
        self.reason = reason
        self.decoder = decoder
        self.frame = frame

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class TooManyBadVideos(OctvideoError, RuntimeError):
    """A training item found no decodable video in ``data.max_retries`` + 1 tries; the message
    is one line naming every file tried and its error.

    Raised in a DataLoader worker, it reaches the main process rebuilt by PyTorch from its
    formatted traceback alone (``TooManyBadVideos(text)``): the message is then PyTorch's
    ``Caught TooManyBadVideos in DataLoader worker ...`` text, whose last line is the original
    message, and ``failures`` is empty; ``reason`` is the original message either way.

    Attributes:
        failures: ``(path, error)`` of each video tried, in order.
    """

    def __init__(self, message: str, *, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures or [])

    @property
    def reason(self) -> str:
        """The message raised in the worker: ``str(self)``, or the text after the last
        ``TooManyBadVideos: `` of PyTorch's rebuilt traceback when ``failures`` is empty."""
        if self.failures:
            return str(self)
        return str(self).rsplit(f"{type(self).__name__}: ", 1)[-1].strip()


class CheckpointError(UsageError, ValueError):
    """A checkpoint that lacks what it is used for, or whose metadata is malformed.

    Attributes:
        field: the metadata entry at fault (``"clip.num_frames"``), None when it is not one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[CheckpointError], tuple[str, str | None]]:
        return type(self), (str(self), self.field)  # the field survives pickling


class TooManyWindows(OctvideoError, ValueError):
    """A video that would get more than ``MAX_WINDOWS`` windows at the stride asked for."""


class TextFileError(OctvideoError, ValueError):
    """A text file over its size bound, or not UTF-8 (``paths.read_utf8``); its reader words it
    from the fields as its own error.

    Attributes:
        path: the file.
        limit: the most bytes it may hold.
        line: the line (from 1) of the first byte that is not UTF-8; None for a file over
            ``limit``.
        byte: that byte's value; None for a file over ``limit``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        limit: int,
        line: int | None = None,
        byte: int | None = None,
    ) -> None:
        self.path, self.limit, self.line, self.byte = path, limit, line, byte
        if line is None:
            super().__init__(f"{path} is over {limit} bytes")
        else:
            super().__init__(f"{path}:{line}: not UTF-8 text (byte 0x{byte:02x})")

    def __reduce__(self) -> tuple[type[TextFileError], tuple[object, ...]]:
        return type(self), (self.path, self.limit, self.line, self.byte)


class ExportError(OctvideoError, RuntimeError):
    """The exported model does not reproduce the checkpoint's logits."""


class RunFailed(OctvideoError):
    """One run of the study failed; the message is its one-line reason."""


def failure_reason(err: BaseException) -> str:
    """Why an input failed, for its record and line: ``Type: message`` (a ``DecodeError``, a
    decoder's own error), but the message alone for an ``OSError`` about the path itself (it does
    not exist, is a folder, a pipe or a device, cannot be read), whose message names the path and
    what it is, where a class name (``FileNotFoundError`` for a pipe) would mislead."""
    if isinstance(
        err, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        return str(err) or type(err).__name__
    return f"{type(err).__name__}: {err}"


def first_line(err: BaseException, empty: str | None = None) -> str:
    """The first line of ``err``'s message, for a one-line report of an error whose text goes on
    with detail (torch's shape errors, PyYAML's quote of the line); ``empty``, by default the
    exception's type name, where the message is blank."""
    text = str(err).strip()
    if text:
        return text.splitlines()[0]
    return type(err).__name__ if empty is None else empty


def one_line(err: BaseException, empty: str | None = None) -> str:
    """``err``'s whole message on one line (each run of spaces and line breaks one space), for
    errors whose every line says something (a converter's list of keys); ``empty``, by default
    the exception's type name, where the message is blank."""
    text = " ".join(str(err).split())
    if text:
        return text
    return type(err).__name__ if empty is None else empty


@contextlib.contextmanager
def usage_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Reports an error of ``kinds`` raised inside as a ``UsageError`` with its message: for a
    library call whose ``ValueError`` says what the user passed wrong. A ``UsageError`` among
    them (an ``AnnotationError``, a ``CheckpointError``) goes on as it is, with its fields; any
    other error, a bug's, keeps its traceback."""
    try:
        yield
    except UsageError:
        raise
    except kinds as err:
        raise UsageError(str(err)) from err
