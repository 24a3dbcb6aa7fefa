"""``data prepare``: a tree without a split level is refused; a new ``--short-side`` re-encodes."""

from __future__ import annotations

from octvideo.cli import main
from octvideo.data import probe
from octvideo.data.prepare import prepare_dataset
from tests.data.media_helpers import data_error, raw_tree


def test_a_class_only_tree_is_refused_before_encoding(tmp_path, media, capsys, no_encoding):
    # it used to report success with an empty classes.txt and no list
    src = raw_tree(tmp_path, media, {"jump/a.mp4": "h264.mp4", "walk/b.avi": "mpeg4.avi"})
    dst = tmp_path / "out"
    line = data_error(capsys, "prepare", str(src), str(dst))
    assert line == (
        f"octvideo data: error: SRC {src}: its videos are at {src}/jump/a.mp4 and the like; "
        f"without --csv prepare needs SRC/<split>/<class>/<video> (e.g. "
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
    assert counts == {"encoded": 2, "redone": 0, "skipped": 0, "failed": 0}
    output = dst / "train/jump/a.mp4"
    assert (probe(output).width, probe(output).height) == (48, 32)
    capsys.readouterr()
    assert main(["data", "prepare", str(src), str(dst), "--short-side", "48", "-q"]) == 0
    assert capsys.readouterr().out == (
        "2 encoded (2 of them again: they were not at short side 48), 0 already done, 0 failed "
        f"(see {dst / 'prepare_errors.jsonl'})\n"
    )
    for name in ("train/jump/a.mp4", "val/jump/b.mp4"):
        info = probe(dst / name)
        assert (info.width, info.height) == (72, 48)
    assert (dst / "train.txt").read_text() == "train/jump/a.mp4 0\n"
    counts = prepare_dataset(src, dst, short_side=48, workers=2, progress=False)
    assert counts == {"encoded": 0, "redone": 0, "skipped": 2, "failed": 0}
    output.write_bytes(b"not a video")  # an output a decoder rejects is encoded again too
    counts = prepare_dataset(src, dst, short_side=48, workers=2, progress=False)
    assert counts == {"encoded": 1, "redone": 1, "skipped": 1, "failed": 0}
    assert probe(output).height == 48
