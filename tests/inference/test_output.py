"""``predict --out`` records: written whole through a temporary file, never through a symbolic
link, and a real full disk is one line with the earlier file kept; only an earlier record file is
replaced; a CSV row holds every field of a record."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import types

import pytest
import torch

from octvideo.cli import main
from octvideo.errors import OutputWriteError, UsageError
from octvideo.inference.output import (
    CSV_FIELDS,
    OLDER_CSV_FIELDS,
    RECORD_KEYS,
    RecordWriter,
    check_record_path,
    format_result,
    is_record_file,
    records,
)
from octvideo.inference.predictor import Prediction, VideoResult
from tests.inference.media_helpers import overflowing_checkpoint
from tests.small_disk import fill, small_disk

# the records of an earlier run, which --out may replace


def _earlier_records() -> list[dict]:
    """The records of an earlier run of one input with a window, as ``records`` makes them."""
    probs = torch.tensor([0.2, 0.8])
    result = VideoResult(
        path="earlier.mp4",
        video=Prediction(probs, 0.0, 1.0),
        windows=[Prediction(probs, 0.0, 1.0)],
        duration=1.0,
    )
    return records(result, ["a", "b"], k=2)


WINDOW, VIDEO = (json.dumps(row) + "\n" for row in _earlier_records())
EARLIER = VIDEO


def test_predict_out_onto_a_symbolic_link_is_refused_and_its_target_kept(
    checkpoint, videos, tmp_path, capsys
):
    target = tmp_path / "results.jsonl"
    target.write_text("earlier records\n")
    link = tmp_path / "x.jsonl"
    link.symlink_to(target)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(link)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --out {link} is a symbolic link to {target}; give the real "
        "path or remove the link\n"
    )
    assert target.read_text() == "earlier records\n" and link.is_symlink()


def test_predict_out_on_a_real_full_disk_is_one_line(request, checkpoint, videos, tmp_path, capsys):
    disk = small_disk(request, tmp_path / "disk")
    out = disk / "preds.jsonl"
    out.write_text(EARLIER)
    fill(disk, leave=0)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(out)]
    assert main([*args, "--quiet"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo predict: stopped: cannot write {out} (No space left on device); the earlier "
        "file is kept; free space there or choose another folder"
    )
    assert out.read_text() == EARLIER
    assert sorted(os.listdir(disk)) == ["ballast", "preds.jsonl"]  # no temporary file


def _strict(text: str) -> list[dict]:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the records")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def test_predict_fails_an_input_whose_logits_are_nan_in_strict_json(
    checkpoint, videos, tmp_path, capsys
):
    # it printed "nan%", called the input ok, exited 0 and wrote a bare NaN token
    huge = overflowing_checkpoint(checkpoint, tmp_path / "huge.ckpt")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", "--ckpt", str(huge), str(videos["short"]), "--out", str(out)]) == 1
    (record,) = _strict(out.read_text())
    assert record["ok"] is False and record["top"] == []
    assert record["error"].startswith("NonFiniteLogits: the model gives NaN or infinite logits")
    shown = capsys.readouterr().out
    assert "nan%" not in shown and "FAILED  NonFiniteLogits: " in shown


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_predict_out_keeps_a_name_whose_bytes_are_not_utf8(
    checkpoint, videos, tmp_path, capsys, suffix
):
    # the writer failed with a traceback after the work: the inputs after that name were never
    # predicted, and an earlier --out was replaced by the records before it
    bad = tmp_path / os.fsdecode(b"bad\xff\xfename.mp4")
    bad.write_bytes(videos["short"].read_bytes())
    out = tmp_path / f"preds{suffix}"
    out.write_text(EARLIER)
    inputs = [str(videos["short"]), str(bad), str(videos["odd"])]
    assert main(["predict", "--ckpt", str(checkpoint), *inputs, "--out", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    text = out.read_text(encoding="utf-8")  # still UTF-8 text
    if suffix == ".jsonl":
        paths = [record["path"] for record in _strict(text)]  # the same name, bytes and all
    else:
        paths = [row["path"] for row in csv.DictReader(io.StringIO(text, newline=""))]
        inputs[1] = str(tmp_path / "bad\\udcff\\udcfename.mp4")  # the table's spelling
    assert paths == inputs


def test_a_nan_in_a_record_is_refused_not_written(tmp_path):
    out = tmp_path / "preds.jsonl"
    nan_refused = pytest.raises(ValueError, match="Out of range float values are not JSON")
    with nan_refused, RecordWriter(out, 1) as writer:
        writer.write([{"type": "video", "top": [{"label": "a", "prob": float("nan")}]}])
    assert not out.exists()


def _row(i: int) -> dict:
    """A whole video record, of ``v<i>.mp4``: a file of them is a record file to replace."""
    return {**json.loads(VIDEO), "path": f"v{i}.mp4"}


def test_records_replace_the_file_only_when_closed(tmp_path):
    out = tmp_path / "preds.jsonl"
    out.write_text(EARLIER)
    writer = RecordWriter(out, k=1)
    writer.write([_row(0)])
    assert out.read_text() == EARLIER  # not emptied while the run goes on
    writer.close()
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == ["v0.mp4"]
    assert os.listdir(tmp_path) == ["preds.jsonl"]


def test_a_failed_write_leaves_nothing_and_close_changes_nothing(request, tmp_path):
    disk = small_disk(request, tmp_path / "disk")
    fill(disk, leave=0)
    writer = RecordWriter(disk / "preds.csv", k=1)
    with pytest.raises(OutputWriteError, match=r"\(No space left on device\); no part of it"):
        writer.write([_row(i) for i in range(100)])
    writer.close()  # predict's finally: nothing to rename
    assert sorted(os.listdir(disk)) == ["ballast"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_stop_before_the_first_record_keeps_the_earlier_file(tmp_path, suffix):
    out = tmp_path / f"preds{suffix}"
    out.write_text(EARLIER)
    with pytest.raises(KeyboardInterrupt), RecordWriter(out, k=1) as writer:
        raise KeyboardInterrupt
    assert writer.discarded and writer.written == 0
    assert out.read_text() == EARLIER
    assert os.listdir(tmp_path) == [out.name]
    with pytest.raises(KeyboardInterrupt), RecordWriter(out, k=1) as writer:
        writer.write([_row(0)])
        raise KeyboardInterrupt  # the records of the inputs done replace it
    assert not writer.discarded and writer.written == 1
    assert "v0.mp4" in out.read_text() and os.listdir(tmp_path) == [out.name]
    with RecordWriter(out, k=1):  # a run of no input that ends: its file, empty of records
        pass
    assert "v0.mp4" not in out.read_text()


@pytest.mark.parametrize(
    ("first_line", "ours"),
    [
        (VIDEO, True),
        (WINDOW, True),
        (",".join(CSV_FIELDS) + ",label1,prob1\r\n", True),
        (",".join(CSV_FIELDS) + ",label1,prob1,label2,prob2\r\n", True),
        (",".join(OLDER_CSV_FIELDS) + ",label1,prob1\r\n", True),  # an older octvideo's
        ("", True),  # nothing to lose
        # a user's manifest, and records missing a key or with one of the user's
        ('{"type": "video", "path": "a.mp4", "label": "run"}\n', False),
        ('{"type": "window", "path": "a.mp4", "window": 0}\n', False),
        (VIDEO.replace('"seconds"', '"note": "mine", "seconds"'), False),
        (VIDEO.replace('"index": 1, ', ""), False),
        ('{"type": ["video"], "path": "a.mp4"}\n', False),
        (",".join(CSV_FIELDS) + ",label1,prob1,note\r\n", False),  # a column of the user's
        (",".join(CSV_FIELDS[:7]) + ",label\r\n", False),
        ("name,score\nalice,3\n", False),  # a spreadsheet
        ('{"todo": "call alice"}\n', False),
        ('[{"type": "video"}]\n', False),
        ("\x00\x00\x00\x18ftypmp42", False),  # a video
        ("earlier records\n", False),
    ],
)
def test_only_an_earlier_record_file_is_taken_for_one(tmp_path, first_line, ours):
    path = tmp_path / "out.jsonl"
    path.write_text(first_line, newline="")
    assert is_record_file(path) is ours


@pytest.mark.parametrize("kind", ["user file", "read-only", "folder"])
def test_a_record_writer_replaces_only_an_earlier_writable_record_file(tmp_path, kind):
    # the Python API as predict --out: RecordWriter replaced a user's spreadsheet without a word
    out = tmp_path / "preds.csv"
    if kind == "folder":
        out.mkdir()
        message = f"--out {out} is a folder; give a file name"
    elif kind == "user file":
        out.write_text("name,score\nalice,3\n")
        message = (
            f"--out {out} exists and is not a record file of predict (JSON lines or CSV): "
            "writing it would destroy it; choose another path or remove it"
        )
    else:
        out.write_text(EARLIER)
        out.chmod(0o444)
        message = (
            f"--out {out} is read-only: make it writable (chmod u+w) to replace it, or choose "
            "another path"
        )
    before = None if kind == "folder" else out.read_bytes()
    with pytest.raises(UsageError) as caught:
        RecordWriter(out, k=1)
    assert str(caught.value) == message
    assert out.is_dir() if before is None else out.read_bytes() == before
    assert os.listdir(tmp_path) == ["preds.csv"]


@pytest.mark.parametrize("earlier", [False, True])
def test_a_record_writer_on_a_read_only_mount_says_to_remount(tmp_path, monkeypatch, earlier):
    # it skipped the CLI's folder check: "make it writable (chmod u+w)", which a mount refuses
    out = tmp_path / "preds.jsonl"
    if earlier:
        out.write_text(EARLIER)
    monkeypatch.setattr("octvideo.paths.os.access", lambda *args: False)  # root's too there
    monkeypatch.setattr(
        "octvideo.paths.os.statvfs", lambda path: types.SimpleNamespace(f_flag=os.ST_RDONLY)
    )
    with pytest.raises(UsageError) as caught:
        RecordWriter(out, k=1)
    assert str(caught.value) == (
        f"--out {out}: cannot write in {tmp_path} (Read-only file system); remount it "
        "read-write or choose another path"
    )
    assert os.listdir(tmp_path) == (["preds.jsonl"] if earlier else [])
    assert not earlier or out.read_text() == EARLIER


def test_records_have_the_keys_an_earlier_record_file_is_known_by():
    window, video = _earlier_records()
    assert window.keys() == RECORD_KEYS["window"] and video.keys() == RECORD_KEYS["video"]
    assert set(CSV_FIELDS) == (RECORD_KEYS["window"] | RECORD_KEYS["video"]) - {"top"}


def test_predict_out_onto_a_users_json_lines_of_videos_is_refused_and_kept(
    checkpoint, videos, tmp_path, capsys
):
    # a manifest whose first line has "type": "video" was replaced by records without a word
    out = tmp_path / "manifest.jsonl"
    mine = '{"type": "video", "path": "a.mp4", "label": "run"}\n'
    out.write_text(mine)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(out), "-q"]
    assert main(args) == 2
    assert f"--out {out} exists and is not a record file of predict" in capsys.readouterr().err
    assert out.read_text() == mine


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_predict_out_onto_a_file_that_holds_no_records_is_refused_and_kept(
    checkpoint, videos, tmp_path, capsys, suffix
):
    # a spreadsheet or notes at --out were replaced by records without a word
    out = tmp_path / f"users{suffix}"
    out.write_text("name,score\nalice,3\n")
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(out), "-q"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --out {out} exists and is not a record file of predict (JSON "
        "lines or CSV): writing it would destroy it; choose another path or remove it\n"
    )
    assert out.read_text() == "name,score\nalice,3\n"
    out.write_text("")  # an empty file, or an earlier run's records, is replaced
    for _ in range(2):
        assert main(args) == 0
    assert is_record_file(out) and str(videos["short"]) in out.read_text()


def test_a_json_name_is_refused_as_json_lines_are_not_json(checkpoint, videos, tmp_path, capsys):
    # preds.json was written as JSON lines, which a JSON reader refuses
    out = tmp_path / "preds.json"
    with pytest.raises(ValueError, match="use a .jsonl or .csv file name"):
        check_record_path(out)
    assert (
        main(["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--out", str(out)]) == 2
    )
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --out {out}: use a .jsonl or .csv file name\n"
    )
    assert not out.exists()


def test_a_csv_row_holds_every_field_of_its_record_and_columns_for_the_classes_there_are(
    checkpoint, videos, tmp_path
):
    # a CSV lacked num_frames, fps and num_windows, and --topk past the classes gave empty columns
    out = tmp_path / "preds.csv"
    args = ["predict", "--ckpt", str(checkpoint), str(videos["long"]), "--out", str(out)]
    assert main([*args, "--window", "2s", "--topk", "9", "-q"]) == 0
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == [
        *CSV_FIELDS,
        "label1",
        "prob1",
        "label2",
        "prob2",
        "label3",
        "prob3",
    ]
    lines = out.read_text().splitlines()
    assert len(lines) == len(rows) + 1
    video = rows[-1]
    assert video["type"] == "video" and int(video["num_windows"]) == len(rows) - 1 == 5
    assert int(video["num_frames"]) == 95 and float(video["fps"]) == 10.0
    assert all(row["num_frames"] == "" for row in rows[:-1])  # none in a window's row


@pytest.mark.parametrize("result", [None, "video.mp4", {"path": "video.mp4"}])
@pytest.mark.parametrize("call", [records, format_result])
def test_anything_but_a_result_is_refused_in_one_line(call, result):
    with pytest.raises(TypeError, match=rf"^{call.__name__} takes a VideoResult \(what Predic"):
        call(result, ["a"], 1)


@pytest.mark.parametrize(
    ("path", "k", "named"),
    [(None, 1, "path must be a str or os.PathLike, got None"), ("p.csv", "3", "k must be a")],
)
def test_a_record_writer_refuses_a_path_or_k_of_another_type(tmp_path, path, k, named):
    with pytest.raises(TypeError, match=f"^RecordWriter: {re.escape(named)}"):
        RecordWriter(path if path is None else tmp_path / path, k)
    assert list(tmp_path.iterdir()) == []


def test_a_record_of_frames_given_is_as_a_files():
    probs = torch.tensor([0.25, 0.75])
    result = VideoResult("<frames>", Prediction(probs, 0.0, 1.0), from_frames=True)
    as_file = dataclasses.replace(result, from_frames=False)
    assert records(result, ["a", "b"]) == records(as_file, ["a", "b"])
