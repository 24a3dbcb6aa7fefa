"""Input discovery for ``octvideo predict``: command-line arguments -> video file paths.

A file is taken as given; a folder is searched recursively for videos (``_videos_under``, leaving
out the renders ``predict --render`` writes there, hidden files such as macOS's AppleDouble
``._x.mp4``, and the folders ``data prepare`` and ``data check`` skip: hidden ones such as
``.Trash-1000``, ``__MACOSX``, ``@eaDir``; one warning counts them); a ``.txt`` file is a list
of paths, or an annotation list whose ``path label`` lines are taken as their paths. Nothing here
opens a video or knows a model: a path that does not exist, or a folder without videos, is kept,
so that it is reported as a failed input rather than dropped (a folder with the one line of
``folder_input_error``). A file given by name is taken whatever its name (a hidden one, a
render).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from octvideo.data.annotations import (
    VIDEO_EXTENSIONS,
    is_class_folder_name,
    is_hidden_name,
    split_line,
    text_lines,
    video_entries,
)
from octvideo.paths import why_not_a_file

logger = logging.getLogger(__name__)

# the end of every name ``octvideo predict --render`` gives a render in a folder
# (``<stem>.pred.mp4``)
RENDER_SUFFIX = ".pred.mp4"
# containers that take the H.264 (or MPEG-4 part 2) stream a render is: ``--render FILE`` takes
# any of them
RENDER_EXTENSIONS = (".mp4", ".mkv", ".mov", ".m4v", ".avi")


def is_render_name(name: str) -> bool:
    """Whether ``name`` is named as renders are, ``<name>.pred.<ext>`` of any
    ``RENDER_EXTENSIONS`` (any case): a folder search leaves them out, so that predicting a folder
    again does not predict its renders, and ``predict --render`` replaces them."""
    stem, ext = os.path.splitext(name)
    return ext.lower() in RENDER_EXTENSIONS and os.path.splitext(stem)[1].lower() == ".pred"


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files as given (a hidden one too); folders searched recursively for videos (sorted,
    ``_videos_under``; one warning a folder counts the hidden files and the folders that are no
    class that it left out); ``.txt`` files read as lists of paths (one a line, ``#`` comments
    skipped, relative to the list's folder; an annotation list's ``path label`` lines are taken
    as their paths).

    A path that does not exist, and a folder without videos, are kept, so that they are reported
    as failed rather than dropped.

    Raises:
        ValueError: a ``.txt`` list cannot be read or is not UTF-8 text.
    """
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if _quietly(path.is_dir):
            found, skipped = _videos_under(path)
            if skipped.files or skipped.folders:
                _warn_skipped(path, skipped)
            if not found:  # kept, so that it is reported as a failed input, in one line
                found = [str(path)]
            out.extend(found)
        elif path.suffix.lower() == ".txt":
            why = why_not_a_file(path)
            if why:  # a pipe, a device, a broken link: a list that cannot be read as one
                raise ValueError(f"input list {path} {why}, not a file; give the file itself")
            try:
                lines = text_lines(path, "input list")
            except OSError as err:
                raise ValueError(
                    f"input list {path} cannot be read ({err.strerror or err})"
                ) from None
            for line in lines:
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(str(_list_entry(line, path.parent)))
        else:
            out.append(str(path))
    return out


def folder_input_error(path: str) -> str | None:
    """The error of a folder among the inputs ``expand_inputs`` returns, or None for any other
    path: a folder that holds no video (given, or named like a video in a folder searched), or
    a link to a folder of videos that a search of the folder above did not follow."""
    folder = Path(path)
    if not _quietly(folder.is_dir):
        return None
    if _quietly(folder.is_symlink) and _videos_under(folder)[0]:
        return (
            f"{path} links to a folder of videos, which a folder search does not follow; give "
            "the link itself as an input"
        )
    return (
        f"{path} is a folder that holds no video files ({', '.join(VIDEO_EXTENSIONS)}); give "
        "a folder of videos, the videos themselves or a .txt list of them"
    )


def _list_entry(line: str, folder: Path) -> Path:
    """A line of an input list as a path: relative to the list's folder, and without the integer
    label of an annotation list (``path label``, as ``octvideo data`` writes) unless the whole
    line names a file."""
    whole = Path(line) if Path(line).is_absolute() else folder / line
    parts = split_line(line)  # as ``octvideo data`` and training read the same list
    if len(parts) == 2 and parts[1].isdigit() and not _quietly(whole.exists):
        entry = Path(parts[0])
        return entry if entry.is_absolute() else folder / entry
    return whole


def _quietly(test: Callable[[], bool]) -> bool:
    """``test()`` (``path.exists``, ``path.is_dir``), False for a path that cannot even be looked
    at (a name too long for the file system): it is kept as an input, which then fails alone."""
    try:
        return test()
    except OSError:
        return False


class _Skipped(NamedTuple):
    """What a folder search left out (``_videos_under``)."""

    files: list[str]  # hidden files named like videos (``is_hidden_name``: ``._x.mp4``)
    folders: list[str]  # folders not searched (``is_class_folder_name``: ``.Trash-1000``)


def _warn_skipped(folder: Path, skipped: _Skipped) -> None:
    """One line for a folder input: what its search left out, and how to take one anyway."""
    kinds = (
        (skipped.folders, "folder", "hidden, __MACOSX or @eaDir, as data prepare and check skip: "),
        (skipped.files, "hidden file", ""),
    )
    parts = [
        f"{len(paths)} {what}{'' if len(paths) == 1 else 's'} ({why}{paths[0]!r})"
        for paths, what, why in kinds
        if paths
    ]
    logger.warning("%s: skipped %s; give one by name to predict it", folder, " and ".join(parts))


def _videos_under(folder: Path) -> tuple[list[str], _Skipped]:
    """Every entry under ``folder`` named like a video (``video_entries``, folder by folder),
    sorted, and what was left out: the renders ``octvideo predict --render`` writes
    (``is_render_name``, by name only: no file is opened), so that predicting a folder again
    does not predict its own renders;
    hidden files (``is_hidden_name``: macOS's AppleDouble ``._x.mp4``, no video) and folders
    that are no class (``is_class_folder_name``: hidden ones such as ``.Trash-1000``,
    ``__MACOSX``, ``@eaDir``), which ``data prepare`` and ``data check`` skip too; those two are
    returned, to be counted. ``folder`` itself is searched, whatever its name.

    An entry that only looks like a video (a broken link, a loop of links, a pipe, a link to a
    device) is listed, to fail with the reason it gets alone; a folder named like one is
    searched like any folder, and listed (to fail as a directory) only when it holds no video,
    as it would be given alone. Links to folders are not followed (one named like a video is
    listed, and fails as a directory): a link back up the tree would never end.
    """
    found: list[str] = []
    searched: list[str] = []  # folders named like videos, searched as folders
    skipped = _Skipped([], [])
    for parent, subfolders, _ in os.walk(folder):
        left_out = sorted(name for name in subfolders if not is_class_folder_name(name))
        skipped.folders.extend(os.path.join(parent, name) for name in left_out)
        subfolders[:] = [name for name in subfolders if name not in left_out]  # not walked
        for entry in video_entries(parent):
            if entry.name in left_out or is_render_name(entry.name):
                continue
            if is_hidden_name(entry.name):
                skipped.files.append(str(entry))
            elif entry.name in subfolders and not entry.is_symlink():
                searched.append(str(entry))
            else:
                found.append(str(entry))
    for named in searched:
        if not any(path.startswith(named + os.sep) for path in found):
            found.append(named)
    return sorted(found), skipped
