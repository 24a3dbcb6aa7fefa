"""``octvideo data check``: lists in the current folder, bounded arguments, the JSON-lines report,
and a full disk at the report."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from octvideo.cli import main
from octvideo.data.check import read_report, write_report
from tests.data.media_helpers import data_error, data_stopped, fill

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
        assert [path for path, _ in read_report("train.bad.jsonl")] == ["b.mp4"]


def test_the_report_round_trips_any_file_name(tmp_path):
    rows = [(name, f"DecodeError: {name}: no\tframes\n") for name in ODD_NAMES]
    rows.append(("not-utf8-\udcff.mp4", "caf\u00e9"))  # os.fsdecode of the byte 0xff
    write_report(tmp_path / "bad.jsonl", rows)
    text = (tmp_path / "bad.jsonl").read_bytes().decode("utf-8")  # strict UTF-8
    assert text.count("\n") == len(rows)  # one line a video
    assert read_report(tmp_path / "bad.jsonl") == rows


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
    report = read_report(out)
    assert sorted(path for path, _ in report) == sorted(str(folder / n) for n in ODD_NAMES)
    assert all(error.startswith("DecodeError: ") for _, error in report)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--workers", "257", "--workers must be 1 to 256 processes, got 257"),
        ("--workers", "100000", "--workers must be 1 to 256 processes, got 100000"),
        ("--timeout", "inf", "--timeout must be at most 86400 seconds (one day), got inf"),
        ("--timeout", "1e9", "--timeout must be at most 86400 seconds (one day), got 1e+09"),
        ("--timeout", "nan", "--timeout must be a number of seconds > 0, got nan"),
    ],
)
def test_sizes_and_durations_past_their_bounds_are_refused_first(
    tmp_path, media, capsys, option, value, message
):
    (tmp_path / "list.txt").write_text(f"{media['h264.mp4']} 0\n")
    line = data_error(capsys, "check", str(tmp_path / "list.txt"), option, value)
    assert line == f"octvideo data: error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt"]


def test_an_out_that_is_the_list_is_refused(tmp_path, media, capsys):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    line = data_error(
        capsys, "check", str(tmp_path / "list.txt"), "--out", str(tmp_path / "list.txt")
    )
    assert line == (
        f"octvideo data: error: --out {tmp_path / 'list.txt'} is the annotation file "
        f"{tmp_path / 'list.txt'}: writing it would destroy it; choose another path"
    )
    assert (tmp_path / "list.txt").read_text() == f"{media['zero.mp4']} 0\n"


def test_a_full_disk_at_the_report_is_one_line_and_leaves_no_half_file(
    tmp_path, media, monkeypatch, capsys
):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n{media['h264.mp4']} 0\n")
    real = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)  # a part made it to the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "reports" / "bad.jsonl"
    out.parent.mkdir()
    line = data_stopped(capsys, "check", str(tmp_path / "list.txt"), "--out", str(out))
    assert line == (
        f"octvideo data: stopped: writing --out {out} failed (No space left on device); 1 of 2 "
        "videos are bad and are not listed anywhere; free space and run again"
    )
    assert list(out.parent.iterdir()) == []


def test_a_real_full_disk_at_the_report_is_one_line(tmp_path, media, tiny_disk, capsys):
    (tmp_path / "list.txt").write_text(f"{media['zero.mp4']} 0\n")
    fill(tiny_disk)
    out = tiny_disk / "bad.jsonl"
    line = data_stopped(capsys, "check", str(tmp_path / "list.txt"), "--out", str(out))
    assert line.startswith(f"octvideo data: stopped: writing --out {out} failed (No space left")
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]
