"""Output files and folders, checked before any work and written atomically.

An output path is checked before the checkpoint is loaded or a video decoded: it must not be a
folder or a symbolic link, its folder must be writable (a file is created there and removed), and
it must not be one of the files the command reads (the checkpoint, an input video), which writing
would destroy, nor a pipe or a device, which the finished file would replace.

Every output file (checkpoints, reports, records, renders, exports) is written by
``AtomicOutput``: to a temporary file beside it, created with the umask's permissions, fsynced
and renamed over the destination only when complete, so a failure never leaves half a file and an
earlier file of that name stays as it was. A write failure (full disk, quota, read-only file
system) becomes ``OutputWriteError``, one line naming the file, with the temporary file removed.
A symbolic link at an output path is refused, never written through and never replaced: writing
through it would overwrite the file it points to, which the command was not given.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from octvideo.errors import OutputWriteError, UsageError


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name one file (through links, ``..`` and hard links)."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # either does not exist (yet)
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def nearest_existing(path: str | os.PathLike[str]) -> Path:
    """``path`` or its nearest ancestor that exists (``/`` or ``.`` when none does)."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def make_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Creates ``folder`` and writes a file in it, so that a command fails before its work.

    Raises:
        OSError: it cannot be created or written; ``NotADirectoryError`` with ``filename`` set
            to the file when ``folder`` is a file or lies inside one.
    """
    folder = Path(folder)
    existing = nearest_existing(folder)
    if existing.exists() and not existing.is_dir():  # a file where the folder or a parent would be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(existing))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass
    return folder


def check_folder(
    option: str,
    folder: str | os.PathLike[str],
    given: str | os.PathLike[str] | None = None,
    *,
    advice: str = "choose another path",
) -> Path:
    """``make_writable_folder`` with errors that name ``option`` and ``given`` (the path given,
    default ``folder``) and end with ``advice``.

    Raises:
        UsageError: ``folder`` is a file, lies inside one, or cannot be created or written.
    """
    folder = Path(folder)
    given = folder if given is None else given
    try:
        return make_writable_folder(folder)
    except NotADirectoryError as err:
        raise UsageError(
            f"{option} {given}: {err.filename} is a file, not a folder; {advice}"
        ) from err
    except OSError as err:
        raise UsageError(
            f"{option} {given}: cannot write in {folder} ({err.strerror or err}); {advice}"
        ) from err


def _keys(path: str | os.PathLike[str]) -> list[tuple]:
    keys: list[tuple] = [("path", os.path.realpath(path))]  # a symlink loop is no error here
    with contextlib.suppress(OSError):
        st = os.stat(path)
        keys.append(("inode", st.st_dev, st.st_ino))  # hard links, bind mounts
    return keys


class ReadFiles:
    """The files a command reads (``(what, path)`` pairs), to refuse outputs that would overwrite
    one of them; paths are compared resolved and by inode, so links and ``..`` do not hide one."""

    def __init__(self, files: Iterable[tuple[str, str | os.PathLike[str]]]) -> None:
        self._by_key: dict[tuple, tuple[str, str | os.PathLike[str]]] = {}
        for what, path in files:
            for key in _keys(path):
                self._by_key.setdefault(key, (what, path))

    def find(self, path: str | os.PathLike[str]) -> tuple[str, str | os.PathLike[str]] | None:
        """``(what, path)`` of the read file that ``path`` names, or None."""
        for key in _keys(path):
            if key in self._by_key:
                return self._by_key[key]
        return None


def refuse_special_file(path: str | os.PathLike[str], option: str | None = None) -> None:
    """Refuses what an output file must not replace: a symbolic link (writing through it would
    overwrite the file it points to, and replacing it would silently undo the link), and a pipe,
    device or socket (``/dev/null``, a FIFO a reader waits on), which the rename of a finished
    output would replace with a regular file. A folder is refused by ``check_output_file``.

    Raises:
        UsageError: ``path`` is a symbolic link (a dangling one too), a pipe, a device or a socket.
    """
    name = f"{option} {os.fspath(path)}" if option else os.fspath(path)
    if os.path.islink(path):
        raise UsageError(
            f"{name} is a symbolic link to {os.readlink(path)}; give the real path or remove "
            "the link"
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:  # not there (yet), or not to be looked at: the write will say
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UsageError(
            f"{name} is a pipe, a device or a socket, not a file; give a file name (an output is "
            "written beside it and renamed over it, which would replace it)"
        )


def check_output_file(
    option: str,
    path: str | os.PathLike[str],
    reads: ReadFiles | None = None,
    *,
    folder: bool = True,
) -> Path:
    """Checks that ``path`` can be written as a file and is none of the files in ``reads``
    (``folder=False`` skips the check of its folder, done once for many files).

    Raises:
        UsageError: ``path`` is a file the command reads, a symbolic link, a pipe or a device,
            a folder, or cannot be written.
    """
    path = Path(path)
    found = reads.find(path) if reads is not None else None
    if found is not None:
        what, source = found
        raise UsageError(
            f"{option} {path} is {what} {os.fspath(source)}: writing it would destroy it; "
            f"choose another path"
        )
    try:
        os.stat(path)  # a name too long, a loop of links: nothing can be written there either
    except (FileNotFoundError, NotADirectoryError):  # the folder's check says which
        pass
    except OSError as err:
        raise UsageError(f"{option} {path}: {err.strerror or err}; choose another path") from err
    refuse_special_file(path, option)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if folder:
        check_folder(option, path.parent, path)
    return path


# errors of a write that say the output cannot be written (not that an input cannot be read)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def _temporary_name(path: Path, token: str) -> str:
    # the destination's extension last: writers that choose a format by it (PyAV, matplotlib)
    # write the right one; name and extension cut so the name stays within 255 bytes
    suffix = path.suffix if len(path.suffix) <= 16 else ""
    return f".{path.name[:120]}.{token}.tmp{suffix}"


def temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of ``path`` beside it: left by writers that were killed mid-write (or
    being written now)."""
    path = Path(path)
    pattern = re.compile(re.escape(_temporary_name(path, "TOKEN")).replace("TOKEN", "[0-9a-f]{8}"))
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    return []


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # fsync needs no write access (Linux, macOS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicOutput:
    """A temporary file beside ``path`` (same extension, the umask's permissions) that replaces
    ``path`` when complete.

    As a context manager: on a clean exit the temporary file is fsynced and renamed over
    ``path`` (and the folder fsynced, so the rename is durable); on an exception it is removed.
    Every ``OSError`` of creating, writing (``write``) or renaming it becomes
    ``OutputWriteError``; an ``OSError`` raised by the code inside the block does so when its
    errno says the output cannot be written (``WRITE_ERRNOS``: full disk, quota, read-only file
    system), while others (a source video that cannot be read) pass unchanged.

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe or a device (see ``refuse_special_file``).
        OutputWriteError: the output cannot be written; nothing is left of it.
    """

    def __init__(self, path: str | os.PathLike[str], option: str | None = None) -> None:
        self.path = Path(path)
        refuse_special_file(self.path, option)
        self.existed = self.path.exists()
        for _ in range(100):
            tmp = self.path.with_name(_temporary_name(self.path, secrets.token_hex(4)))
            try:  # 0o666 less the umask, as open() gives every other output (mkstemp: 0o600)
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
            except FileExistsError:
                continue
            except OSError as err:
                raise self.error(err) from err
            self.tmp = tmp
            return
        raise self.error(FileExistsError(errno.EEXIST, "no free temporary file name"))

    def error(self, err: OSError) -> OutputWriteError:
        """The ``OutputWriteError`` for ``err``, a failure to write this output."""
        return OutputWriteError(self.path, err, existed=self.existed)

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Writes ``data`` (``str`` as UTF-8) as the whole temporary file.

        Raises:
            OutputWriteError: it cannot be written; the temporary file is removed.
        """
        try:
            with open(self.tmp, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        except OSError as err:
            self.discard()
            raise self.error(err) from err

    def commit(self) -> Path:
        """Makes the temporary file ``path``.

        Raises:
            OutputWriteError: the file cannot be flushed to disk or renamed; the temporary file is
                removed and an earlier ``path`` kept.
        """
        try:
            _fsync(self.tmp)  # a full disk that the writes did not report shows here (NFS)
            os.replace(self.tmp, self.path)  # replaces a link made since the check, never follows
        except OSError as err:
            self.discard()
            raise self.error(err) from err
        except BaseException:  # Ctrl-C during the fsync: no temporary file is left behind
            self.discard()
            raise
        try:  # makes the rename durable
            _fsync(self.path.parent)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems without it
                raise self.error(err) from err
        return self.path

    def discard(self) -> None:
        """Removes the temporary file (if it is still there)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if err is None:
            self.commit()
            return
        self.discard()
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            raise self.error(err) from err


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], option: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` (same extension) that replaces ``path`` on success (see
    ``AtomicOutput``, which says which errors become ``OutputWriteError``).

    On an exception the temporary file is removed and ``path`` is left as it was.

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe or a device.
        OutputWriteError: the output cannot be written.
    """
    with AtomicOutput(path, option) as out:
        yield out.tmp


def write_atomically(
    path: str | os.PathLike[str],
    data: bytes | bytearray | memoryview | str,
    option: str | None = None,
) -> Path:
    """Writes ``data`` (``str`` as UTF-8) as ``path`` through ``AtomicOutput``.

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe or a device.
        OutputWriteError: it cannot be written; an earlier file is kept, no temporary file left.
    """
    with AtomicOutput(path, option) as out:
        out.write(data)
    return out.path


def write_failure(err: BaseException) -> str:
    """Why an output could not be written (``No space left on device``): an ``OSError``'s text,
    or the ``reason`` of the ``RunStopped`` that ``atomic_output`` may turn one into."""
    return getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err)
