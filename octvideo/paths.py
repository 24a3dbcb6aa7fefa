"""Output files and folders, checked before any work and written atomically.

An output path is checked before the checkpoint is loaded or a video decoded: it must not be a
folder or a symbolic link, its folder must be writable or makeable (nothing is made: a command
refused later, for a bad checkpoint, leaves no folder), and it must not be one of the files the
command reads (the checkpoint, an input video), which writing would destroy, nor a pipe or a
device, which the finished file would replace.

Every output file (checkpoints, reports, records, renders, exports) is written by
``AtomicOutput``, which makes its folder (and removes it again, if still empty, when the write
fails): to a temporary file beside it, created with the umask's permissions, fsynced
and renamed over the destination only when complete, so a failure never leaves half a file and an
earlier file of that name stays as it was. A write failure (full disk, quota, read-only file
system) becomes ``OutputWriteError``, one line naming the file, with the temporary file removed.
Text is UTF-8, with a file name's bytes that are not UTF-8 as escapes (``TEXT_ERRORS``), so no
write fails on a name after the work. Files that are one result (a model and its preprocessing
file, a checkpoint and its run config) are written by ``AtomicOutputs``: all renamed in place
together, or none, the earlier ones put back when a later one cannot be.
A symbolic link at an output path is refused, never written through and never replaced: writing
through it would overwrite the file it points to, which the command was not given.

An input path that is not a regular file (a checkpoint, a list, a classes file that is a pipe, a
device, a broken link) is named as what it is by ``why_not_a_file``, never as "does not exist".
A text input (a config, a list, a classes file) is read by ``read_utf8``: at most its bound, and
a byte that is not UTF-8 named by its line, for the reader to word as its own error.

A writer killed mid-write (SIGKILL, power loss) leaves its temporary file. The temporary's name
holds the writer's pid (``.NAME.<pid>-<hex>.tmp.EXT``, NAME cut so that it fits the file system's
limit whenever the output's name does) and the writer holds a ``flock`` on it while it writes;
each successful write of ``path`` removes the temporaries of ``path`` whose writer is gone (no
process of that pid here, and no lock on the file: a writer on another host or in another pid
namespace of a shared folder holds its lock). A writer still running, or a pid
reused by another process, keeps its file. Temporaries of earlier versions, without a pid, are
taken as a dead writer's. A process lists each folder once, at its first write there (listing a
folder of 5000 files takes milliseconds, which a ``data synth`` of 100k clips would pay per clip):
the temporaries of a writer that dies after that are removed by a later run.

``hold_folder`` makes a command the only one writing a folder (``train`` a run folder, ``sweep``
its ``--out``): a ``flock`` on a lock file there, held while the command runs and freed by the
kernel when its process ends, a ``kill -9`` included, so no stale lock is ever left to clear.
Locks are not inherited by forked children (data-loader workers): a killed command's workers
do not keep its folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import pwd
import re
import secrets
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

from octvideo.errors import OutputWriteError, TextFileError, UsageError

logger = logging.getLogger(__name__)


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
    return made[-1].parent if (made := _folders_to_make(path)) else path


def _folders_to_make(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def make_writable_folder(folder: str | os.PathLike[str]) -> Path:
    """Creates ``folder`` and writes a file in it, so that a command fails before its work.

    Raises:
        OSError: it cannot be created or written; ``NotADirectoryError`` with ``filename`` set
            to the file when ``folder`` is a file or lies inside one.
    """
    folder = Path(folder)
    _nearest_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _probe_write(folder)
    return folder


def _probe_write(folder: Path) -> None:
    """Makes and closes a nameless file in ``folder`` (``O_TMPFILE`` where the system has it, so
    no name is left even by a kill), which fails as a real output would: a read-only mount,
    a folder such as ``/proc`` that takes no files.

    Raises:
        OSError: the file cannot be made.
    """
    with tempfile.TemporaryFile(dir=folder):
        pass


def _nearest_folder(folder: Path) -> Path:
    """``nearest_existing(folder)``, which must be a folder for ``folder`` to be made there.

    Raises:
        NotADirectoryError: with ``filename`` set to the file where ``folder`` or one of its
            parents would be.
    """
    existing = nearest_existing(folder)
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(existing))
    return existing


def _check_can_make(folder: Path) -> Path:
    """Refuses, creating nothing, a ``folder`` that ``make_writable_folder`` could not make:
    a file in its way, or a nearest existing folder this process may not write in (by its mode
    bits, then by a nameless file made there and closed: a read-only mount, ``/proc``).

    Raises:
        NotADirectoryError: as ``make_writable_folder``.
        OSError: the nearest existing folder cannot be written (``PermissionError`` by its
            mode bits: root passes them; ``EROFS`` on a read-only mount).
    """
    existing = _nearest_folder(folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        # access() tells no reason; a read-only mount fails it for root too, and wants a remount
        code = errno.EROFS if _read_only_mount(existing) else errno.EACCES
        raise OSError(code, os.strerror(code), os.fspath(existing))
    _probe_write(existing)
    return folder


def _read_only_mount(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:  # cannot be told: the caller's error stands
        return False


def check_folder(
    option: str,
    folder: str | os.PathLike[str],
    given: str | os.PathLike[str] | None = None,
    *,
    advice: str = "choose another path",
    create: bool = True,
) -> Path:
    """``make_writable_folder`` with errors that name ``option`` and ``given`` (the path given,
    default ``folder``) and end with ``advice``. ``create=False`` makes nothing (a file made
    and removed in the folder, or the nearest one that exists, at most): it refuses, with the
    same errors, what would stop the folder being made and written, for the checks that come
    before a command's first file, whose write makes the folder (``AtomicOutput``).

    Raises:
        UsageError: ``folder`` is a file, lies inside one, or cannot be created or written
            (on a read-only file system: the advice starts with a remount).
    """
    folder = Path(folder)
    given = folder if given is None else given
    try:
        return make_writable_folder(folder) if create else _check_can_make(folder)
    except NotADirectoryError as err:
        raise UsageError(
            f"{option} {given}: {err.filename} is a file, not a folder; {advice}"
        ) from err
    except OSError as err:
        if err.errno == errno.EROFS:
            advice = f"remount it read-write or {advice}"
        raise UsageError(
            f"{option} {given}: cannot write in {folder} ({err.strerror or err}); {advice}"
        ) from err


def _identity_keys(path: str | os.PathLike[str]) -> list[tuple]:
    """The keys under which ``path`` is one file, whatever name reaches it: its real path, and
    its ``(st_dev, st_ino)`` where it exists."""
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
            for key in _identity_keys(path):
                self._by_key.setdefault(key, (what, path))

    def find(self, path: str | os.PathLike[str]) -> tuple[str, str | os.PathLike[str]] | None:
        """``(what, path)`` of the read file that ``path`` names, or None."""
        for key in _identity_keys(path):
            if key in self._by_key:
                return self._by_key[key]
        return None


class ReadFolders(ReadFiles):
    """The folders a command reads as data (``(what, path)`` pairs: a class-folder root, the
    folder searched for a Kinetics CSV's videos), to refuse an output folder that is one of them
    or lies inside one: the next command that reads the data would take the outputs for classes
    or search them for videos. Compared as ``ReadFiles`` compares, for the folder and each of its
    parents, the folder resolved through links first: the system follows a link before a ``..``
    after it, so ``LINK/../train`` is the ``train`` beside the folder the link points to, not
    the one beside the link."""

    def find(self, path: str | os.PathLike[str]) -> tuple[str, str | os.PathLike[str]] | None:
        """``(what, path)`` of the read folder that ``path`` is or lies inside, or None."""
        folder = Path(os.path.realpath(path))  # the parts that do not exist yet, as written
        for part in (folder, *folder.parents):
            if (found := super().find(part)) is not None:
                return found
        return None


def check_outside_data(
    name: str, folder: str | os.PathLike[str], data: ReadFolders, advice: str
) -> None:
    """Refuses an output ``folder`` (``name``: how the message calls it) that is, or lies inside,
    one of the folders in ``data``, before anything is written there.

    Raises:
        UsageError: "NAME FOLDER is inside PATH, WHAT: the next command reading the data would
            read what is written there with it; ADVICE (nothing was changed)".
    """
    found = data.find(folder)
    if found is None:
        return
    what, source = found
    where = what if same_file(folder, source) else f"inside {os.fspath(source)}, {what}"
    raise UsageError(
        f"{name} {os.fspath(folder)} is {where}: the next command reading the data would read "
        f"what is written there with it; {advice} (nothing was changed)"
    )


# A command whose outputs have fixed names (``train`` a run folder's, ``test`` a report folder's)
# writes its mark in the folder before any other file there, and replaces a file of one of those
# names only in a folder that holds the mark: elsewhere the file is someone else's (notes, a
# recipe, a figure in a project folder given as ``--out .``). The mark stays when the folder's
# other files go (a user who deletes a run's checkpoints/ to start it over), and the lock file
# cannot stand in for it: ``hold_folder`` removes that as its command ends.
RUN_MARK = ".octvideo-run"
TEST_MARK = ".octvideo-test"


def mark_folder(folder: str | os.PathLike[str], mark: str, command: str) -> Path:
    """Writes ``mark`` (``RUN_MARK``, ``TEST_MARK``) in ``folder``, made when missing, unless it
    is there: ``command``'s first write there, atomic (``write_atomically``).

    Raises:
        UsageError, OutputWriteError: as ``write_atomically``.
    """
    path = Path(folder) / mark
    if not is_marked(folder, mark):
        write_atomically(path, f"octvideo {command} writes its files here and replaces them\n")
    return path


def is_marked(folder: str | os.PathLike[str], mark: str) -> bool:
    """Whether ``folder`` holds ``mark``: a command of that mark has written there."""
    return os.path.isfile(os.path.join(folder, mark))


# what ``why_not_a_file`` says when nothing is there: ``is_missing`` tells it from the rest
_MISSING = "does not exist"
_MISSING_UNDER_A_FILE = "does not exist (a folder on its path is a file)"


def is_missing(why: str | None) -> bool:
    """Whether ``why``, an answer of ``why_not_a_file``, says that nothing is there (rather than
    something that is not a regular file)."""
    return why in (_MISSING, _MISSING_UNDER_A_FILE)


def why_not_a_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is not a regular file to read (through links), in words that
    follow its name, or None when it is one: "does not exist", "is a directory", "is a pipe"
    (or "links to a pipe": ``/dev/stdin``, a shell's ``<(...)``), "is a device", "is a socket",
    "is a broken symlink (to T)", "is a symlink loop", or the system's reason ("cannot be looked
    at (Permission denied)"). Nothing is opened: opening a pipe waits for a writer."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a broken symlink (to {os.readlink(path)})"
        return _MISSING
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symlink loop"
        if err.errno == errno.ENOTDIR:
            return _MISSING_UNDER_A_FILE
        return f"cannot be looked at ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    verb = "links to" if os.path.islink(path) else "is"
    return f"{verb} {_special_kind(mode)}"


def _special_kind(mode: int) -> str:
    """What a file of ``mode`` (``st_mode``) that is not a regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def read_utf8(path: str | os.PathLike[str], limit: int) -> str:
    """The text of a UTF-8 file of at most ``limit`` bytes, a leading byte-order mark dropped,
    newlines untranslated. At most ``limit + 1`` bytes are read: a video or a disk image given
    by mistake is not read whole.

    Raises:
        TextFileError: the file is over ``limit`` bytes, or is not UTF-8 (``line`` and ``byte``
            name its first bad byte).
        OSError: it cannot be opened or read.
    """
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TextFileError(path, limit)
    try:
        # "utf-8", then the mark dropped: "utf-8-sig" counts an error's offset after the mark
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise TextFileError(path, limit, line, data[err.start]) from None
    return text.removeprefix("\ufeff")


def refuse_special_file(path: str | os.PathLike[str], option: str | None = None) -> None:
    """Refuses what an output file must not replace: a symbolic link (writing through it would
    overwrite the file it points to, and replacing it would silently undo the link), and a pipe,
    device or socket (``/dev/null``, a FIFO a reader waits on), which the rename of a finished
    output would replace with a regular file. ``check_output_file`` and ``AtomicOutput`` refuse
    a folder too.

    Raises:
        UsageError: ``path`` is a symbolic link (a dangling one too), a pipe, a device or a socket.
    """
    name = _named(option, path)
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


def _refuse_non_file(path: str | os.PathLike[str], option: str | None = None) -> None:
    """``refuse_special_file``, and a folder: what no output file may be written as.

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe, a device, a socket or a folder.
    """
    refuse_special_file(path, option)
    if os.path.isdir(path):
        raise UsageError(f"{_named(option, path)} is a folder; give a file name")


def _named(option: str | None, path: str | os.PathLike[str]) -> str:
    """``path`` as a message names it: after the ``option`` that gave it, where there is one."""
    return f"{option} {os.fspath(path)}" if option else os.fspath(path)


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
    _refuse_non_file(path, option)
    if folder:  # made by the first write (``AtomicOutput``): a command refused later leaves none
        check_folder(option, path.parent, path, create=False)
    return path


def keep_unless_earlier(
    option: str,
    path: str | os.PathLike[str],
    earlier: Callable[[Path], bool],
    what: str,
) -> None:
    """Refuses an existing file at ``path`` that ``earlier`` does not find to be an earlier
    output of its kind (``what``), and one that is read-only: a writer replaces only its own
    outputs, never a user's file that a typo or a tab completion named, nor one its owner made
    read-only (``chmod a-w``), which the rename of a finished output would replace as it
    replaces any file. Every writer of an output that may already be there calls it, the
    command line's before any work and the Python function's own before it writes, with one
    ``earlier`` per kind (``output.is_record_file``, ``render.is_render``,
    ``export.is_export``). A path that is no regular file is left to ``check_output_file``.

    Raises:
        UsageError: "OPTION PATH exists and is not WHAT: writing it would destroy it; choose
            another path or remove it", "OPTION PATH is read-only: make it writable (chmod u+w)
            ..." (or "is on a read-only file system: remount it read-write ...", "belongs to USER
            and is not writable by you: ..."), or that it cannot be read to tell.
    """
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return
    try:
        ours = earlier(path)
    except OSError as err:
        raise UsageError(
            f"{option} {path} exists and cannot be read ({err.strerror or err}) to tell whether it "
            f"is {what}; choose another path"
        ) from err
    if not ours:
        raise UsageError(
            f"{option} {path} exists and is not {what}: writing it would destroy it; choose "
            "another path or remove it"
        )
    # no write bit for anyone: root's os.access says yes to every file
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise UsageError(f"{option} {path} {_why_read_only(path)}")


def _why_read_only(path: Path) -> str:
    """Why the file ``path`` may not be replaced, and the way out, for the cause there is: a
    file system mounted read-only (no chmod helps: root's access() fails there too), a file of
    another user that this one may not write nor chmod, else its own mode bits."""
    advice = "choose another path"
    if _read_only_mount(path):
        return f"is on a read-only file system: remount it read-write to replace it, or {advice}"
    owner, me = path.stat().st_uid, os.geteuid()
    if owner != me and me != 0:  # root may chmod any file
        return f"belongs to {_user_name(owner)} and is not writable by you: {advice}"
    return f"is read-only: make it writable (chmod u+w) to replace it, or {advice}"


def _user_name(uid: int) -> str:
    """The login name of ``uid``, or "user UID" where it has none (a container's uid)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"user {uid}"


# A file name's bytes that are not UTF-8 reach a str as lone surrogates (``os.fsdecode``'s
# ``surrogateescape``: b"\xff" is "\udcff"), which UTF-8 cannot hold. Every text output writes
# one as the escape ``\udcff``: JSON (``ensure_ascii=False``) reads it back as the same str, so
# the name round-trips; a CSV or a report stays UTF-8 and shows it as the terminal does. A file
# read back as names (a list, a classes file) refuses such a name before any work instead.
TEXT_ERRORS = "backslashreplace"


def printable(text: str) -> str:
    """``text`` with a file name's bytes that are not UTF-8 as the escapes ``TEXT_ERRORS``
    writes (``\udcff``): for a log line, which every handler can then write, as a terminal
    shows it."""
    return text.encode("utf-8", TEXT_ERRORS).decode("utf-8")


def not_utf8(text: str) -> bool:
    """Whether ``text`` holds a file name's bytes that are not UTF-8 (its lone surrogates): text
    that a library taking only UTF-8 (a YAML writer, TensorBoard's file functions, a C++
    binding's ``str``) cannot take, and a command refuses before any work (``check_utf8``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_utf8(what: str, text: str, taker: str, advice: str) -> None:
    """Refuses ``text`` (a name or a path) that ``not_utf8`` finds, in one line: "WHAT 'TEXT' is
    not UTF-8 text, which TAKER cannot take; ADVICE" ("WHAT 'TEXT': its name is" for a path,
    "its path is" where a folder above holds the bytes).

    Raises:
        UsageError: ``text`` holds bytes that are not UTF-8.
    """
    if not not_utf8(text):
        return
    part = " is"
    if "/" in text.rstrip("/"):
        part = ": its name is" if not_utf8(os.path.basename(text.rstrip("/"))) else ": its path is"
    raise UsageError(f"{what} {text!r}{part} not UTF-8 text, which {taker} cannot take; {advice}")


# errors of a write that say the output cannot be written (not that an input cannot be read)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


# the longest token of a temporary's name (``<pid>-<hex>``, a pid of up to 10 digits): its room
# is kept whatever the token, so that a name and the pattern that finds it are cut alike
_TOKEN_BYTES = 19


def name_limit(folder: str | os.PathLike[str]) -> int:
    """The longest file name, in bytes, that ``folder`` (or the folder it will be made in)
    takes: 255 on most file systems, 143 on eCryptfs."""
    try:
        limit = os.pathconf(nearest_existing(folder), "PC_NAME_MAX")
    except (OSError, ValueError):  # not known here
        return 255
    return limit if limit > 0 else 255  # -1: no limit


def _cut(text: str, room: int) -> str:
    """The start of ``text`` that is at most ``room`` bytes (as a file name's bytes), cut
    between characters: no UTF-8 sequence split."""
    text = text[: max(room, 0)]  # a character is a byte or more
    while len(os.fsencode(text)) > room:
        text = text[:-1]
    return text


def fitted_name(stem: str, tail: str, limit: int) -> str:
    """``stem + tail``, or where that is longer than ``limit`` bytes, the start of ``stem``, a
    ``~``, and 8 hex digits of a hash of the whole ``stem`` before ``tail``: names that differ
    only past the cut stay apart, and the start still says which file it was made for."""
    name = stem + tail
    if len(os.fsencode(name)) <= limit:
        return name
    tag = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:8] + tail
    return _cut(stem, limit - len(os.fsencode(tag))) + tag


def _temporary_name(path: Path, token: str) -> str:
    """The name of ``path``'s temporary with ``token``: ``.NAME.<token>.tmp.EXT``.

    The destination's extension comes last, so writers that choose a format by it (PyAV,
    matplotlib) write the right one; name and extension are cut so that the name fits the
    folder's limit whenever ``path``'s does (uncut, a 255-byte NAME would make
    ``.NAME.<pid>-<hex>.tmp.EXT`` 281 bytes).
    """
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= 16 else ""
    room = name_limit(path.parent) - len(os.fsencode(f"...tmp{suffix}")) - _TOKEN_BYTES
    return f".{_cut(path.name[:120], room)}.{token}.tmp{suffix}"


def _temporary_pattern(path: Path) -> re.Pattern[str]:
    """Temporary names of ``path``: ``<pid>-<hex>`` as the token, or an earlier version's token
    without a pid (``<hex>``, or mkstemp's eight characters before ``.tmp`` with no extension)."""
    name = re.escape(_temporary_name(path, "TOKEN"))
    token = r"(?:(?P<pid>[0-9]{1,10})-[0-9a-f]{8}|[a-z0-9_]{8})"
    name = name.replace("TOKEN", token)
    if path.suffix and name.endswith(re.escape(path.suffix)):  # mkstemp's names had none
        name = f"{name[: -len(re.escape(path.suffix))]}(?:{re.escape(path.suffix)})?"
    return re.compile(name)


def temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of ``path`` beside it: left by writers that were killed mid-write (or
    being written now)."""
    path = Path(path)
    pattern = _temporary_pattern(path)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    return []


# Descriptors that hold a flock for this process. A forked child (a data-loader worker) gets
# copies of them, which would keep the lock after this process is killed: it closes its copies
# (closing, unlike unlocking, leaves the lock to the parent's descriptor).
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    """Closes a forked child's copies of ``_HELD``, so the parent's locks die with the parent."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


def _release(fd: int) -> None:
    """Closes ``fd``, a descriptor of ``_HELD``, which frees its lock."""
    _HELD.discard(fd)
    os.close(fd)


def _pid_running(pid: int) -> bool:
    """Whether a process of ``pid`` exists here (one of another user's counts: it may be the
    writer, as may a pid reused since)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process, which runs
        pass
    return True


def _keep_temporary(path: Path) -> bool:
    """Whether the temporary file ``path`` is to be kept whatever its pid says: a process holds
    its flock (a file system without locks: none does), or it cannot be opened (gone already,
    or not this process's to remove)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no locks here: the pid alone tells
        return False
    finally:
        os.close(fd)
    return False


def _writer_gone(tmp: Path, pid: str | None) -> bool:
    """Whether the writer of ``tmp``, a temporary whose name holds ``pid`` (None: an earlier
    version's), is gone: its pid runs no process here and nothing holds the file's lock."""
    return (pid is None or not _pid_running(int(pid))) and not _keep_temporary(tmp)


# The names in each folder that may be another process's temporaries, from the one listing of
# the folder this process makes (at its first write there); each write of an output takes its
# own from them, removing those whose writer is gone and keeping a running writer's to look at
# again. Threads (``sweep``'s runs) write at once: the lock keeps the listing and the sets whole.
_SEEN: dict[str, set[str]] = {}
_SEEN_LOCK = threading.Lock()


def _forget_seen_in_child() -> None:
    """Starts a forked child with no listing and a free lock: it is a process of its own, and
    a thread of the parent may hold the lock."""
    global _SEEN_LOCK
    _SEEN_LOCK = threading.Lock()
    _SEEN.clear()


os.register_at_fork(after_in_child=_forget_seen_in_child)


def _seen_in(folder: Path) -> set[str]:
    """The names in ``folder`` that may be temporaries, listed on the first call for it; the
    caller holds ``_SEEN_LOCK``."""
    key = os.path.abspath(folder)
    names = _SEEN.get(key)
    if names is None:
        try:
            with os.scandir(folder) as entries:
                names = {e.name for e in entries if e.name.startswith(".") and ".tmp" in e.name}
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        _SEEN[key] = names
    return names


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Removes the temporary files of ``path`` whose writer is gone (``_writer_gone``) and
    returns them; one that cannot be removed is logged and left. Its folder is listed once a
    process (see the module docstring): a temporary made there since is left to a later run."""
    path = Path(path)
    removed = []
    with _SEEN_LOCK:
        seen = _seen_in(path.parent)
        start = _temporary_name(path, "\0").partition("\0")[0]  # no name holds a NUL
        candidates = sorted(name for name in seen if name.startswith(start))
        if not candidates:  # most writes: no pattern to compile (0.2 ms)
            return removed
        pattern = _temporary_pattern(path)
        for name in candidates:
            match = pattern.fullmatch(name)
            if match is None:  # another output's
                continue
            tmp = path.with_name(name)
            pid = match["pid"]
            if (pid is not None and int(pid) == os.getpid()) or not os.path.lexists(tmp):
                seen.discard(name)  # this process commits or removes its own; gone already
                continue
            if not _writer_gone(tmp, pid):  # a running writer's: looked at again next time
                continue
            seen.discard(name)
            if _remove_left_temporary(tmp):
                removed.append(tmp)
    return removed


def _remove_left_temporary(tmp: Path) -> bool:
    """Removes ``tmp``, a temporary whose writer is gone, and logs it; whether it was removed
    (one that cannot be is logged and left)."""
    try:
        tmp.unlink()
    except FileNotFoundError:  # another writer of the same path removed it first
        return False
    except OSError as err:
        logger.warning("cannot remove %s, left by an interrupted write (%s)", tmp, err)
        return False
    logger.info("removed %s, left by an interrupted write", tmp)
    return True


def _fsync(path: Path) -> None:
    """Flushes the file or folder ``path`` to disk."""
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
        UsageError: ``path`` is a symbolic link, a pipe or a device (see ``refuse_special_file``),
            or a folder.
        OutputWriteError: the output cannot be written; nothing is left of it.
    """

    def __init__(self, path: str | os.PathLike[str], option: str | None = None) -> None:
        self.path = Path(path)
        _refuse_non_file(self.path, option)  # else "cannot write (Is a directory)" after the work
        self.existed = self.path.exists()
        self._made = _folders_to_make(self.path.parent)  # removed again by ``discard``, if empty
        self.tmp, fd = self._create_temporary()
        self._lock_fd: int | None = fd  # holds the temporary's flock; None once released
        _HELD.add(fd)
        try:  # blocking: a cleaner's test holds the lock only for a moment
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: the pid in the name tells
            pass
        except BaseException:  # Ctrl-C: no temporary file is left behind
            self.discard()
            raise

    def _create_temporary(self) -> tuple[Path, int]:
        """A new temporary file beside ``path`` (its folder made when missing), named with this
        process's pid and a random token that no other file there has, and its descriptor.

        Raises:
            OutputWriteError: it cannot be made.
        """
        for _ in range(100):
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            tmp = self.path.with_name(_temporary_name(self.path, token))
            try:  # 0o666 less the umask, as open() gives every other output (mkstemp: 0o600)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            except FileNotFoundError as err:
                if not self.path.parent.is_dir():  # just made, removed by a discarding writer
                    continue
                raise self.error(err) from err  # a folder that takes no files (/proc)
            except OSError as err:
                raise self.error(err) from err
            return tmp, fd
        raise self.error(FileExistsError(errno.EEXIST, "no free temporary file name"))

    def error(self, err: OSError) -> OutputWriteError:
        """The ``OutputWriteError`` for ``err``, a failure to write this output."""
        return OutputWriteError(self.path, err, existed=self.existed)

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Writes ``data`` (``str`` as UTF-8, see ``TEXT_ERRORS``) as the whole temporary file.

        Raises:
            OutputWriteError: it cannot be written; the temporary file is removed.
        """
        try:
            with open(self.tmp, "wb") as fh:
                fh.write(data.encode("utf-8", TEXT_ERRORS) if isinstance(data, str) else data)
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
        finally:
            self._unlock()
        try:  # makes the rename durable
            _fsync(self.path.parent)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems without it
                raise self.error(err) from err
        remove_stale_temporaries(self.path)
        return self.path

    def discard(self) -> None:
        """Removes the temporary file (if it is still there), and the folders made for it that
        are still empty."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
        self._unlock()
        for folder in self._made:
            with contextlib.suppress(OSError):  # not empty: another output was written there
                folder.rmdir()

    def _unlock(self) -> None:
        """Closes the descriptor that holds the temporary's lock, once (``commit`` and
        ``discard`` may both come here)."""
        if self._lock_fd is not None:
            _release(self._lock_fd)
            self._lock_fd = None

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
    """Writes ``data`` (``str`` as UTF-8, see ``TEXT_ERRORS``) as ``path`` through
    ``AtomicOutput``.

    Raises:
        UsageError: ``path`` is a symbolic link, a pipe or a device.
        OutputWriteError: it cannot be written; an earlier file is kept, no temporary file left.
    """
    with AtomicOutput(path, option) as out:
        out.write(data)
    return out.path


class AtomicOutputs:
    """Files that are one result (a model and its preprocessing file, a checkpoint and its run
    config), written so that all of them are new or all as they were: each part an
    ``AtomicOutput`` (``add``), renamed in place together on a clean exit of the ``with`` block.

    Every part is written to its temporary first. At the commit each earlier file is kept as a
    backup (a hard link, or the file renamed where the file system links none) until every part
    is in place; a part that cannot be renamed (an append-only earlier file, a full folder) puts
    the earlier files back and removes the new ones. An exception in the block, or a part that
    cannot be written, removes every temporary. Either way the ``OutputWriteError`` names the
    failed part and says what is left of them all (``the earlier a.pt and a.pt.json are kept``).
    A process killed between two renames (SIGKILL, power loss) can leave a new part beside an
    earlier one, and backups that the next write of that part removes (see the module
    docstring); no failure it sees does.

    Raises:
        UsageError: a part is a symbolic link, a pipe or a device, or a folder (from ``add``).
        OutputWriteError: a part cannot be written; no part is changed and no temporary is left.
    """

    def __init__(self) -> None:
        self.parts: list[AtomicOutput] = []

    def add(self, path: str | os.PathLike[str], option: str | None = None) -> AtomicOutput:
        """A new part, ``path``: an ``AtomicOutput`` to write (its ``write`` or ``tmp``), which
        this group commits or discards (not the caller: ``AtomicOutputs`` is no nested ``with``).

        Raises:
            UsageError, OutputWriteError: as ``AtomicOutput``; the parts added so far are removed.
        """
        try:
            part = AtomicOutput(path, option)
        except BaseException:
            self.discard()
            raise
        self.parts.append(part)
        return part

    def write(
        self,
        path: str | os.PathLike[str],
        data: bytes | bytearray | memoryview | str,
        option: str | None = None,
    ) -> Path:
        """Adds ``path`` as a part whose content is ``data`` (see ``AtomicOutput.write``)."""
        part = self.add(path, option)
        part.write(data)
        return part.path

    def discard(self) -> None:
        """Removes every part's temporary, and the folders made for them that are still empty
        (the last part's first: the first part made them); no destination is touched."""
        for part in reversed(self.parts):
            part.discard()

    def _kept(self, failed: AtomicOutput | None = None) -> str:
        """What a failed write leaves of all parts, the files named as the message's reader finds
        them (names, when all lie in one folder)."""
        folders = {part.path.parent for part in self.parts}
        name = {p.path: (p.path.name if len(folders) == 1 else str(p.path)) for p in self.parts}
        old = [name[p.path] for p in self.parts if p.existed]
        new = [name[p.path] for p in self.parts if not p.existed]
        kept = []
        if old:
            verb = "is" if len(old) == 1 else "are"
            kept.append(f"the earlier {_and(old)} {verb} kept")
        if new:
            kept.append(f"no part of {_and(new, 'or')} is left")
        return " and ".join(kept)

    def error(self, part: AtomicOutput, err: OSError) -> OutputWriteError:
        """The ``OutputWriteError`` for ``err``, a failure to write ``part``, saying that no part
        is changed."""
        if len(self.parts) == 1:
            return part.error(err)
        return OutputWriteError(part.path, err, existed=part.existed, kept=self._kept())

    def commit(self) -> list[Path]:
        """Renames every part in place, or none (see the class docstring); the destinations.

        Raises:
            OutputWriteError: a part cannot be flushed, backed up or renamed; the earlier files
                are back, no new part and no temporary is left.
        """
        part = self.parts[0] if self.parts else None
        backups: dict[int, tuple[Path, bool]] = {}  # index: (backup, made by rename)
        placed: list[int] = []
        try:
            try:
                for part in self.parts:
                    _fsync(part.tmp)
                for i, part in enumerate(self.parts):
                    if part.path.exists():
                        backups[i] = _back_up(part.path)
                for i, part in enumerate(self.parts):
                    os.replace(part.tmp, part.path)
                    placed.append(i)
            except OSError as err:
                unrestored = self._put_back(backups, placed)
                self.discard()
                if unrestored:
                    raise OutputWriteError(
                        part.path, err, existed=part.existed, kept=unrestored
                    ) from err
                raise self.error(part, err) from err
            except BaseException:  # Ctrl-C: the earlier files back, no temporary left
                self._put_back(backups, placed)
                self.discard()
                raise
        finally:
            for part in self.parts:
                part._unlock()
        for backup, _ in backups.values():
            with contextlib.suppress(OSError):  # one left is removed by the next write's sweep
                os.unlink(backup)
        for folder in dict.fromkeys(part.path.parent for part in self.parts):
            try:  # makes the renames durable
                _fsync(folder)
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOTSUP):
                    raise self.error(self.parts[0], err) from err
        for part in self.parts:
            remove_stale_temporaries(part.path)
        return [part.path for part in self.parts]

    def _put_back(self, backups: dict[int, tuple[Path, bool]], placed: list[int]) -> str:
        """Undoes a commit that failed: each earlier file back at its place, each new part that
        had none removed. Returns "" when all is back, else what is where (a backup that cannot
        be put back is left, and named)."""
        left = []
        for i, part in reversed(list(enumerate(self.parts))):
            backup, renamed = backups.get(i, (None, False))
            try:
                if backup is not None and (renamed or i in placed):
                    os.replace(backup, part.path)
                elif backup is not None:
                    os.unlink(backup)
                elif i in placed:
                    os.unlink(part.path)
            except OSError as err:
                logger.warning("cannot put back the earlier %s (%s)", part.path, err)
                where = f"the earlier {part.path} is {backup}" if backup else f"{part.path} is new"
                left.append(where)
        if not left:
            return ""
        return f"the other files are as they were except: {'; '.join(left)}"

    def __enter__(self) -> AtomicOutputs:
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
        if isinstance(err, OutputWriteError):
            part = next((p for p in self.parts if p.path == err.path), None)
            if part is not None and len(self.parts) > 1:  # its message names this part alone
                raise OutputWriteError(
                    err.path, _as_oserror(err), existed=err.existed, kept=self._kept()
                ) from err
        elif isinstance(err, OSError) and err.errno in WRITE_ERRNOS and self.parts:
            raise self.error(self.parts[-1], err) from err


def _and(names: list[str], word: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def _as_oserror(err: OutputWriteError) -> OSError:
    """The ``OSError`` that ``err`` reports (its errno and text), to word it again."""
    return OSError(err.errno, err.reason)


def _back_up(path: Path) -> tuple[Path, bool]:
    """Keeps the file ``path`` under a temporary name of its own beside it (which a later
    write's sweep removes when its writer is gone): a hard link, or where the file system makes
    none, ``path`` renamed. The backup and whether ``path`` was renamed.

    Raises:
        OSError: neither can be made (an append-only or immutable file).
    """
    for _ in range(100):
        backup = path.with_name(_temporary_name(path, f"{os.getpid()}-{secrets.token_hex(4)}"))
        if os.path.lexists(backup):
            continue
        try:
            os.link(path, backup, follow_symlinks=False)
            return backup, False
        except FileExistsError:
            continue
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
                raise
        os.rename(path, backup)  # EPERM again for an append-only or immutable file
        return backup, True
    raise FileExistsError(errno.EEXIST, "no free temporary file name")


def write_failure(err: OSError | OutputWriteError) -> str:
    """Why an output could not be written (``No space left on device``): the ``reason`` of the
    ``OutputWriteError`` that ``AtomicOutput`` turns a failed write into, or an ``OSError``'s
    text."""
    if isinstance(err, OutputWriteError):
        return err.reason
    return err.strerror or str(err)


LOCK_NAME = ".octvideo.lock"


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as its holder wrote it (``octvideo train (pid 123)``)."""
    try:
        pid, _, command = lock.read_text(encoding="utf-8", errors="replace").strip().partition(" ")
    except OSError:
        pid, command = "", ""
    if not pid.isdigit():  # the holder has not written it yet
        return "another octvideo command"
    return f"octvideo {command or 'command'} (pid {pid})"


def _take_lock(folder: Path, command: str, name: str, advice: str) -> int:
    """A descriptor holding the flock of ``folder``'s lock file (made, with ``folder``, when
    missing), with this process's pid and ``command`` written in it.

    Raises:
        UsageError: another process holds it; or the folder or its lock file cannot be made.
    """
    lock = folder / LOCK_NAME
    denied: PermissionError | None = None
    for _ in range(100):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            except PermissionError as err:  # another user's, left by a killed command: flock
                denied = err  # needs no write access; or no lock file, in a folder not writable
                fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:  # the folder or lock file was removed by a holder that ended
            continue
        except OSError as err:
            raise _cannot_write(name, folder, err, advice) from err
        _HELD.add(fd)
        _flock_or_refuse(fd, lock, name, advice)
        if not _is_lock_there(lock, fd):  # a holder that ended removed it: lock the new one
            _release(fd)
            continue
        _write_holder(fd, command)
        return fd
    if denied is not None:  # each time: no lock file to share, and none could be made
        raise _cannot_write(name, folder, denied, advice) from denied
    raise UsageError(f"{name}: cannot take {lock}, removed again and again; {advice}")


def _flock_or_refuse(fd: int, lock: Path, name: str, advice: str) -> None:
    """Takes the flock of ``fd``, the open ``lock`` file, without waiting; on a file system
    without locks, logs that a second command there is not refused and goes on.

    Raises:
        UsageError: another process holds it; ``fd`` is then released.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _release(fd)
        raise UsageError(
            f"{name} is in use by {_holder(lock)}; wait for it to end, or {advice} (nothing "
            "was changed)"
        ) from None
    except OSError as err:  # a file system without locks: nothing to tell two commands apart
        logger.warning("cannot lock %s (%s): a second command there is not refused", lock, err)
    except BaseException:
        _release(fd)
        raise


def _is_lock_there(lock: Path, fd: int) -> bool:
    """Whether ``fd`` is open on the file at ``lock`` now: a holder that ends removes its lock
    file, so a lock taken on the file it removed guards nothing."""
    try:
        here = os.stat(lock, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _write_holder(fd: int, command: str) -> None:
    """Writes this process's pid and ``command`` as the whole lock file ``fd``, for ``_holder``
    to name in the message of a command refused."""
    with contextlib.suppress(OSError):  # another user's file: it names no holder
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())


def _cannot_write(name: str, folder: Path, err: OSError, advice: str) -> UsageError:
    """The refusal of a ``folder`` whose lock cannot be made, for the reason ``err`` names:
    "NAME: cannot write in FOLDER (Permission denied); ADVICE"."""
    return UsageError(f"{name}: cannot write in {folder} ({err.strerror or err}); {advice}")


@contextlib.contextmanager
def hold_folder(
    folder: str | os.PathLike[str],
    command: str,
    *,
    name: str | None = None,
    advice: str = "choose another folder",
) -> Iterator[Path]:
    """Makes this process the only octvideo command writing ``folder`` while the block runs.

    Takes the ``flock`` of ``folder``'s ``LOCK_NAME`` (making the folder when missing) and writes
    this process's pid and ``command`` in it for the message of a command refused; on leaving,
    removes the lock file (still holding it: a command waiting on it checks that its lock is on
    the file there) and the folders it made that are still empty, so a command refused inside
    the block leaves nothing. A killed process's lock is freed by the kernel; its lock file is
    left and taken over by the next command.

    Args:
        folder: the folder.
        command: the command's name, ``train``.
        name: how the refusal names the folder (default: the folder).
        advice: the way out a refusal ends with, after "wait for it to end, or".

    Raises:
        UsageError: another process holds the folder ("run folder R is in use by octvideo train
            (pid 123); wait for it to end, or ... (nothing was changed)"), or it cannot be
            made or written.
    """
    folder = Path(folder)
    name = name or os.fspath(folder)
    made = _folders_to_make(folder)
    fd = _take_lock(folder, command, name, advice)
    try:
        # a lock file left by a killed command is taken in a folder that may since have become
        # read-only: found here, before the command's work, rather than at its first write
        _probe_write(folder)
    except OSError as err:
        _release(fd)
        raise _cannot_write(name, folder, err, advice) from err
    try:
        yield folder
    finally:
        # a lock file that cannot be removed is taken over by the next command: its error
        # would only hide the block's own
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK_NAME)
        _release(fd)
        for path in made:
            with contextlib.suppress(OSError):  # not empty: the command wrote there
                path.rmdir()
