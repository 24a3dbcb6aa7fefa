"""Prediction records: one per window and one per video, as a terminal table, JSON Lines or CSV.

Every record carries the input path, its type (``window`` or ``video``), times in seconds, the top-k
classes with probabilities, the input's own time (``seconds``: its decoding and its share of the
forward passes, ``octvideo.inference.pipeline``) and any error, so a failed input is a record too.
A CSV row has every field of a record (a video's ``num_frames``, ``fps`` and ``num_windows``, empty
in a window's row) and the top-k as ``label1, prob1, ...``.
Records go to a temporary file beside the output (``octvideo.paths.AtomicOutput``) that replaces
it when the writer is closed: an earlier file of that name is never half overwritten, a symbolic
link is refused, and a full disk is one line with the temporary file removed. A run stopped before
its first record (Ctrl-C, SIGTERM, any exception) has nothing to replace an earlier file with and
leaves it as it was. ``RecordWriter`` replaces only an earlier record file (``is_record_file``):
any other file at its path, or a read-only one, is refused (``check_replaceable``), by
``predict`` before any work.

A path whose name holds bytes that are not UTF-8 (``surrogateescape``'s ``\udcff``) is written as
that escape (``paths.TEXT_ERRORS``): a JSON Lines record reads back as the same path (``json``
decodes the escape; ``os.fsencode`` gives the bytes); a CSV stays UTF-8 text, the name spelled as
the terminal table shows it, so use ``.jsonl`` where such names must round-trip.
"""

from __future__ import annotations

import contextlib
import csv
import json
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from octvideo.inference.predictor import Prediction, VideoResult, check_result
from octvideo.paths import TEXT_ERRORS, AtomicOutput, check_output_file, keep_unless_earlier


def _top(pred: Prediction, classes: Sequence[str], k: int) -> list[dict[str, Any]]:
    return [
        {"label": label, "index": classes.index(label), "prob": round(prob, 6)}
        for label, prob in pred.top(classes, k)
    ]


def records(result: VideoResult, classes: Sequence[str], k: int = 5) -> list[dict[str, Any]]:
    """The window records of ``result`` (in time order), then its video record: each with the
    keys ``RECORD_KEYS`` names for its type.

    Raises:
        TypeError: ``result`` is no ``VideoResult``.
    """
    check_result(result, "records")
    out = [
        {
            "type": "window",
            "path": result.path,
            "window": i,
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "top": _top(w, classes, k),
        }
        for i, w in enumerate(result.windows)
    ]
    out.append(
        {
            "type": "video",
            "path": result.path,
            "ok": result.ok,
            "error": result.error,
            "start": 0.0,
            "end": round(result.duration, 3),
            "num_frames": result.num_frames,
            "fps": round(result.fps, 3),
            "num_windows": len(result.windows),
            "top": _top(result.video, classes, k) if result.video is not None else [],
            "seconds": round(result.seconds, 3),
        }
    )
    return out


# the keys of each type of record ``records`` makes, and of each of its ``top`` entries: an
# earlier record file begins with such a record (``is_record_file``)
RECORD_KEYS = {
    "window": frozenset(("type", "path", "window", "start", "end", "top")),
    "video": frozenset(
        (
            "type",
            "path",
            "ok",
            "error",
            "start",
            "end",
            "num_frames",
            "fps",
            "num_windows",
            "top",
            "seconds",
        )
    ),
}
TOP_KEYS = frozenset(("label", "index", "prob"))


# JSON Lines, not JSON: a ".json" file would be read as one JSON document, which this is not
RECORD_EXTENSIONS = (".jsonl", ".csv")
# the columns of a CSV before its top-k's ``label1, prob1, ...``: every field of a record but
# ``top``
CSV_FIELDS = (
    "type",
    "path",
    "window",
    "start",
    "end",
    "ok",
    "error",
    "num_frames",
    "fps",
    "num_windows",
    "seconds",
)
# those of a CSV an earlier octvideo wrote, before num_frames, fps and num_windows
OLDER_CSV_FIELDS = ("type", "path", "window", "start", "end", "ok", "error", "seconds")
# the most of a file's first line ``is_record_file`` reads: a record of 1000 classes and a long
# path is under 100 kB
MAX_FIRST_LINE = 1 << 20


def check_record_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if its extension names a record format.

    Raises:
        ValueError: another extension, or none.
    """
    path = Path(path)
    if path.suffix.lower() not in RECORD_EXTENSIONS:
        raise ValueError(f"--out {path}: use a .jsonl or .csv file name")
    return path


def is_record_file(path: str | os.PathLike[str]) -> bool:
    """Whether the regular file ``path`` holds records a ``RecordWriter`` wrote, or nothing: a
    file ``predict --out`` may replace. Its first line must be a whole record as ``records``
    makes it (exactly the keys ``RECORD_KEYS`` names for its type, and a ``top`` list of
    ``TOP_KEYS`` entries), or a CSV header exactly as a writer writes it (``_is_csv_header``):
    a user's JSON Lines whose lines have a ``type`` of ``video`` is no record file. At most
    ``MAX_FIRST_LINE`` bytes are read, so a video given as ``--out`` is not read whole.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        first = f.readline(MAX_FIRST_LINE)
    if not first:
        return True  # nothing to lose
    if _is_csv_header(first):
        return True
    try:
        row = json.loads(first)
    except ValueError:  # not JSON, not UTF-8, a line cut at the bound
        return False
    if not isinstance(row, dict) or not isinstance(row.get("type"), str):
        return False
    if row.keys() != RECORD_KEYS.get(row["type"], set()):
        return False
    top = row["top"]
    return isinstance(top, list) and all(
        isinstance(entry, dict) and entry.keys() == TOP_KEYS for entry in top
    )


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Refuses an existing file at ``path`` that is no record file (``is_record_file``), or is
    read-only (``paths.keep_unless_earlier``): ``RecordWriter`` and ``predict --out`` replace
    only earlier records, never a user's file.

    Raises:
        UsageError: one line naming ``--out`` and the file.
    """
    what = "a record file of predict (JSON lines or CSV)"
    keep_unless_earlier("--out", path, is_record_file, what)


def _is_csv_header(line: bytes) -> bool:
    """Whether ``line`` is a header ``RecordWriter`` writes: ``CSV_FIELDS`` (or an earlier
    octvideo's ``OLDER_CSV_FIELDS``), then ``label1, prob1, ...`` up to the run's top-k."""
    names = line.rstrip(b"\r\n").split(b",")
    for fields in (CSV_FIELDS, OLDER_CSV_FIELDS):
        pairs = len(names) - len(fields)
        tail = [f"{kind}{i}" for i in range(1, pairs // 2 + 1) for kind in ("label", "prob")]
        if pairs >= 0 and names == [name.encode() for name in (*fields, *tail)]:
            return True
    return False


class RecordWriter:
    """Writes records to ``path`` as JSON Lines (``.jsonl``) or CSV (``.csv``).

    The records go to a temporary file that ``close`` renames to ``path``: a run stopped by
    Ctrl-C or a crash still leaves the records of the videos done, while a failed write leaves
    ``path`` as it was. As a context manager it closes on the way out, and discards instead when
    an exception ends a run that wrote no record: a run stopped before its first input was done
    leaves an earlier ``path`` as it was, not emptied.

    Attributes:
        path: the output file.
        written: records written so far.
        discarded: the records were dropped (``discard``) and ``path`` left as it was.
        existed: an earlier file was at ``path`` when the writer opened.

    Raises:
        TypeError: ``path`` is no path (str or ``os.PathLike``), or ``k`` no whole number of 1
            or more.
        ValueError: ``path`` does not end in a record extension.
        UsageError: ``path`` is a symbolic link, a folder, in a folder that cannot be written,
            or a file that is no record file or is read-only (``check_replaceable``).
        OutputWriteError: the records cannot be written (full disk), from any method; the
            temporary file is removed and an earlier ``path`` kept.
    """

    def __init__(self, path: str | os.PathLike[str], k: int) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"RecordWriter: path must be a str or os.PathLike, got {path!r:.80}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise TypeError(f"RecordWriter: k must be a whole number of 1 or more, got {k!r:.80}")
        self.path = check_record_path(path)
        check_output_file("--out", self.path)  # a folder it cannot write in: a read-only mount
        check_replaceable(self.path)
        suffix = self.path.suffix.lower()
        self.format = "csv" if suffix == ".csv" else "jsonl"
        self._out: AtomicOutput | None = AtomicOutput(self.path, "--out")
        self.existed = self._out.existed
        self.written = 0
        self.discarded = False
        # a name's bytes that are not UTF-8 as escapes: exact in JSON, as the table shows in CSV
        self._file: TextIO = self._out.tmp.open(
            "w", encoding="utf-8", errors=TEXT_ERRORS, newline=""
        )
        self._csv = None
        if self.format == "csv":
            fields = list(CSV_FIELDS)
            for i in range(1, k + 1):
                fields += [f"label{i}", f"prob{i}"]
            self._csv = csv.DictWriter(self._file, fieldnames=fields, extrasaction="ignore")
            self._guard(self._csv.writeheader)

    def _guard(self, write: Any, *args: Any) -> None:
        """Runs ``write``; an ``OSError`` discards the temporary file and becomes
        ``OutputWriteError``."""
        out = self._out
        if out is None:
            raise ValueError(f"records for {self.path} are closed")
        try:
            write(*args)
        except OSError as err:
            self._out = None
            with contextlib.suppress(OSError):  # the buffer the disk refused is lost anyway
                self._file.close()
            out.discard()
            raise out.error(err) from err

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            if self._csv is None:
                # strict JSON: a result's scores are finite (``VideoResult.set_scores``), and a
                # NaN that slipped through is an error here, never a bare NaN token in the file
                line = json.dumps(row, ensure_ascii=False, allow_nan=False)
                self._guard(self._file.write, line + "\n")
            else:
                flat = dict(row)
                for i, top in enumerate(row["top"], start=1):
                    flat[f"label{i}"], flat[f"prob{i}"] = top["label"], top["prob"]
                self._guard(self._csv.writerow, flat)
            self.written += 1
        self._guard(self._file.flush)

    def close(self) -> None:
        """Renames the records to ``path``; nothing to do after a failed write."""
        if self._out is None:
            return
        self._guard(self._file.close)
        out, self._out = self._out, None
        out.commit()

    def discard(self) -> None:
        """Removes the records written so far: ``path`` stays as it was."""
        if self._out is None:
            return
        out, self._out = self._out, None
        with contextlib.suppress(OSError):  # the records are dropped either way
            self._file.close()
        out.discard()
        self.discarded = True

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if err is not None and self.written == 0:  # stopped with nothing to put in its place
            self.discard()
        else:
            self.close()


def format_result(
    result: VideoResult, classes: Sequence[str], k: int, *, failure: str = "FAILED"
) -> str:
    """A readable block for the terminal: the video's top-k, then one line per window; a result
    with an error ends with ``failure`` and the error (a file cut short: ``CUT SHORT``).

    Raises:
        TypeError: ``result`` is no ``VideoResult``.
    """
    check_result(result, "format_result")
    if result.video is None:
        return f"{result.path}\n  {failure}  {result.error}"
    head = (
        f"{result.path}  ({result.duration:.1f} s, {result.num_frames} frames, "
        f"{result.seconds:.2f} s to predict)"
    )
    lines = [head]
    for rank, (label, prob) in enumerate(result.video.top(classes, k), start=1):
        lines.append(f"  {rank}. {label:<30} {100 * prob:6.2f}%")
    if result.windows:
        lines.append(f"  {'window':>17}  top-1")
        for w in result.windows:
            label, prob = w.top(classes, 1)[0]
            lines.append(f"  {w.start:7.2f}-{w.end:7.2f} s  {label} ({100 * prob:.1f}%)")
    if not result.ok:
        lines.append(f"  {failure}  {result.error}")
    return "\n".join(lines)
