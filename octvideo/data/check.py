"""``octvideo data check``: decode every listed video in worker processes that may crash.

Decoders are C code; a corrupt file can make one segfault or hang. Each video is decoded, every
frame in chunks, by a long-lived worker process; the parent watches them. Each worker has its own
pipe and holds at most one video at a time, so the parent always knows which video a worker is
decoding and no lock is shared between workers. A worker that dies while decoding a video (signal
or exit) marks that video bad with its exit code and is replaced; a video that takes longer than
``timeout`` seconds marks it bad and its worker is killed and replaced. Only a worker decoding a
video past its deadline is ever killed, and killing it cannot stall the others. So a bad file can
only take down its own worker, never the check.

Workers start from octvideo's fork server (``octvideo.data.workers``), a clean process that has
imported the decoders but never decoded: forked from a process that had decoded with decord (a
notebook, a test session), a worker could hang when its reader closed, its decode thread waiting
on a queue copied mid-use.

The result lists every bad file with its error, and is written as UTF-8 JSON lines
(``write_bad_videos``; ``read_bad_videos`` reads them back): one ``{"path": ..., "error": ...}``
object a line, which holds any file name (a tab, a line break; bytes that are not UTF-8 as JSON
escapes of Python's ``surrogateescape`` code points) and any message.

The file is written to a temporary name and renamed when complete: a write that fails (a full
disk) stops with ``RunStopped`` and leaves no half report. A check stopped by Ctrl-C or SIGTERM
writes the report of the videos it had checked, marked as partial by a last line
``{"partial": "stopped by SIGTERM after 77 of 200 videos; ...", "checked": 77, "total": 200}``
(``PARTIAL``), and says so in its stop line; stopped before its first video was done, it leaves
an earlier report as it was.

Before any video is decoded, an ``--out`` that the report would destroy is refused: the
annotation file, a listed video, a file that is not regular (a device such as ``/dev/null``, a
pipe: renaming over it would replace it) or an existing file that is not an earlier report (a
checkpoint, a config); an earlier report is replaced.

Bounds: ``workers`` 1 to what this machine's cores take, at most ``MAX_WORKERS``
(``check_worker_count``; no more start than there are videos, and an open-file limit too low
for those is refused: ``reserve_open_files``), ``timeout`` above 0 and at most ``MAX_TIMEOUT``
(a day): outside them the check is refused before any video is decoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np
from tqdm import tqdm

from octvideo.data.annotations import (
    Annotations,
    is_hidden_name,
    load_annotations,
    video_entries,
)
from octvideo.data.limits import MAX_WORKERS, check_timeout
from octvideo.data.open_files import (
    FORK_SERVER_OPEN_FILES,
    open_files_message,
    out_of_open_files,
    reserve_open_files,
)
from octvideo.data.workers import (
    check_worker_count,
    exit_reason,
    serve,
    worker_context,
)
from octvideo.errors import Interrupted, OutputWriteError, RunStopped, failure_reason
from octvideo.paths import (
    ReadFiles,
    check_output_file,
    keep_unless_earlier,
    write_atomically,
    write_failure,
)
from octvideo.streams import RESULT

logger = logging.getLogger(__name__)

CHUNK = 64  # frames decoded per call, to bound memory on long videos
POLL = 0.2  # seconds between looks at the workers when no result arrives
MAX_REPORT_LINE = 2**20  # bytes of an existing --out read to tell whether it is a report


PARTIAL = frozenset({"partial", "checked", "total"})  # the keys of a stopped check's last line


@dataclass
class CheckReport:
    """Outcome of a check."""

    total: int  # videos listed (with a file, for Kinetics CSVs)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    missing_rows: int = 0  # Kinetics CSV rows without a file

    @property
    def ok(self) -> int:
        """Videos that decoded completely."""
        return self.total - len(self.bad)


def write_bad_videos(
    path: str | os.PathLike[str],
    rows: list[tuple[str, str]],
    partial: dict[str, str | int] | None = None,
) -> None:
    """Write ``(path, error)`` rows as JSON lines, to a temporary file renamed when complete
    (``paths.write_atomically``); ``partial`` (a stopped check's, with the keys of ``PARTIAL``)
    is the last line.

    Raises:
        UsageError: ``path`` is a symbolic link.
        OutputWriteError: the file cannot be written; ``path`` is then left as it was.
    """
    objects = [{"path": name, "error": error} for name, error in rows]
    objects += [partial] if partial else []
    text = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in objects)
    # a name's undecodable bytes (lone surrogates) are the one thing UTF-8 cannot hold: written as
    # the JSON escape \udcff (``paths.TEXT_ERRORS``) they read back as the same str
    write_atomically(path, text)


def read_bad_videos(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The ``(path, error)`` rows of a report that ``write_bad_videos`` wrote, in order (a
    stopped check's ``partial`` line is not one)."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(row["path"], row["error"]) for row in rows if "path" in row]


def check_one(path: str, decoder: str) -> str:
    """Decode every frame of one video; return "" if it is fine, else the error.

    Raises:
        RunStopped: the decoder ran out of open files (``open_files.out_of_open_files``), in
            one line (``open_files.open_files_message``): the video is not to blame.
    """
    from octvideo.data.decoding import Video

    try:
        # opened and indexed once for all chunks: opening it for each (PyAV reads every packet,
        # decord builds its index) would make a long video's check grow with its frames squared
        video = Video(path, decoder=decoder)
        num = video.info.num_frames
        for start in range(0, num, CHUNK):
            video.read(np.arange(start, min(start + CHUNK, num)))
        video.check_whole()  # a partial download cut between two frames decodes to its end
    except Exception as err:  # any failure is the finding being reported, not swallowed
        if out_of_open_files(err):
            raise RunStopped(open_files_message(f"decoding {path}")) from err
        return failure_reason(err)
    return ""


def _worker(conn: Connection, decoder: str, check: Callable[[str, str], str]) -> None:
    """Decode the videos the parent sends with ``check``, one at a time, until it sends None or
    goes away; each ``(index, path)`` is answered with ``(index, error)``, or with ``(index,
    RunStopped)`` for a decoder out of open files, which stops the check."""

    def decode(task: tuple[int, str]) -> Iterator[tuple[int, str | RunStopped]]:
        index, path = task
        try:
            yield index, check(path, decoder)
        except RunStopped as err:
            yield index, RunStopped(str(err))  # its message, without the decoder's traceback

    serve(conn, decode)


class _CheckWorker:
    """One decoding process, its own pipe, and the video it holds (if any) with its start time."""

    def __init__(
        self, ctx: mp.context.BaseContext, decoder: str, check: Callable[[str, str], str]
    ) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, decoder, check))
        self.proc.start()
        child.close()  # the worker's end lives in the worker only: its death is EOF here
        self.task: int | None = None
        self.started = 0.0

    def give(self, index: int, path: str) -> None:
        self.task, self.started = index, time.monotonic()
        self.conn.send((index, path))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            with contextlib.suppress(OSError):  # already gone
                self.conn.send(None)
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
        self.proc.join()
        self.conn.close()


class _CheckPool:
    """Worker processes, each fed one video at a time through its own pipe, replaceable."""

    def __init__(self, size: int, decoder: str) -> None:
        # the fork server (see the module's docstring); it imports the decoders once, so a worker
        # starts in milliseconds where spawn would import torch again in each
        self.ctx = worker_context()
        self.decoder = decoder
        self.check = check_one  # looked up now: what each worker runs (pickled by reference)
        self.workers = [_CheckWorker(self.ctx, decoder, self.check) for _ in range(size)]

    def replace(self, worker: _CheckWorker, kill: bool) -> None:
        """Stop ``worker`` (killing it if asked) and start a fresh one in its place."""
        worker.stop(kill=kill)
        self.workers[self.workers.index(worker)] = _CheckWorker(self.ctx, self.decoder, self.check)

    def assign(self, todo: deque[tuple[int, str]]) -> None:
        """Give the next ``(index, path)`` of ``todo`` to each idle worker, taking it off
        ``todo``; a worker found dead while idle is replaced and its video stays first."""
        for worker in list(self.workers):
            if worker.task is None and todo:
                try:
                    worker.give(*todo[0])
                except OSError:  # died while idle: its replacement takes the video
                    worker.task = None
                    self.replace(worker, kill=True)
                    continue
                todo.popleft()

    def receive(self, timeout: float) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """Wait for answers, at most ``POLL`` seconds and not past the soonest deadline of a
        busy worker (``timeout`` seconds after it was given its video).

        Returns:
            ``(decoded, lost)``: ``(index, error)`` of each video a worker answered (error ""
            when it decodes), and ``(index, reason)`` of each video whose worker died decoding
            it; that worker is replaced.
        """
        decoded: list[tuple[int, str]] = []
        lost: list[tuple[int, str]] = []
        busy = [w for w in self.workers if w.task is not None]
        now = time.monotonic()
        soonest = min((w.started + timeout - now for w in busy), default=POLL)
        for conn in wait([w.conn for w in busy], timeout=max(0.0, min(POLL, soonest))):
            worker = next(w for w in busy if w.conn is conn)
            try:
                index, error = worker.conn.recv()
            except (EOFError, OSError):  # the worker died while decoding its video
                worker.proc.join()
                lost.append((worker.task, f"decoder process died ({exit_reason(worker.proc)})"))
                self.replace(worker, kill=True)
                continue
            worker.task = None
            if isinstance(error, RunStopped):  # out of open files: no video is to blame
                raise error
            decoded.append((index, error))
        return decoded, lost

    def reap(self, timeout: float) -> list[tuple[int, str]]:
        """Kill and replace each worker that has held its video more than ``timeout`` seconds;
        the ``(index, reason)`` of each such video."""
        now, lost = time.monotonic(), []
        for worker in list(self.workers):
            if worker.task is not None and now - worker.started > timeout:
                lost.append((worker.task, f"timed out after {timeout:g} s"))
                self.replace(worker, kill=True)
        return lost

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(kill=worker.task is not None)


def is_report(path: str | os.PathLike[str]) -> bool:
    """Whether the regular file ``path`` holds a report of ``write_bad_videos`` (empty, or a
    first line ``{"path": ..., "error": ...}`` or a stopped check's ``partial`` line): one that
    ``data check --out`` may replace. At most ``MAX_REPORT_LINE`` bytes are read, so a video
    given as ``--out`` is not read whole."""
    with open(path, "rb") as f:
        first = f.readline(MAX_REPORT_LINE)
    if not first:
        return True  # the report of a check that found no bad video
    try:
        row = json.loads(first)
    except ValueError:  # not JSON, not UTF-8, a line cut at the bound
        return False
    return isinstance(row, dict) and set(row) in ({"path", "error"}, PARTIAL)


def _check_out(
    out: str | os.PathLike[str],
    option: str,
    annotations: str | os.PathLike[str],
    videos: list[str],
) -> None:
    """Refuse an ``out`` that writing the report would destroy or that cannot be written, before
    any video is decoded: the annotation file, a listed video, a folder, a link, a file that is
    not regular (a device such as ``/dev/null``, a pipe, a socket: it would be replaced by a
    regular file), an existing file that is not an earlier report (a checkpoint, a config)
    or a read-only one (``paths.keep_unless_earlier``).

    Raises:
        UsageError: one line naming ``option`` (``--out``, "the default report"), ``out`` and
            what it is.
    """
    reads = [("the annotation file", annotations)]
    if os.path.exists(out):  # else no listed video is there either: scanning them is not needed
        reads += [("a listed video", path) for path in videos]
    check_output_file(option, out, ReadFiles(reads))  # a link, a folder, a pipe or device too
    what = 'a report of data check (JSON lines {"path", "error"})'
    keep_unless_earlier(option, out, is_report, what)  # and a read-only one


def check_videos(
    annotations: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    fmt: str = "auto",
    out: str | os.PathLike[str] | None = None,
    default_out: bool = False,
    workers: int = 2,
    decoder: str = "auto",
    timeout: float = 300.0,
    progress: bool = True,
) -> CheckReport:
    """Decode every video of an annotation file, each in an isolated worker process.

    Args:
        annotations: a lines file (``path label``, or paths alone), Kinetics CSV or
            class-folder root.
        root: where relative list paths are resolved (default: the annotation's folder); not
            used for a class-folder root, which is read itself.
        fmt: annotation format (``"auto"`` detects it).
        out: file to write the bad videos to (JSON lines, see ``write_bad_videos``); None writes
            nothing.
        default_out: ``out`` is the caller's default (``data check`` without ``--out``), not a
            path the user gave: messages call it "the default report OUT", not "--out OUT".
        workers: decoding processes, 1 to ``workers.WORKERS_PER_CORE`` per usable CPU core, at
            most ``MAX_WORKERS``.
        decoder: ``"decord"``, ``"pyav"`` or ``"auto"``.
        timeout: seconds one video may take (at most ``MAX_TIMEOUT``). A video past it, or whose
            worker dies, is tried once more in a fresh process (decord's threaded decoder can
            hang or abort in a race) and is bad when that happens again.
        progress: show a progress bar.

    Returns:
        The report: total, bad files with errors, Kinetics rows without a file.

    Raises:
        ValueError: ``workers`` or ``timeout`` out of bounds, an open-file limit too low for the
            workers, a malformed list, or nothing to check (a folder without class folders of
            videos, an empty list, a Kinetics CSV none of whose rows has a file under ``root``);
            all before any video is decoded. A Kinetics CSV without labels (a test split) and
            a list of paths alone (``data prepare``'s list of one) are checked all the same.
        UsageError: ``out`` cannot be written, or would destroy a file: the annotation file, a
            listed video, a file that is not regular, an existing file that is not a report
            (see ``_check_out``); before any video is decoded.
        RunStopped: ``out`` could not be written at the end (a full disk); no half file is left.
        Interrupted: Ctrl-C (``Terminated``: SIGTERM) stopped the check; ``out`` then holds the
            bad videos among those checked, marked as partial (``PARTIAL``), and the message says
            how many were checked.
    """
    check_worker_count("--workers", workers, low=1, cap=MAX_WORKERS)
    check_timeout(timeout)
    # decoding needs no labels: an unlabelled Kinetics test.csv, and prepare's list of its
    # paths alone, are checked too
    found = load_annotations(annotations, root=root, fmt=fmt, need_labels=False)
    paths = [r.path for r in found.records]
    option = "the default report" if default_out else "--out"  # a name the user did not give
    if out is not None:
        _check_out(out, option, annotations, paths)
    if not paths:
        raise ValueError(_nothing_to_check(annotations, fmt, root, found))
    errors: dict[int, str] = {}  # of the videos checked so far, by index
    checked: set[int] = set()
    try:
        _decode_all(paths, workers, decoder, timeout, progress, errors, checked)
    except (KeyboardInterrupt, RunStopped) as err:  # Ctrl-C, SIGTERM, or out of open files
        raise _stopped(err, out, option, paths, errors, len(checked)) from err
    report = CheckReport(
        total=len(paths),
        bad=_bad_rows(paths, errors),
        missing_rows=found.missing,
    )
    if out is not None:
        try:
            write_bad_videos(out, report.bad)
        except (OSError, OutputWriteError) as err:  # a full disk after the decoding: what is lost
            raise RunStopped(
                f"writing {option} {out} failed ({write_failure(err)}); {len(report.bad)} of "
                f"{report.total} videos are bad and are not listed anywhere; free space and run "
                "again"
            ) from err
    logger.info(
        "%d of %d videos decode; %d bad%s",
        report.ok,
        report.total,
        len(report.bad),
        f" (listed in {out})" if out else "",
        extra=RESULT,
    )
    return report


def _stopped(
    err: KeyboardInterrupt | RunStopped,
    out: str | os.PathLike[str] | None,
    option: str,
    paths: list[str],
    errors: dict[int, str],
    checked: int,
) -> Interrupted | RunStopped:
    """The stop of a check by Ctrl-C or SIGTERM, or by running out of open files (``err``), after
    ``checked`` of ``paths``, the bad among them ``errors``: their report is written to ``out``
    (named by ``option``), marked as partial, unless no video was checked (an earlier report is
    then left as it was).

    Returns:
        ``Interrupted`` (``Terminated`` for SIGTERM), or ``RunStopped`` out of open files,
        whose message says why, how many videos were checked and where the bad ones are.
    """
    if isinstance(err, RunStopped):
        kind: type[Interrupted | RunStopped] = RunStopped
        head = f"{err}; stopped after {checked} of {len(paths)} videos"
    else:
        kind = type(err) if isinstance(err, Interrupted) else Interrupted
        head = f"stopped by {kind.cause} after {checked} of {len(paths)} videos"
    total, bad = len(paths), _bad_rows(paths, errors)
    again = f"run it again to check all {total}"
    if out is None:
        return kind(f"{head}, {len(bad)} bad among them; {again}")
    if checked == 0:
        return kind(f"{head}; {out} is left as it was; {again}")
    mark = {"partial": f"{head}; the other {total - checked} were not checked"}
    try:
        write_bad_videos(out, bad, {**mark, "checked": checked, "total": total})
    except (OSError, OutputWriteError) as write_err:
        return kind(
            f"{head}; writing {option} {out} failed ({write_failure(write_err)}), so the "
            f"{len(bad)} bad among them are not listed anywhere; {again}"
        )
    return kind(
        f"{head}; the {len(bad)} bad among them are listed in {out}, marked as partial; {again}"
    )


def _bad_rows(paths: list[str], errors: dict[int, str]) -> list[tuple[str, str]]:
    """The ``(path, error)`` rows of the bad videos (``errors``, by index into ``paths``), in
    the order of the list."""
    return [(paths[i], errors[i]) for i in sorted(errors)]


def _decode_all(
    paths: list[str],
    workers: int,
    decoder: str,
    timeout: float,
    progress: bool,
    errors: dict[int, str],
    checked: set[int],
) -> None:
    """Decode every video of ``paths`` in up to ``workers`` processes, adding the index of each
    video done to ``checked`` and the error of each bad one to ``errors``, by its index, as it
    is found (so a stop keeps them). A video whose worker hangs past ``timeout`` or dies is
    tried once more in a fresh process, and is bad when that happens again."""
    retried: set[int] = set()  # videos whose worker hung or died once
    size = max(1, min(workers, len(paths) or 1))
    reserve_open_files(f"--workers {workers}", size, FORK_SERVER_OPEN_FILES)
    pool = _CheckPool(size, decoder)
    todo = deque(enumerate(paths))
    pending = set(range(len(paths)))
    bar = tqdm(total=len(paths), desc="check", unit="video", disable=not progress)
    try:
        while pending:
            pool.assign(todo)
            decoded, lost = pool.receive(timeout)
            for index, reason in lost + pool.reap(timeout):
                # once more in a fresh process: a hang or a crash can be the decoder's (decord's
                # threaded decoder races when a reader is destroyed), not the file's
                if index in retried:
                    decoded.append((index, f"{reason}, twice"))
                else:
                    retried.add(index)
                    todo.append((index, paths[index]))
            for index, error in decoded:
                if index in pending:
                    pending.discard(index)
                    if error:
                        errors[index] = error
                    checked.add(index)
                    bar.update()
    finally:
        bar.close()
        pool.close()


def _nothing_to_check(
    annotations: str | os.PathLike[str],
    fmt: str,
    root: str | os.PathLike[str] | None,
    found: Annotations,
) -> str:
    """The error for an annotation source that lists no video: what was found, what is needed."""
    folder = Path(annotations)  # read itself: check_videos' ``root`` is for lists only
    if fmt == "folders" or (fmt == "auto" and folder.is_dir()):
        # named like videos, as a class folder's are listed (``read_folders``)
        loose = sum(not is_hidden_name(entry.name) for entry in video_entries(folder))
        plural = "video" if loose == 1 else "videos"
        seen = f"{loose} {plural} directly in it but none" if loose else "no videos"
        return (
            f"{folder}: found {seen} in class folders; a class-folder root holds one folder per "
            f"class with its videos ({folder}/<class>/<video>.mp4), or pass a 'path label' list"
        )
    if found.missing:  # a Kinetics CSV none of whose rows has a file: a wrong --root, mostly
        where = root or folder.parent
        return (
            f"{annotations} lists no video that exists: none of the {found.missing} videos its "
            f"rows name has a file under {where} (e.g. {found.missing_examples[0]}.mp4); check "
            "--root, the folder the videos are found under as <youtube_id>_<start>_<end>.<ext>"
        )
    return f"{annotations} lists no videos; nothing to check"
