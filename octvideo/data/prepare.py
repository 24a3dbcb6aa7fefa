"""``octvideo data prepare``: re-encode a raw Kinetics tree at a fixed short side.

Raw Kinetics clips come at many sizes (up to 1080p) and codecs; decoding them at training time
costs more than the network on small models. PySlowFast and the Non-local recipes train on copies
scaled to short side 256 or 320, which is what this writes:

- every video of SRC that a list will hold -> the same relative path under DST, extension
  ``.mp4``, H.264 (crf 23, yuv420p, even sizes), video stream only, frames re-timed at the
  source's average rate (frame order and count are kept; that is all the frame-index sampler
  uses), as displayed: turned by the source's display matrix (or MKV ``rotate`` tag) as the
  decoders turn it, the short side that of the displayed size, and no matrix written, so a
  phone video reads upright from the output as from the source; a video no list would hold is
  not encoded, and one warning line counts them: one in a hidden, ``__MACOSX`` or ``@eaDir``
  folder (a copy in ``.Trash-1000/``),
  with ``--csv`` one that no row of the CSVs names (``kinetics_name``), without one not at
  ``<split>/<class>/<video>``; a hidden file (macOS's AppleDouble ``._x.mp4``) is no video and
  is not encoded either, one line counting them, as the folders format (``data check``) counts
  them;
- SRC is walked by ``annotations.walk_tree``, as the CSV index walks its root: links to folders
  are followed (as the folders format follows a linked class folder), except one to a folder it
  lies in (a loop) or to one that holds SRC or DST (a parent, ``/``), and no folder whose real
  path is DST or lies in it is walked, however it is reached (a link into DST), each named in a
  warning line; a folder that cannot be read (a link into ``/dev`` or ``/proc``) is stepped
  over, one warning line counting them;
- sources that would land on the same output (``a/dup.webm`` and ``a/dup.mkv``) are found before
  anything is encoded; none of them is encoded (which one is meant cannot be told), each is a
  failure naming the others, and an output already there is left as it is, in no list;
- in parallel, each video in a process of its own, with a progress bar; the processes start
  from octvideo's fork server (``octvideo.data.workers``), never as forks of the caller, which
  may hold decoders mid-use;
- resumable: a file is written as ``<source name>.part.mp4`` (one name per source, so no two jobs
  share it; a name too long for DST's file system cut, with a hash of it added) and renamed when
  complete, so a finished output means a finished file and a rerun skips it, provided it has the
  size this run writes (the source's displayed size at the short side asked for) and is newer than
  its source (as make has it): a rerun with another ``--short-side``, over a turned video an earlier
  octvideo wrote as stored (sideways), over an output that cannot be probed, or over one whose
  source was modified since (re-downloaded) encodes the video again, and says how many it did and
  why; an output whose source holds less than its container lists (an earlier octvideo encoded a
  partial download) is not skipped but a failure, in ``Video.check_whole``'s words, its packets
  read, none decoded;
- failures do not stop the run: they are listed in ``DST/prepare_errors.jsonl`` (JSON lines
  ``{"path": ..., "error": ...}``, the format of ``data check``'s report, which holds any file
  name); an encoding process that dies (a decoder crash, the OOM killer) is a failure of the video
  it was encoding, and so is a video past ``--timeout`` seconds (default an hour, at most a day;
  a decoder stuck in a loop), whose process is killed, and one that holds less than its
  container lists (a partial download, whose frames before the cut would encode as a whole
  shorter video: ``Video.check_whole``, ``data check``'s test and words); a failed source's
  output left by an earlier run (of the whole file, before a newer download cut short) is kept
  on disk but in no list, as its failure line says: it is no encoding of the source as it is;
- warnings, never refusals: two ``--csv`` that name the same YouTube video (train/val leakage,
  perhaps under two labels), one line per two CSVs counting them; videos encoded longer than
  their CSV row's segment by more than 2 s and half of it (an untrimmed download), one line;
- bad arguments are refused before anything is encoded: ``--short-side`` outside 16 to
  ``MAX_DECODE_SHORT_SIDE`` (1080: octvideo decodes nothing larger) or odd (H.264 in yuv420p
  needs even sizes: ``check_even_short_side``), ``--workers`` outside 1 to
  what this machine's cores take, at most ``MAX_WORKERS`` (``check_worker_count``), or more than the
  open-file limit holds (``reserve_open_files``), a DST that is SRC, lies inside it or holds it, a
  DST that is a file or cannot be written, ``--csv`` files that are missing, not Kinetics CSVs or
  hold a malformed row (fields that do not match the header, times that are not numbers, a quote
  never closed, a label that ``classes.txt`` cannot hold as one line: a line break or a carriage
  return; every row is read by ``annotations.read_kinetics_rows``, the reader that writes the lists
  after encoding, every field stripped) or whose rows name none of the videos of SRC or DST (its
  list would be empty), without ``--csv`` a class folder with a name ``classes.txt`` cannot hold
  (white space around it, a carriage return), annotation files that collide (two CSVs of one stem, a
  CSV or split folder named ``classes``) or would replace an input (a ``--csv`` in DST named as its
  list, a source video), a link or a file that is not regular at their names, and, without
  ``--csv``, a SRC with no video at ``<split>/<class>/<video>`` (a plain ``SRC/<class>/<video>``
  tree would give no annotation file);
- a source that is not a regular file (a pipe, which would block its encoder for ever, a
  device, a broken link), one whose name no list can hold (a line break, bytes that are not
  UTF-8: lists are UTF-8 text) and one whose output name DST's file system cannot take (longer
  than its limit, 143 bytes on eCryptfs) are failures in ``DST/prepare_errors.jsonl``, never
  opened;
  list lines are written by ``annotations.list_line``, so ``data check`` and ``train`` read back
  every path written (commas and spaces in it, a leading ``#``);
- annotation files: with ``--csv`` Kinetics CSVs, ``DST/<csv stem>.txt`` for each CSV (rows without
  a prepared file are counted and left out; a CSV without a label column, Kinetics' test.csv,
  gives a list of paths alone, ``octvideo predict``'s input list) and ``DST/classes.txt`` from
  the first labelled CSV's labels (none written without one); without, one ``DST/<split>.txt``
  per split folder of SRC, listing the outputs of SRC's videos only (a video DST holds without
  a source in SRC, moved to another class or deleted there, is left out, one warning line
  counting them), and ``DST/classes.txt`` from SRC's sorted class folders (never from other
  folders in DST), named in Unicode's composed form (NFC), as the folders format and CSV labels
  are read (a folder made on macOS is named decomposed, and ``café`` in both forms is one
  class). A ``DST/classes.txt`` already there is kept, so that every list made with it keeps
  its meaning, wherever it is kept and however named: its classes keep their labels, a class
  of this run it lacks is added at its end (one line names them) and one this run has no video
  of stays (one warning line; deleting it before a run of every split numbers the classes
  afresh). These and the error list are written to a temporary name and renamed: a write that
  fails (a full disk) stops the run with ``RunStopped`` and leaves no half file.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from itertools import combinations
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from octvideo import signals
from octvideo.allocator import keep_freed_memory
from octvideo.data.annotations import (
    VIDEO_EXTENSIONS,
    KineticsRow,
    class_name_problem,
    classes_text,
    hidden_files_skipped,
    index_videos,
    is_class_folder_name,
    is_hidden_name,
    kinetics_name,
    label_index,
    list_line,
    list_path_problem,
    nfc,
    read_classes,
    read_kinetics_csv,
    read_kinetics_rows,
    walk_tree,
)
from octvideo.data.check import write_bad_videos
from octvideo.data.decoding import (
    MAX_DECODE_SHORT_SIDE,
    check_frame_size,
    check_video_path,
    open_container,
    reformatted,
    video_stream,
)
from octvideo.data.limits import MAX_WORKERS, check_range, check_timeout
from octvideo.data.open_files import FORK_SERVER_OPEN_FILES, reserve_open_files
from octvideo.data.orientation import (
    UPRIGHT,
    Orientation,
    display_matrix,
    orientation_of,
    rotate_tag_matrix,
)
from octvideo.data.workers import (
    check_worker_count,
    exit_reason,
    send_to_caller,
    worker_context,
)
from octvideo.errors import (
    DecodeError,
    InputPathError,
    OutputWriteError,
    RunStopped,
    UsageError,
    failure_reason,
    usage_errors,
)
from octvideo.paths import (
    AtomicOutputs,
    ReadFiles,
    check_folder,
    check_output_file,
    fitted_name,
    hold_folder,
    name_limit,
    printable,
    write_failure,
)
from octvideo.streams import RESULT

logger = logging.getLogger(__name__)

ERRORS_FILE = "prepare_errors.jsonl"  # under DST: the videos that failed, JSON lines
DEFAULT_TIMEOUT = 3600.0  # seconds one video may take to encode: a 10 s clip takes seconds
# a video longer than its CSV row's segment by more than both is counted as untrimmed: Kinetics'
# 10 s clips end early where the YouTube video does, never late, save rounding
UNTRIMMED_SECONDS, UNTRIMMED_FRACTION = 2.0, 0.5


def check_even_short_side(short_side: int) -> None:
    """Refuse an odd ``--short-side``: H.264 in yuv420p stores colour at half the width and
    height, so both sides are even, and an odd short side could only be written as another one
    (33 as 32), its long side then scaled from the side asked for (a stretched picture).

    Raises:
        ValueError: one line naming the even sides either side of it.
    """
    if short_side % 2:
        raise ValueError(
            f"--short-side must be even (H.264 in yuv420p needs even sizes), got {short_side}; "
            f"use {short_side - 1} or {short_side + 1}"
        )


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side = short_side (even: ``check_even_short_side``),
    both even (H.264 yuv420p)."""
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def transcode(src: str, dst: str, short_side: int) -> float:
    """Re-encode one video at the given short side; return the length written, in seconds (its
    frames at the source's average rate).

    Raises:
        DecodeError: no frame decodes, one fails to, or the source holds less than its
            container lists (``Video.check_whole``, ``data check``'s test and words: a partial
            download decodes to its cut as a whole shorter video); no output is written.
    """
    from octvideo.data.decoding import Video

    part = part_path(src, dst)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    try:
        frames, seconds = _encode(src, part, short_side)
        if frames:  # reads its packets (none decoded) and the container's record of its length
            Video(src, decoder="pyav").check_whole()
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    if frames == 0:  # PyAV writes no file before the first frame
        Path(part).unlink(missing_ok=True)
        reason = "no frame decodes (the file is truncated or corrupt)"
        raise DecodeError(src, reason, decoder="pyav")
    os.replace(part, dst)
    return seconds


def part_path(src: str, dst: str) -> str:
    """The file ``src`` is encoded into before it becomes ``dst``: one per source, never shared;
    ``<source name>.part.mp4``, its name cut and a hash of it added where that is too long for
    the folder (a 255-byte source name: ``paths.fitted_name``)."""
    folder = Path(dst).parent
    return str(folder / fitted_name(Path(src).name, ".part.mp4", name_limit(folder)))


def _encode(src: str, part: str, short_side: int) -> tuple[int, float]:
    """Re-encode ``src`` into ``part`` as it is displayed: its frames turned as decoding turns
    them (``_orientation``), scaled to ``short_side`` on the displayed size, and no display
    matrix written, so that every decoder reads the output as the source is shown (a phone video
    stored landscape with a 90 degree matrix comes out portrait). Returns the frames written and
    their length in seconds."""
    import av

    frames = 0
    with open_container(src) as source:
        stream = video_stream(source, src)  # what decoding reads: failures in its words
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 30
        stored = stream.codec_context.width, stream.codec_context.height
        check_frame_size(src, *stored, "pyav")  # a turn changes neither side's length
        time_base = Fraction(1) / Fraction(rate)
        with av.open(part, "w", format="mp4") as target:
            out, turn = None, UPRIGHT
            for frame in _decoded(source, stream, src):
                if out is None:  # the first frame's matrix turns them all, as decoding does
                    turn = _orientation(stream, frame)
                    width, height = scaled_size(*turn.size(*stored), short_side)
                    out = target.add_stream("libx264", rate=rate)
                    out.width, out.height, out.pix_fmt = width, height, "yuv420p"
                    out.codec_context.time_base = time_base
                    out.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
                image = _displayed(frame, turn, width, height)
                image.pts, image.time_base = frames, time_base  # constant rate, same order
                target.mux(out.encode(image))
                frames += 1
            if out is not None:
                target.mux(out.encode())
    return frames, float(frames * time_base)


def _orientation(stream: Any, frame: Any) -> Orientation:
    """How decoding turns the frames of the PyAV ``stream`` (``decoding._read_header``): by the
    display matrix of its first decoded ``frame``, else by the ``rotate`` tag FFmpeg 4 wrote
    into MKV."""
    matrix = display_matrix(frame)
    if matrix is None:
        tags = {key.lower(): value for key, value in stream.metadata.items()}
        matrix = rotate_tag_matrix(tags.get("rotate"))
    return orientation_of(matrix)


def _displayed(frame: Any, turn: Orientation, width: int, height: int) -> Any:
    """The decoded ``frame`` as displayed (``turn``), at ``width`` x ``height``, in yuv420p."""
    import av

    if turn == UPRIGHT:
        return reformatted(frame, width=width, height=height, format="yuv420p")
    stored_w, stored_h = turn.size(width, height)  # back to stored: sides swap both ways
    # RGB as the decoders convert it (``reformatted``), turned as they turn it
    rgb = reformatted(frame, format="rgb24", width=stored_w, height=stored_h)
    array = turn.apply(rgb.to_ndarray())  # (H, W, 3)
    return reformatted(av.VideoFrame.from_ndarray(array, format="rgb24"), format="yuv420p")


def _displayed_size(src: str) -> tuple[int, int] | None:
    """``src``'s (width, height) as displayed, the size ``_encode`` scales; None when no frame
    of it decodes."""
    with open_container(src) as source:
        stream = video_stream(source, src)
        size = stream.codec_context.width, stream.codec_context.height
        for frame in _decoded(source, stream, src):
            return _orientation(stream, frame).size(*size)
    return None


def _decoded(source: Any, stream: Any, src: str) -> Iterator[Any]:
    """The frames of ``source``'s ``stream``, decoded by PyAV.

    Raises:
        DecodeError: FFmpeg fails on a packet (a file cut short or damaged). How many frames
            came before is said, not which one failed: frame threads decode several at once.
    """
    import av

    frames = source.decode(stream)
    index = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.FFmpegError as err:  # the encoder's own errors are raised as they are
            raise DecodeError(
                src,
                f"decoding failed after {index} frames ({err.strerror}): the file is truncated "
                "or corrupt",
                decoder="pyav",
            ) from err
        yield frame
        index += 1


def _job(
    conn: Connection, encode: Callable[[str, str, int], float], src: str, dst: str, short_side: int
) -> None:
    """Encode one video with ``encode`` in its own process and send back ``("", its seconds)`` or
    ``(the error, None)`` (to a caller that has not stopped: ``send_to_caller``)."""
    # a fork server's child starts with glibc's defaults, not those octvideo.cli set for the command
    keep_freed_memory()
    try:
        seconds = encode(src, dst, short_side)
    except Exception as err:  # reported per file in ERRORS_FILE, the run goes on
        send_to_caller(conn, (failure_reason(err), None))
    else:
        send_to_caller(conn, ("", float(seconds)))
    conn.close()


class _Job(NamedTuple):
    """One encoding process, the video it encodes and when it started (``time.monotonic``)."""

    proc: mp.process.BaseProcess
    src: str
    dst: str
    started: float


def _start(
    ctx: mp.context.BaseContext,
    encode: Callable[[str, str, int], int],
    src: str,
    dst: str,
    short_side: int,
) -> tuple[Connection, _Job]:
    """Start the process that encodes ``src`` into ``dst``; the pipe its answer comes on."""
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_job, args=(send, encode, src, dst, short_side))
    proc.start()
    send.close()  # the job's end lives in the job only: its death is EOF here
    return receive, _Job(proc, src, dst, time.monotonic())


def _kill(job: _Job) -> None:
    """Kill ``job``'s process and remove its part file: its video will not be finished."""
    job.proc.kill()
    job.proc.join()
    Path(part_path(job.src, job.dst)).unlink(missing_ok=True)


def _finish(conn: Connection, job: _Job) -> tuple[str, float | None]:
    """The outcome of ``job``, whose pipe ``conn`` is ready: ``("", the seconds written)`` when
    its video was encoded, else the encoder's error, or the death of its process (a decoder crash,
    the OOM killer), whose part file is removed, and None."""
    try:
        error, seconds = conn.recv()
    except (EOFError, OSError):
        error, seconds = None, None
    conn.close()
    job.proc.join()  # it answered or died: nothing to kill
    if error is None:
        Path(part_path(job.src, job.dst)).unlink(missing_ok=True)
        error = f"encoding process died ({exit_reason(job.proc)})"
    return error, seconds


def _run_jobs(
    jobs: list[tuple[str, str]],
    short_side: int,
    workers: int,
    progress: bool,
    timeout: float = DEFAULT_TIMEOUT,
    lengths: dict[str, float] | None = None,
) -> list[tuple[str, str]]:
    """Encode ``(src, dst)`` jobs, ``workers`` at a time, each in a process of its own, and put
    the seconds each video encoded holds into ``lengths`` (by source).

    A process per video costs a fork of the fork server, which has imported PyAV and this module
    (milliseconds; once, for the first job, the server's start: about as long as importing
    octvideo), against seconds of encoding, and makes a process that dies (a decoder crash, the
    OOM killer) the failure of exactly its own video: the others go on. A job past ``timeout``
    seconds (a decoder stuck in a loop) is killed, its part file removed, and its video failed.

    Returns:
        ``(src, error)`` of the videos that failed.
    """
    ctx = worker_context()
    encode = transcode  # what each job runs, looked up now and pickled by reference
    todo = list(reversed(jobs))
    running: dict[Connection, _Job] = {}
    errors = []
    bar = tqdm(total=len(jobs), desc="prepare", unit="video", disable=not progress)
    try:
        while todo or running:
            while todo and len(running) < workers:
                with signals.deferred():  # a job started is one a stop kills
                    conn, job = _start(ctx, encode, *todo.pop(), short_side)
                    running[conn] = job
            soonest = min(job.started for job in running.values()) + timeout - time.monotonic()
            for conn in wait(list(running), timeout=max(0.0, soonest)):
                job = running.pop(conn)
                error, seconds = _finish(conn, job)
                if error:
                    errors.append((job.src, error))
                elif lengths is not None and seconds is not None:
                    lengths[job.src] = seconds
                bar.update()
            now = time.monotonic()
            for conn in [c for c, job in running.items() if now - job.started > timeout]:
                job = running.pop(conn)
                _kill(job)
                conn.close()
                errors.append((job.src, f"timed out after {timeout:g} s"))
                bar.update()
    finally:
        bar.close()
        for job in running.values():  # stopped early (Ctrl-C, SIGTERM): no orphan encoders,
            _kill(job)  # and none of their part files
    return errors


def _check_csvs(csvs: list[str]) -> list[list[KineticsRow]]:
    """The rows of each ``--csv``, once none is missing, not a Kinetics CSV or malformed, before
    anything is encoded: every row is read and checked here by ``annotations.read_kinetics_rows``,
    the reader ``read_kinetics_csv`` writes the lists with after (see it for the checks), and a
    later CSV may hold only labels of the first labelled one, which sets the class list. A CSV
    without a label column (Kinetics' test.csv, ``_unlabelled``) has rows labelled ``""``."""
    classes: set[str] | None = None
    first = ""
    rows_of = []
    for path in csvs:
        try:
            rows_of.append(read_kinetics_rows(path, "--csv", need_label=False))
        except OSError as err:
            raise UsageError(
                f"--csv {path} cannot be read ({err.strerror or err}); pass the official "
                "Kinetics CSVs (train.csv, validate.csv, ...)"
            ) from err
        if _unlabelled(rows_of[-1]):
            continue
        labels = {row.label for row in rows_of[-1]}
        if classes is None:
            classes, first = labels, path
        elif not labels <= classes:
            raise UsageError(
                f"--csv {path} has labels that the first --csv {first} does not have "
                f"(e.g. {sorted(labels - classes)[0]!r}); the first CSV sets the class "
                "list, so pass the training CSV first"
            )
    return rows_of


def _warn_shared_videos(csvs: list[str], rows_of: list[list[KineticsRow]]) -> None:
    """One warning line for each two ``--csv`` files that name the same YouTube video (the same
    ``youtube_id``, the same segment or another one), counting them, those of them with another
    label, and naming one: a video of the training list in the validation one is scored as unseen
    (train/val leakage), and with two labels the lists contradict each other. Not a refusal: the
    official lists share none, and which one is right cannot be told here."""
    firsts = [{row.youtube_id: row for row in reversed(rows)} for rows in rows_of]
    for i, j in combinations(range(len(csvs)), 2):
        shared = sorted(firsts[i].keys() & firsts[j].keys())
        if not shared:
            continue
        labelled = not _unlabelled(rows_of[i]) and not _unlabelled(rows_of[j])
        relabelled = [v for v in shared if labelled and firsts[i][v].label != firsts[j][v].label]
        example = relabelled[0] if relabelled else shared[0]
        first, second = firsts[i][example], firsts[j][example]
        logger.warning(
            "--csv %s and --csv %s both name %d YouTube videos (the same youtube_id%s): one "
            "trained on is scored as unseen (train/val leakage): e.g. %r, line %d of the first%s "
            "and line %d of the second%s; drop them from one CSV",
            csvs[i],
            csvs[j],
            len(shared),
            f"; {len(relabelled)} of them with another label" if relabelled else "",
            example,
            first.line,
            f" ({first.label!r})" if labelled else "",
            second.line,
            f" ({second.label!r})" if labelled else "",
        )


def _segments(rows_of: list[list[KineticsRow]]) -> dict[str, float]:
    """The seconds each CSV row gives its video (``time_end - time_start``), by the video's name
    (``kinetics_name``); rows whose times give no length are left out."""
    segments = {}
    for rows in rows_of:
        for row in rows:
            seconds = float(row.time_end) - float(row.time_start)
            if seconds > 0:
                segments[kinetics_name(row.youtube_id, row.time_start, row.time_end)] = seconds
    return segments


def _warn_untrimmed(lengths: dict[str, float], segments: dict[str, float]) -> None:
    """One warning line counting the videos encoded (``lengths``: seconds by source) that are
    longer than the segment their CSV row gives (``segments``, by name) by more than
    ``UNTRIMMED_SECONDS`` and ``UNTRIMMED_FRACTION`` of it, naming one: a download never cut to
    its segment (the whole YouTube video under the segment's name), whose clips are sampled from
    all of it. They are listed whole, as they are."""
    long = sorted(
        (src, seconds, segments[Path(src).stem])
        for src, seconds in lengths.items()
        if Path(src).stem in segments
        and seconds > segments[Path(src).stem] + UNTRIMMED_SECONDS
        and seconds > segments[Path(src).stem] * (1 + UNTRIMMED_FRACTION)
    )
    if long:
        src, seconds, segment = long[0]
        logger.warning(
            "%d videos are much longer than the segment their CSV row gives (time_end - "
            "time_start): e.g. %s holds %.1f s for a %g s row (a download never cut to its "
            "segment?); they are listed whole, and clips are sampled from all of it",
            len(long),
            printable(src),
            seconds,
            segment,
        )


def _unlabelled(rows: list[KineticsRow]) -> bool:
    """Whether ``rows`` (of ``read_kinetics_rows(..., need_label=False)``) are those of a CSV
    without a label column, whose labels are all ``""`` (a labelled CSV's are never empty)."""
    return bool(rows) and not rows[0].label


def _check_csv_videos(
    csvs: list[str],
    rows_of: list[list[KineticsRow]],
    src: Path,
    dst: Path,
    sources: dict[Path, list[str]],
) -> None:
    """Refuse a ``--csv`` that lists rows none of which names a video that SRC gives (``sources``,
    see ``_find_sources``) or DST holds, before anything is encoded: its list would be empty (a
    CSV of other videos, or videos named otherwise than ``<youtube_id>_<start:06d>_<end:06d>``)."""
    stems = {rel.stem for rel in sources}
    if dst.is_dir():
        stems |= set(index_videos(dst))
    for path, rows in zip(csvs, rows_of, strict=True):
        names = [kinetics_name(row.youtube_id, row.time_start, row.time_end) for row in rows]
        if not names or not stems.isdisjoint(names):
            continue
        first = min(sources, default=None)  # a source as it is named, not its output
        held = (
            f"SRC holds e.g. {Path(sources[first][0]).relative_to(src).as_posix()!r}"
            if first
            else "SRC holds no video"
        )
        raise UsageError(
            f"--csv {path}: none of its {len(rows)} rows names a video of SRC {src} or DST {dst}, "
            f"so its list would be empty: a row names <youtube_id>_<start:06d>_<end:06d>.<ext> "
            f"(line {rows[0].line}: {names[0]!r}) and {held}; pass the CSV of these videos, or "
            "leave this one out"
        )


def _check_class_folders(src: Path, folders: Iterable[Path]) -> None:
    """Without ``--csv``, refuse a class folder whose name a classes file cannot hold
    (``annotations.class_name_problem``: white space around it, a carriage return), before
    anything is encoded: ``folders`` are SRC's ``<split>/<class>`` folders that will be listed
    (``_listed``), relative to ``src``, the only ones ``classes.txt`` is made from."""
    for folder in sorted(folders):
        problem = class_name_problem(folder.name)
        if problem:
            raise UsageError(
                f"class folder {src / folder.parent}/{folder.name!r}: its name {problem}; rename "
                "the folder (its name becomes a line of classes.txt)"
            )


def _listed(rel: Path) -> bool:
    """Whether a video at ``rel`` under SRC goes into a list without ``--csv``: it lies at
    ``<split>/<class>/<video>``, its split and class folders ones that the folders format takes
    as classes (``annotations.is_class_folder_name``: not hidden, ``__MACOSX`` or ``@eaDir``)."""
    return len(rel.parts) == 3 and _in_class_folders(rel)


def _in_class_folders(rel: Path) -> bool:
    """Whether no folder of ``rel`` (a video's path under SRC) is one that is no class
    (``annotations.is_class_folder_name``): with ``--csv``, a copy in ``.Trash-1000/`` or an
    AppleDouble file in ``__MACOSX/`` is no video of the CSV's, as the CSV index has it."""
    return all(is_class_folder_name(part) for part in rel.parts[:-1])


def _leave_out(
    src: Path,
    sources: dict[Path, list[str]],
    errors: list[tuple[str, str]],
    keep: Callable[[Path], bool],
    why: tuple[str, str],
) -> tuple[dict[Path, list[str]], list[tuple[str, str]]]:
    """``sources`` and ``errors`` (see ``_find_sources``) of the videos whose output ``keep``s
    (a path relative to DST, as ``sources``' keys): the others would be in no list, so they are
    not encoded (nor failed), and one warning line counts them, with an example, and says
    ``why`` (what they are, what to do)."""
    left = [path for rel, paths in sources.items() if not keep(rel) for path in paths]
    left += [path for path, _ in errors if not keep(_output(src, path))]
    if left:
        logger.warning(
            "%d videos of SRC %s %s: they are not encoded (e.g. %s)%s",
            len(left),
            src,
            why[0],
            printable(min(left)),
            why[1],
        )
    kept = {rel: paths for rel, paths in sources.items() if keep(rel)}
    return kept, [(p, e) for p, e in errors if keep(_output(src, p))]


def _output(src: Path, path: str) -> Path:
    """The output, relative to DST, of the video ``path`` of SRC ``src``."""
    return Path(path).relative_to(src).with_suffix(".mp4")


def _named_by(rows_of: list[list[KineticsRow]]) -> Callable[[Path], bool]:
    """With ``--csv``, whether a video (its output, relative to DST) is one a row of the CSVs
    (``rows_of``) names (``kinetics_name``), as the CSV index finds it, by its stem."""
    named = {
        kinetics_name(row.youtube_id, row.time_start, row.time_end)
        for rows in rows_of
        for row in rows
    }
    return lambda rel: rel.stem in named


# why ``_leave_out`` leaves videos out: what they are, what to do
_OFF_DEPTH = (
    "are not at SRC/<split>/<class>/<video> or lie in a folder that is no class (hidden, "
    "__MACOSX, @eaDir), so no list would hold them",
    "; move them into a class folder of a split, or pass the Kinetics CSVs with --csv",
)
_NO_CLASS = ("lie in a folder that is no class (hidden, __MACOSX, @eaDir), which --csv skips", "")
_UNNAMED = (
    "are named by no row of the --csv files, so no list would hold them",
    "; pass the CSV that lists them too",
)


def _class_list(dst: Path, new: list[str], labels: set[str]) -> list[str]:
    """The class list this run labels its lists with and writes as ``DST/classes.txt``, before
    anything is encoded: ``new`` (the first labelled ``--csv``'s labels, or SRC's class folders,
    sorted), unless DST holds a ``classes.txt`` already. That one is kept, so that every list
    made with it (``train.txt`` when only the validation split is prepared again, a list moved
    or renamed) keeps its meaning: its classes keep their labels, a class of this run it lacks
    is added at its end (one line names them), and one of its classes this run has not
    (``labels``) stays (one warning line). Names are compared in NFC (``annotations.nfc``);
    the kept ones stay as written.

    Raises:
        AnnotationError: the ``classes.txt`` in DST is no class list (``read_classes``).
    """
    path = dst / "classes.txt"
    if not path.is_file():
        return new
    old = read_classes(path)
    if not old:
        return new
    label_of = label_index(old)
    added = [name for name in new if nfc(name) not in label_of]
    unused = [name for name in old if nfc(name) not in labels]
    if added:
        many = len(added) > 1
        logger.info(
            "%s keeps its %d classes and their labels; this run's new class%s added at its end "
            "(label %d%s): %s%s",
            path,
            len(old),
            "es are" if many else " is",
            len(old),
            " on" if many else "",
            ", ".join(repr(name) for name in added[:10]),
            ", ..." if added[10:] else "",
        )
    if unused:
        logger.warning(
            "%s: %s no video in this run; %s its label, so that the lists made with it keep "
            "their meaning (to number the classes afresh, delete it and prepare every split in "
            "one run)",
            path,
            f"{len(unused)} of its classes (e.g. {unused[0]!r}) have"
            if unused[1:]
            else f"its class {unused[0]!r} has",
            "each keeps" if unused[1:] else "it keeps",
        )
    return old + added


def _check_outputs(dst: Path, csvs: list[str] | None, splits: set[str], sources: list[str]) -> None:
    """Refuse annotation outputs that collide (two CSVs of one stem, a CSV or split named
    ``classes``) or that would overwrite an input (a ``--csv`` inside DST, a source video), a
    link or a file that is not regular, before anything is encoded.

    Raises:
        UsageError: one line naming the outputs and their inputs.
    """
    made_by: dict[Path, str] = {}  # output -> what writes it
    for name in csvs if csvs else sorted(splits):
        option = f"--csv {name}" if csvs else f"split folder {name}"
        target = dst / f"{Path(name).stem if csvs else name}.txt"
        if target.name == "classes.txt":
            raise UsageError(
                f"{option} would be written as {target}, the class list's name; rename it"
            )
        if target in made_by:
            raise UsageError(
                f"{option} and {made_by[target]} would both be written as {target}; rename one"
            )
        made_by[target] = option
    outputs = [*made_by, dst / "classes.txt", dst / ERRORS_FILE]
    reads = [("the --csv", path) for path in csvs or []]
    if any(os.path.lexists(path) for path in outputs):  # else no input is there either
        reads += [("a source video", path) for path in sources]
    read = ReadFiles(reads)
    for path in outputs:
        check_output_file(f"DST {dst}: output", path, read, folder=False)  # a pipe, a link too


def _not_listable(path: str, rel: Path) -> str | None:
    """Why the video ``path`` (output ``rel`` under DST) cannot be prepared, or None: a file that
    is not regular (a pipe would block the encoder for ever) or a name no list can hold."""
    try:
        check_video_path(path)  # what data check and training say of such a file
    except OSError as err:
        return failure_reason(err)
    problem = _list_problem(rel.as_posix())
    return f"{problem}; rename it" if problem else None


def _name_too_long(rel: Path, dst: Path, limit: int) -> str | None:
    """Why the output ``rel`` cannot be made in ``dst``, whose file system takes names of at most
    ``limit`` bytes, or None: a name in it is longer (a smaller limit than SRC's, eCryptfs's 143
    bytes)."""
    size = len(os.fsencode(rel.name))
    if size > limit:
        return (
            f"its output name would be {size} bytes, more than the {limit} a file name may have "
            f"in DST {dst}; rename it to at most {limit - len('.mp4')} bytes before its extension"
        )
    folders = [name for name in rel.parent.parts if len(os.fsencode(name)) > limit]
    if folders:
        return (
            f"its folder {printable(folders[0])} has a name longer than the {limit} bytes a "
            f"folder name may have in DST {dst}; rename the folder"
        )
    return None


def _list_problem(path: str) -> str | None:
    """Why ``path`` cannot be a line of a list (``annotations.list_path_problem``), bytes that
    are not UTF-8 included: a list is UTF-8 text, which ``data check`` and ``train`` read
    strictly, so no spelling of such bytes would read back as the file."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # surrogateescape's lone surrogates
        return "its path holds bytes that are not UTF-8, which a list (UTF-8 text) cannot hold"
    return list_path_problem(path)


def _check_folders(src: Path, dst: Path) -> None:
    """Refuse a DST that is SRC, lies inside it, or holds it: outputs would mix with sources."""
    real_src, real_dst = src.resolve(), dst.resolve()
    if real_dst == real_src or real_src in real_dst.parents:
        raise UsageError(
            f"DST {dst} is inside SRC {src} (or is it): the outputs and annotation files would "
            "mix with the raw videos; choose a DST outside SRC"
        )
    if real_dst in real_src.parents:
        raise UsageError(
            f"SRC {src} is inside DST {dst}: the annotation files would list the raw videos as a "
            "split; choose a DST that does not hold SRC"
        )


def _lines(videos: Iterable[tuple[Path, int]], dst: Path) -> list[str]:
    """The list lines of ``(video, label)`` (see ``annotations.list_line``), paths relative to
    ``dst``; a video whose name no list can hold (put in DST by hand) is left out, with a
    warning."""
    lines = []
    for video, label in videos:
        rel = video.relative_to(dst).as_posix()
        problem = _list_problem(rel)
        if problem:
            logger.warning("%s is not listed: %s", printable(str(video)), problem)
        else:
            lines.append(list_line(rel, label))
    return lines


def write_annotations(
    dst: Path,
    csvs: list[str] | None,
    classes: list[str] | None,
    outputs: list[Path] | None = None,
    unlisted: set[Path] | None = None,
) -> list[Path]:
    """Write the annotation files of a prepared tree (see the module docstring): the list of each
    of ``csvs`` (of a CSV without a label column, one of paths alone, ``_path_lines``), or
    without, one list per split of the ``<split>/<class>/<video>`` ``outputs`` of this run's
    sources (relative to ``dst``; those that are files), labelled by ``classes``, which
    ``classes.txt`` is written from (None: no labelled CSV, no ``classes.txt``). No list holds
    the videos ``unlisted`` (``dst / <path>``: outputs of sources that failed, ``_unlisted``).

    The files are one result (``paths.AtomicOutputs``): all new, or all as they were, so no list
    is read with another run's lists or classes.

    Raises:
        OutputWriteError: a file cannot be written (a full disk, an append-only earlier file);
            the earlier files are kept, no temporary is left (``kept`` names them).
    """
    texts: dict[Path, str] = {}
    unlisted = unlisted or set()
    if csvs:
        for csv_path in csvs:
            found = read_kinetics_csv(csv_path, root=dst, classes=classes, need_label=False)
            target = dst / f"{Path(csv_path).stem}.txt"
            records = [r for r in found.records if Path(r.path) not in unlisted]
            videos = ((Path(r.path), r.label) for r in records)
            unlabelled = not found.classes
            text = _path_lines(videos, dst) if unlabelled else _lines(videos, dst)
            texts[target] = "".join(text)
            logger.info(
                "%s: %d videos%s, %d rows without a file%s",
                target,
                len(records),
                f" (paths alone, for octvideo predict: {csv_path} has no label column)"
                if unlabelled
                else "",
                found.missing,
                f", {len(found.records) - len(records)} whose source failed (not listed)"
                if len(records) < len(found.records)
                else "",
            )
    else:
        label_of = label_index(classes or [])
        for split in sorted({rel.parts[0] for rel in outputs or []}):
            videos = (
                (dst / rel, label_of[nfc(rel.parent.name)])
                for rel in sorted(outputs or [])
                if rel.parts[0] == split and (dst / rel).is_file() and dst / rel not in unlisted
            )
            texts[dst / f"{split}.txt"] = "".join(_lines(videos, dst))
    if classes is not None:
        texts[dst / "classes.txt"] = classes_text(dst / "classes.txt", classes)
    with AtomicOutputs() as annotations:  # all added first: a failure names every file
        parts = [(annotations.add(path), text) for path, text in texts.items()]
        for part, text in parts:
            part.write(text)
    return list(texts)


def _path_lines(videos: Iterable[tuple[Path, int]], dst: Path) -> list[str]:
    """The lines of a list of paths alone (``octvideo predict``'s input list) of ``(video,
    label)``, paths relative to ``dst``: the ``path label`` lines of ``_lines`` without their
    label."""
    return [line.rsplit(" ", 1)[0] + "\n" for line in _lines(videos, dst)]


def _warn_sourceless(src: Path, dst: Path, outputs: list[Path]) -> None:
    """Without ``--csv``, one warning line counting the videos in DST's class folders of this
    run's splits that are no output of a source in SRC (``outputs``): a clip moved to another
    class or deleted from SRC. No list holds them: the moved clip would be listed under its old
    class and its new one."""
    ours = set(outputs)
    stale = [
        video
        for split in sorted({rel.parts[0] for rel in outputs})
        for video in sorted((dst / split).glob("*/*.mp4"))
        if is_class_folder_name(video.parent.name)
        and not video.name.endswith(".part.mp4")
        and video.relative_to(dst) not in ours
    ]
    if stale:
        logger.warning(
            "%d videos in DST %s have no source in SRC %s (moved to another class or deleted "
            "there), so no list holds them (e.g. %s); delete them, or put their sources back",
            len(stale),
            dst,
            src,
            printable(str(stale[0])),
        )


def redone_note(redone: int, short_side: int, changed: int) -> str:
    """What the summary says of outputs encoded again because their size is not the one this run
    writes (``redone``: another short side, or a turned video written as stored) or their source
    was modified after them (``changed``: a re-download); "" when none."""
    why = []
    if redone:
        why.append(
            f"{redone} of them again: not the size short side {short_side} gives, as displayed"
        )
    if changed:
        why.append(f"{changed} of them again: their source changed since")
    return f" ({'; '.join(why)})" if why else ""


def _unlisted(
    errors: list[tuple[str, str]], sources: dict[Path, list[str]], dst: Path
) -> tuple[list[tuple[str, str]], set[Path]]:
    """The failures ``errors`` (``(path, error)``), those of a source whose output (by
    ``sources``, see ``_find_sources``) an earlier run left in ``dst`` saying that it is kept and
    not listed, and those outputs: they are no encoding of the source as it is now (a newer
    download cut short, a source that now shares its output), so training must not read them.
    They stay on disk: a failure loses nothing already done."""
    output_of = {path: dst / rel for rel, paths in sources.items() for path in paths}
    noted, unlisted = [], set()
    for path, error in errors:
        output = output_of.get(path)
        if output is not None and output.is_file():
            unlisted.add(output)
            error = f"{error}; its earlier output {output} is kept on disk but not listed"
        noted.append((path, error))
    return noted, unlisted


def _check_layout(src: Path, outputs: list[Path]) -> None:
    """Without ``--csv``, refuse a SRC whose videos are not at ``<split>/<class>/<video>``: the
    annotation files are made from that level (folders that are no class left out, ``_listed``), so
    nothing would be listed."""
    if any(_listed(rel) for rel in outputs):
        return
    found = (
        f"its videos are at {src}/{outputs[0].as_posix()} and the like"
        if outputs
        else f"it holds no video ({', '.join(VIDEO_EXTENSIONS)})"
    )
    raise UsageError(
        f"SRC {src}: {found}; without --csv prepare needs SRC/<split>/<class>/<video> (e.g. "
        f"{src}/train/abseiling/x.mp4): move the class folders into a split folder, or pass the "
        "Kinetics CSVs with --csv"
    )


def _done(output: Path, src: str, short_side: int) -> bool:
    """Whether ``output`` is a finished encoding of ``src`` at ``short_side``: a file that the
    decoder opens, whose displayed size is ``src``'s displayed size scaled to ``short_side``, as
    ``_encode`` writes it, and newer than ``src`` (as make has it). A rerun with another
    ``--short-side`` must not keep the old size, nor keep a turned video an earlier octvideo wrote
    as stored (sideways), nor the encoding of a file replaced since (a re-download of one cut
    short: ``_source_changed``).

    Raises:
        DecodeError: ``output`` is done but ``src`` holds less than its container lists
            (``Video.check_whole``, as ``transcode`` refuses it): an earlier octvideo encoded
            a partial download. The ``Video`` that reads its packets gives the displayed size
            too, so the check costs little: measured on a 10 s 568x320 source, 46 ms of CPU
            against 38 ms without it (check_whole on a ``Video`` of its own: 23).
    """
    if not output.is_file() or _source_changed(output, src):
        return False
    from octvideo.data.decoding import Video, probe

    try:
        info = probe(output, decoder="pyav")  # the decoder that wrote it; reads no frame
    except Exception as err:  # a file a decoder rejects is encoded again, whatever the reason
        logger.warning("%s cannot be probed (%s); encoding it again", output, err)
        return False
    try:
        video = Video(src, decoder="pyav")
        displayed = video.info.width, video.info.height
        if min(displayed) >= MAX_DECODE_SHORT_SIDE:  # perhaps scaled down to it as decoded
            displayed = _displayed_size(src)
    except DecodeError:  # encoding it fails again, and lists why
        return False
    if displayed is None or (info.width, info.height) != scaled_size(*displayed, short_side):
        return False
    video.check_whole()
    return True


def _source_changed(output: Path, src: str) -> bool:
    """Whether ``src`` was modified after ``output`` was written (re-downloaded, replaced by
    another video of its name): an output is renamed into place once encoded, so it is newer
    than the source it was read from."""
    return os.stat(src).st_mtime_ns > output.stat().st_mtime_ns


def _find_sources(src: Path, dst: Path) -> tuple[dict[Path, list[str]], list[tuple[str, str]]]:
    """The videos under ``src`` (by extension, folders and files in name order; links to folders
    followed, as the folders format does, see ``annotations.walk_tree``), but hidden files
    (``annotations.is_hidden_name``: macOS's AppleDouble ``._x.mp4``, no video), which one
    warning line counts, as the folders format and ``predict`` count them.

    Returns:
        ``{output relative to DST: its sources}`` (two or more where sources would land on one
        output), and ``(path, error)`` of the videos that fail without being opened
        (``_not_listable``).
    """
    sources: dict[Path, list[str]] = defaultdict(list)
    errors: list[tuple[str, str]] = []
    hidden: list[str] = []  # no video, wherever it lies (``is_hidden_name``)
    limit = name_limit(dst)
    for folder, files in walk_tree(src, exclude=dst, exclude_name="the output folder DST"):
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS:
                continue
            path = str(Path(folder, name))
            if is_hidden_name(name):
                hidden.append(path)
                continue
            rel = Path(path).relative_to(src).with_suffix(".mp4")
            problem = _not_listable(path, rel) or _name_too_long(rel, dst, limit)
            if problem:
                errors.append((path, problem))
            else:
                sources[rel].append(path)
    if hidden:
        logger.warning(
            "SRC %s: skipped %s; they are not encoded", src, hidden_files_skipped(hidden)
        )
    return sources, errors


def _plan_jobs(
    sources: dict[Path, list[str]], dst: Path, short_side: int, workers: int
) -> tuple[list[tuple[str, str]], int, set[str], list[tuple[str, str]]]:
    """What to encode of ``sources`` (see ``_find_sources``) into ``dst``.

    Returns:
        ``(src, output)`` jobs; how many outputs are done already (``_done``, checked ``workers``
        at once); the sources whose output is there at another size (encoded again); and
        ``(path, error)`` of sources that share an output, none of which is encoded (which one
        is meant cannot be told), and of those whose output is done but that are cut short
        (``_done``'s DecodeError: an earlier octvideo encoded a partial download).
    """
    jobs, skipped, again, errors = [], 0, set(), []
    singles = [(rel, paths[0]) for rel, paths in sorted(sources.items()) if len(paths) == 1]
    checked = _all_done([(dst / rel, src) for rel, src in singles], short_side, workers)
    done = dict(zip(singles, checked, strict=True))
    for rel, paths in sorted(sources.items()):
        if len(paths) > 1:
            for path in paths:
                same = f"same output {dst / rel} as {', '.join(p for p in paths if p != path)}"
                errors.append((path, f"{same}; rename or remove one of them and run again"))
        elif isinstance(done[rel, paths[0]], DecodeError):
            errors.append((paths[0], f"DecodeError: {done[rel, paths[0]]}"))
        elif done[rel, paths[0]]:
            skipped += 1
        else:
            if (dst / rel).is_file():
                again.add(paths[0])
            jobs.append((paths[0], str(dst / rel)))
    return jobs, skipped, again, errors


def _all_done(
    outputs: list[tuple[Path, str]], short_side: int, workers: int
) -> list[bool | DecodeError]:
    """``_done`` of each ``(output, src)``, or the DecodeError it raises (a cut source),
    ``workers`` at once: each check of an output there opens its source and decodes a frame
    (its orientation), tens of ms for a 1080p source, in threads, as PyAV lets go of the
    interpreter while it opens and decodes."""

    def check(job: tuple[Path, str]) -> bool | DecodeError:
        try:
            return _done(*job, short_side)
        except DecodeError as err:
            return err

    if workers < 2 or len(outputs) < 2:
        return [check(job) for job in outputs]
    pool = ThreadPoolExecutor(workers, thread_name_prefix="prepare-done")
    try:
        return list(pool.map(check, outputs))
    finally:  # a Ctrl-C here: the checks under way end, the others do not start
        pool.shutdown(wait=True, cancel_futures=True)


def prepare_dataset(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    short_side: int = 320,
    workers: int = 2,
    csvs: list[str] | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, int]:
    """Re-encode the videos under ``src`` that a list will hold into ``dst`` and write annotation
    files.

    Args:
        src: the raw tree (``<split>/<class>/<video>`` or any layout with ``csvs``).
        dst: the output tree (created).
        short_side: 256 or 320 in the usual recipes; 16 to ``MAX_DECODE_SHORT_SIDE``.
        workers: encoding processes, 1 to ``workers.WORKERS_PER_CORE`` per usable CPU core, at
            most ``MAX_WORKERS``.
        csvs: official Kinetics CSVs to build the annotation files from.
        progress: show a progress bar.
        timeout: seconds one video may take (above 0, at most ``MAX_TIMEOUT``); a video past
            it fails, its encoder killed.

    Returns:
        Counts: ``encoded``, ``redone`` (of those, outputs that were there at another short side
        and were encoded again), ``changed`` (of those, outputs older than their source, encoded
        again), ``skipped`` (already done), ``failed``.

    Raises:
        InputPathError: ``src`` is not a folder (a ``FileNotFoundError``).
        UsageError: a bad argument, CSV or layout, a DST that cannot be written or that
            another ``data prepare`` is writing ("DST D is in use by octvideo data prepare (pid
            N); ..."), or annotation outputs that collide or would replace an input (see the
            module docstring); all before any encoding.
        RunStopped: the error list or an annotation file could not be written after encoding
            (a full disk); the encoded videos are kept.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise InputPathError(f"source folder {src} does not exist")
    with usage_errors(ValueError):  # the bound checks shared with other commands
        check_range("--short-side", short_side, 16, MAX_DECODE_SHORT_SIDE, " pixels")
        check_even_short_side(short_side)
        check_worker_count("--workers", workers, low=1, cap=MAX_WORKERS)
        check_timeout(timeout)
        reserve_open_files(f"--workers {workers}", workers, FORK_SERVER_OPEN_FILES)
    _check_folders(src, dst)
    rows_of = _check_csvs(csvs) if csvs else []
    if csvs:
        _warn_shared_videos(csvs, rows_of)
    sources, errors = _find_sources(src, dst)
    folders: list[Path] = []  # without --csv, SRC's <split>/<class> folders
    outputs: list[Path] = []  # without --csv, the outputs of SRC's videos
    if csvs:
        sources, errors = _leave_out(src, sources, errors, _in_class_folders, _NO_CLASS)
        _check_csv_videos(csvs, rows_of, src, dst, sources)
        sources, errors = _leave_out(src, sources, errors, _named_by(rows_of), _UNNAMED)
        labelled = [rows for rows in rows_of if not _unlabelled(rows)]
        new = sorted({row.label for row in labelled[0]}) if labelled else None
        labels = {row.label for rows in labelled for row in rows}
    else:
        _check_layout(src, list(sources) + [Path(p).relative_to(src) for p, _ in errors])
        sources, errors = _leave_out(src, sources, errors, _listed, _OFF_DEPTH)
        outputs = sorted([*sources, *(_output(src, path) for path, _ in errors)])
        folders = sorted({rel.parent for rel in outputs})
        _check_class_folders(src, folders)
        new = sorted({nfc(folder.name) for folder in folders})  # as the folders format reads
        labels = set(new)
    splits = {folder.parts[0] for folder in folders}
    _check_outputs(dst, csvs, splits, [p for paths in sources.values() for p in paths])
    classes = None if new is None else _class_list(dst, new, labels)
    check_folder("DST", dst, advice="choose another DST")  # before any encoding
    _warn_sourceless(src, dst, outputs)
    # the only prepare writing DST: two would encode into the same part files and outputs
    with hold_folder(dst, "data prepare", name=f"DST {dst}", advice="choose another DST"):
        return _prepare(
            sources,
            errors,
            dst,
            (csvs, classes, outputs),
            short_side,
            workers,
            progress,
            timeout,
            _segments(rows_of),
        )


def _prepare(
    sources: dict[Path, list[str]],
    errors: list[tuple[str, str]],
    dst: Path,
    annotations: tuple[list[str] | None, list[str] | None, list[Path]],
    short_side: int,
    workers: int,
    progress: bool,
    timeout: float,
    segments: dict[str, float],
) -> dict[str, int]:
    """``prepare_dataset`` past its checks, holding DST: encodes the videos not yet done and
    writes the error list and the annotation files (``write_annotations``'s arguments past
    ``dst``, ``annotations``); ``segments``: the seconds the CSV rows give each video
    (``_segments``), to warn of those encoded much longer (``_warn_untrimmed``)."""
    jobs, skipped, again, clashes = _plan_jobs(sources, dst, short_side, workers)
    errors += clashes
    changed = {path for path, out in jobs if path in again and _source_changed(Path(out), path)}
    again -= changed
    if changed:
        logger.info(
            "%d videos of %s were modified after their outputs were written (re-downloaded, or "
            "replaced): encoding them again (e.g. %s)",
            len(changed),
            dst,
            printable(min(changed)),
        )
    if again:
        logger.info(
            "%d videos of %s are not the size short side %d gives them as displayed (an earlier "
            "run with another --short-side, or one that wrote a turned video as stored): encoding "
            "them again",
            len(again),
            dst,
            short_side,
        )
    lengths: dict[str, float] = {}  # seconds of each video encoded, by source
    encode_errors = _run_jobs(jobs, short_side, workers, progress, timeout, lengths=lengths)
    errors += encode_errors
    errors, unlisted = _unlisted(errors, sources, dst)
    _warn_untrimmed(lengths, segments)
    try:
        write_bad_videos(dst / ERRORS_FILE, sorted(errors))
        write_annotations(dst, *annotations, unlisted=unlisted)
    except (OSError, RunStopped) as err:  # a full disk: encoded videos are complete, kept
        kept = f"; {err.kept}" if isinstance(err, OutputWriteError) and err.kept else ""
        raise RunStopped(
            f"writing in DST {dst} failed ({write_failure(err)}) after encoding{kept}; free space "
            "and run again (finished videos are kept and skipped)"
        ) from err
    failed = {path for path, _ in encode_errors}
    counts = {
        "encoded": len(jobs) - len(encode_errors),
        "redone": len(again - failed),
        "changed": len(changed - failed),
        "skipped": skipped,
        "failed": len(errors),
    }
    logger.info(
        "prepared %s: %d encoded%s, %d already done, %d failed (see %s)",
        dst,
        counts["encoded"],
        redone_note(counts["redone"], short_side, counts["changed"]),
        skipped,
        len(errors),
        dst / ERRORS_FILE,
        extra=RESULT,
    )
    return counts
