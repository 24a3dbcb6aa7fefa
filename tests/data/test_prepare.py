"""``octvideo data prepare``: rescaling, resuming and the annotation files it writes; colliding
outputs, dying encoders, trees without a split level and a new ``--short-side``; bounded
arguments, CSVs read as UTF-8 and other inputs refused before encoding."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import threading
from dataclasses import replace
from functools import partial
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.data import decode, probe
from octvideo.data import prepare as prepare_module
from octvideo.data import workers as workers_module
from octvideo.data.annotations import kinetics_name, load_annotations, read_lines
from octvideo.data.check import check_one, read_bad_videos
from octvideo.data.datamodule import VideoDataModule
from octvideo.data.decoding import NO_CODEC, resize_short_side
from octvideo.data.orientation import display_matrix
from octvideo.data.prepare import part_path, prepare_dataset
from octvideo.errors import UsageError
from octvideo.paths import LOCK_NAME, hold_folder
from tests.data import prepare_faults as faults
from tests.data.media_helpers import (
    TURNS,
    cut_recordings_in,
    data_error,
    data_stopped,
    encode_turned,
    raw_tree,
    small_config,
    turned_pattern,
)
from tests.data.test_decoding import cut_at, cut_between_frames, encode_seconds
from tests.deadline import run_with_deadline
from tests.failing_writes import fail_output
from tests.inference.media_helpers import faststart


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--short-side", "100000", "--short-side must be 16 to 1080 pixels, got 100000"),
        ("--short-side", "1081", "--short-side must be 16 to 1080 pixels, got 1081"),
        ("--short-side", "8", "--short-side must be 16 to 1080 pixels, got 8"),
        # 33 was written 50x32 from 96x64: the short side rounded, the long one scaled for 33
        (
            "--short-side",
            "33",
            "--short-side must be even (H.264 in yuv420p needs even sizes), got 33; use 32 or 34",
        ),
    ],
)
def test_sizes_and_counts_past_their_bounds_are_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, option, value, message
):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    line = data_error(capsys, "prepare", str(src), str(tmp_path / "out"), option, value)
    assert line == f"octvideo data prepare: error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("cores", "workers", "limit"), [(2, 9, 8), (1, 5, 4), (100, 257, 256)])
def test_workers_past_what_the_machine_takes_are_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, monkeypatch, cores, workers, limit
):
    # a fixed 256 let a 2-core machine start 256 encoders
    monkeypatch.setattr(workers_module, "usable_cores", lambda: cores)
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    line = data_error(capsys, "prepare", str(src), str(tmp_path / "out"), "--workers", str(workers))
    unit = "core" if cores == 1 else "cores"
    assert line == (
        f"octvideo data prepare: error: --workers {workers}: give 1 to {limit} (at most 4 per CPU "
        f"core and 256 in all; this machine has {cores} CPU {unit} available)"
    )
    assert not (tmp_path / "out").exists()


def test_a_csv_that_is_not_utf8_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {f"train/{kinetics_name('id0', 0, 10)}.mp4": "h264.mp4"})
    header = b"label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "train.csv").write_bytes(header + b"caf\xe9,id0,0,10,train\n")
    line = data_error(
        capsys, "prepare", str(src), str(tmp_path / "out"), "--csv", str(tmp_path / "train.csv")
    )
    assert line == (
        f"octvideo data prepare: error: --csv {tmp_path / 'train.csv'}:2: not UTF-8 text (byte "
        "0xe9); save it as UTF-8"
    )


def test_a_csv_with_a_byte_order_mark_is_a_kinetics_csv(tmp_path, media):
    from octvideo.data.prepare import prepare_dataset

    stem = kinetics_name("id0", 0, 10)
    src = raw_tree(tmp_path, media, {f"train/{stem}.mp4": "h264.mp4"})
    text = "label,youtube_id,time_start,time_end,split\nzumba,id0,0,10,train\n"
    (tmp_path / "train.csv").write_bytes(text.encode("utf-8-sig"))
    dst = tmp_path / "out"
    counts = prepare_dataset(
        src, dst, short_side=32, workers=1, csvs=[str(tmp_path / "train.csv")], progress=False
    )
    assert counts["encoded"] == 1
    assert (dst / "train.txt").read_text() == f"train/{stem}.mp4 0\n"
    assert (dst / "classes.txt").read_text() == "zumba\n"


def test_prepare_rescales_resumes_and_writes_annotations(tmp_path, media):
    src = tmp_path / "raw"
    csv = ["label,youtube_id,time_start,time_end,split"]
    for i, (cls, name) in enumerate(
        [("abseiling", "odd.mkv"), ("zumba", "vp9.webm"), ("zumba", "text.mp4")]
    ):
        (src / "train").mkdir(parents=True, exist_ok=True)
        stem = kinetics_name(f"id{i}", 0, 10)
        shutil.copy(media[name], src / "train" / f"{stem}{os.path.splitext(name)[1]}")
        csv.append(f"{cls},id{i},0,10,train")
    csv.append("zumba,never,0,10,train")
    (tmp_path / "train.csv").write_text("\n".join(csv) + "\n")
    dst = tmp_path / "k400_320"
    args = [
        "data",
        "prepare",
        str(src),
        str(dst),
        "--short-side",
        "32",
        "--csv",
        str(tmp_path / "train.csv"),
        "-q",
    ]
    assert main(args) == 1  # text.mp4 failed
    [(failed, _)] = read_bad_videos(dst / "prepare_errors.jsonl")
    assert failed.endswith("id2_000000_000010.mp4")
    info = probe(dst / "train" / "id0_000000_000010.mp4")
    assert (info.num_frames, info.height, info.width) == (24, 32, 46)
    assert (dst / "classes.txt").read_text() == "abseiling\nzumba\n"
    assert (dst / "train.txt").read_text() == (
        "train/id0_000000_000010.mp4 0\ntrain/id1_000000_000010.mp4 1\n"
    )
    before = (dst / "train" / "id1_000000_000010.mp4").stat().st_mtime_ns
    assert main(args) == 1  # resumed: only the failing file is tried again
    assert (dst / "train" / "id1_000000_000010.mp4").stat().st_mtime_ns == before
    assert not list(dst.rglob("*.part.mp4"))


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
    assert counts == {"encoded": 2, "redone": 0, "changed": 0, "skipped": 0, "failed": 2}
    webm, mkv = src / "train/a/dup.webm", src / "train/a/dup.mkv"
    target = dst / "train/a/dup.mp4"
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (str(mkv), f"same output {target} as {webm}; rename or remove one of them and run again"),
        (str(webm), f"same output {target} as {mkv}; rename or remove one of them and run again"),
    ]
    assert not target.exists()
    assert (dst / "train.txt").read_text() == "train/a/one.mp4 0\ntrain/b/two.mp4 1\n"
    # A rerun does not call them done: they are failures again, the others already done.
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": 2, "failed": 2}
    assert not list(dst.rglob("*.part.mp4"))


def test_part_files_are_one_per_source(tmp_path):
    assert part_path("raw/a/dup.webm", "out/a/dup.mp4") == "out/a/dup.webm.part.mp4"
    assert part_path("raw/a/dup.mkv", "out/a/dup.mp4") == "out/a/dup.mkv.part.mp4"
    # names of 255 bytes: "<name>.part.mp4" would be 264, too long for the file system
    long_webm, long_mkv = ("L" * 250 + ".webm", "L" * 251 + ".mkv")
    parts = [
        part_path(f"raw/a/{name}", str(tmp_path / "a" / "L.mp4")) for name in (long_webm, long_mkv)
    ]
    assert parts[0] != parts[1]
    for part in parts:
        assert len(os.fsencode(Path(part).name)) <= 255 and part.endswith(".part.mp4")


def test_a_source_name_at_the_file_systems_limit_is_prepared(tmp_path, media):
    # its part file "<name>.part.mp4" failed with a raw "OSError: [Errno 36] File name too long"
    long_name = "L" * 250 + ".webm"  # 255 bytes, the limit; its output name is 254
    src = raw_tree(
        tmp_path, media, {f"train/a/{long_name}": "vp9.webm", "train/a/one.mp4": "h264.mp4"}
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert counts == {"encoded": 2, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert probe(dst / "train" / "a" / ("L" * 250 + ".mp4")).height == 32
    assert not list(dst.rglob("*.part.mp4"))


def test_an_output_name_too_long_for_dsts_file_system_is_a_failure_naming_its_source(
    tmp_path, media, monkeypatch
):
    # DST on a file system of shorter names than SRC's (eCryptfs takes 143 bytes)
    monkeypatch.setattr(prepare_module, "name_limit", lambda folder: 40)
    src = raw_tree(
        tmp_path, media, {"train/a/" + "x" * 37 + ".mp4": "h264.mp4", "train/a/one.mp4": "h264.mp4"}
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (
            str(src / "train" / "a" / ("x" * 37 + ".mp4")),
            f"its output name would be 41 bytes, more than the 40 a file name may have in DST "
            f"{dst}; rename it to at most 36 bytes before its extension",
        )
    ]
    assert (dst / "train.txt").read_text() == "train/a/one.mp4 0\n"


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
    monkeypatch.setattr(prepare_module, "transcode", partial(faults.killed_on, "crash.mkv"))
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 3, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (str(src / "train/a/crash.mkv"), "encoding process died (signal SIGKILL)")
    ]
    assert (dst / "train.txt").read_text() == (
        "train/a/one.mp4 0\ntrain/b/three.mp4 1\ntrain/b/two.mp4 1\n"
    )
    assert (dst / "classes.txt").read_text() == "a\nb\n"


def test_encoders_are_not_forks_of_a_process_that_has_decoded(tmp_path, media, monkeypatch):
    # forked from this process, which decodes with decord, a job could hang closing a reader it
    # inherited mid-use; jobs start from a clean fork server
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    assert check_one(str(media["h264.mp4"]), "auto") == ""  # decoded here first
    monkeypatch.setattr(prepare_module, "transcode", faults.report_parent)
    dst = tmp_path / "out"
    counts = run_with_deadline(
        120, prepare_dataset, src, dst, short_side=32, workers=1, progress=False
    )
    assert counts["failed"] == 1
    ((_, error),) = read_bad_videos(dst / "prepare_errors.jsonl")
    assert (
        error.startswith("RuntimeError: parent ") and error != f"RuntimeError: parent {os.getpid()}"
    )


def prepare_error(capsys, *args: str) -> str:
    return data_error(capsys, "prepare", *args)


def test_a_missing_source_folder_is_one_line(tmp_path, capsys, no_encoding):
    line = prepare_error(capsys, str(tmp_path / "raw"), str(tmp_path / "out"))
    assert line == f"octvideo data prepare: error: source folder {tmp_path / 'raw'} does not exist"
    assert not (tmp_path / "out").exists()


def test_a_missing_or_wrong_csv_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    stem = kinetics_name("id0", 0, 10)
    src = raw_tree(tmp_path, media, {f"train/{stem}.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    missing = tmp_path / "nonexist.csv"
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(missing))
    assert line == (
        f"octvideo data prepare: error: --csv {missing} cannot be read (No such file or "
        "directory); pass the official Kinetics CSVs (train.csv, validate.csv, ...)"
    )
    (tmp_path / "list.csv").write_text("path,label\na.mp4,0\n")
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(tmp_path / "list.csv"))
    assert line == (
        f"octvideo data prepare: error: --csv {tmp_path / 'list.csv'} is not a Kinetics CSV: it "
        "needs the columns ['label', 'time_end', 'time_start', 'youtube_id'], found "
        "['label', 'path']"
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
        f"octvideo data prepare: error: --csv {tmp_path / 'validate.csv'} has labels that the "
        f"first --csv {tmp_path / 'train.csv'} does not have (e.g. 'yoga'); the first CSV sets the "
        "class list, so pass the training CSV first"
    )
    assert not dst.exists()


def test_dst_inside_src_or_src_inside_dst_is_refused(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    for dst in (src, src / ".", src / "prepared"):
        line = prepare_error(capsys, str(src), str(dst))
        assert line == (
            f"octvideo data prepare: error: DST {dst} is inside SRC {src} (or is it): the outputs "
            "and annotation files would mix with the raw videos; choose a DST outside SRC"
        )
    line = prepare_error(capsys, str(src), str(tmp_path))
    assert line == (
        f"octvideo data prepare: error: SRC {src} is inside DST {tmp_path}: the annotation files "
        "would list the raw videos as a split; choose a DST that does not hold SRC"
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
            f"octvideo data prepare: error: DST {dst}: {blocker} is a file, not a folder; choose "
            "another DST"
        )
    assert blocker.read_text() == "keep me\n"


def test_a_dst_that_cannot_be_written_is_refused_before_encoding(
    tmp_path, media, capsys, no_encoding
):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    line = prepare_error(
        capsys, str(src), "/proc/prepared"
    )  # /proc takes no new folder, even as root
    assert line == (
        "octvideo data prepare: error: DST /proc/prepared: cannot write in /proc/prepared (No such "
        "file or directory); choose another DST"
    )


def test_a_dst_another_prepare_writes_is_refused_before_encoding(
    tmp_path, media, capsys, no_encoding
):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    (dst / "train" / "a").mkdir(parents=True)
    (dst / "train" / "a" / "one.mp4").write_bytes(b"the other prepare's")
    with hold_folder(dst, "data prepare"):  # the prepare going on: this process holds DST
        line = prepare_error(capsys, str(src), str(dst))
        assert (dst / "train" / "a" / "one.mp4").read_bytes() == b"the other prepare's"
    assert line == (
        f"octvideo data prepare: error: DST {dst} is in use by octvideo data prepare (pid "
        f"{os.getpid()}); wait for it to end, or choose another DST (nothing was changed)"
    )
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == [
        "train",
        "train/a",
        "train/a/one.mp4",
    ]


def test_a_prepare_holds_dst_while_it_encodes(tmp_path, media, monkeypatch):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    refusals = []

    def encode(*args, **kwargs) -> list[tuple[str, str]]:
        with pytest.raises(UsageError) as info, hold_folder(dst, "data prepare"):
            pass
        refusals.append(str(info.value))
        return []

    monkeypatch.setattr(prepare_module, "_run_jobs", encode)
    prepare_dataset(src, dst, progress=False)
    assert refusals == [
        f"{dst} is in use by octvideo data prepare (pid {os.getpid()}); wait for it to end, or "
        "choose another folder (nothing was changed)"
    ]
    assert not (dst / LOCK_NAME).exists()  # freed as it ended


def test_a_class_only_tree_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    # without a split level no list would be written, and classes.txt would be empty
    src = raw_tree(tmp_path, media, {"jump/a.mp4": "h264.mp4", "walk/b.avi": "mpeg4.avi"})
    dst = tmp_path / "out"
    line = data_error(capsys, "prepare", str(src), str(dst))
    assert line == (
        f"octvideo data prepare: error: SRC {src}: its videos are at {src}/jump/a.mp4 and the "
        f"like; without --csv prepare needs SRC/<split>/<class>/<video> (e.g. "
        f"{src}/train/abseiling/x.mp4): move the class folders into a split folder, or pass the "
        "Kinetics CSVs with --csv"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    line = data_error(capsys, "prepare", str(empty), str(dst))
    assert f"SRC {empty}: it holds no video (.mp4, " in line
    assert not dst.exists()


def test_a_rerun_with_another_short_side_encodes_again(tmp_path, media, capsys):
    src = raw_tree(tmp_path, media, {"train/jump/a.mp4": "h264.mp4", "val/jump/b.avi": "mpeg4.avi"})
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 2, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    output = dst / "train/jump/a.mp4"
    assert (probe(output).width, probe(output).height) == (48, 32)
    capsys.readouterr()
    assert main(["data", "prepare", str(src), str(dst), "--short-side", "48", "-q"]) == 0
    assert capsys.readouterr().out == (
        "2 encoded (2 of them again: not the size short side 48 gives, as displayed), "
        "0 already done, 0 failed "
        f"(see {dst / 'prepare_errors.jsonl'})\n"
    )
    for name in ("train/jump/a.mp4", "val/jump/b.mp4"):
        info = probe(dst / name)
        assert (info.width, info.height) == (72, 48)
    assert (dst / "train.txt").read_text() == "train/jump/a.mp4 0\n"
    counts = prepare_dataset(src, dst, short_side=48, workers=2, progress=False)
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": 2, "failed": 0}
    output.write_bytes(b"not a video")  # an output a decoder rejects is encoded again too
    counts = prepare_dataset(src, dst, short_side=48, workers=2, progress=False)
    assert counts == {"encoded": 1, "redone": 1, "changed": 0, "skipped": 1, "failed": 0}
    assert probe(output).height == 48


HEADER = "label,youtube_id,time_start,time_end,split\n"


def test_csvs_whose_lists_collide_or_overwrite_a_csv_are_refused_before_encoding(
    tmp_path, media, capsys, no_encoding
):
    src = raw_tree(tmp_path, media, {f"train/{kinetics_name('id0', 0, 10)}.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.csv").write_text(HEADER + "zumba,id0,0,10,train\n")
    a, b = tmp_path / "a" / "train.csv", tmp_path / "b" / "train.csv"
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(a), "--csv", str(b))
    assert line == (
        f"octvideo data prepare: error: --csv {b} and --csv {a} would both be written as "
        f"{dst / 'train.txt'}; rename one"
    )
    shutil.copy(a, tmp_path / "a" / "classes.csv")
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(tmp_path / "a/classes.csv"))
    assert line == (
        f"octvideo data prepare: error: --csv {tmp_path / 'a/classes.csv'} would be written as "
        f"{dst / 'classes.txt'}, the class list's name; rename it"
    )
    dst.mkdir()
    inside = dst / "train.txt"  # a CSV in DST named as its own list
    shutil.copy(a, inside)
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(inside))
    assert line == (
        f"octvideo data prepare: error: DST {dst}: output {inside} is the --csv {inside}: writing "
        "it would destroy it; choose another path"
    )
    assert inside.read_text() == HEADER + "zumba,id0,0,10,train\n"


def test_a_split_folder_named_classes_is_refused_before_encoding(
    tmp_path, media, capsys, no_encoding
):
    src = raw_tree(tmp_path, media, {"classes/a/one.mp4": "h264.mp4"})
    line = prepare_error(capsys, str(src), str(tmp_path / "out"))
    assert line == (
        f"octvideo data prepare: error: split folder classes would be written as "
        f"{tmp_path / 'out' / 'classes.txt'}, the class list's name; rename it"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("zumba,id0,0\n", ":2: 3 fields where the header has 5"),
        ("zumba,id0,0,10,train,extra\n", ":2: 6 fields where the header has 5"),
        ("zumba,id0,0,10,train\nzumba,id0,soon,10,train\n", ":3: time_start 'soon' and "),
        ("zumba,id0,nan,10,train\n", ":2: time_start 'nan' and time_end '10' must be seconds"),
        ("zumba,id0,1e300,1e301,train\n", ":2: time_start '1e300' and time_end '1e301' must be"),
        ("zumba,id0,-5,10,train\n", ":2: time_start '-5' and time_end '10' must be seconds from"),
        ("zumba,id0,20,10,train\n", ":2: time_start '20' and time_end '10' must be seconds from"),
        (",id0,0,10,train\n", ":2: its label is empty; fix the row or remove it"),
        ("zumba, ,0,10,train\n", ":2: its youtube_id is empty; fix the row or remove it"),
        ('"zumba,id0,0,10,train\nzumba,id1,0,10,train\n', ":2: a quoted field opened on this "),
        ('"multi\nline",id0,0,10,train\n', ":2: the label 'multi\\nline' holds a line break, "),
        (
            'zumba,id1,0,10,train\r\n"multi\r\nline",id0,0,10,train\r\n',
            ":3: the label 'multi\\r\\nline' holds a line break, which a classes file",
        ),
        ("\ufeffzumba,id0,0,10,train\n", ":2: the label '\\ufeffzumba' starts with a byte-order "),
        ('"zum\rba",id0,0,10,train\n', ":2: the label 'zum\\rba' holds a carriage return, which "),
    ],
    ids=[
        "short",
        "long",
        "not-a-number",
        "nan",
        "huge",
        "negative",
        "backwards",
        "no-label",
        "no-id",
        "unclosed-quote",
        "label-line-break",
        "label-crlf-break",
        "label-bom",
        "label-cr",
    ],
)
def test_malformed_csv_rows_are_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, rows, message
):
    src = raw_tree(tmp_path, media, {f"train/{kinetics_name('id0', 0, 10)}.mp4": "h264.mp4"})
    (tmp_path / "train.csv").write_text(HEADER + rows)
    line = prepare_error(
        capsys, str(src), str(tmp_path / "out"), "--csv", str(tmp_path / "train.csv")
    )
    assert line.startswith(f"octvideo data prepare: error: --csv {tmp_path / 'train.csv'}{message}")
    assert not (tmp_path / "out").exists()


def test_a_csv_with_spaces_between_fields_gives_the_lists_of_the_plain_one(tmp_path, media):
    # the check before encoding stripped the header's names, the reader after did not: every
    # video was encoded, then the CSV was refused; then the rows' fields kept their spaces: no
    # youtube_id (" id0") matched a video, and the list was written empty with exit status 0
    stem = kinetics_name("id0", 0, 10)
    src = raw_tree(tmp_path, media, {f"train/{stem}.mp4": "h264.mp4"})
    csv = tmp_path / "train.csv"
    csv.write_text(
        "label, youtube_id, time_start, time_end, split\n"
        "massaging person's head, id0, 0, 10, train\n"
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=1, csvs=[str(csv)], progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert (dst / "train.txt").read_text() == f"train/{stem}.mp4 0\n"
    assert (dst / "classes.txt").read_text() == "massaging person's head\n"


@pytest.mark.parametrize("held", ["other videos", "no video"])
def test_a_csv_that_names_none_of_the_videos_is_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, held
):
    # every video was encoded and the CSV's list written empty, with exit status 0
    other = "train/abseiling/other_000000_000010.mp4"
    src = raw_tree(tmp_path, media, {other: "h264.mp4"} if held == "other videos" else {})
    src.mkdir(exist_ok=True)
    val, train = tmp_path / "val.csv", tmp_path / "train.csv"
    val.write_text(HEADER + "zumba,other,0,10,val\n")  # checked first: names a video of SRC
    train.write_text(HEADER + "zumba,id0,0,10,train\nzumba,id1,5,15,train\n")
    dst = tmp_path / "out"
    line = prepare_error(capsys, str(src), str(dst), "--csv", str(val), "--csv", str(train))
    if held == "no video":  # val.csv is refused first
        assert line.startswith(f"octvideo data prepare: error: --csv {val}: none of its 1 rows ")
        line = prepare_error(capsys, str(src), str(dst), "--csv", str(train))
    holds = f"SRC holds e.g. {other!r}" if held == "other videos" else "SRC holds no video"
    assert line == (
        f"octvideo data prepare: error: --csv {train}: none of its 2 rows names a video of SRC "
        f"{src} or DST {dst}, so its list would be empty: a row names "
        f"<youtube_id>_<start:06d>_<end:06d>.<ext> (line 2: 'id0_000000_000010') and {holds}; "
        "pass the CSV of these videos, or leave this one out"
    )
    assert not dst.exists()


def test_a_csv_whose_videos_are_only_in_dst_is_listed(tmp_path, media):
    # a rerun once the raw videos are deleted: the prepared videos are the ones listed
    stem = kinetics_name("id0", 0, 10)
    src = raw_tree(tmp_path, media, {})
    src.mkdir()
    dst = tmp_path / "out"
    (dst / "train").mkdir(parents=True)
    shutil.copy(media["h264.mp4"], dst / "train" / f"{stem}.mp4")
    (tmp_path / "train.csv").write_text(HEADER + "zumba,id0,0,10,train\n")
    counts = prepare_dataset(src, dst, csvs=[str(tmp_path / "train.csv")], progress=False)
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert (dst / "train.txt").read_text() == f"train/{stem}.mp4 0\n"


@pytest.mark.parametrize(
    ("folder", "problem"),
    [
        (
            "raw/train/zumba ",
            "has white space around it, which a classes file (one name a line) drops",
        ),
        ("raw/train/zum\rba", "holds a carriage return, which a classes file (one name a line) "),
    ],
    ids=["src-space", "src-cr"],
)
def test_a_class_folder_a_classes_file_cannot_hold_is_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, folder, problem
):
    # "zumba " was written to classes.txt, read back as "zumba": a second class of that name
    # stopped train
    src = raw_tree(tmp_path, media, {"train/zumba/one.mp4": "h264.mp4"})
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy(media["h264.mp4"], tmp_path / folder / "two.mp4")
    line = prepare_error(capsys, str(src), str(tmp_path / "out"))
    where = tmp_path / folder
    assert line.startswith(
        f"octvideo data prepare: error: class folder {where.parent}/{where.name!r}: its name "
        f"{problem}"
    )
    assert line.endswith("; rename the folder (its name becomes a line of classes.txt)")
    assert not (tmp_path / "out/train/zumba").exists()


def test_a_pipe_in_src_is_a_failed_video_never_opened(tmp_path, media):
    # the encoder opened it and waited for a writer for ever
    src = raw_tree(tmp_path, media, {"train/a/ok.mp4": "h264.mp4"})
    os.mkfifo(src / "train/a/pipe.mp4")
    dst = tmp_path / "out"
    counts = run_with_deadline(
        60, prepare_dataset, src, dst, short_side=32, workers=1, progress=False
    )
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    pipe = src / "train/a/pipe.mp4"
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (str(pipe), f"{pipe} is a pipe, not a video file")
    ]
    assert (dst / "train.txt").read_text() == "train/a/ok.mp4 0\n"


def test_the_lists_written_read_back_whatever_the_names(tmp_path, media, capsys):
    # "take 2, final.mp4" was split at its comma by data check and train; "#old/..." was a comment
    names = ["train/b/take 2, final.mp4", "train/cls,a/v1.mp4", "#old/b/x.mp4"]
    src = raw_tree(tmp_path, media, {name: "h264.mp4" for name in names})
    (src / "train/b/new\nline.mp4").write_bytes(media["h264.mp4"].read_bytes())
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 3, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (
            str(src / "train/b/new\nline.mp4"),
            "its name holds a line break, which a 'path label' list cannot hold; rename it",
        )
    ]
    assert (dst / "#old.txt").read_text() == "./#old/b/x.mp4 0\n"
    found = read_lines(dst / "train.txt") + read_lines(dst / "#old.txt")
    assert sorted(path for path, _ in found) == sorted(str(dst / name) for name in names)
    assert main(["data", "check", str(dst / "train.txt"), "-q"]) == 0


def test_a_name_whose_bytes_are_not_utf8_fails_before_encoding_and_is_not_listed(
    tmp_path, media, caplog
):
    # every video was encoded, then writing the lists failed with a traceback: no list at all
    bad = os.fsdecode(b"train/a/q\xe9r.mp4")
    src = raw_tree(tmp_path, media, {"train/a/ok.mp4": "h264.mp4", bad: "h264.mp4"})
    dst = tmp_path / "out"
    (dst / "train/a").mkdir(parents=True)  # one put in DST by hand
    (dst / os.fsdecode(b"train/a/hand\xff.mp4")).write_bytes(media["h264.mp4"].read_bytes())
    counts = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (
            str(src / bad),
            "its path holds bytes that are not UTF-8, which a list (UTF-8 text) cannot hold; "
            "rename it",
        )
    ]
    assert not (dst / bad).exists()
    assert (dst / "train.txt").read_text(encoding="utf-8") == "train/a/ok.mp4 0\n"
    # no source in SRC, so no list; escaped in the log line, as a terminal shows it: any log
    # handler can write it
    assert (
        f"1 videos in DST {dst} have no source in SRC {src} (moved to another class or deleted "
        f"there), so no list holds them (e.g. {dst}/train/a/hand\\udcff.mp4)"
    ) in caplog.text


def test_a_video_past_the_timeout_fails_alone_and_its_encoder_is_killed(
    tmp_path, media, monkeypatch
):
    src = raw_tree(
        tmp_path, media, {"train/a/one.mp4": "h264.mp4", "train/a/stuck.avi": "mpeg4.avi"}
    )
    monkeypatch.setattr(prepare_module, "transcode", partial(faults.hangs_on, "stuck.avi"))
    dst = tmp_path / "out"
    counts = run_with_deadline(
        120, prepare_dataset, src, dst, short_side=32, workers=2, progress=False, timeout=5
    )
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (str(src / "train/a/stuck.avi"), "timed out after 5 s")
    ]
    assert (dst / "train.txt").read_text() == "train/a/one.mp4 0\n"


def test_ctrl_c_kills_the_encoders_and_leaves_no_part_file(tmp_path, media, monkeypatch):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    monkeypatch.setattr(prepare_module, "transcode", partial(faults.interrupts_caller, os.getpid()))
    dst = tmp_path / "out"
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(src, dst, short_side=32, progress=False, timeout=120)
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert not list(dst.rglob("*.part.mp4"))


def test_ctrl_c_as_a_job_starts_kills_that_job(tmp_path, media, monkeypatch):
    # a Ctrl-C after a job's process started and before it was recorded left it encoding
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    monkeypatch.setattr(prepare_module, "transcode", partial(faults.hangs_on, ".mp4"))
    started, start = [], prepare_module._start

    def start_then_ctrl_c(*args):
        conn, job = start(*args)
        started.append(job.proc)
        signal.raise_signal(signal.SIGINT)  # handled at the next check, before the caller's
        return conn, job

    monkeypatch.setattr(prepare_module, "_start", start_then_ctrl_c)
    sigint = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(src, tmp_path / "out", short_side=32, progress=False, timeout=120)
        alive = [proc.is_alive() for proc in started]
    finally:
        signal.signal(signal.SIGINT, sigint)
        for proc in started:
            proc.kill()
    assert alive == [False]


def test_a_job_whose_caller_stopped_ends_without_a_traceback():
    # Ctrl-C: the caller closed the pipe of a job still encoding, and its result goes nowhere;
    # a BrokenPipeError traceback would follow the caller's one "stopped" line
    receive, send = Pipe(duplex=False)
    receive.close()
    prepare_module._job(send, lambda src, dst, short_side: 1, "one.mp4", "one.part.mp4", 32)


def test_a_timeout_past_its_bound_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    for value, bound in (("0", "at least 1 second"), ("1e9", "at most 86400 seconds (a day)")):
        line = prepare_error(capsys, str(src), str(tmp_path / "out"), "--timeout", value)
        assert line.startswith("octvideo data prepare: error: --timeout '") and bound in line


def test_a_pipe_at_an_output_name_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    dst.mkdir()
    os.mkfifo(dst / "prepare_errors.jsonl")  # renamed over, it became a regular file
    line = prepare_error(capsys, str(src), str(dst))
    assert line.startswith(
        f"octvideo data prepare: error: DST {dst}: output {dst / 'prepare_errors.jsonl'} is "
    )
    assert stat.S_ISFIFO(os.lstat(dst / "prepare_errors.jsonl").st_mode)


def test_a_recording_cut_short_is_a_failed_video_in_decodings_words(tmp_path, media):
    # a stream without a codec was "AttributeError: 'NoneType' object has no attribute 'width'"
    src = raw_tree(tmp_path, media, {"train/a/ok.mp4": "h264.mp4"})
    cuts = cut_recordings_in(tmp_path)
    shutil.copy(cuts["in_index"], src / "train/a/in_index.mp4")
    shutil.copy(cuts["at_50"], src / "train/a/at_50.mp4")
    whole = faststart(tmp_path / "whole.mp4").read_bytes()  # its index first, then its frames
    (src / "train/a/tail.mp4").write_bytes(whole[: whole.index(b"mdat") + 40])  # 1st frame cut
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 3}
    errors = dict(read_bad_videos(dst / "prepare_errors.jsonl"))
    tail = str(src / "train/a/tail.mp4")
    assert re.fullmatch(
        f"DecodeError: {re.escape(tail)}: decoding failed after \\d+ frames \\(Invalid data found "
        "when processing input\\): the file is truncated or corrupt",
        errors.pop(tail),
    )
    assert errors == {
        str(src / "train/a/at_50.mp4"): f"DecodeError: {src / 'train/a/at_50.mp4'}: pyav cannot "
        "open it: Invalid data found when processing input",
        str(src / "train/a/in_index.mp4"): f"DecodeError: {src / 'train/a/in_index.mp4'}: "
        f"{NO_CODEC}",
    }
    assert (dst / "train.txt").read_text() == "train/a/ok.mp4 0\n"
    assert not list(dst.rglob("*.part.mp4"))


def _two_splits(tmp_path, media, train_rows: str, val_rows: str) -> tuple[Path, Path, Path]:
    """SRC with ``train/a_000000_000010.mp4`` and ``val/b_000000_000010.mp4``, and the train
    and validation CSVs of ``train_rows`` and ``val_rows`` (under ``HEADER``)."""
    files = {"train/a_000000_000010.mp4": "h264.mp4", "val/b_000000_000010.mp4": "h264.mp4"}
    src = raw_tree(tmp_path, media, files)
    (tmp_path / "train.csv").write_text(HEADER + train_rows)
    (tmp_path / "validate.csv").write_text(HEADER + val_rows)
    return src, tmp_path / "train.csv", tmp_path / "validate.csv"


def test_a_rerun_of_one_split_keeps_the_class_list_and_adds_a_new_class_at_its_end(
    tmp_path, media, caplog
):
    # a rerun with the validation CSV alone made classes.txt its labels, under train.txt's labels
    src, train, val = _two_splits(
        tmp_path, media, "jump,a,0,10,train\nwalk,gone,0,10,train\n", "walk,b,0,10,val\n"
    )
    dst = tmp_path / "out"
    prepare_dataset(src, dst, csvs=[str(train), str(val)], progress=False)
    assert (dst / "classes.txt").read_text() == "jump\nwalk\n"
    counts = prepare_dataset(src, dst, csvs=[str(val)], progress=False)
    assert counts["skipped"] == 1  # the validation video: the training one is no row of it
    assert (dst / "classes.txt").read_text() == "jump\nwalk\n"
    assert (dst / "validate.txt").read_text() == "val/b_000000_000010.mp4 1\n"
    assert (
        f"{dst / 'classes.txt'}: its class 'jump' has no video in this run; it keeps its label, "
        "so that the lists made with it keep their meaning (to number the classes afresh, "
        "delete it and prepare every split in one run)"
    ) in caplog.text
    val.write_text(f"{HEADER}yoga,b,0,10,val\n")  # a label train.txt's class list lacks
    caplog.clear()
    with caplog.at_level("INFO"):
        prepare_dataset(src, dst, csvs=[str(val)], progress=False)
    assert (dst / "classes.txt").read_text() == "jump\nwalk\nyoga\n"
    assert (dst / "train.txt").read_text() == "train/a_000000_000010.mp4 0\n"
    assert (dst / "validate.txt").read_text() == "val/b_000000_000010.mp4 2\n"
    assert (
        f"{dst / 'classes.txt'} keeps its 2 classes and their labels; this run's new class is "
        "added at its end (label 2): 'yoga'"
    ) in caplog.text


def test_no_class_changes_its_label_wherever_the_lists_are_kept(tmp_path, media, caplog):
    # lists moved out of DST's top level were relabelled when a class was added; any .txt there
    # (a README) made a full rerun that adds a class refused, as if it were a list
    files = {"train/jump/a.mp4": "h264.mp4", "train/walk/b.mp4": "h264.mp4"}
    src = raw_tree(tmp_path, media, files | {"val/walk/c.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    prepare_dataset(src, dst, workers=1, progress=False)
    (dst / "lists").mkdir()
    for name in ("train.txt", "val.txt"):
        (dst / name).rename(dst / "lists" / name)
    (dst / "README.txt").write_text("prepared from raw/\n")
    for split in ("train", "val"):
        raw_tree(tmp_path, media, {f"{split}/aardvark/{split}.mp4": "h264.mp4"})
    with caplog.at_level("INFO"):
        counts = prepare_dataset(src, dst, workers=1, progress=False)
    assert counts == {"encoded": 2, "redone": 0, "changed": 0, "skipped": 3, "failed": 0}
    assert (dst / "classes.txt").read_text() == "jump\nwalk\naardvark\n"
    assert (dst / "lists" / "val.txt").read_text() == "val/walk/c.mp4 1\n"  # still walk
    assert (dst / "val.txt").read_text() == "val/aardvark/val.mp4 2\nval/walk/c.mp4 1\n"
    assert (
        f"{dst / 'classes.txt'} keeps its 2 classes and their labels; this run's new class is "
        "added at its end (label 2): 'aardvark'"
    ) in caplog.text
    shutil.rmtree(src / "train" / "jump")  # a class dropped from SRC keeps its label
    caplog.clear()
    prepare_dataset(src, dst, workers=1, progress=False)
    assert (dst / "classes.txt").read_text() == "jump\nwalk\naardvark\n"
    assert (dst / "train.txt").read_text() == "train/aardvark/train.mp4 2\ntrain/walk/b.mp4 1\n"
    assert f"{dst / 'classes.txt'}: its class 'jump' has no video in this run" in caplog.text


def test_a_video_dst_holds_without_a_source_in_src_is_not_listed(tmp_path, media, caplog):
    # a clip moved to its right class was listed under its old label and its new one
    files = {"train/abseiling/a.mp4": "h264.mp4", "train/abseiling/b.mp4": "h264.mp4"}
    src = raw_tree(tmp_path, media, files | {"train/zumba/c.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    prepare_dataset(src, dst, workers=1, progress=False)
    (src / "train" / "abseiling" / "b.mp4").rename(src / "train" / "zumba" / "b.mp4")
    counts = prepare_dataset(src, dst, workers=1, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 2, "failed": 0}
    assert (dst / "train.txt").read_text() == (
        "train/abseiling/a.mp4 0\ntrain/zumba/b.mp4 1\ntrain/zumba/c.mp4 1\n"
    )
    assert (
        f"1 videos in DST {dst} have no source in SRC {src} (moved to another class or deleted "
        f"there), so no list holds them (e.g. {dst}/train/abseiling/b.mp4); delete them, or put "
        "their sources back"
    ) in caplog.text


@pytest.mark.parametrize(
    ("how", "name", "reason"),
    [
        ("write", "val.txt", "No space left on device"),
        ("rename", "classes.txt", "Operation not permitted"),
    ],
)
def test_an_annotation_file_that_cannot_be_written_keeps_the_earlier_ones(
    tmp_path, media, capsys, monkeypatch, how, name, reason
):
    # the lists and classes.txt were replaced one after another: a full disk or an append-only
    # earlier file part-way left a new train.txt beside the earlier val.txt and class list
    src = raw_tree(tmp_path, media, {"train/jump/a.mp4": "h264.mp4", "val/walk/b.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    args = [str(src), str(dst), "--short-side", "32", "--workers", "1"]
    assert main(["data", "prepare", *args, "-q"]) == 0
    names = ["train.txt", "val.txt", "classes.txt"]
    before = [(dst / n).read_bytes() for n in names]
    listing = sorted(os.listdir(dst))
    for rel in ("train/jump/c.mp4", "val/yoga/d.mp4"):  # every file of the rerun differs
        (src / rel).parent.mkdir(exist_ok=True)
        shutil.copy(media["h264.mp4"], src / rel)
    fail_output(monkeypatch, how, dst / name)
    line = data_stopped(capsys, "prepare", *args)
    assert line == (
        f"octvideo data prepare: stopped: writing in DST {dst} failed ({reason}) after encoding; "
        "the earlier train.txt, val.txt and classes.txt are kept; free space and run again "
        "(finished videos are kept and skipped)"
    )
    assert [(dst / n).read_bytes() for n in names] == before
    assert sorted(os.listdir(dst)) == listing  # no temporary, no backup


def test_with_csvs_videos_in_folders_that_are_no_class_are_not_encoded(tmp_path, media, caplog):
    # a clip's copy in the trash was encoded and listed in place of the real one, and an
    # AppleDouble file in __MACOSX failed the run
    stem = kinetics_name("a", 0, 10)
    files = {f"train/{stem}.mp4": "h264.mp4", f".Trash-1000/files/{stem}.mp4": "vp9.webm"}
    src = raw_tree(tmp_path, media, files | {f"__MACOSX/train/._{stem}.mp4": "text.mp4"})
    (tmp_path / "train.csv").write_text(f"{HEADER}jump,a,0,10,train\n")
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, csvs=[str(tmp_path / "train.csv")], progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.mp4")) == [
        f"train/{stem}.mp4"
    ]
    assert (dst / "train.txt").read_text() == f"train/{stem}.mp4 0\n"
    assert (
        f"1 videos of SRC {src} lie in a folder that is no class (hidden, __MACOSX, @eaDir), "
        f"which --csv skips: they are not encoded (e.g. {src}/.Trash-1000/files/{stem}.mp4)"
    ) in caplog.text
    assert f"SRC {src}: skipped 1 hidden file named like videos (" in caplog.text


@pytest.mark.parametrize("csv", [False, True])
def test_hidden_files_beside_the_videos_are_counted_in_one_line_not_failed(
    tmp_path, media, caplog, csv
):
    # Kinetics copied off a Mac: each ._x.mp4 (AppleDouble, no video) failed as a bad video
    stem = kinetics_name("a", 0, 10)
    files = {f"train/jump/{stem}.mp4": "h264.mp4"}
    files |= {f"train/jump/._{stem}.mp4": "text.mp4", "train/walk/._b.mp4": "text.mp4"}
    src = raw_tree(tmp_path, media, files | {"train/walk/b.mp4": "h264.mp4"})
    (tmp_path / "train.csv").write_text(f"{HEADER}jump,a,0,10,train\n")
    dst = tmp_path / "out"
    csvs = [str(tmp_path / "train.csv")] if csv else None
    counts = prepare_dataset(src, dst, csvs=csvs, workers=1, progress=False)
    assert counts == {
        "encoded": 1 if csv else 2,
        "redone": 0,
        "changed": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert [r.getMessage() for r in caplog.records if "hidden files named" in r.getMessage()] == [
        f"SRC {src}: skipped 2 hidden files named like videos (dot files such as the AppleDouble "
        "._x.mp4 that macOS writes beside each file it copies: no video; e.g. "
        f"{src}/train/jump/._{stem}.mp4); they are not encoded"
    ]


def test_an_unlabelled_test_csv_gives_a_list_of_paths_for_predict(tmp_path, media, caplog):
    # Kinetics' test.csv (no label column) was refused, and the only route that encoded its
    # videos was passing the labelled CSVs, which encoded every video of SRC, listed or not
    from octvideo.inference.inputs import expand_inputs

    test, train = kinetics_name("t", 0, 10), kinetics_name("a", 0, 10)
    src = raw_tree(
        tmp_path, media, {f"test/{test}.mp4": "h264.mp4", f"train/{train}.mp4": "h264.mp4"}
    )
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\nt,0,10,test\n")
    dst = tmp_path / "out"
    with caplog.at_level("INFO"):
        counts = prepare_dataset(src, dst, csvs=[str(tmp_path / "test.csv")], progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert (dst / "test.txt").read_text() == f"test/{test}.mp4\n"
    assert expand_inputs([dst / "test.txt"]) == [str(dst / "test" / f"{test}.mp4")]
    assert not (dst / "train").exists()
    assert not (dst / "classes.txt").exists()
    assert (
        f"{dst / 'test.txt'}: 1 videos (paths alone, for octvideo predict: {tmp_path / 'test.csv'} "
        "has no label column), 0 rows without a file"
    ) in caplog.text
    assert (
        f"1 videos of SRC {src} are named by no row of the --csv files, so no list would hold "
        f"them: they are not encoded (e.g. {src}/train/{train}.mp4); pass the CSV that lists them "
        "too"
    ) in caplog.text
    (tmp_path / "train.csv").write_text(f"{HEADER}jump,a,0,10,train\n")
    csvs = ["--csv", str(tmp_path / "test.csv"), "--csv", str(tmp_path / "train.csv")]
    assert main(["data", "prepare", str(src), str(dst), *csvs, "-q"]) == 0  # train.csv sets it
    assert (dst / "classes.txt").read_text() == "jump\n"
    assert (dst / "train.txt").read_text() == f"train/{train}.mp4 0\n"
    assert (dst / "test.txt").read_text() == f"test/{test}.mp4\n"


def test_links_to_folders_in_src_are_followed_and_a_loop_is_named(tmp_path, media, caplog):
    # os.walk skipped them: a linked split gave "SRC holds no video", a linked class no class
    store = raw_tree(tmp_path, media, {"train/jump/a.mp4": "h264.mp4", "walk/b.mp4": "h264.mp4"})
    (store / "train" / "walk").symlink_to("../walk")
    (store / "walk" / "loop").symlink_to(".")
    src = tmp_path / "src"
    src.mkdir()
    (src / "train").symlink_to(store / "train")
    dst = tmp_path / "out"
    (dst / "train").mkdir(parents=True)
    (src / "again").symlink_to(dst / "train")  # the outputs: encoded into themselves
    counts = prepare_dataset(src, dst, workers=1, progress=False)
    assert counts == {"encoded": 2, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert (dst / "train.txt").read_text() == "train/jump/a.mp4 0\ntrain/walk/b.mp4 1\n"
    assert (dst / "classes.txt").read_text() == "jump\nwalk\n"
    assert (
        f"{src}/train/walk/loop is a link to {store / 'walk'}, a folder it lies in (it would "
        "loop); not followed"
    ) in caplog.text
    assert (
        f"{src}/again is a link to {dst / 'train'}, the output folder DST {dst} or one in it; not "
        "followed"
    ) in caplog.text


def test_videos_no_list_would_hold_are_counted_and_not_encoded(tmp_path, media, caplog):
    # they were encoded, listed nowhere, and a hidden folder's were a class
    src = raw_tree(
        tmp_path,
        media,
        {
            "train/jump/a.mp4": "h264.mp4",
            "top.mp4": "h264.mp4",
            "train/stray.mp4": "h264.mp4",
            "train/jump/sub/deep.mp4": "h264.mp4",
            "train/.ipynb_checkpoints/a.mp4": "h264.mp4",
            ".git/x/y.mp4": "h264.mp4",
            "__MACOSX/jump/._a.mp4": "h264.mp4",
        },
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, workers=1, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.mp4")) == ["train/jump/a.mp4"]
    assert (dst / "train.txt").read_text() == "train/jump/a.mp4 0\n"
    assert (dst / "classes.txt").read_text() == "jump\n"
    assert f"SRC {src}: skipped 1 hidden file named like videos (" in caplog.text
    assert (
        f"5 videos of SRC {src} are not at SRC/<split>/<class>/<video> or lie in a folder that "
        "is no class (hidden, __MACOSX, @eaDir), so no list would hold them: they are not "
        f"encoded (e.g. {src}/.git/x/y.mp4); move them into a class folder of a split, or pass "
        "the Kinetics CSVs with --csv"
    ) in caplog.text


def test_the_classes_come_from_src_not_from_other_folders_in_dst(tmp_path, media):
    # every folder two levels down in DST was a class, and a split when it held videos
    src = raw_tree(tmp_path, media, {"train/jump/a.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    for folder in ("runs/exp1", ".ipynb_checkpoints/x", "old/walk"):
        (dst / folder).mkdir(parents=True)
    shutil.copy(media["h264.mp4"], dst / "old" / "walk" / "c.mp4")
    prepare_dataset(src, dst, workers=1, progress=False)
    assert (dst / "classes.txt").read_text() == "jump\n"
    assert sorted(p.name for p in dst.glob("*.txt")) == ["classes.txt", "train.txt"]


def test_class_folders_named_in_decomposed_unicode_give_composed_class_names(tmp_path, media):
    # a macOS zip's café (NFD) sorted before cafez, and a val café (NFC) became a second class
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    src = raw_tree(
        tmp_path,
        media,
        {f"train/{nfd}/a.mp4": "h264.mp4", "train/cafez/b.mp4": "h264.mp4"}
        | {f"val/{nfc}/c.mp4": "h264.mp4"},
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, workers=1, progress=False)
    assert counts == {"encoded": 3, "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    assert (dst / "classes.txt").read_text() == f"cafez\n{nfc}\n"
    assert (dst / "train.txt").read_text() == f"train/cafez/b.mp4 0\ntrain/{nfd}/a.mp4 1\n"
    assert (dst / "val.txt").read_text() == f"val/{nfc}/c.mp4 1\n"
    classes = tmp_path / "classes.txt"  # the user's, in NFC
    classes.write_text(f"cafez\n{nfc}\n")
    for split in ("train", "val"):  # the lists and DST's class folders agree with it
        listed = load_annotations(dst / f"{split}.txt", classes_file=classes)
        folders = load_annotations(dst / split, classes_file=classes)
        assert sorted(listed.records) == sorted(folders.records)
        assert listed.classes == folders.classes == ["cafez", nfc]


def test_csv_labels_in_decomposed_unicode_meet_a_class_list_in_either_form(tmp_path, media):
    # an earlier run's classes.txt in NFD refused the same class, composed, in a rerun of val
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    src, train, val = _two_splits(
        tmp_path, media, f"{nfd},a,0,10,train\ncafez,x,0,10,train\n", f"{nfd},b,0,10,val\n"
    )
    dst = tmp_path / "out"
    prepare_dataset(src, dst, csvs=[str(train), str(val)], progress=False)
    assert (dst / "classes.txt").read_text() == f"cafez\n{nfc}\n"
    assert (dst / "train.txt").read_text() == "train/a_000000_000010.mp4 1\n"
    assert (dst / "validate.txt").read_text() == "val/b_000000_000010.mp4 1\n"
    (dst / "classes.txt").write_text(f"{nfd}\ncafez\n")  # as an earlier octvideo wrote it
    (dst / "train.txt").write_text("train/a_000000_000010.mp4 0\n")
    val.write_text(f"{HEADER}{nfc},b,0,10,val\n")
    prepare_dataset(src, dst, csvs=[str(val)], progress=False)
    assert (dst / "classes.txt").read_text() == f"{nfd}\ncafez\n"  # kept: train.txt uses it
    assert (dst / "validate.txt").read_text() == "val/b_000000_000010.mp4 0\n"


def _rotate_tagged(source: Path, path: Path) -> Path:
    """``source`` (no display matrix) remuxed into MKV with the ``rotate`` tag 90 that FFmpeg 4
    wrote for a phone video, which decoding applies as a matrix of 90 degrees."""
    import av

    with av.open(str(source)) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        stream.metadata["rotate"] = "90"
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:  # the demuxer's last, empty packet
                packet.stream = stream
                dst.mux(packet)
    return path


@pytest.fixture(scope="module")
def turned_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A raw tree of a video for each turn and mirror decoding applies (``TURNS``, and a rotate
    tag in MKV), and the displayed frame of each, by its output name."""
    src = tmp_path_factory.mktemp("turned") / "raw"
    folder = src / "train" / "phone"
    folder.mkdir(parents=True)
    shown = {}
    for name, (turn, displayed) in TURNS.items():
        encode_turned(folder / f"{name}.mp4", turn)
        shown[f"{name}.mp4"] = displayed(turned_pattern())
    _rotate_tagged(
        encode_turned(tmp_path_factory.mktemp("plain") / "plain.mp4", None), folder / "tag.mkv"
    )
    shown["tag.mp4"] = np.rot90(turned_pattern(), -1)
    return src, shown


def test_a_turned_video_is_prepared_as_it_is_displayed(tmp_path, turned_raw):
    # prepare wrote a phone video's stored frames without its matrix: train and test on the
    # prepared set saw it turned 90 degrees, predict on the raw file upright
    import av

    src, shown = turned_raw
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=40, workers=2, progress=False)
    assert counts == {"encoded": len(shown), "redone": 0, "changed": 0, "skipped": 0, "failed": 0}
    for name, displayed in shown.items():
        output = dst / "train" / "phone" / name
        expected = resize_short_side(torch.from_numpy(displayed.copy())[None], 40).float()
        for decoder in ("decord", "pyav"):
            frames = decode(output, [0, 5], decoder=decoder).float()  # (2, H, W, 3)
            assert frames.shape[1:] == expected.shape[1:], (name, decoder)
            # scaled and re-encoded: about 3 levels; a mirror or a half turn is 37 or more
            assert (frames - expected).abs().mean() < 6.0, (name, decoder)
        with av.open(str(output)) as container:
            assert display_matrix(next(container.decode(video=0))) is None, name
            assert "rotate" not in container.streams.video[0].metadata, name
    counts = prepare_dataset(src, dst, short_side=40, workers=2, progress=False)
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": len(shown), "failed": 0}


def test_a_rerun_encodes_again_a_turned_video_written_as_stored(tmp_path, turned_raw):
    # an earlier octvideo wrote the stored frames: the short side asked for, but sideways
    src, shown = turned_raw
    dst = tmp_path / "out"
    (dst / "train" / "phone").mkdir(parents=True)
    encode_turned(dst / "train" / "phone" / "90.mp4", None)  # 96x64; displayed, 64x96
    counts = prepare_dataset(src, dst, short_side=64, workers=2, progress=False)
    assert counts == {"encoded": len(shown), "redone": 1, "changed": 0, "skipped": 0, "failed": 0}
    info = probe(dst / "train" / "phone" / "90.mp4")
    assert (info.width, info.height) == (64, 96)


def test_a_rerun_checks_the_outputs_there_workers_at_once_in_source_order(monkeypatch, tmp_path):
    # each check opens a source and decodes a frame (its orientation): one at a time, a rerun
    # over a 1080p tree spent tens of ms a video before encoding anything
    meeting = threading.Barrier(2, timeout=60)  # broken unless two checks run at once
    done_names = {"b.mp4", "d.mp4"}

    def checked(output: Path, src: str, short_side: int) -> bool:
        if output.name in ("a.mp4", "b.mp4"):
            meeting.wait()
        return output.name in done_names

    monkeypatch.setattr(prepare_module, "_done", checked)
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"{name}.mp4").write_bytes(b"")
    sources = {Path(f"{name}.mp4"): [f"src/{name}.mkv"] for name in "dcba"}
    jobs, skipped, again, errors = prepare_module._plan_jobs(sources, tmp_path, 32, workers=2)
    assert jobs == [("src/a.mkv", str(tmp_path / "a.mp4")), ("src/c.mkv", str(tmp_path / "c.mp4"))]
    assert (skipped, again, errors) == (2, {"src/a.mkv", "src/c.mkv"}, [])


def test_a_partial_download_fails_in_data_checks_words_and_is_not_listed(tmp_path, media):
    # its frames before the cut were encoded as a whole shorter video, listed, 0 failed
    src = raw_tree(tmp_path, media, {"train/a/ok.mp4": "h264.mp4"})
    fast = cut_between_frames(faststart(tmp_path / "whole.mp4"), src / "train/a/fast.mp4", 40)
    mkv = cut_at(
        encode_seconds(tmp_path / "whole.mkv", "libx264", "yuv420p"), src / "train/a/c.mkv"
    )
    dst = tmp_path / "out"
    counts = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 0, "skipped": 0, "failed": 2}
    errors = dict(read_bad_videos(dst / "prepare_errors.jsonl"))
    assert errors == {str(path): check_one(str(path), "pyav") for path in (fast, mkv)}
    assert errors[str(fast)] == (
        f"DecodeError: {fast}: the file's index lists 60 frames (6.0 s), 20 of them missing: the "
        "file is truncated"
    )
    assert re.fullmatch(
        f"DecodeError: {re.escape(str(mkv))}: the file's header lists 8.0 s, [0-9.]+ s of it "
        "missing: the file is truncated",
        errors[str(mkv)],
    )
    assert (dst / "train.txt").read_text() == "train/a/ok.mp4 0\n"
    assert sorted(p.name for p in dst.rglob("*.mp4")) == ["ok.mp4"]  # no part file either


@pytest.mark.parametrize(
    ("val_rows", "another_label"),
    [
        ("walk,a,0,10,val\njump,b,0,10,val\n", "; 1 of them with another label"),
        ("jump,a,0,10,val\n", ""),
    ],
)
def test_a_video_in_two_csvs_is_one_warning_line(tmp_path, media, caplog, val_rows, another_label):
    # a training video in the validation list, even under another label, passed in silence
    src, train, val = _two_splits(
        tmp_path, media, "jump,a,0,10,train\nwalk,c,0,10,train\n", val_rows
    )
    dst = tmp_path / "out"
    prepare_dataset(src, dst, short_side=32, csvs=[str(train), str(val)], progress=False)
    label = "walk" if another_label else "jump"
    assert (
        f"--csv {train} and --csv {val} both name 1 YouTube videos (the same youtube_id"
        f"{another_label}): one trained on is scored as unseen (train/val leakage): e.g. 'a', line "
        f"2 of the first ('jump') and line 2 of the second ({label!r}); drop them from one CSV"
    ) in caplog.text
    assert (dst / "train.txt").read_text() == "train/a_000000_000010.mp4 0\n"
    assert (
        (dst / "validate.txt")
        .read_text()
        .startswith(f"train/a_000000_000010.mp4 {1 if another_label else 0}\n")
    )
    caplog.clear()
    lists = {"train_list": dst / "train.txt", "val_list": dst / "validate.txt"}
    cfg = small_config(**{key: str(path) for key, path in lists.items()})
    VideoDataModule(replace(cfg, classes_file=str(dst / "classes.txt"))).setup("fit")
    assert (  # train reads both lists: it says so too
        f"data: 1 videos of data.val_list={lists['val_list']} are in data.train_list="
        f"{lists['train_list']} too (train/val leakage: a video trained on is scored as unseen), "
        f"e.g. {dst / 'train/a_000000_000010.mp4'} (label 0 in training, "
        f"{1 if another_label else 0} in validation); drop them from one list"
    ) in caplog.text
    caplog.clear()
    prepare_dataset(src, dst, short_side=32, csvs=[str(train)], progress=False)
    assert "leakage" not in caplog.text


def test_an_output_older_than_its_source_is_encoded_again(tmp_path, media, caplog, capsys):
    # a re-downloaded source (the whole file after a cut one) kept the old output: "already done"
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4", "train/a/two.mp4": "h264.mp4"})
    dst = tmp_path / "out"
    prepare_dataset(src, dst, short_side=32, progress=False)
    output = dst / "train/a/one.mp4"
    shutil.copy(media["short.mp4"], src / "train/a/one.mp4")  # another video under the name
    earlier = (src / "train/a/one.mp4").stat().st_mtime_ns - 10**9  # written before the copy,
    os.utime(output, ns=(earlier, earlier))  # however coarse the file system's clock
    with caplog.at_level("INFO"):
        counts = prepare_dataset(src, dst, short_side=32, progress=False)
    assert counts == {"encoded": 1, "redone": 0, "changed": 1, "skipped": 1, "failed": 0}
    assert probe(output).num_frames == probe(media["short.mp4"]).num_frames
    assert (
        f"prepared {dst}: 1 encoded (1 of them again: their source changed since), 1 already "
        "done, 0 failed"
    ) in caplog.text
    counts = prepare_dataset(src, dst, short_side=32, progress=False)  # newer than it now
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": 2, "failed": 0}
    os.utime(output, ns=(earlier, earlier))  # the command's last line says it too
    capsys.readouterr()
    assert main(["data", "prepare", str(src), str(dst), "--short-side", "32", "-q"]) == 0
    assert capsys.readouterr().out == (
        "1 encoded (1 of them again: their source changed since), 1 already done, 0 failed "
        f"(see {dst / 'prepare_errors.jsonl'})\n"
    )


def test_a_video_much_longer_than_its_csv_segment_is_one_warning_line(tmp_path, media, caplog):
    # a 60 s download for a 10 s row (never cut to its segment) was listed whole in silence
    rows = {"long": (0, 4), "edge": (0, 6), "short": (0, 10)}  # an 8 s video for each
    for name, (start, end) in rows.items():
        path = tmp_path / "raw/train" / f"{kinetics_name(name, start, end)}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_seconds(path, "libx264", "yuv420p")  # 96 frames at 12 fps
    csv = tmp_path / "train.csv"
    csv.write_text(HEADER + "".join(f"jump,{n},{a},{b},train\n" for n, (a, b) in rows.items()))
    dst = tmp_path / "out"
    prepare_dataset(tmp_path / "raw", dst, short_side=32, csvs=[str(csv)], progress=False)
    long = tmp_path / "raw/train/long_000000_000004.mp4"
    assert (
        f"1 videos are much longer than the segment their CSV row gives (time_end - time_start): "
        f"e.g. {long} holds 8.0 s for a 4 s row (a download never cut to its segment?); they are "
        "listed whole, and clips are sampled from all of it"
    ) in caplog.text
    assert len((dst / "train.txt").read_text().splitlines()) == 3  # no refusal


@pytest.mark.parametrize("with_csv", [False, True])
def test_a_prepared_video_whose_new_download_is_cut_fails_and_is_not_listed(
    tmp_path, media, caplog, with_csv
):
    # the rerun failed it, but its old output, of the whole file, stayed in train.txt
    names = {name: f"{kinetics_name(name, 0, 10)}.mp4" for name in ("ok", "new")}
    src = raw_tree(tmp_path, media, {f"train/a/{names['ok']}": "h264.mp4"})
    whole = faststart(tmp_path / "whole.mp4")
    shutil.copy(whole, src / "train/a" / names["new"])
    csv = tmp_path / "train.csv"
    csv.write_text(HEADER + "a,ok,0,10,train\na,new,0,10,train\n")
    dst = tmp_path / "out"
    run = partial(prepare_dataset, src, dst, short_side=32, csvs=[str(csv)] if with_csv else None)
    run(progress=False)
    output = dst / "train/a" / names["new"]
    cut = cut_between_frames(whole, src / "train/a" / names["new"], 40)  # downloaded again
    later = output.stat().st_mtime_ns + 10**9  # however coarse the file system's clock
    os.utime(cut, ns=(later, later))
    with caplog.at_level("INFO"):
        counts = run(progress=False)
    assert counts == {"encoded": 0, "redone": 0, "changed": 0, "skipped": 1, "failed": 1}
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (
            str(cut),
            f"{check_one(str(cut), 'pyav')}; its earlier output {output} is kept on disk "
            "but not listed",
        )
    ]
    assert (dst / "train.txt").read_text() == f"train/a/{names['ok']} 0\n"
    assert output.is_file()  # nothing already done is lost
    if with_csv:
        assert (
            f"{dst / 'train.txt'}: 1 videos, 0 rows without a file, 1 whose source failed (not "
            "listed)"
        ) in caplog.text


def test_a_done_output_of_a_cut_source_fails_and_is_not_listed(tmp_path, media, capsys):
    # an earlier octvideo encoded a partial download; its output, newer, was skipped and listed
    src = raw_tree(tmp_path, media, {"train/a/ok.mp4": "h264.mp4"})
    whole = faststart(tmp_path / "whole.mp4")
    shutil.copy(whole, src / "train/a/cut.mp4")
    dst = tmp_path / "out"
    prepare_dataset(src, dst, short_side=32, progress=False)
    output = dst / "train/a/cut.mp4"
    cut = cut_between_frames(whole, src / "train/a/cut.mp4", 40)  # as it was when encoded
    earlier = output.stat().st_mtime_ns - 10**9
    os.utime(cut, ns=(earlier, earlier))
    capsys.readouterr()
    assert main(["data", "prepare", str(src), str(dst), "--short-side", "32", "-q"]) == 1
    assert capsys.readouterr().out == (
        f"0 encoded, 1 already done, 1 failed (see {dst / 'prepare_errors.jsonl'})\n"
    )
    assert read_bad_videos(dst / "prepare_errors.jsonl") == [
        (
            str(cut),
            f"{check_one(str(cut), 'pyav')}; its earlier output {output} is kept on disk "
            "but not listed",
        )
    ]
    assert (dst / "train.txt").read_text() == "train/a/ok.mp4 0\n"
    assert output.stat().st_mtime_ns > earlier  # kept as it was, not encoded again
