"""``octvideo data check``: lists in the current folder, bounded arguments, the JSON-lines report,
a full disk at the report, a decoder crash or a timeout that costs only its own video, and inputs
refused early."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import threading
from functools import partial

import pytest

from octvideo import paths
from octvideo.cli import main
from octvideo.data import check as check_module
from octvideo.data import decoding, probe
from octvideo.data import workers as workers_module
from octvideo.data.check import check_videos, read_bad_videos, write_bad_videos
from octvideo.errors import RunStopped, UsageError
from tests.data import check_faults as faults
from tests.data.media_helpers import NUM_FRAMES, data_error, data_stopped, fill, no_free_files
from tests.data.test_decoding import INDEXED_LAST, cut_at, cut_between_frames, encode_seconds
from tests.data.test_open_files import fake_open_file_limit
from tests.deadline import run_with_deadline
from tests.inference.media_helpers import faststart
from tests.reliability.bad_input_matrix import ODD_ENTRIES, make_no_file

ODD_NAMES = ["tab\there.mp4", "new\nline.mp4", "caf\u00e9 \u65e5\u672c.mp4", " lead.mp4"]


def test_a_list_in_the_current_folder_is_checked(tmp_path, media, monkeypatch, capsys):
    # `cd data/synth && octvideo data check train.txt` refused every line as leaving root "."
    (tmp_path / "train").mkdir()
    shutil.copy(media["h264.mp4"], tmp_path / "train" / "a.mp4")
    shutil.copy(media["zero.mp4"], tmp_path / "b.mp4")
    (tmp_path / "train.txt").write_text("train/a.mp4 0\nb.mp4 1\n")
    monkeypatch.chdir(tmp_path)
    for root in ([], ["--root", "."]):
        assert main(["data", "check", "train.txt", *root, "--workers", "1", "-q"]) == 1
        assert "1 of 2 videos decode, 1 bad (listed in train.bad.jsonl)" in capsys.readouterr().out
        assert [path for path, _ in read_bad_videos("train.bad.jsonl")] == ["b.mp4"]


def test_the_report_round_trips_any_file_name(tmp_path):
    rows = [(name, f"DecodeError: {name}: no\tframes\n") for name in ODD_NAMES]
    rows.append(("not-utf8-\udcff.mp4", "caf\u00e9"))  # os.fsdecode of the byte 0xff
    write_bad_videos(tmp_path / "bad.jsonl", rows)
    text = (tmp_path / "bad.jsonl").read_bytes().decode("utf-8")  # strict UTF-8
    assert text.count("\n") == len(rows)  # one line a video
    assert read_bad_videos(tmp_path / "bad.jsonl") == rows


def test_bad_files_with_tabs_and_newlines_in_their_names_are_reported_whole(
    tmp_path, media, capsys
):
    # the path<TAB>error lines split these names over two lines and at the wrong tab
    folder = tmp_path / "set" / "jump"
    folder.mkdir(parents=True)
    for name in ODD_NAMES:
        shutil.copy(media["zero.mp4"], folder / name)
    shutil.copy(media["h264.mp4"], folder / "good.mp4")
    out = tmp_path / "bad.jsonl"
    assert main(["data", "check", str(tmp_path / "set"), "--out", str(out), "-q"]) == 1
    report = read_bad_videos(out)
    assert sorted(path for path, _ in report) == sorted(str(folder / n) for n in ODD_NAMES)
    assert all(error.startswith("DecodeError: ") for _, error in report)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeout", "86401", "--timeout '86401': give at most 86400 seconds (a day)"),
        ("--timeout", "1e9", "--timeout '1e+09': give at most 86400 seconds (a day)"),
        ("--timeout", "0", "--timeout '0': give at least 1 second (a shorter one stops work "),
        # below the floor every video that decodes was reported bad, "timed out ..., twice"
        ("--timeout", "1e-300", "--timeout '1e-300': give at least 1 second (a shorter one stops "),
        ("--timeout", "0.999", "--timeout '0.999': give at least 1 second"),
    ],
)
def test_sizes_and_durations_past_their_bounds_are_refused_first(
    tmp_path, media, capsys, option, value, message
):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    line = data_error(capsys, "check", str(tmp_path / "list.txt"), option, value)
    assert line.startswith(f"octvideo data check: error: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


@pytest.mark.parametrize(("cores", "workers", "limit"), [(2, 9, 8), (2, 0, 8), (100, 257, 256)])
def test_workers_past_what_the_machine_takes_are_refused_naming_its_cores(
    tmp_path, media, capsys, monkeypatch, cores, workers, limit
):
    # a fixed 256 let a 2-core machine start 256 decoding processes
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    line = data_error(capsys, "check", str(tmp_path / "list.txt"), "--workers", str(workers))
    assert line == (
        f"octvideo data check: error: --workers {workers}: give 1 to {limit} (at most 4 per CPU "
        f"core and 256 in all; this machine has {cores} CPU cores available)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


def test_an_out_that_is_the_list_is_refused(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    line = data_error(
        capsys, "check", str(tmp_path / "list.txt"), "--out", str(tmp_path / "list.txt")
    )
    assert line == (
        f"octvideo data check: error: --out {tmp_path / 'list.txt'} is the annotation file "
        f"{tmp_path / 'list.txt'}: writing it would destroy it; choose another path"
    )
    assert (tmp_path / "list.txt").read_text() == f"{media['zero.mp4']} 0\n"


def test_an_out_that_is_a_listed_video_is_refused(tmp_path, media, capsys):
    video = tmp_path / "clips" / "a.mp4"
    video.parent.mkdir()
    shutil.copy(media["h264.mp4"], video)
    (tmp_path / "list.txt").write_text("clips/a.mp4 0\n")
    line = check_error(capsys, str(tmp_path / "list.txt"), "--out", str(video))
    assert line == (
        f"octvideo data check: error: --out {video} is a listed video {video}: writing it would "
        "destroy it; choose another path"
    )
    assert video.read_bytes() == media["h264.mp4"].read_bytes()


@pytest.mark.parametrize(
    "content",
    [b"model: {name: i3d_r18}\n", b"PK\x03\x04checkpoint", b'{"path": "a.mp4"}\n'],
    ids=["config", "checkpoint", "other-json"],
)
def test_an_existing_out_that_is_not_a_report_is_refused(tmp_path, media, capsys, content):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    out = tmp_path / "kept.yaml"
    out.write_bytes(content)
    line = check_error(capsys, str(tmp_path / "list.txt"), "--out", str(out))
    assert line == (
        f"octvideo data check: error: --out {out} exists and is not a report of data check (JSON "
        'lines {"path", "error"}): writing it would destroy it; choose another path or remove it'
    )
    assert out.read_bytes() == content


@pytest.mark.parametrize("earlier", ["", '{"path": "old.mp4", "error": "DecodeError: x"}\n'])
def test_an_earlier_report_is_replaced(tmp_path, media, earlier):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    out = tmp_path / "bad.txt"
    out.write_text(earlier)
    assert main(["data", "check", str(tmp_path / "list.txt"), "--out", str(out), "-q"]) == 1
    assert [path for path, _ in read_bad_videos(out)] == [str(media["zero.mp4"])]


def test_a_read_only_earlier_report_is_refused_and_kept(tmp_path, media):
    # its owner protected it (chmod a-w); the rename of the new report replaced it all the same
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    out = tmp_path / "bad.jsonl"
    earlier = '{"path": "old.mp4", "error": "DecodeError: x"}\n'
    out.write_text(earlier)
    out.chmod(0o444)
    with pytest.raises(UsageError) as err:
        check_videos(tmp_path / "list.txt", out=out, workers=1, progress=False)
    assert str(err.value) == (
        f"--out {out} is read-only: make it writable (chmod u+w) to replace it, or choose "
        "another path"
    )
    assert out.read_text() == earlier


@pytest.mark.parametrize("earlier", ["read-only report", "user file"])
def test_a_default_report_is_named_as_the_default_not_as_an_out_never_given(
    tmp_path, media, earlier
):
    # data check without --out said "--out train.bad.jsonl is read-only", naming an option the
    # user did not type
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    out = tmp_path / "list.bad.jsonl"
    if earlier == "user file":
        out.write_text("my notes\n")
        why = (
            'exists and is not a report of data check (JSON lines {"path", "error"}): writing '
            "it would destroy it; choose another path or remove it"
        )
    else:
        out.write_text('{"path": "old.mp4", "error": "DecodeError: x"}\n')
        out.chmod(0o444)
        why = "is read-only: make it writable (chmod u+w) to replace it, or choose another path"
    before = out.read_bytes()
    with pytest.raises(UsageError) as err:
        check_videos(tmp_path / "list.txt", out=out, default_out=True, workers=1, progress=False)
    assert str(err.value) == f"the default report {out} {why}"
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("signum", "cause", "status", "after"),
    [(signal.SIGINT, "Ctrl-C", 130, 3), (signal.SIGTERM, "SIGTERM", 143, 3)]
    + [(signal.SIGTERM, "SIGTERM", 143, 0)],
)
def test_a_check_stopped_by_a_signal_writes_the_report_of_what_it_checked_marked_partial(
    tmp_path, media, monkeypatch, capsys, signum, cause, status, after
):
    # a stopped check kept nothing of the bad files it had found; stopped before its first
    # video was done, it leaves an earlier report as it was
    names = ["h264.mp4", "zero.mp4", "mpeg4.avi", "truncated.mp4", "text.mp4", "vfr.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    out = tmp_path / "bad.jsonl"
    earlier = '{"path": "old.mp4", "error": "DecodeError: x"}\n'
    out.write_text(earlier)
    answered: list[tuple[int, str]] = []
    receive = check_module._CheckPool.receive

    def signalled(pool, timeout):  # the signal comes once ``after`` videos are done, one a time
        if len(answered) >= after:
            os.kill(os.getpid(), signum)
        decoded, lost = receive(pool, timeout)
        answered.extend(decoded)
        return decoded, lost

    monkeypatch.setattr(check_module._CheckPool, "receive", signalled)
    args = ["data", "check", str(tmp_path / "list.txt"), "--out", str(out), "--workers", "1"]
    # Ctrl-C as in a terminal: a job run in the background (a CI script's `&`) starts with it
    # ignored, and the check would then run to its end
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main([*args, "-q"]) == status
    finally:
        signal.signal(signal.SIGINT, sigint)
    head = f"octvideo data check: stopped by {cause} after {after} of 6 videos"
    if after == 0:
        assert (
            capsys.readouterr().err
            == f"{head}; {out} is left as it was; run it again to check all 6\n"
        )
        assert out.read_text() == earlier
        return
    assert capsys.readouterr().err == (
        f"{head}; the 1 bad among them are listed in {out}, marked as partial; run it again to "
        "check all 6\n"
    )
    assert [path for path, _ in read_bad_videos(out)] == [str(media["zero.mp4"])]
    assert json.loads(out.read_text().splitlines()[-1]) == {
        "partial": f"stopped by {cause} after 3 of 6 videos; the other 3 were not checked",
        "checked": 3,
        "total": 6,
    }
    monkeypatch.undo()  # the whole check replaces the partial report, as it does an earlier one
    assert main([*args, "-q"]) == 1
    assert [os.path.basename(p) for p, _ in read_bad_videos(out)] == names[1:2] + names[3:5]
    assert "partial" not in out.read_text()


def test_a_partial_report_without_bad_videos_is_a_report(tmp_path):
    out = tmp_path / "bad.jsonl"
    mark = {"partial": "stopped by Ctrl-C after 1 of 2 videos; ...", "checked": 1, "total": 2}
    write_bad_videos(out, [], mark)
    assert read_bad_videos(out) == [] and check_module.is_report(out)


def test_an_out_that_is_a_pipe_is_refused_unopened(tmp_path, media):
    # renamed over, a device (--out /dev/null as root) or a pipe became a regular file
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    out = tmp_path / "pipe"
    os.mkfifo(out)
    with pytest.raises(UsageError, match=f"^--out {out} "):
        run_with_deadline(60, check_videos, tmp_path / "list.txt", out=out, progress=False)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)


@pytest.mark.parametrize("fmt", ["lines", "kinetics_csv"])
def test_a_folder_with_a_file_format_is_one_line(tmp_path, media, capsys, fmt):
    (tmp_path / "set" / "jump").mkdir(parents=True)
    shutil.copy(media["h264.mp4"], tmp_path / "set" / "jump" / "a.mp4")
    line = check_error(capsys, str(tmp_path / "set"), "--format", fmt)
    assert line.startswith(
        f"octvideo data check: error: {tmp_path / 'set'} is a folder: the {fmt} "
    )


def test_a_full_disk_at_the_report_is_one_line_and_leaves_no_half_file(
    tmp_path, media, monkeypatch, capsys
):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n{media['h264.mp4']} 0\n")

    def full_disk(path):  # the report was written; the disk says it is full as it is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(paths, "_fsync", full_disk)
    out = tmp_path / "reports" / "bad.jsonl"
    out.parent.mkdir()
    line = data_stopped(capsys, "check", str(tmp_path / "list.txt"), "--out", str(out))
    assert line == (
        f"octvideo data check: stopped: writing --out {out} failed (No space left on device); 1 of "
        "2 videos are bad and are not listed anywhere; free space and run again"
    )
    assert list(out.parent.iterdir()) == []


def test_a_real_full_disk_at_the_report_is_one_line(tmp_path, media, tiny_disk, capsys):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    fill(tiny_disk)
    out = tiny_disk / "bad.jsonl"
    line = data_stopped(capsys, "check", str(tmp_path / "list.txt"), "--out", str(out))
    assert line.startswith(
        f"octvideo data check: stopped: writing --out {out} failed (No space left"
    )
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_check_lists_bad_files_and_survives_a_decoder_crash(tmp_path, media, monkeypatch):
    names = ["h264.mp4", "vp9.webm", "truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    monkeypatch.setattr(check_module, "check_one", partial(faults.crash_on, "vp9.webm"))
    out = tmp_path / "bad.txt"
    status = main(["data", "check", str(tmp_path / "list.txt"), "--out", str(out), "-q"])
    assert status == 1
    bad = dict(read_bad_videos(out))
    assert set(bad) == {str(media[n]) for n in names[1:]}
    assert bad[str(media["vp9.webm"])] == "decoder process died (signal SIGSEGV), twice"
    assert "DecodeError" in bad[str(media["zero.mp4"])]
    # the reason alone, no class name: "FileNotFoundError" read as a decoder's error
    assert bad[str(media["missing.mp4"])] == f"video {media['missing.mp4']} does not exist"


def test_a_slow_video_times_out_and_every_other_video_is_checked(tmp_path, media, monkeypatch):
    names = ["h264.mp4", "vp9.webm", "mpeg4.avi", "mjpeg.avi", "odd.mkv", "zero.mp4", "vfr.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    # The other videos' results are decoded here, before the pool starts, so that a worker
    # answers them at once: on a busy machine a real decode can take longer than the 3 s
    # timeout, and the outcome must not depend on how busy the machine is.
    decoded = {
        str(media[n]): check_module.check_one(str(media[n]), "auto")
        for n in names
        if n != "mpeg4.avi"
    }
    monkeypatch.setattr(check_module, "check_one", partial(faults.hang_on, "mpeg4.avi", decoded))
    report = run_with_deadline(  # 120 s: a safety net against a hang, not a measured time
        120,
        check_videos,
        tmp_path / "list.txt",
        out=tmp_path / "bad.txt",
        workers=2,
        timeout=3,
        progress=False,
    )
    assert report.total == 7
    assert [(os.path.basename(p), e.split(":")[0]) for p, e in report.bad] == [
        ("mpeg4.avi", "timed out after 3 s, twice"),
        ("zero.mp4", "DecodeError"),
    ]
    assert read_bad_videos(tmp_path / "bad.txt")[0] == (
        str(media["mpeg4.avi"]),
        "timed out after 3 s, twice",
    )


@pytest.mark.parametrize(
    ("fault", "timeout"),
    [(faults.hang_first_time, 2), (faults.die_first_time, 60)],
    ids=["hangs", "dies"],
)
def test_a_video_whose_worker_hangs_or_dies_once_is_tried_again_in_a_fresh_process(
    tmp_path, media, monkeypatch, fault, timeout
):
    # decord's threaded decoder can hang or abort in a race when a reader is destroyed: not the
    # file's fault
    names = ["h264.mp4", "mpeg4.avi"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    marker = tmp_path / "faulted-once"
    monkeypatch.setattr(check_module, "check_one", partial(fault, "mpeg4.avi", str(marker)))
    report = run_with_deadline(
        120, check_videos, tmp_path / "list.txt", workers=1, timeout=timeout, progress=False
    )
    assert marker.exists()  # it did hang or die once
    assert report.total == 2 and report.bad == []


def test_workers_are_not_forks_of_a_process_that_has_decoded(tmp_path, media, monkeypatch):
    # forked from this process, which decodes with decord in other tests, a worker could hang
    # closing its reader (decord's queue copied mid-use); they start from a clean fork server
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    check_module.check_one(str(media["h264.mp4"]), "auto")
    monkeypatch.setattr(check_module, "check_one", faults.parent_pid)
    report = run_with_deadline(120, check_videos, tmp_path / "list.txt", progress=False)
    ((_, error),) = report.bad
    assert error.startswith("parent ") and error != f"parent {os.getpid()}"


@pytest.mark.parametrize("decoder", ["decord", "pyav", "auto"])
def test_a_video_is_opened_once_and_read_in_chunks(media, monkeypatch, decoder):
    # opened again for each chunk, a long video took time growing with its frames squared
    opened, read = [], []

    def counted(reader: type) -> type:
        class Counted(reader):
            def __init__(self, path, header=None):
                opened.append(path)
                super().__init__(path, header)

            def get(self, indices):
                read.append(indices.tolist())
                return super().get(indices)

        return Counted

    for name, reader in list(decoding._READERS.items()):
        monkeypatch.setitem(decoding._READERS, name, counted(reader))
    monkeypatch.setattr(check_module, "CHUNK", 10)
    path = str(media["h264.mp4"])
    assert check_module.check_one(path, decoder) == ""
    assert opened == [path]
    assert read == [list(range(0, 10)), list(range(10, 20)), list(range(20, NUM_FRAMES))]


@pytest.mark.parametrize("decoder", ["auto", "pyav"])
def test_a_partial_download_whose_frames_all_decode_is_bad(tmp_path, decoder):
    # cut between two frames, it decoded to its end and was reported fine
    whole = faststart(tmp_path / "whole.mp4")  # 60 frames at 10 fps, its index first
    path = cut_between_frames(whole, tmp_path / "cut.mp4", 40)
    assert check_module.check_one(str(path), decoder) == (
        f"DecodeError: {path}: the file's index lists 60 frames (6.0 s), 20 of them missing: the "
        f"file is truncated"
    )
    assert check_module.check_one(str(whole), decoder) == ""


@pytest.mark.parametrize("name", ["h264.mkv", "vp9.webm", "mpeg4.avi"])
def test_a_partial_download_indexed_last_is_bad(tmp_path, name):
    # a half-downloaded .mkv or .webm decoded to its cut and was reported fine
    whole = encode_seconds(tmp_path / name, INDEXED_LAST[name][0], "yuv420p")  # 8.0 s
    path = cut_at(whole, tmp_path / f"cut_{name}")
    missing = 8.0 - probe(path).num_frames / 12
    assert check_module.check_one(str(path), "auto") == (
        f"DecodeError: {path}: the file's header lists 8.0 s, {missing:.1f} s of it missing: the "
        f"file is truncated"
    )
    assert check_module.check_one(str(whole), "auto") == ""


def test_a_tiny_timeout_returns_with_every_video_accounted_for(tmp_path, media):
    # Before, every worker was killed at once, idle ones holding the task queue's lock too: a hang.
    names = ["h264.mp4", "vp9.webm", "mpeg4.avi", "mjpeg.avi", "odd.mkv", "vfr.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    report = run_with_deadline(
        120, check_videos, tmp_path / "list.txt", workers=2, timeout=1e-4, progress=False
    )
    assert report.total == 6
    assert all(error == "timed out after 0.0001 s, twice" for _, error in report.bad)


def check_error(capsys, *args: str) -> str:
    return data_error(capsys, "check", *args)


def test_timeout_zero_is_refused(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    line = check_error(capsys, str(tmp_path / "list.txt"), "--timeout", "0")
    assert line.startswith("octvideo data check: error: --timeout '0': give at least 1 second")
    assert not (tmp_path / "list.bad.jsonl").exists()


def test_a_malformed_list_is_one_line(tmp_path, capsys):
    (tmp_path / "list.txt").write_text("ok.mp4 walking\n")
    line = check_error(capsys, str(tmp_path / "list.txt"))
    assert line == (
        f"octvideo data check: error: {tmp_path / 'list.txt'}:1: expected 'path label' (label an "
        "integer), got 'ok.mp4 walking'"
    )
    (tmp_path / "list.txt").write_text("../x.mp4 0\n")
    line = check_error(capsys, str(tmp_path / "list.txt"))
    assert line == (
        f"octvideo data check: error: {tmp_path / 'list.txt'}:1: '../x.mp4' leaves the data root "
        f"{tmp_path}; fix the list, or set data.allow_outside_root=true if the files really "
        "live there"
    )


def test_an_out_that_cannot_be_written_is_refused_before_decoding(tmp_path, media, monkeypatch):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    (tmp_path / "existing_file").write_text("")
    started = []
    monkeypatch.setattr(check_module, "_CheckPool", lambda *args: started.append(args))
    with pytest.raises(UsageError) as caught:
        check_videos(tmp_path / "list.txt", out=tmp_path / "existing_file" / "bad.txt")
    assert str(caught.value) == (
        f"--out {tmp_path / 'existing_file' / 'bad.txt'}: {tmp_path / 'existing_file'} is a "
        "file, not a folder; choose another path"
    )
    assert started == []  # no worker was started


def test_an_out_that_cannot_be_written_is_one_line(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    (tmp_path / "existing_file").write_text("")
    out = tmp_path / "existing_file" / "bad.txt"
    line = check_error(capsys, str(tmp_path / "list.txt"), "--out", str(out))
    assert line == (
        f"octvideo data check: error: --out {out}: {tmp_path / 'existing_file'} is a file, not a "
        "folder; choose another path"
    )


def test_a_class_folder_entry_that_is_no_video_file_is_counted_and_reported(
    tmp_path, media, capsys
):
    # a broken link, a loop, a pipe, a link to a device and a folder named x.mp4 were left out
    # of the count and the report: "1 of 2 videos decode, 1 bad" for a folder of seven
    walk, jump = tmp_path / "root" / "walk", tmp_path / "root" / "jump"
    walk.mkdir(parents=True)
    jump.mkdir()
    shutil.copy(media["h264.mp4"], walk / "good.mp4")
    shutil.copy(media["zero.mp4"], walk / "zero.mp4")
    for name, kind in ODD_ENTRIES.items():
        make_no_file(jump / name, kind)
    (jump / "folder.mp4").mkdir()
    out = tmp_path / "bad.jsonl"
    assert main(["data", "check", str(tmp_path / "root"), "--out", str(out), "-q"]) == 1
    assert "1 of 7 videos decode, 6 bad" in capsys.readouterr().out
    reasons = {os.path.basename(path): error for path, error in read_bad_videos(out)}
    assert sorted(reasons) == [
        "dangling.mp4",
        "device.mp4",
        "fifo.mp4",
        "folder.mp4",
        "loop.mp4",
        "zero.mp4",
    ]
    # the reasons each gets when given alone (in a list, or to predict)
    assert "is a broken symlink (to " in reasons["dangling.mp4"]
    assert "is a symlink loop, not a video file" in reasons["loop.mp4"]
    assert "is a pipe, not a video file" in reasons["fifo.mp4"]
    assert "links to a device, not a video file" in reasons["device.mp4"]
    assert "is a directory, not a video file" in reasons["folder.mp4"]
    assert stat.S_ISFIFO(os.lstat(jump / "fifo.mp4").st_mode)


def test_hidden_files_in_a_class_folder_are_skipped_in_one_line_not_reported_bad(
    tmp_path, media, capsys, caplog
):
    # a Kinetics copy off a Mac: each ._x.mp4 (AppleDouble, no video) was a bad video
    jump = tmp_path / "root" / "jump"
    jump.mkdir(parents=True)
    shutil.copy(media["h264.mp4"], jump / "a.mp4")
    for name in ("._a.mp4", "._b.mp4"):
        shutil.copy(media["text.mp4"], jump / name)
    out = tmp_path / "bad.jsonl"
    assert main(["data", "check", str(tmp_path / "root"), "--out", str(out), "-q"]) == 0
    assert "1 of 1 videos decode, 0 bad" in capsys.readouterr().out
    assert read_bad_videos(out) == []
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{tmp_path / 'root'}: skipped 2 hidden files named like videos (dot files such as the "
        "AppleDouble ._x.mp4 that macOS writes beside each file it copies: no video; e.g. "
        f"{jump / '._a.mp4'})"
    ]


def test_a_folder_without_class_folders_is_refused(tmp_path, media, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("h264.mp4", "vp9.webm"):
        (flat / name).write_bytes(media[name].read_bytes())
    (flat / "moved.mp4").symlink_to("gone.mp4")  # counted as a class folder's would be listed
    (flat / "._h264.mp4").write_bytes(b"")  # AppleDouble, no video: not counted
    line = check_error(capsys, str(flat))
    assert line == (
        f"octvideo data check: error: {flat}: found 3 videos directly in it but none in class "
        f"folders; a class-folder root holds one folder per class with its videos "
        f"({flat}/<class>/<video>.mp4), or pass a 'path label' list"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    line = check_error(capsys, str(empty))
    assert line == (
        f"octvideo data check: error: {empty}: found no videos in class folders; a class-folder "
        f"root holds one folder per class with its videos ({empty}/<class>/<video>.mp4), or pass a "
        "'path label' list"
    )


def test_an_open_file_limit_too_low_for_the_workers_is_refused_in_one_line(
    tmp_path, media, capsys, monkeypatch
):
    # under `ulimit -n 20`, --workers 8 ended in the fork server's EMFILE traceback; 8 asked,
    # 2 start for 2 videos
    monkeypatch.setattr(workers_module, "usable_cores", lambda: 4)
    fake_open_file_limit(monkeypatch, soft=20, hard=20)
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n{media['vp9.webm']} 0\n")
    line = data_error(capsys, "check", str(tmp_path / "list.txt"), "--workers", "8")
    assert line == (
        "octvideo data check: error: the open-file limit 20 is too low for 2 workers (--workers "
        "8); raise `ulimit -n` to at least 24 or use fewer workers"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


def test_running_out_of_open_files_stops_the_check_and_blames_no_video(tmp_path, media):
    # the decoder's EMFILE was the video's error: a bad-file row for a video that decodes
    path = str(media["h264.mp4"])
    check_module.check_one(path, "auto")  # the decoders loaded before the files run out
    with no_free_files(), pytest.raises(RunStopped) as caught:
        check_module.check_one(path, "auto")
    assert str(caught.value).startswith(f"decoding {path} ran out of open files (the open-file ")
    assert str(caught.value).endswith("); raise `ulimit -n` or use fewer workers")


def test_a_check_stopped_out_of_open_files_keeps_the_bad_videos_found(tmp_path, media, monkeypatch):
    names = ["h264.mp4", "zero.mp4", "vp9.webm"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    out = tmp_path / "bad.jsonl"
    line = f"decoding {media['vp9.webm']} ran out of open files"

    def decode_all(paths, workers, decoder, timeout, progress, errors, checked):
        checked.update({0, 1})
        errors[1] = "DecodeError: empty"
        raise RunStopped(line)

    monkeypatch.setattr(check_module, "_decode_all", decode_all)
    with pytest.raises(RunStopped) as caught:
        check_videos(tmp_path / "list.txt", out=out, progress=False)
    assert str(caught.value) == (
        f"{line}; stopped after 2 of 3 videos; the 1 bad among them are listed in {out}, marked "
        "as partial; run it again to check all 3"
    )
    assert read_bad_videos(out) == [(str(media["zero.mp4"]), "DecodeError: empty")]


def test_a_workers_open_files_stop_reaches_the_check_as_its_stop_line():
    def check(path: str, decoder: str) -> str:
        raise RunStopped(f"decoding {path} ran out of open files")

    parent, child = multiprocessing.Pipe()
    thread = threading.Thread(target=check_module._worker, args=(child, "auto", check))
    thread.start()
    parent.send((3, "a.mp4"))
    assert parent.poll(60), "the worker died without an answer"  # a safety net, not a timing
    index, answer = parent.recv()
    parent.send(None)
    thread.join()
    assert index == 3 and isinstance(answer, RunStopped)
    assert str(answer) == "decoding a.mp4 ran out of open files"


def test_a_kinetics_csv_without_a_video_under_root_is_refused_naming_root(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end\njump,aaa,10,20\njump,aaa,10,20\nrun,bbb,0,10\n"
    )
    line = check_error(capsys, str(tmp_path / "train.csv"), "--root", str(tmp_path / "empty"))
    assert line == (
        f"octvideo data check: error: {tmp_path / 'train.csv'} lists no video that exists: none "
        f"of the 2 videos its rows name has a file under {tmp_path / 'empty'} (e.g. "
        "aaa_000010_000020.mp4); check --root, the folder the videos are found under as "
        "<youtube_id>_<start>_<end>.<ext>"
    )
    assert not (tmp_path / "train.bad.jsonl").exists()


def test_an_unlabelled_kinetics_test_csv_is_checked(tmp_path, media, capsys):
    shutil.copy(media["h264.mp4"], tmp_path / "aaa_000010_000020.mp4")
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\naaa,10,20,test\n")
    assert main(["data", "check", str(tmp_path / "test.csv"), "--workers", "1", "-q"]) == 0
    assert "1 of 1 videos decode, 0 bad" in capsys.readouterr().out


def test_a_list_of_paths_alone_is_checked_and_one_mixing_labels_is_refused(tmp_path, media, capsys):
    # data prepare writes paths alone for an unlabelled CSV (Kinetics' test.csv), as
    # list_line writes them less the label; data check refused it: "expected 'path label'"
    (tmp_path / "test").mkdir()
    shutil.copy(media["h264.mp4"], tmp_path / "test" / "take 2, final.mp4")
    shutil.copy(media["h264.mp4"], tmp_path / "#a.mp4")
    shutil.copy(media["zero.mp4"], tmp_path / "test" / "b.mp4")
    (tmp_path / "test.txt").write_text(
        "test/take 2, final.mp4\n./#a.mp4\n# a comment\ntest/b.mp4\n"
    )
    assert main(["data", "check", str(tmp_path / "test.txt"), "--workers", "1", "-q"]) == 1
    assert "2 of 3 videos decode, 1 bad" in capsys.readouterr().out
    bad = read_bad_videos(tmp_path / "test.bad.jsonl")
    assert [path for path, _ in bad] == [str(tmp_path / "test" / "b.mp4")]
    (tmp_path / "test.txt").write_text("test/b.mp4\n#a.mp4 0\n./#a.mp4 0\n")
    line = check_error(capsys, str(tmp_path / "test.txt"))
    assert line == (
        f"octvideo data check: error: {tmp_path / 'test.txt'}:3: './#a.mp4 0' has a label and "
        "line 1 has none; give every line a label ('path label') or none (a list of paths alone)"
    )
