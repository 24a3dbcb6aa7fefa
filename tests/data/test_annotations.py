"""Annotation readers: records, labels, stable class lists, missing Kinetics files."""

from __future__ import annotations

import shutil

import pytest

from octvideo.data import load_annotations
from octvideo.data.annotations import detect_format, kinetics_name


def test_lines_space_and_comma_relative_and_absolute(tmp_path, media):
    absolute = media["h264.mp4"]
    (tmp_path / "list.txt").write_text(
        f"# comment\nclips/a b.mp4 2\n\nclips/c.mp4,0\n{absolute} 1\n"
    )
    found = load_annotations(tmp_path / "list.txt", classes_file=tmp_path / "classes.txt")
    assert [(r.path, r.label) for r in found.records] == [
        (str(tmp_path / "clips/a b.mp4"), 2),
        (str(tmp_path / "clips/c.mp4"), 0),
        (str(absolute), 1),
    ]
    assert found.classes == ["0", "1", "2"]
    assert (tmp_path / "classes.txt").read_text() == "0\n1\n2\n"
    other = load_annotations(tmp_path / "list.txt", root="/data/k400")
    assert other.records[0].path == "/data/k400/clips/a b.mp4"


def test_lines_errors_name_the_line(tmp_path):
    (tmp_path / "bad.txt").write_text("a.mp4 1\nb.mp4 walking\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 'path label'"):
        load_annotations(tmp_path / "bad.txt")
    (tmp_path / "classes.txt").write_text("x\ny\n")
    (tmp_path / "big.txt").write_text("a.mp4 5\n")
    with pytest.raises(ValueError, match="label 5 is outside the 2 classes"):
        load_annotations(tmp_path / "big.txt", classes_file=tmp_path / "classes.txt")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_annotations(tmp_path / "nope.txt")


@pytest.fixture
def kinetics_tree(tmp_path, media):
    """K400-style: root/train/<class>/<id>_<s>_<e>.mp4 and a flat val folder, one row missing."""
    root = tmp_path / "k400"
    rows = [
        ("playing drums", "abc", 10, 20, "train", "train/playing_drums"),
        ("abseiling", "xyz", 0, 10, "train", "train/abseiling"),
        ("abseiling", "q-_9", 5, 15, "train", None),  # not downloaded
        ("zumba", "zzz", 1, 11, "val", "val"),
    ]
    lines = ["label,youtube_id,time_start,time_end,split,is_cc"]
    for label, yid, start, end, split, folder in rows:
        lines.append(f"{label},{yid},{start},{end},{split},0")
        if folder:
            (root / folder).mkdir(parents=True, exist_ok=True)
            name = f"{kinetics_name(yid, start, end)}.mp4"
            shutil.copy(media["h264.mp4"], root / folder / name)
    (tmp_path / "train.csv").write_text("\n".join(lines[:4]) + "\n")
    (tmp_path / "val.csv").write_text("\n".join([lines[0], lines[2], lines[4]]) + "\n")
    return tmp_path, root


def test_kinetics_csv_finds_files_and_counts_missing(kinetics_tree):
    folder, root = kinetics_tree
    assert kinetics_name("abc", "10.0", 20) == "abc_000010_000020"
    assert detect_format(folder / "train.csv") == "kinetics_csv"
    classes_file = folder / "classes.txt"
    train = load_annotations(folder / "train.csv", root=root, classes_file=classes_file)
    assert train.classes == ["abseiling", "playing drums"]
    assert [(r.path, r.label) for r in train.records] == [
        (str(root / "train/playing_drums/abc_000010_000020.mp4"), 1),
        (str(root / "train/abseiling/xyz_000000_000010.mp4"), 0),
    ]
    assert train.missing == 1 and train.missing_examples == ["q-_9_000005_000015"]
    # The saved class list is reused: a label absent from it is an error, not a new class.
    with pytest.raises(ValueError, match="'zumba' is not in the class list"):
        load_annotations(folder / "val.csv", root=root, classes_file=classes_file)


def test_folders_sorted_classes(tmp_path, media):
    for cls, names in {"walk": ["b.mp4", "a.webm"], "jump": ["c.avi"], "empty": []}.items():
        (tmp_path / cls).mkdir()
        for name in names:
            shutil.copy(media["h264.mp4"], tmp_path / cls / name)
    (tmp_path / "walk" / "notes.txt").write_text("not a video")
    found = load_annotations(tmp_path)
    assert found.classes == ["empty", "jump", "walk"]
    assert [(r.path.split("/")[-2:], r.label) for r in found.records] == [
        (["jump", "c.avi"], 1),
        (["walk", "a.webm"], 2),
        (["walk", "b.mp4"], 2),
    ]
