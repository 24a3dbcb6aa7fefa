"""``octvideo data prepare``: bounded arguments and CSVs read as UTF-8, refused before encoding."""

from __future__ import annotations

import pytest

from octvideo.data.annotations import kinetics_name
from tests.data.media_helpers import data_error, raw_tree


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--short-side", "100000", "--short-side must be 16 to 1080 pixels, got 100000"),
        ("--short-side", "1081", "--short-side must be 16 to 1080 pixels, got 1081"),
        ("--short-side", "8", "--short-side must be 16 to 1080 pixels, got 8"),
        ("--workers", "100000", "--workers must be 1 to 256 processes, got 100000"),
    ],
)
def test_sizes_and_counts_past_their_bounds_are_refused_before_encoding(
    tmp_path, media, capsys, no_encoding, option, value, message
):
    src = raw_tree(tmp_path, media, {"train/a/one.mp4": "h264.mp4"})
    line = data_error(capsys, "prepare", str(src), str(tmp_path / "out"), option, value)
    assert line == f"octvideo data: error: {message}"
    assert not (tmp_path / "out").exists()


def test_a_csv_that_is_not_utf8_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    src = raw_tree(tmp_path, media, {f"train/{kinetics_name('id0', 0, 10)}.mp4": "h264.mp4"})
    header = b"label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "train.csv").write_bytes(header + b"caf\xe9,id0,0,10,train\n")
    line = data_error(
        capsys, "prepare", str(src), str(tmp_path / "out"), "--csv", str(tmp_path / "train.csv")
    )
    assert line == (
        f"octvideo data: error: --csv {tmp_path / 'train.csv'}:2: not UTF-8 text (byte 0xe9); "
        "save it as UTF-8"
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
