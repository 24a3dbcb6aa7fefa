"""Annotation readers: every supported layout becomes ``(path, label index)`` records.

Formats:
    ``lines``         ``relative/or/absolute/path.mp4 3`` per line, space or comma separated (the
                      PySlowFast / MMAction2 list format); blank lines and ``#`` comments skipped.
                      A line ending in ``,<label>`` (``, <label>``) is split at that comma, any
                      other at its last run of whitespace, so a path may hold spaces and commas
                      (``take 2, final.mp4 0``). ``list_line`` writes lines that read back as
                      written: a path starting with ``#`` or a space gets ``./`` before it.
    ``kinetics_csv``  the official Kinetics CSV ``label,youtube_id,time_start,time_end,split``;
                      the video of a row is ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` anywhere
                      under the root (``root/<split>/<class>/``, ``root/<split>/`` or ``root/``, the
                      layouts the common download scripts produce; links to folders followed,
                      ``walk_tree``), except in a folder that is no class (hidden, ``__MACOSX``,
                      ``@eaDir``: a ``.Trash-1000`` copy); of two files of one name, the first
                      found is used, one warning naming both (``index_tree``). Rows without a
                      file are dropped and counted in ``Annotations.missing``.
    ``folders``       ``<folder>/<class name>/<video>``: one folder per class. The folder is the
                      annotation path itself (``data.train_list=my/train``); ``root`` plays no
                      part, as the videos are found in the folder, not named by a list.
                      Every entry named like a video is listed, whatever it is: a broken
                      symlink, a pipe or a folder named ``x.mp4`` fails as a bad video (reported
                      by ``data check``, skipped in training), never left out unseen; but a
                      hidden file (macOS's AppleDouble ``._x.mp4``) is no video, and one
                      warning counts them. Hidden folders, ``__MACOSX`` and ``@eaDir`` are no
                      classes (one warning counts them); a class folder without a video is
                      named in a warning.

Each video once: a list line or CSV row that repeats an earlier one (the same video and label) is
dropped, with one warning counting them, so that no video is trained on or scored twice; a video
given two labels is refused, naming both lines and labels. A list's video is its file, however the
line reaches it (``a.mp4``, ``./a.mp4``, an absolute path, a link to it or its folder:
``_video_id``); a CSV row's is its ``<youtube_id>_<start>_<end>`` name, which names one file.
A Kinetics CSV without a label column (an unlabelled test split) and a list of paths alone (every
line a video path without a label: ``data prepare``'s list of such a CSV, ``predict``'s input) are
read only where no label is needed (``data check``), their records labelled -1.

The class list is the contract between a training run and its checkpoints, so it is stable: names
come from ``classes_file`` when it exists; otherwise from the data (sorted class names for CSV and
folders, ``"0" .. "K-1"`` for integer lines) and are written to ``classes_file`` when one is named.
A classes file with classes that no video of the list uses (another dataset's file left behind) is
used as it is, with a warning naming those classes (those that the validation or test list has
videos of named as classes without a training video). A classes file in the installed octvideo
package (the shipped Kinetics-400 list) is read, never written: writing one there is refused.

Text: lists, classes files and CSVs are read as UTF-8, with or without a byte-order mark (the
mark is not part of the first line); a file that is not UTF-8 is refused naming its first bad
line. Lines end at ``\n`` (a ``\r`` before it is dropped), as editors count them.

Class names meet (a CSV label or a folder name against a classes file, two names of one file) in
Unicode's composed form, NFC (``nfc``): macOS names folders in the decomposed form, which looks the
same. A classes file holds one name a line, read stripped, blank lines skipped, each name
once (a name listed twice is refused, naming it and its two lines); of what a name holds, only a
carriage return is refused (a file whose lines end in ``\r`` alone), so that every classes file an
earlier octvideo wrote (a tab in a name) keeps reading. ``write_classes`` writes only names that
read back as written (``class_name_problem``): not blank, no white space around them, no line
break or carriage return, no byte-order mark at their start; a Kinetics CSV row whose label is not
such a name is refused at its line.

Bounds: at most ``MAX_CLASSES`` classes, so a list label is below it; a larger label is refused at
its line, before a class list is built from it: without a classes file the class list is built
from the labels (``"0" .. "K-1"``), so the largest label sets its length. A text file is at most
``MAX_TEXT_BYTES`` (256 MiB), read no further: a video given as a list is refused without being
read whole.

Errors: a malformed annotation (a bad line, a label outside the class list, a folder that is not a
class, text that is not UTF-8, a list or classes file that is a pipe, a device or a broken
symlink, named as what it is) raises ``AnnotationError``, a ``UsageError`` (the command
line prints it as one line) that is also a ``ValueError``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from octvideo.errors import AnnotationError, InputPathError, TextFileError, UsageError
from octvideo.paths import not_utf8, printable, read_utf8, why_not_a_file, write_atomically

logger = logging.getLogger(__name__)

# the installed octvideo package (this file is octvideo/data/annotations.py)
PACKAGE = Path(os.path.realpath(__file__)).parents[1]

# suffixes (lower case) of the files counted as videos, the same for every command: class folders
# (``DataConfig``'s default ``video_extensions``), Kinetics trees, ``data check``, ``data prepare``
# and the folders given to ``predict``
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv")

# Classes a dataset may have (Kinetics-700 has 700, ImageNet-21k's largest release 21841): list
# labels are below it, and classes files and Kinetics CSVs list at most this many.
MAX_CLASSES = 100_000
# how a refusal names classes read from data.classes_file (the datamodule's source), rather than
# those a list numbered: the advice to use the classes file then does not apply
CLASSES_FILE_SOURCE = "data.classes_file"
# The largest time_start / time_end of a Kinetics CSV row: a video's name holds them as six
# digits (``<youtube_id>_000010_000020``), over eleven days of video.
MAX_CSV_SECONDS = 999_999
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")  # the columns read
# Bytes of a list, classes file or CSV: Kinetics-700's training list (545k lines) is about 40 MB.
MAX_TEXT_BYTES = 2**28

_LABEL = re.compile(r"-?[0-9]+")  # ASCII digits only: "²" and "٣" pass str.isdigit, not int()
# ``path,label`` (a space may follow the comma), else ``path label``; the label as typed, checked
# by ``_LABEL`` after the split so that a bad label is named at its line
_COMMA_LINE = re.compile(r"(.*?)\s*,\s*(-?[0-9]+)")
_SPACE_LINE = re.compile(r"(.*?)\s+(\S+)")


class VideoRecord(NamedTuple):
    """One annotated video."""

    path: str  # absolute or root-resolved path to the video file
    label: int  # index into the class list


@dataclass
class Annotations:
    """What an annotation file holds, after resolving paths and labels."""

    records: list[VideoRecord]
    classes: list[str]
    missing: int = 0  # Kinetics CSV rows whose video file was not found
    missing_examples: list[str] = field(default_factory=list)  # a few of their expected names


def refuse_no_file(path: str | os.PathLike[str], what: str = "annotation file") -> None:
    """Refuses a ``path`` that is there but is no regular file to read: a directory, a pipe (a
    shell's ``<(...)``, ``/dev/stdin``: read once, and opening one may wait for ever), a device,
    a broken symlink or a symlink loop, named as what it is. A path not there is left to
    ``open``, whose error says so.

    Raises:
        AnnotationError: "annotation file X is a pipe, not a file; ...".
    """
    problem = why_not_a_file(path)
    if problem is not None and os.path.lexists(path):
        raise AnnotationError(
            f"{what} {path} {problem}, not a file; pass the file itself (save a piped one to a "
            "file first)"
        )


def read_text(path: str | os.PathLike[str], what: str = "annotation file") -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped), newlines untranslated.

    Raises:
        AnnotationError: ``path`` is no regular file (``refuse_no_file``), is over
            ``MAX_TEXT_BYTES`` or not UTF-8; the message names it (and the line and the byte).
        OSError: it cannot be opened (``FileNotFoundError`` when it does not exist).
    """
    refuse_no_file(path, what)
    try:
        return read_utf8(path, MAX_TEXT_BYTES)
    except TextFileError as err:
        if err.line is None:
            raise AnnotationError(
                f"{what} {path} is over {MAX_TEXT_BYTES >> 20} MiB, more than any {what} takes "
                "(Kinetics-700's training list is about 40 MB); pass the right file"
            ) from None
        raise AnnotationError(
            f"{what} {path}:{err.line}: not UTF-8 text (byte 0x{err.byte:02x}); save it as UTF-8"
        ) from None


def text_lines(path: str | os.PathLike[str], what: str = "annotation file") -> list[str]:
    """The lines of a UTF-8 text file (see ``read_text``), split at ``\n`` only: a file name may
    hold the other characters ``str.splitlines`` breaks at (``\x1c``, ``\u2028``, ...)."""
    lines = read_text(path, what).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the annotation format of ``path``: a folder, a Kinetics CSV or a lines file."""
    path = Path(path)
    if path.is_dir():
        return "folders"
    refuse_no_file(path)  # a pipe, a broken link: named as what it is
    problem = why_not_a_file(path)
    if problem is not None:  # not there
        raise InputPathError(f"annotation file {path} {problem}")
    with path.open("rb") as f:  # the reader of the format reports text that is not UTF-8
        header = f.readline().decode("utf-8-sig", errors="replace").strip().lower()
    fields = {name.strip() for name in header.split(",")}
    if {"youtube_id", "time_start", "time_end"} <= fields:
        return "kinetics_csv"
    return "lines"


_CARRIAGE_RETURN = (
    "holds a carriage return, which a classes file (one name a line) refuses as a line end"
)


def read_classes(path: str | os.PathLike[str]) -> list[str]:
    """Read a class list: one name a line (stripped; blank lines skipped), the line's place among
    the names being the label index.

    Only a carriage return inside a line is refused (a file whose lines end in ``\r`` alone
    would be one class): any other character reads back as written, so that a classes file an
    earlier octvideo wrote (a tab in a name) keeps reading.

    Raises:
        AnnotationError: a class is listed twice (named, with both lines), a carriage return
            inside a line, there are more than ``MAX_CLASSES``, or the file is not UTF-8.
    """
    line_of: dict[str, tuple[int, str]] = {}  # NFC name -> its line, the name as written
    for number, line in enumerate(text_lines(path, "classes file"), start=1):
        name = line.strip()
        if "\r" in name:
            raise AnnotationError(
                f"classes file {path} line {number}: the name {name[:40]!r} {_CARRIAGE_RETURN}; "
                "are its lines ended by \\r alone? save it with \\n line ends"
            )
        key = nfc(name)
        if key in line_of:
            first, written = line_of[key]
            forms = "" if written == name else ", in two Unicode forms (NFC and NFD)"
            raise AnnotationError(
                f"classes file {path} lists the class {name!r} twice (lines {first} and "
                f"{number}{forms}); remove one (a class's place in the file is its label)"
            )
        if name:
            line_of[key] = (number, name)
    if len(line_of) > MAX_CLASSES:
        raise AnnotationError(
            f"classes file {path} lists {len(line_of)} classes; octvideo takes at most "
            f"{MAX_CLASSES}: is it a class list?"
        )
    return [name for _, name in line_of.values()]


def nfc(name: str) -> str:
    """``name`` in Unicode's composed form (NFC), the form class names are compared in: a folder
    made on macOS (or unpacked from a zip made there) holds ``café`` decomposed (NFD), which
    looks the same as the classes file's ``café`` but is another string."""
    return unicodedata.normalize("NFC", name)


def label_index(classes: list[str]) -> dict[str, int]:
    """Each class's label, keyed by its name in NFC (``nfc``), so that a label or folder name
    finds its class whatever its Unicode form."""
    return {nfc(name): i for i, name in enumerate(classes)}


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a line of a classes file (``read_classes`` would read it back as
    another name, as no name or as two, or refuse it), or None: a blank name, white space around
    it, a line break (``\n``), a carriage return (``read_classes`` refuses it), a byte-order mark
    at its start (dropped at the start of a file), or text that is not UTF-8
    (``paths.not_utf8``). The other characters ``str.splitlines`` breaks at (``\x1c``,
    ``\u2028``) and control characters (a tab) read back as written: lines end at ``\n`` only
    (``text_lines``)."""
    if not name.strip():
        return "is blank"
    if name != name.strip():
        return "has white space around it, which a classes file (one name a line) drops"
    if "\n" in name:
        return "holds a line break, which a classes file (one name a line) cannot hold"
    if "\r" in name:
        return _CARRIAGE_RETURN
    if name.startswith("\ufeff"):
        return "starts with a byte-order mark (U+FEFF), which is dropped where it starts a file"
    if not_utf8(name):
        return "holds a byte that is not UTF-8 text, which a classes file (UTF-8) cannot hold"
    return None


def in_package(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (through links and ``..``) lies in the installed octvideo package, whose
    files (the shipped class lists) are read and never written."""
    return Path(os.path.realpath(path)).is_relative_to(PACKAGE)


def write_classes(path: str | os.PathLike[str], classes: list[str]) -> None:
    """Write a class list, one name a line (complete or not at all, see ``paths.write_atomically``),
    which ``read_classes`` reads back as ``classes``.

    Raises:
        AnnotationError: a name that would not read back (``class_name_problem``), or a name
            listed twice; nothing is written.
        UsageError: ``path`` lies in the installed octvideo package, or is a symbolic link.
        OutputWriteError: it cannot be written (a full disk); ``path`` is then left as it was.
    """
    text = classes_text(path, classes)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)


def classes_text(path: str | os.PathLike[str], classes: list[str]) -> str:
    """The text ``write_classes`` writes to ``path``, for a caller writing it with other files as
    one result (``paths.AtomicOutputs``).

    Raises:
        AnnotationError, UsageError: as ``write_classes``, before anything is written.
    """
    if in_package(path):
        raise UsageError(
            f"classes file {path} is inside the installed octvideo package ({PACKAGE}), which "
            "octvideo never writes; point data.classes_file at a path of your own"
        )
    seen: set[str] = set()  # in NFC: names differing only in Unicode form read back as one
    for name in classes:
        problem = class_name_problem(name) or ("is listed twice" if nfc(name) in seen else None)
        if problem:
            raise AnnotationError(
                f"classes file {path}: the class {name!r} {problem}; rename that class in the "
                "data (its label or folder)"
            )
        seen.add(nfc(name))
    return "".join(f"{c}\n" for c in classes)


def split_line(line: str) -> list[str]:
    """A stripped list line as ``[path, label]`` as typed (the label unchecked), or ``[line]``
    when it has no separator: a comma before the label makes it a comma list; else the label
    follows the last run of whitespace, so that a path may hold commas (``take 2, final.mp4 0``,
    as prepare writes it)."""
    split = _COMMA_LINE.fullmatch(line) or _SPACE_LINE.fullmatch(line)
    return [split.group(1), split.group(2)] if split else [line]


def list_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a line of a list (a line break in it, a space or comma at its end),
    or None: ``list_line`` writes every other path so that ``read_lines`` reads it back."""
    if "\n" in path:
        return "its name holds a line break, which a 'path label' list cannot hold"
    if path != path.rstrip() or path.endswith(","):
        return "its name ends in a space or a comma, which a 'path label' list drops"
    return None


def list_line(path: str, label: int) -> str:
    """The ``path label`` line of a list (with its ``\n``), read back by ``read_lines`` as
    ``path``: one starting with ``#`` (a comment) or a space (stripped) gets ``./`` first.

    Raises:
        ValueError: ``path`` cannot be written in a list (see ``list_path_problem``).
    """
    problem = list_path_problem(path)
    if problem:
        raise ValueError(f"{path!r}: {problem}")
    if path[:1] == "#" or path[:1].isspace():
        path = f"./{path}"
    return f"{path} {label}\n"


def _resolve(path: str, root: Path, allow_outside_root: bool, where: str) -> str:
    """``root / path`` for a relative path; one that climbs out of ``root`` is refused.

    An annotation file from elsewhere must not make the loader read files outside the data root
    (``../../home/user/...``); absolute paths are the list author's explicit choice and kept.
    """
    if os.path.isabs(path):
        return path
    base = os.path.normpath(root)
    joined = os.path.normpath(os.path.join(base, path))
    # compared absolute: relative ones share no prefix with "." (commonpath(".", "a") is "")
    real_base, real_joined = os.path.abspath(base), os.path.abspath(joined)
    if not allow_outside_root and os.path.commonpath([real_base, real_joined]) != real_base:
        raise AnnotationError(
            f"{where}: {path!r} leaves the data root {base}; fix the list, or set "
            f"data.allow_outside_root=true if the files really live there"
        )
    return joined


def read_lines(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    allow_outside_root: bool = False,
    need_label: bool = True,
) -> list[VideoRecord]:
    """Read a ``path label`` list.

    Args:
        path: the list file.
        root: folder relative paths are resolved against; default the list's folder.
        allow_outside_root: accept relative paths that climb out of ``root`` (``../x.mp4``).
        need_label: refuse a line without a label; without it (``data check``, which needs no
            labels), a list of paths alone (every line a path ending in a video extension, as
            ``data prepare`` writes for an unlabelled CSV) reads with the label -1.

    Returns:
        Records in file order, each video once: a line that repeats an earlier one (the same
        video, the same label) is dropped, with one warning counting them, so that a video is
        neither trained on nor scored twice.

    Raises:
        AnnotationError: a line that is not ``path label`` (with ``need_label`` a path alone,
            named as a line without a label; without it, a list that mixes the two), a label that
            is negative or not below ``MAX_CLASSES``, a path that leaves ``root``, a video listed
            again with another label (both lines named), or text that is not UTF-8.
    """
    records, repeats = _lines_and_repeats(Path(path), root, allow_outside_root, need_label)
    _warn_repeats(path, repeats, "line", len(records))
    return records


def _lines_and_repeats(
    path: Path,
    root: str | os.PathLike[str] | None,
    allow_outside_root: bool,
    need_label: bool = True,
) -> tuple[list[VideoRecord], list[tuple[int, int]]]:
    """The records of the list ``path`` (see ``read_lines``) and the lines dropped as repeats:
    ``(line, the earlier line it repeats)``."""
    base = Path(root) if root else path.parent
    records = []
    # video (``_video_id``) -> its first line, its label, its path
    first_line: dict[tuple[int, int] | str, tuple[int, int, str]] = {}
    repeats: list[tuple[int, int]] = []  # (line, the earlier line it repeats)
    first_of: dict[bool, int] = {}  # labelled or not -> the first line of that kind
    for number, raw in enumerate(text_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        name, label = _path_and_label(path, number, raw)
        _check_labelled(where, line, label >= 0, need_label, first_of)
        first_of.setdefault(label >= 0, number)
        video = _resolve(name, base, allow_outside_root, where)
        key = _video_id(video)  # "./a.mp4", "/data/a.mp4" and a link to a.mp4 are one video
        if key in first_line:
            earlier, earlier_label, earlier_video = first_line[key]
            if earlier_label != label:
                same = "" if earlier_video == video else f" (as {earlier_video}: the same file)"
                raise AnnotationError(
                    f"{where}: {name} is labelled {label} here and "
                    f"{earlier_label} at line {earlier}{same}; a video has one label: remove "
                    "one line"
                )
            repeats.append((number, earlier))
            continue
        first_line[key] = (number, label, video)
        records.append(VideoRecord(video, label))
    return records, repeats


def _path_and_label(path: Path, number: int, raw: str) -> tuple[str, int]:
    """The video path and label of ``raw``, line ``number`` of the list ``path`` (neither
    blank nor a comment): the label -1 for a line that is a video path alone.

    Raises:
        AnnotationError: the line is neither ``path label`` nor a video path, or its label is
            out of range (``_label``).
    """
    line = raw.strip()
    parts = split_line(line)
    text = parts[1] if len(parts) == 2 else ""
    if parts[0] and _LABEL.fullmatch(text):
        return parts[0].strip(), _label(path, number, text)
    if line.lower().endswith(VIDEO_EXTENSIONS):  # a path alone ("b.mp4 walking" is not)
        return line, -1
    raise AnnotationError(f"{path}:{number}: expected 'path label' (label an integer), got {raw!r}")


def _label(path: Path, number: int, text: str) -> int:
    """The label ``text`` (an integer as typed) of line ``number`` of the list ``path``.

    Raises:
        AnnotationError: it is negative, or not below ``MAX_CLASSES``.
    """
    if text.startswith("-") and text.strip("-0"):
        raise AnnotationError(f"{path}:{number}: negative label {text}")
    if len(text.lstrip("-0")) > len(str(MAX_CLASSES)) or int(text) >= MAX_CLASSES:
        raise AnnotationError(
            f"{path}:{number}: label {text} is beyond the {MAX_CLASSES} classes octvideo "
            f"takes (labels 0 to {MAX_CLASSES - 1}); fix the label"
        )
    return int(text)


def _check_labelled(
    where: str, line: str, labelled: bool, need_label: bool, first_of: dict[bool, int]
) -> None:
    """Refuse a list line (``line``, stripped, at ``where``) without a label where labels are
    needed (``need_label``: training, testing), and one of a list that mixes lines with and
    without a label (``first_of``: the first line of each kind before it).

    Raises:
        AnnotationError: one line naming the line and the missing label.
    """
    if not labelled and need_label:
        raise AnnotationError(
            f"{where}: {line!r} has no label: training and testing need 'path label' lines "
            "(label an integer); a list of paths alone, as data prepare writes for an "
            "unlabelled CSV, is an input for octvideo predict and data check"
        )
    other = first_of.get(not labelled)
    if other is not None:
        this, that = ("has a label", "has none") if labelled else ("has no label", "has one")
        raise AnnotationError(
            f"{where}: {line!r} {this} and line {other} {that}; give every line a label "
            "('path label') or none (a list of paths alone)"
        )


def _warn_repeats(
    path: str | os.PathLike[str], repeats: list[tuple[int, int]], what: str, kept: int
) -> None:
    """One warning counting the ``what``s (lines, rows) of ``path`` dropped as repeats of an
    earlier one (the same video, the same label), with the first as an example, and the
    ``kept`` ones, which name distinct videos."""
    if not repeats:
        return
    line, earlier = repeats[0]
    logger.warning(
        "%s: dropped %d %s%s that repeat%s an earlier one (the same video and label, e.g. line "
        "%d repeats line %d); the other %d name distinct videos",
        path,
        len(repeats),
        what,
        "" if len(repeats) == 1 else "s",
        "s" if len(repeats) == 1 else "",
        line,
        earlier,
        kept,
    )


def _read_lines_annotations(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None,
    classes: list[str] | None,
    source: str,
    allow_outside_root: bool,
    need_label: bool = True,
) -> Annotations:
    """Read a ``path label`` list with its class list.

    Args:
        path: the list file.
        root: as ``read_lines``.
        classes: the class list; default ``"0" .. "K-1"`` for the labels of this list (none for
            a list of paths alone).
        source: where ``classes`` came from, named when a label is outside it.
        allow_outside_root: as ``read_lines``.
        need_label: as ``read_lines``.

    Raises:
        AnnotationError: as ``read_lines``, or a label is not below ``len(classes)``.
    """
    records = read_lines(path, root, allow_outside_root=allow_outside_root, need_label=need_label)
    largest = max((r.label for r in records), default=-1)
    if classes is None:
        classes = [str(i) for i in range(largest + 1)]
    if largest >= len(classes):
        raise AnnotationError(
            f"{path}: label {largest} is outside {_classes_of(classes, source, 'fix the labels')}"
        )
    return Annotations(records, classes)


def _classes_of(classes: list[str], source: str, fix: str) -> str:
    """The end of the line that refuses a label outside ``classes``: which list or classes file
    (a ``source`` that starts with ``CLASSES_FILE_SOURCE``) set them, and what to do (``fix``,
    the way out that this format offers)."""
    if source.startswith(CLASSES_FILE_SOURCE):
        return (
            f"the {len(classes)} classes of {source}; {fix}, or set data.classes_file to the "
            "classes file the labels were numbered with"
        )
    return (
        f"the {len(classes)} classes of {source}; use the classes file of this dataset "
        f"(data.classes_file), or {fix}"
    )


def kinetics_name(youtube_id: str, time_start: str | float, time_end: str | float) -> str:
    """File stem of a Kinetics clip: ``<youtube_id>_<start:06d>_<end:06d>``."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def index_videos(root: str | os.PathLike[str]) -> dict[str, str]:
    """Map the stem of every video file under ``root`` to its path (``index_tree``)."""
    return index_tree(root).paths


class VideoIndex(NamedTuple):
    """The video files under a root, by stem (``index_tree``)."""

    paths: dict[str, str]  # stem -> the path used: the first in walk order
    copies: dict[str, list[str]]  # stem -> the other files of that stem, each another file
    skipped: list[str]  # the folders not searched, that are no class (``is_class_folder_name``)


def index_tree(root: str | os.PathLike[str]) -> VideoIndex:
    """The video files under ``root`` by stem, as a Kinetics CSV's rows name them (one walk of
    the tree, ``walk_tree``: links to folders followed). Folders that are no class (hidden,
    ``__MACOSX``, ``@eaDir``: a ``.Trash-1000`` or AppleDouble ``._x.mp4`` copy) are not
    searched. Of files sharing a stem, the first in walk order (a folder's files before its
    sub-folders', sub-folders in name order) is used; the others are ``copies``, unless they are
    that same file reached another way (a second link to its folder)."""
    paths: dict[str, str] = {}
    copies: dict[str, list[str]] = {}
    skipped: list[str] = []

    def searched(folder: str, name: str) -> bool:
        if is_class_folder_name(name):
            return True
        skipped.append(os.path.join(folder, name))
        return False

    for folder, files in walk_tree(root, keep_folder=searched):
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in VIDEO_EXTENSIONS:
                continue
            path = os.path.join(folder, name)
            used = paths.setdefault(stem, path)
            if used == path:
                continue
            seen = {_video_id(other) for other in [used, *copies.get(stem, [])]}
            if _video_id(path) not in seen:
                copies.setdefault(stem, []).append(path)
    return VideoIndex(paths, copies, skipped)


def _video_id(path: str) -> tuple[int, int] | str:
    """What tells a video from any other, whatever path reaches it (relative or absolute, through
    a link to it or its folder): the file's ``(st_dev, st_ino)`` when it exists, else its real
    path (``..`` and links resolved as far as they exist)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
        info = None
    if info is not None and info.st_ino:  # some file systems give every file inode 0
        return info.st_dev, info.st_ino
    try:
        return os.path.realpath(path)
    except ValueError:
        return os.path.abspath(path)


def walk_tree(
    root: str | os.PathLike[str],
    *,
    exclude: str | os.PathLike[str] | None = None,
    exclude_name: str = "the excluded folder",
    keep_folder: Callable[[str, str], bool] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """``(folder, file names)`` of every folder under ``root``, ``root`` first, sub-folders in
    name order, links to folders followed (a video tree assembled from several disks, a split
    linked in), as the folders format follows them.

    Not walked, each named in a warning line: a folder whose real path is ``exclude`` or lies in
    it, however it is reached (``data prepare``'s outputs, named ``exclude_name``); a link to a
    folder it lies in (a loop), or to one that holds ``root`` or ``exclude`` (``/``, a parent).
    A folder that cannot be read (a link into ``/dev`` or ``/proc``, a folder removed during the
    walk) is stepped over; one warning line at the end counts them, with the first and its error.

    Args:
        root: the folder walked.
        exclude: a folder never walked into.
        exclude_name: what ``exclude`` is, in the warning.
        keep_folder: called with ``(folder, name)`` for each sub-folder; one it returns False for
            is not walked (silently: the caller counts them).
    """
    top = os.fspath(root)
    # (real path, what it is) of the root and the excluded folder: no link to one holding them
    excluded = None if exclude is None else (os.path.realpath(exclude), f"{exclude_name} {exclude}")
    holds = [(os.path.realpath(top), top), *([excluded] if excluded else [])]
    unreadable: list[OSError] = []
    top_id = _folder_id(top, unreadable)
    # folder -> (the folders it lies in, its real path)
    chains = {top: (frozenset({top_id}), holds[0][0])}
    walk = os.walk(top, onerror=unreadable.append, followlinks=True) if top_id else ()
    for folder, dirs, files in walk:
        chain, real_folder = chains.pop(folder)
        kept = []
        for name in sorted(dirs):
            path = os.path.join(folder, name)
            if keep_folder is not None and not keep_folder(folder, name):
                continue
            link = os.path.islink(path)
            real = os.path.realpath(path) if link else os.path.join(real_folder, name)
            folder_id = _folder_id(path, unreadable)
            if folder_id is None:
                continue
            why = _why_not_walked(real, link, folder_id in chain, excluded, holds)
            if why:
                said = f"a link to {real}, {why}; not followed" if link else f"{why}; not walked"
                logger.warning("%s is %s", printable(path), said)
                continue
            chains[path] = (chain | {folder_id}, real)
            kept.append(name)
        dirs[:] = kept
        yield folder, files
    _warn_unreadable(top, unreadable)


def _why_not_walked(
    real: str,
    link: bool,
    loops: bool,
    excluded: tuple[str, str] | None,
    holds: list[tuple[str, str]],
) -> str | None:
    """Why ``walk_tree`` does not walk the sub-folder whose real path is ``real`` (reached
    through a link: ``link``), in words for its warning, or None to walk it: it is a folder it
    lies in (``loops``), it is or lies in ``excluded``, or it is a link to a folder that holds
    one of ``holds``. ``excluded`` and ``holds`` are ``(real path, what it is)``."""
    if loops:
        return "a folder it lies in (it would loop)"
    if excluded is not None and _lies_in(real, excluded[0]):
        return f"{excluded[1]} or one in it"
    if link:
        held = [what for inner, what in holds if _lies_in(inner, real)]
        return f"a folder that holds {held[0]}" if held else None
    return None


def _warn_unreadable(top: str, unreadable: list[OSError]) -> None:
    """One warning counting the folders under ``top`` that ``walk_tree`` stepped over, unread,
    with the first and its error."""
    if not unreadable:
        return
    first = unreadable[0]
    logger.warning(
        "%s: %d folder%s could not be read and %s stepped over (e.g. %s: %s)",
        printable(top),
        len(unreadable),
        "" if len(unreadable) == 1 else "s",
        "was" if len(unreadable) == 1 else "were",
        printable(os.fspath(first.filename or top)),
        first.strerror or first,
    )


def _lies_in(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is the real path ``folder`` or lies in it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _folder_id(path: str, unreadable: list[OSError]) -> tuple[int, int] | None:
    """What tells a folder from any other, whatever path (link) reaches it; None, with the error
    added to ``unreadable``, for one that cannot be read."""
    try:
        info = os.stat(path)
    except OSError as err:
        unreadable.append(err)
        return None
    return info.st_dev, info.st_ino


class KineticsRow(NamedTuple):
    """The columns of a Kinetics CSV row that octvideo reads, as written."""

    line: int  # the line the row starts at (a quoted field may span lines)
    label: str
    youtube_id: str
    time_start: str
    time_end: str


def read_kinetics_rows(
    path: str | os.PathLike[str], what: str = "annotation file", *, need_label: bool = True
) -> list[KineticsRow]:
    """The rows of the Kinetics CSV ``path``, every one checked, each video once: ``data
    prepare`` calls this before it encodes anything and ``read_kinetics_csv`` after, so that the
    two never disagree. ``_kinetics_rows`` tells which rows repeated an earlier one.
    """
    return _kinetics_rows(path, what, need_label)[0]


def _kinetics_rows(
    path: str | os.PathLike[str], what: str, need_label: bool
) -> tuple[list[KineticsRow], list[tuple[int, int]]]:
    """The rows of the Kinetics CSV ``path`` (see ``read_kinetics_rows``), and the rows dropped
    as repeats: ``(line, the earlier line it repeats)``.

    A row whose video (``kinetics_name``) an earlier row names with the same label is dropped;
    with another label it is refused, naming both lines and labels. Labels are read in NFC
    (``nfc``), the form they are compared in.

    Every field is read stripped, the header's names and the rows' alike, so that a CSV written
    with ``", "`` between fields reads as the plain one (a space after a comma does not hide a
    quote: ``label, "cooking, eggs"``): no field keeps white space around it (a YouTube id, the
    times and the split hold none, and a classes file drops it from a label). Other columns are
    ignored; blank lines are skipped.

    Args:
        path: the CSV.
        what: what ``path`` is to the caller (``--csv``), named in the errors.
        need_label: refuse a CSV without a ``label`` column (an unlabelled test split, as the
            official Kinetics test.csv); without it, such a CSV's rows have the label ``""``.

    Raises:
        AnnotationError: a missing column (a missing ``label`` named as an unlabelled test
            split); a row whose fields do not match the header, whose times
            are not seconds from 0 to ``MAX_CSV_SECONDS`` (the start not after the end), whose
            label or YouTube id is empty, or whose label a classes file cannot hold
            (``class_name_problem``); a video an earlier row gives another label; a quote never
            closed; more than ``MAX_CLASSES`` labels; text that is not UTF-8. The message names
            the line.
        OSError: the file cannot be read.
    """
    text = io.StringIO(read_text(path, what), newline="")
    reader = csv.reader(text, strict=True, skipinitialspace=True)
    header = [name.strip() for name in next(reader, [])]
    column = _kinetics_columns(header, f"{what} {path}", need_label)
    unlabelled = column[0] is None  # no label column, and need_label False
    rows = []
    first_row: dict[str, KineticsRow] = {}  # video -> the first row naming it
    repeats: list[tuple[int, int]] = []
    start = reader.line_num + 1  # the line a row starts at
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            where = f"{what} {path}:{line}"
            row = _kinetics_row(fields, line, header, column, where, need_label=not unlabelled)
            if row is None:  # a blank line, or one of spaces
                continue
            stem = kinetics_name(row.youtube_id, row.time_start, row.time_end)
            earlier = first_row.setdefault(stem, row)
            if earlier is not row:
                if earlier.label != row.label:
                    raise AnnotationError(
                        f"{where}: {stem} is labelled {row.label!r} here and "
                        f"{earlier.label!r} at line {earlier.line}; a video has one label: "
                        "remove one row"
                    )
                repeats.append((line, earlier.line))
                continue
            rows.append(row)
    except csv.Error as err:
        raise AnnotationError(
            f"{what} {path}:{start}: {_csv_problem(err)}; fix the quotes"
        ) from None
    labels = {row.label for row in rows}
    if len(labels) > MAX_CLASSES:
        raise AnnotationError(
            f"{what} {path}: {len(labels)} labels; octvideo takes at most {MAX_CLASSES} classes"
        )
    return rows, repeats


def _kinetics_row(
    fields: list[str],
    line: int,
    header: list[str],
    column: list[int | None],
    where: str,
    *,
    need_label: bool,
) -> KineticsRow | None:
    """The ``KineticsRow`` of a CSV row's ``fields`` (read stripped and in NFC, at ``column``:
    ``_kinetics_columns``), checked (``_check_kinetics_row``); None for a blank row.

    Raises:
        AnnotationError: the row has another number of fields than ``header``, or fails its
            check; the message starts with ``where``.
    """
    fields = [value.strip() for value in fields]
    if fields in ([], [""]):
        return None
    if len(fields) != len(header):
        raise AnnotationError(
            f"{where}: {len(fields)} fields where the header has {len(header)} "
            f"({', '.join(header)}); fix the row"
        )
    row = KineticsRow(line, *(nfc(fields[i]) if i is not None else "" for i in column))
    _check_kinetics_row(row, where, need_label=need_label)
    return row


def _csv_problem(err: csv.Error) -> str:
    """What ``csv``'s error ``err`` means to the writer of the CSV."""
    if "end of data" in str(err):
        return "a quoted field opened on this row is never closed"
    return f"malformed CSV ({err})"


def _kinetics_columns(header: list[str], named: str, need_label: bool) -> list[int | None]:
    """Where each of ``KINETICS_COLUMNS`` is in a Kinetics CSV's ``header`` (its names
    stripped); the label's is None for a CSV without a label column (an unlabelled test split),
    which only a caller that does not ``need_label`` reads. ``named``: the CSV in a message.

    Raises:
        AnnotationError: a column is missing (a missing label named as an unlabelled split).
    """
    unlabelled = "label" not in header and set(KINETICS_COLUMNS[1:]) <= set(header)
    if unlabelled and need_label:
        raise AnnotationError(
            f"{named} has no label column: an unlabelled test split (as Kinetics' "
            "test.csv) cannot be listed for training or testing; pass a labelled CSV (data "
            "check checks its videos decode)"
        )
    if not unlabelled and not set(KINETICS_COLUMNS) <= set(header):
        raise AnnotationError(
            f"{named} is not a Kinetics CSV: it needs the columns "
            f"{sorted(KINETICS_COLUMNS)}, found {sorted(header)}"
        )
    return [header.index(name) if name in header else None for name in KINETICS_COLUMNS]


def _check_kinetics_row(row: KineticsRow, where: str, *, need_label: bool = True) -> None:
    """Refuse a row (at ``where``) whose times, label or YouTube id cannot name a video of a
    class (see ``read_kinetics_rows``); without ``need_label`` (a CSV without a label column)
    the label is not checked."""
    try:
        kinetics_name(row.youtube_id, row.time_start, row.time_end)
        times_ok = 0 <= float(row.time_start) <= float(row.time_end) <= MAX_CSV_SECONDS
    except (ValueError, OverflowError):  # "abc", "nan", "inf"
        times_ok = False
    if not times_ok:
        raise AnnotationError(
            f"{where}: time_start {row.time_start!r} and time_end {row.time_end!r} must be "
            f"seconds from 0 to {MAX_CSV_SECONDS}, the start not after the end; fix the row"
        )
    for name, value in (("label", row.label), ("youtube_id", row.youtube_id)):
        if not value and (need_label or name != "label"):
            raise AnnotationError(f"{where}: its {name} is empty; fix the row or remove it")
    problem = class_name_problem(row.label) if need_label else None
    if problem:
        raise AnnotationError(
            f"{where}: the label {row.label!r} {problem}; fix the label (it becomes a line of "
            "classes.txt)"
        )


def read_kinetics_csv(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    classes: list[str] | None = None,
    *,
    classes_source: str = "the given class list",
    need_label: bool = True,
) -> Annotations:
    """Read an official Kinetics CSV and find each row's video under ``root``.

    Args:
        path: the CSV (``label,youtube_id,time_start,time_end,split``; extra columns ignored),
            read by ``read_kinetics_rows``.
        root: folder searched recursively for the videos (``index_tree``: not in a folder
            that is no class; of two files of one name the first found, with a warning naming
            both); default the CSV's folder.
        classes: the class list to map labels with; default the sorted labels of this CSV.
        classes_source: where ``classes`` came from, named when a label is not among them.
        need_label: refuse a CSV without a label column; without it (``data check``, which
            needs no labels) such a CSV's records have the label -1 and the class list is empty.

    Returns:
        Records of the rows whose file exists, each video once (a row repeating an earlier one
        is dropped, with one warning counting them), the class list, and the count of missing
        rows.

    Raises:
        AnnotationError: a malformed CSV (see ``read_kinetics_rows``: a video given two labels
            among them), or a label is not in ``classes``.
    """
    path = Path(path)
    rows, repeats = _kinetics_rows(path, "annotation file", need_label)
    _warn_repeats(path, repeats, "row", len(rows))
    unlabelled = any(not row.label for row in rows)  # no label column (need_label False)
    if unlabelled:
        classes = []
    elif classes is None:
        classes = sorted({row.label for row in rows})
    label_of = {"": -1} if unlabelled else label_index(classes)
    where = root if root else path.parent
    index = index_tree(where)
    records, missing, copied = [], [], []
    for row in rows:
        if row.label not in label_of:
            fix = "pass the training CSV first"
            raise AnnotationError(
                f"{path}:{row.line}: label {row.label!r} is not among "
                f"{_classes_of(classes, classes_source, fix)}"
            )
        stem = kinetics_name(row.youtube_id, row.time_start, row.time_end)
        if stem in index.paths:
            records.append(VideoRecord(index.paths[stem], label_of[row.label]))
            if stem in index.copies:
                copied.append(stem)
        else:
            missing.append(stem)
    _warn_found(path, where, index, copied, missing, len(rows))
    return Annotations(records, list(classes), len(missing), missing[:10])


def _warn_found(
    path: Path,
    where: str | os.PathLike[str],
    index: VideoIndex,
    copied: list[str],
    missing: list[str],
    rows: int,
) -> None:
    """The warnings of a Kinetics CSV whose videos were looked up in ``index`` (the tree
    ``where``): one for the ``copied`` stems, which have other files than the one used, and one
    for the ``missing`` stems, of the CSV's ``rows``, that have no file (naming the folders not
    searched)."""
    if copied:
        stem = copied[0]
        logger.warning(
            "%s: %d of its videos have two or more files under %s; the first found (folders in "
            "name order) is used, e.g. for %s %s, not %s; move or remove the other copies",
            path,
            len(copied),
            where,
            stem,
            printable(index.paths[stem]),
            " or ".join(printable(other) for other in index.copies[stem]),
        )
    if missing:
        skipped = (
            f"; {len(index.skipped)} folders that are no class (hidden, __MACOSX or @eaDir, e.g. "
            f"{printable(index.skipped[0])}) were not searched"
            if index.skipped
            else ""
        )
        logger.warning(
            "%s: %d of %d rows have no video file under %s (e.g. %s)%s",
            path,
            len(missing),
            rows,
            where,
            missing[0],
            skipped,
        )


def video_entries(
    folder: str | os.PathLike[str], extensions: tuple[str, ...] = VIDEO_EXTENSIONS
) -> list[Path]:
    """The entries of ``folder`` named like videos (suffix in ``extensions``, lower case),
    sorted: whatever each is, so that one that only looks like a video (a broken symlink, a
    symlink loop, a pipe, a link to a device, a folder named ``x.mp4``) is listed, and reported
    as a bad video by the decoder that refuses it, instead of being left out unseen."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in extensions)


def read_folders(
    root: str | os.PathLike[str],
    classes: list[str] | None = None,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    *,
    classes_source: str = "the given class list",
) -> Annotations:
    """Read a ``root/<class>/<video>`` tree.

    Args:
        root: the folder holding one sub-folder per class.
        classes: the class list; default the sorted sub-folder names.
        extensions: file suffixes counted as videos (lower case).
        classes_source: where ``classes`` came from, named when a folder is not among them.

    Returns:
        Records sorted by class then file name, and the class list. Every entry of a class
        folder named like a video is a record (``video_entries``): one that is no video file
        fails to decode as a bad video (``data check`` reports it, training skips it). Hidden
        files (``is_hidden_name``: macOS's AppleDouble ``._x.mp4``) and folders that are no
        class (``class_folders``: ``.git``, ``__MACOSX``) are skipped, with one warning line
        counting each; a class folder holding no video is named in a warning. Folder
        names meet ``classes`` in NFC (``nfc``), and a class list made from them is in NFC.

    Raises:
        AnnotationError: ``root`` is not a folder, or holds a folder not in ``classes``.
    """
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(
            f"{root} is not a folder: the folders format reads {root}/<class>/<video>; pass the "
            "class-folder root, or another data.annotation_format"
        )
    folders, skipped = class_folders(root)
    _warn_not_classes(root, skipped)
    if classes is None:
        classes = sorted({nfc(name) for name in folders})
    label_of = label_index(classes)
    records, empty, hidden = [], [], []
    for name in folders:
        if nfc(name) not in label_of:
            raise AnnotationError(
                f"{root}: folder {name!r} is not among "
                f"{_classes_of(classes, classes_source, 'remove the folder')}"
            )
        entries = video_entries(root / name, extensions)
        hidden += [f for f in entries if is_hidden_name(f.name)]
        videos = [f for f in entries if not is_hidden_name(f.name)]
        if not videos:
            empty.append(name)
        records.extend(VideoRecord(str(f), label_of[nfc(name)]) for f in videos)
    _warn_hidden_and_empty(root, hidden, empty)
    return Annotations(records, list(classes))


def _warn_not_classes(root: Path, skipped: list[str]) -> None:
    """One warning counting the folders of ``root`` skipped as no class (``class_folders``)."""
    if skipped:
        logger.warning(
            "%s: skipped %d folder%s that cannot be a class (hidden, __MACOSX or @eaDir: %r)",
            root,
            len(skipped),
            "" if len(skipped) == 1 else "s",
            skipped[0],
        )


def _warn_hidden_and_empty(root: Path, hidden: list[Path], empty: list[str]) -> None:
    """One warning counting the ``hidden`` files of ``root``'s class folders, left out, and one
    naming the ``empty`` class folders, which hold no video."""
    if hidden:
        logger.warning("%s: skipped %s", root, hidden_files_skipped(hidden))
    if empty:
        logger.warning(
            "%s: %d class folder%s no video (%s); each stays a class, with no video to learn",
            root,
            len(empty),
            " holds" if len(empty) == 1 else "s hold",
            ", ".join(repr(name) for name in empty[:3]),
        )


def is_class_folder_name(name: str) -> bool:
    """Whether a folder named ``name`` can be a class: not hidden (``.git``,
    ``.ipynb_checkpoints``), not ``__MACOSX`` (the resource forks of a zip made on macOS) or
    ``@eaDir`` (a Synology NAS's thumbnails)."""
    return not is_hidden_name(name) and name not in ("__MACOSX", "@eaDir")


def is_hidden_name(name: str) -> bool:
    """Whether a file named ``name`` is hidden: a dot file, such as the AppleDouble ``._x.mp4``
    that macOS writes beside every file it copies to a FAT, exFAT or network disk (the file's
    resource fork, no video). A folder search for inputs (``predict``), the folders format
    (``read_folders``, so ``data check``) and ``data prepare`` leave them out, as they leave out
    the folders that are no class (``is_class_folder_name``), one line counting them
    (``hidden_files_skipped``)."""
    return name.startswith(".")


def hidden_files_skipped(paths: Sequence[str | os.PathLike[str]]) -> str:
    """``3 hidden files named like videos (...; e.g. /d/jump/._a.mp4)``: the one line that
    counts the hidden ``paths`` left out (``is_hidden_name``), the first of them sorted as the
    example."""
    return (
        f"{len(paths)} hidden file{'' if len(paths) == 1 else 's'} named like videos (dot files "
        "such as the AppleDouble ._x.mp4 that macOS writes beside each file it copies: no "
        f"video; e.g. {printable(min(map(os.fspath, paths)))})"
    )


def class_folders(root: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The names of the folders of ``root`` that are classes (``is_class_folder_name``) and of
    those skipped, each sorted."""
    names = sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    classes = [name for name in names if is_class_folder_name(name)]
    skipped = [name for name in names if not is_class_folder_name(name)]
    return classes, skipped


def _class_names_used(
    path: str | os.PathLike[str],
    fmt: str,
    root: str | os.PathLike[str] | None,
    classes: list[str],
) -> set[str]:
    """The names (in NFC) of the classes that ``path`` (an annotation of format ``fmt``) has
    videos of, read without looking for its videos: a list's labels, a CSV's, a class root's
    folders. Only for a warning: nothing is refused here that reading the list would not refuse.

    Raises:
        InputPathError, AnnotationError: as ``load_annotations`` reading ``path``.
    """
    fmt = _check_source(path, fmt, None)
    if fmt == "folders":
        return {nfc(name) for name in class_folders(path)[0]}
    if fmt == "kinetics_csv":
        return {row.label for row in _kinetics_rows(path, "annotation file", True)[0]}
    records = _lines_and_repeats(Path(path), root, True)[0]
    return {nfc(classes[r.label]) for r in records if r.label < len(classes)}


def _warn_unused_classes(
    classes_file: str | os.PathLike[str] | None,
    path: str | os.PathLike[str],
    found: Annotations,
    others: dict[str, set[str]],
) -> None:
    """Warn when the classes file lists classes that no video of ``path`` uses. A class that
    another list of the run has videos of (``others``: list -> the NFC names of its classes,
    ``_class_names_used``) is named as one the model gets no training video of; any other is
    often a classes file of another dataset left at ``data.classes_file``, which would train a
    head too wide."""
    used = {r.label for r in found.records}
    unused = [name for i, name in enumerate(found.classes) if i not in used]
    for other, names in others.items():
        theirs = [name for name in unused if nfc(name) in names]
        if theirs:
            logger.warning(
                "classes file %s: %d of its classes (e.g. %s) %s videos in %s but none in %s; "
                "the model gets no training video of %s",
                classes_file,
                len(theirs),
                ", ".join(repr(name) for name in theirs[:3]),
                "have" if len(theirs) > 1 else "has",
                other,
                path,
                "them" if len(theirs) > 1 else "it",
            )
            unused = [name for name in unused if name not in theirs]
    if not unused:
        return
    logger.warning(
        "classes file %s: %d of its %d classes are used by no video of %s (e.g. %s); is it "
        "another dataset's? %s",
        classes_file,
        len(unused),
        len(found.classes),
        path,
        ", ".join(repr(name) for name in unused[:3]),
        _unused_classes_advice(classes_file),
    )


def _unused_classes_advice(classes_file: str | os.PathLike[str] | None) -> str:
    """The way out that ends the warning of a classes file with unused classes: a shipped list
    is never deleted, so its advice is a file of the user's own."""
    if classes_file is not None and in_package(classes_file):
        return (
            "It ships with octvideo: for your own classes, set model.num_classes to their number "
            "and point data.classes_file at a file of yours (written from the data when it does "
            "not exist)"
        )
    return (
        "Point data.classes_file at this dataset's, or delete the file to have it written "
        "from the data"
    )


def _classes_of_other_lists(
    other_lists: Sequence[str | os.PathLike[str]],
    fmt: str,
    root: str | os.PathLike[str] | None,
    found: Annotations,
) -> dict[str, set[str]]:
    """The NFC names of the classes each of ``other_lists`` has videos of
    (``_class_names_used``), for ``_warn_unused_classes``; read only where ``found`` leaves a
    class of its class list without a video, to say why. A list that cannot be read is left
    out: only a warning needs it, and its own reading names the problem."""
    if len({r.label for r in found.records}) >= len(found.classes):
        return {}
    others: dict[str, set[str]] = {}
    for other in other_lists:
        try:
            others[str(other)] = _class_names_used(other, fmt, root, found.classes)
        except (UsageError, OSError):
            continue
    return others


# what the formats that read one file read (the folders format reads a folder)
_FILE_FORMATS = {"lines": "a 'path label' list file", "kinetics_csv": "a Kinetics CSV file"}


def _check_source(
    path: str | os.PathLike[str], fmt: str, classes_file: str | os.PathLike[str] | None
) -> str:
    """The format of ``path`` (``fmt``, or detected for ``"auto"``), once the annotation and the
    classes file are things that format can read and write.

    Raises:
        InputPathError: ``path`` does not exist (a ``FileNotFoundError``).
        AnnotationError: ``path`` is a folder given to a file format, or for any format a pipe,
            a device, a broken symlink or a symlink loop (reading a pipe would wait for a writer
            for ever); ``classes_file`` is any of these or a folder.
    """
    if not os.path.lexists(path):
        raise InputPathError(f"annotations {path} do not exist: check data.train_list etc.")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt in _FILE_FORMATS and Path(path).is_dir():
        raise AnnotationError(
            f"{path} is a folder: the {fmt} format reads {_FILE_FORMATS[fmt]}; pass that file, "
            "or the class-folder root with the folders format (data.annotation_format)"
        )
    if fmt != "folders":
        refuse_no_file(path)
    if classes_file and os.path.lexists(classes_file):
        # a classes file that is missing gets written: a device or pipe there would be written
        # into, a broken link written through
        problem = why_not_a_file(classes_file)
        if problem is not None:
            raise AnnotationError(
                f"classes file {classes_file} {problem}, not a file; point data.classes_file at "
                "a file"
            )
    return fmt


def load_annotations(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    fmt: str = "auto",
    classes_file: str | os.PathLike[str] | None = None,
    classes: list[str] | None = None,
    classes_source: str = "the given class list",
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    allow_outside_root: bool = False,
    other_lists: Sequence[str | os.PathLike[str]] = (),
    need_labels: bool = True,
) -> Annotations:
    """Read annotations of any supported format with a stable class list.

    Args:
        path: a lines file, a Kinetics CSV, or a class-folder root (the folder read; a relative
            one is taken from the working directory, like a list file).
        root: folder relative list paths / Kinetics videos are found under; default the
            annotation's folder. Not used by ``folders``: the videos are those in ``path``.
        fmt: ``"auto"``, ``"lines"``, ``"kinetics_csv"`` or ``"folders"``.
        classes_file: class names, one a line. Used when it exists (with a warning naming its
            classes that no video of ``path`` uses); written when it does not; refused when it
            is a folder, a device or a pipe.
        classes: a class list to use instead (e.g. the training list's, for validation).
        classes_source: where ``classes`` came from, for the message that refuses a label (or
            a class folder) not among them.
        extensions: video suffixes for the ``folders`` format.
        allow_outside_root: accept relative list paths that climb out of ``root``.
        other_lists: the run's other annotations (validation, test), read in the same format
            only when the classes file has classes no video of ``path`` uses, so that the
            warning names those another list has videos of as classes without training videos,
            not as another dataset's. One that cannot be read is left out of the warning: its
            own reading, when the run comes to it, names the problem.
        need_labels: refuse a Kinetics CSV without a label column and a list line without a
            label; without it (``data check``), such a CSV and a list of paths alone (as ``data
            prepare`` writes for an unlabelled CSV) have records labelled -1.

    Returns:
        The records, the class list and the number of rows without a file.

    Raises:
        InputPathError: ``path`` does not exist (a ``FileNotFoundError``).
        AnnotationError: unknown format, malformed line, a label outside the class list, a
            class folder not in it (a ``UsageError`` and a ``ValueError``).
    """
    read_as = _check_source(path, fmt, classes_file)  # ``fmt``, or the one found for "auto"
    known = classes
    if known is None and classes_file and Path(classes_file).is_file():
        known = read_classes(classes_file)
    source = classes_source if classes is not None else f"classes file {classes_file}"
    if read_as == "lines":
        result = _read_lines_annotations(path, root, known, source, allow_outside_root, need_labels)
    elif read_as == "kinetics_csv":
        result = read_kinetics_csv(path, root, known, classes_source=source, need_label=need_labels)
    elif read_as == "folders":
        extensions = tuple(e.lower() for e in extensions)
        result = read_folders(path, known, extensions, classes_source=source)
    else:
        raise AnnotationError(
            f"unknown annotation format {read_as!r}: use lines, kinetics_csv or folders"
        )
    if classes is None and known is not None:
        others = _classes_of_other_lists(other_lists, fmt, root, result)  # "auto": each its own
        _warn_unused_classes(classes_file, path, result, others)
    if classes_file and known is None:
        write_classes(classes_file, result.classes)
        logger.info("wrote %d class names to %s", len(result.classes), classes_file)
    return result
