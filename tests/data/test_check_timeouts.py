"""``octvideo data check``: timeouts that kill only the overdue worker, and inputs refused early."""

from __future__ import annotations

import os
import threading
import time

import pytest

from octvideo.data import check as check_module
from octvideo.data.check import check_videos, read_report
from tests.data.media_helpers import data_error


def run_with_deadline(seconds: float, function, *args, **kwargs):
    """``function(*args, **kwargs)``, failing the test (not hanging it) past ``seconds``."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as err:  # handed to the test below
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


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

    def hang_on_mpeg4(path: str, decoder: str) -> str:
        if path.endswith("mpeg4.avi"):
            time.sleep(600)  # a decoder stuck in a loop
        return decoded[path]

    monkeypatch.setattr(check_module, "check_one", hang_on_mpeg4)  # inherited by forked workers
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
        ("mpeg4.avi", "timed out after 3 s"),
        ("zero.mp4", "DecodeError"),
    ]
    assert read_report(tmp_path / "bad.txt")[0] == (str(media["mpeg4.avi"]), "timed out after 3 s")


def test_a_tiny_timeout_returns_with_every_video_accounted_for(tmp_path, media):
    # Before, every worker was killed at once, idle ones holding the task queue's lock too: a hang.
    names = ["h264.mp4", "vp9.webm", "mpeg4.avi", "mjpeg.avi", "odd.mkv", "vfr.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    report = run_with_deadline(
        120, check_videos, tmp_path / "list.txt", workers=2, timeout=1e-4, progress=False
    )
    assert report.total == 6
    assert all(error == "timed out after 0.0001 s" for _, error in report.bad)


def check_error(capsys, *args: str) -> str:
    return data_error(capsys, "check", *args)


def test_timeout_zero_is_refused(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    line = check_error(capsys, str(tmp_path / "list.txt"), "--timeout", "0")
    assert line == "octvideo data: error: --timeout must be a number of seconds > 0, got 0"
    assert not (tmp_path / "list.bad.jsonl").exists()


def test_a_malformed_list_is_one_line(tmp_path, capsys):
    (tmp_path / "list.txt").write_text("ok.mp4\n")
    line = check_error(capsys, str(tmp_path / "list.txt"))
    assert line == (
        f"octvideo data: error: {tmp_path / 'list.txt'}:1: expected 'path label' (label an "
        "integer), got 'ok.mp4'"
    )
    (tmp_path / "list.txt").write_text("../x.mp4 0\n")
    line = check_error(capsys, str(tmp_path / "list.txt"))
    assert line == (
        f"octvideo data: error: {tmp_path / 'list.txt'}:1: '../x.mp4' leaves the data root "
        f"{tmp_path}; fix the list, or set data.allow_outside_root=true if the files really "
        "live there"
    )


def test_an_out_that_cannot_be_written_is_refused_before_decoding(tmp_path, media, monkeypatch):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    (tmp_path / "existing_file").write_text("")
    decoded = []
    monkeypatch.setattr(check_module, "check_one", lambda path, decoder: decoded.append(path))
    with pytest.raises(ValueError) as caught:
        check_videos(tmp_path / "list.txt", out=tmp_path / "existing_file" / "bad.txt")
    assert str(caught.value) == (
        f"--out {tmp_path / 'existing_file' / 'bad.txt'} cannot be written (File exists); "
        "choose another --out"
    )
    assert decoded == []


def test_an_out_that_cannot_be_written_is_one_line(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    (tmp_path / "existing_file").write_text("")
    out = tmp_path / "existing_file" / "bad.txt"
    line = check_error(capsys, str(tmp_path / "list.txt"), "--out", str(out))
    assert line == (
        f"octvideo data: error: --out {out} cannot be written (File exists); choose another --out"
    )


def test_a_folder_without_class_folders_is_refused(tmp_path, media, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("h264.mp4", "vp9.webm"):
        (flat / name).write_bytes(media[name].read_bytes())
    line = check_error(capsys, str(flat))
    assert line == (
        f"octvideo data: error: {flat}: found 2 videos directly in it but none in class folders; "
        f"a class-folder root holds one folder per class with its videos "
        f"({flat}/<class>/<video>.mp4), or pass a 'path label' list"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    line = check_error(capsys, str(empty))
    assert line == (
        f"octvideo data: error: {empty}: found no videos in class folders; a class-folder root "
        f"holds one folder per class with its videos ({empty}/<class>/<video>.mp4), or pass a "
        "'path label' list"
    )
