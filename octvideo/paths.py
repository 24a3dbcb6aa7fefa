"""Output files and folders, checked before any work and written atomically (``predict``,
``export``; ``train`` and ``test`` check their folders with ``make_writable_folder``).

An output path is checked before the checkpoint is loaded or a video decoded: it must not be a
folder, its folder must be writable (a file is created there and removed), and it must not be one
of the files the command reads (the checkpoint, an input video), which writing would destroy.
Rendered videos and exported models go to a temporary file in the destination folder that is
renamed over the destination only when complete, so a failure never leaves half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from octvideo.cli import UsageError


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name one file (through links, ``..`` and hard links)."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # either does not exist (yet)
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) when it is not a folder."""
    for path in (folder, *folder.parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def make_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Creates ``folder`` and writes a file in it, so that a command fails before its work.

    Raises:
        OSError: it cannot be created or written; ``NotADirectoryError`` with ``filename`` set
            to the file when ``folder`` is a file or lies inside one.
    """
    folder = Path(folder)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(blocker))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass
    return folder


def check_folder(
    option: str, folder: str | os.PathLike[str], given: str | os.PathLike[str] | None = None
) -> Path:
    """``make_writable_folder`` with errors that name ``option`` and ``given`` (the path given,
    default ``folder``).

    Raises:
        UsageError: ``folder`` is a file, lies inside one, or cannot be created or written.
    """
    folder = Path(folder)
    given = folder if given is None else given
    try:
        return make_writable_folder(folder)
    except NotADirectoryError as err:
        raise UsageError(
            f"{option} {given}: {err.filename} is a file, not a folder; choose another path"
        ) from err
    except OSError as err:
        raise UsageError(
            f"{option} {given}: cannot write in {folder} ({err.strerror or err}); "
            f"choose another path"
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
        UsageError: ``path`` is a file the command reads, a folder, or cannot be written.
    """
    path = Path(path)
    found = reads.find(path) if reads is not None else None
    if found is not None:
        what, source = found
        raise UsageError(
            f"{option} {path} is {what} {os.fspath(source)}: writing it would destroy it; "
            f"choose another path"
        )
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if folder:
        check_folder(option, path.parent, path)
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` (same extension) that replaces ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the output private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
