"""``octvideo data prepare``: colliding outputs, dying encoders, and arguments refused early."""

from __future__ import annotations

import os
import signal

from octvideo.data import prepare as prepare_module
from octvideo.data.annotations import kinetics_name
from octvideo.data.check import read_report
from octvideo.data.prepare import part_path, prepare_dataset
from tests.data.media_helpers import data_error, raw_tree


def test_sources_with_the_same_output_are_failures_naming_each_other(tmp_path, media):
    src = raw_tree(
        tmp_path,
        media,
        {
            "train/a/dup.webm": "vp9.webm",
            "train/a/dup.mkv": "odd.mkv",
            "train/a/one.avi": "mpeg4.avi",
            "train/b/two.mp4": "h264.mp4",
        },
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 2, "redone": 0, "skipped": 0, "failed": 2}
    webm, mkv = src / "train/a/dup.webm", src / "train/a/dup.mkv"
    target = dst / "train/a/dup.mp4"
    assert read_report(dst / "prepare_errors.jsonl") == [
        (str(mkv), f"same output {target} as {webm}; rename or remove one of them and run again"),
        (str(webm), f"same output {target} as {mkv}; rename or remove one of them and run again"),
    ]
    assert not target.exists()
    assert (dst / "train.txt").read_text() == "train/a/one.mp4 0\ntrain/b/two.mp4 1\n"
    # A rerun does not call them done: they are failures again, the others already done.
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 0, "redone": 0, "skipped": 2, "failed": 2}
    assert not list(dst.rglob("*.part.mp4"))


def test_part_files_are_one_per_source():
    assert part_path("raw/a/dup.webm", "out/a/dup.mp4") == "out/a/dup.webm.part.mp4"
    assert part_path("raw/a/dup.mkv", "out/a/dup.mp4") == "out/a/dup.mkv.part.mp4"


def test_an_encoder_that_dies_fails_its_own_video_and_the_run_goes_on(tmp_path, media, monkeypatch):
    src = raw_tree(
        tmp_path,
        media,
        {
            "train/a/one.avi": "mpeg4.avi",
            "train/a/crash.mkv": "odd.mkv",
            "train/b/two.mp4": "h264.mp4",
            "train/b/three.webm": "vp9.webm",
        },
    )
    real = prepare_module.transcode

    def killed_on_crash(src: str, dst: str, short_side: int) -> int:
        if src.endswith("crash.mkv"):
            os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, or a decoder crash
        return real(src, dst, short_side)

    monkeypatch.setattr(prepare_module, "transcode", killed_on_crash)  # inherited by the forks
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 3, "redone": 0, "skipped": 0, "failed": 1}
    assert read_report(dst / "prepare_errors.jsonl") == [
        (str(src / "train/a/crash.mkv"), "encoding process died (exit code -9)")
    ]
    assert (dst / "train.txt").read_text() == (
        "train/a/one.mp4 0\ntrain/b/three.mp4 1\ntrain/b/two.mp4 1\n"
    )
    assert (dst / "classes.txt").read_text() == "a\nb\n"


def prepare_error(capsys, *args: str) -> str:
    return data_error(capsys, "prepare", *args)


def test_a_missing_or_wrong_csv_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    stem = kinetics_name("id0", 0, 10)
    src = raw_tree(tmp_path, media, {f"train/{stem}.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    missing = tmp_path / "nonexist.csv"
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(missing))
    assert line == (
        f"octvideo data: error: --csv {missing} cannot be read (No such file or directory); "
        "pass the official Kinetics CSVs (train.csv, validate.csv, ...)"
    )
    (tmp_path / "list.csv").write_text("path,label\na.mp4,0\n")
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(tmp_path / "list.csv"))
    assert line == (
        f"octvideo data: error: --csv {tmp_path / 'list.csv'} is not a Kinetics CSV: it needs "
        "the columns ['label', 'time_end', 'time_start', 'youtube_id'], found ['label', 'path']"
    )
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "train.csv").write_text(header + "zumba,id0,0,10,train\n")
    (tmp_path / "validate.csv").write_text(header + "yoga,id1,0,10,val\n")
    line = prepare_error(
        capsys,
        str(src),
        str(dst),
        "--csv",
        str(tmp_path / "train.csv"),
        "--csv",
        str(tmp_path / "validate.csv"),
    )
    assert line == (
        f"octvideo data: error: --csv {tmp_path / 'validate.csv'} has labels that the first "
        f"--csv {tmp_path / 'train.csv'} does not have (e.g. 'yoga'); the first CSV sets the "
        "class list, so pass the training CSV first"
    )
    assert not dst.exists()


def test_dst_inside_src_or_src_inside_dst_is_refused(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    for dst in (src, src / ".", src / "prepared"):
        line = prepare_error(capsys, str(src), str(dst))
        assert line == (
            f"octvideo data: error: DST {dst} is inside SRC {src} (or is it): the outputs and "
            "annotation files would mix with the raw videos; choose a DST outside SRC"
        )
    line = prepare_error(capsys, str(src), str(tmp_path))
    assert line == (
        f"octvideo data: error: SRC {src} is inside DST {tmp_path}: the annotation files would "
        "list the raw videos as a split; choose a DST that does not hold SRC"
    )
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "raw",
        "raw/train",
        "raw/train/a",
        "raw/train/a/one.mp4",
    ]


def test_a_dst_that_is_a_file_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me\n")
    for dst in (blocker, blocker / "prepared"):
        line = prepare_error(capsys, str(src), str(dst))
        assert line == (
            f"octvideo data: error: DST {dst}: {blocker} is a file, not a folder; choose "
            "another DST"
        )
    assert blocker.read_text() == "keep me\n"
