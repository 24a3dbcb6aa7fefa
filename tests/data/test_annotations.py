"""Annotation readers: records, labels, stable class lists, missing Kinetics files; bad
annotations as user errors (``AnnotationError``, a ``UsageError`` and a ``ValueError``); a
class-folder path read as given whatever ``data.root`` says; a warning for a classes file with
classes no video of the list uses."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from octvideo.data import annotations, load_annotations
from octvideo.data.annotations import (
    MAX_CLASSES,
    detect_format,
    kinetics_name,
    list_line,
    read_lines,
)
from octvideo.errors import AnnotationError, InputPathError, UsageError
from tests.data.media_helpers import split_tree
from tests.reliability.bad_input_matrix import NO_FILES, ODD_ENTRIES, make_no_file


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


def test_a_label_outside_the_class_list_names_where_the_list_came_from(tmp_path):
    # the library cannot know a given list is the training list's: it says "given"
    (tmp_path / "big.txt").write_text("a.mp4 0\nb.mp4 2\n")
    (tmp_path / "classes.txt").write_text("x\ny\n")
    tail = "use the classes file of this dataset (data.classes_file), or fix the labels"
    with pytest.raises(AnnotationError) as info:
        load_annotations(tmp_path / "big.txt", classes=["x", "y"])
    assert str(info.value) == (
        f"{tmp_path / 'big.txt'}: label 2 is outside the 2 classes of the given class list; {tail}"
    )
    with pytest.raises(AnnotationError) as info:
        load_annotations(tmp_path / "big.txt", classes_file=tmp_path / "classes.txt")
    assert str(info.value) == (
        f"{tmp_path / 'big.txt'}: label 2 is outside the 2 classes of classes file "
        f"{tmp_path / 'classes.txt'}; {tail}"
    )


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
    with pytest.raises(ValueError) as info:
        load_annotations(folder / "val.csv", root=root, classes_file=classes_file)
    assert str(info.value) == (
        f"{folder / 'val.csv'}:3: label 'zumba' is not among the 2 classes of classes file "
        f"{classes_file}; use the classes file of this dataset (data.classes_file), or pass the "
        "training CSV first"
    )


def test_kinetics_videos_are_found_through_folder_links_and_a_loop_is_named(tmp_path, caplog):
    # the index walked past links: a root whose split folders are links held no video
    store = tmp_path / "disk2"
    (store / "train" / "jump").mkdir(parents=True)
    (store / "train" / "jump" / "a_000000_000010.mp4").write_bytes(b"")
    (store / "train" / "jump" / "up").symlink_to("..")
    root = tmp_path / "k400"
    root.mkdir()
    (root / "train").symlink_to(store / "train")
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\njump,a,0,10,train\n"
    )
    found = load_annotations(tmp_path / "train.csv", root=root)
    assert [(r.path, r.label) for r in found.records] == [
        (str(root / "train/jump/a_000000_000010.mp4"), 0)
    ]
    assert found.missing == 0
    assert (
        f"{root}/train/jump/up is a link to {store / 'train'}, a folder it lies in (it would "
        "loop); not followed"
    ) in caplog.text


def test_a_label_outside_the_classes_given_names_where_they_came_from(kinetics_tree):
    folder, root = kinetics_tree
    train = load_annotations(folder / "train.csv", root=root)
    first = f"the first list, {folder / 'train.csv'}"
    named = re.escape(f"'zumba' is not among the 2 classes of {first};")
    with pytest.raises(AnnotationError, match=named):
        load_annotations(folder / "val.csv", root=root, classes=train.classes, classes_source=first)
    (folder / "tree" / "zumba").mkdir(parents=True)
    with pytest.raises(AnnotationError, match=named):
        load_annotations(folder / "tree", classes=train.classes, classes_source=first)


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


def test_class_folders_count_mpeg_and_ogg_files_as_videos(tmp_path):
    (tmp_path / "walk").mkdir()
    for name in ("a.mpg", "b.MPEG", "c.ogv", "notes.txt"):
        (tmp_path / "walk" / name).write_bytes(b"")
    found = load_annotations(tmp_path)
    assert [os.path.basename(r.path) for r in found.records] == ["a.mpg", "b.MPEG", "c.ogv"]


def test_class_folders_list_what_only_looks_like_a_video(tmp_path):
    # each was left out unseen: data check counted and reported none of them
    walk = tmp_path / "walk"
    walk.mkdir()
    (walk / "good.mp4").write_bytes(b"")
    for name, kind in ODD_ENTRIES.items():
        make_no_file(walk / name, kind)
    (walk / "folder.mp4").mkdir()
    (walk / "notes.txt").symlink_to("gone.txt")  # not named like a video: not listed
    found = load_annotations(tmp_path)
    assert [os.path.basename(r.path) for r in found.records] == [
        "dangling.mp4",
        "device.mp4",
        "fifo.mp4",
        "folder.mp4",
        "good.mp4",
        "loop.mp4",
    ]


@pytest.mark.parametrize("fmt", ["auto", "lines", "kinetics_csv"])
@pytest.mark.parametrize("kind", NO_FILES)
def test_a_list_that_is_no_file_is_named_as_what_it_is_unread(tmp_path, kind, fmt):
    # it was "does not exist"; a pipe read as lines or a Kinetics CSV waited for ever
    path = tmp_path / "list.txt"
    words = make_no_file(path, kind)
    with pytest.raises(AnnotationError) as info:
        load_annotations(path, fmt=fmt)
    assert str(info.value) == (
        f"annotation file {path} {words}, not a file; pass the file itself (save a piped one to "
        "a file first)"
    )


@pytest.mark.parametrize("kind", NO_FILES)
def test_a_classes_file_that_is_no_file_is_named_as_what_it_is(tmp_path, kind):
    classes = tmp_path / "classes.txt"
    words = make_no_file(classes, kind)
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    with pytest.raises(AnnotationError) as info:  # refused unwritten: it was written over
        load_annotations(tmp_path / "list.txt", classes_file=classes)
    assert str(info.value) == (
        f"classes file {classes} {words}, not a file; point data.classes_file at a file"
    )
    with pytest.raises(AnnotationError) as info:
        annotations.read_classes(classes)
    assert str(info.value).startswith(f"classes file {classes} {words}, not a file; ")
    assert not classes.is_file()  # never written over


def test_a_missing_list_still_does_not_exist(tmp_path):
    # the user's to fix (one line at the command line), and a FileNotFoundError to a library
    with pytest.raises(InputPathError, match="annotations .* do not exist"):
        load_annotations(tmp_path / "none.txt", fmt="lines")
    with pytest.raises(InputPathError, match=f"annotation file {tmp_path}/none.txt does not"):
        detect_format(tmp_path / "none.txt")
    with pytest.raises(FileNotFoundError):  # open's own error, which --csv readers name
        annotations.read_text(tmp_path / "none.txt")


@pytest.mark.parametrize("root", [None, "."])
def test_a_list_in_the_current_folder_resolves_inside_its_root(tmp_path, monkeypatch, root):
    # "." and "train/x.mp4" share no common path: every line was refused as leaving the root
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("train/a.mp4 0\nb.mp4 1\n")
    found = load_annotations("train.txt", root=root)
    assert [(r.path, r.label) for r in found.records] == [("train/a.mp4", 0), ("b.mp4", 1)]
    (tmp_path / "up.txt").write_text("../a.mp4 0\n")
    with pytest.raises(AnnotationError, match=r"up.txt:1: '../a.mp4' leaves the data root \."):
        load_annotations("up.txt", root=root)


@pytest.mark.parametrize("label", ["99999999999999999999999", "300000000", "100000", "9" * 5000])
def test_a_label_past_the_class_bound_is_refused_at_its_line(tmp_path, label):
    (tmp_path / "list.txt").write_text(f"a.mp4 0\nb.mp4 {label}\n")
    with pytest.raises(AnnotationError) as caught:  # before a class list is built from it
        read_lines(tmp_path / "list.txt")
    assert str(caught.value) == (
        f"{tmp_path / 'list.txt'}:2: label {label} is beyond the {MAX_CLASSES} classes octvideo "
        f"takes (labels 0 to {MAX_CLASSES - 1}); fix the label"
    )


def test_the_largest_label_under_the_bound_is_read(tmp_path):
    (tmp_path / "list.txt").write_text(f"a.mp4 {MAX_CLASSES - 1}\nb.mp4 -0\n")
    found = load_annotations(tmp_path / "list.txt")
    assert [r.label for r in found.records] == [MAX_CLASSES - 1, 0]
    assert len(found.classes) == MAX_CLASSES


def test_a_classes_file_past_the_class_bound_is_refused(tmp_path):
    (tmp_path / "classes.txt").write_text("".join(f"c{i}\n" for i in range(MAX_CLASSES + 1)))
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    with pytest.raises(AnnotationError, match=f"lists {MAX_CLASSES + 1} classes; octvideo takes"):
        load_annotations(tmp_path / "list.txt", classes_file=tmp_path / "classes.txt")


@pytest.mark.parametrize("label", ["--1", "²", "٣", "1.0", "+-2"])
def test_a_label_that_is_not_an_ascii_integer_is_one_error_naming_its_line(tmp_path, label):
    # "--1" and "²" passed str.isdigit and then failed int() with a bare ValueError
    (tmp_path / "list.txt").write_text(f"a.mp4 0\nb.mp4 {label}\n", encoding="utf-8")
    with pytest.raises(AnnotationError) as caught:
        load_annotations(tmp_path / "list.txt")
    assert str(caught.value) == (
        f"{tmp_path / 'list.txt'}:2: expected 'path label' (label an integer), got 'b.mp4 {label}'"
    )


def test_a_list_that_is_not_utf8_is_one_error_naming_its_line(tmp_path):
    (tmp_path / "list.txt").write_bytes("a.mp4 0\nb.mp4 1\ncaf\u00e9.mp4 1\n".encode("latin-1"))
    with pytest.raises(AnnotationError) as caught:
        load_annotations(tmp_path / "list.txt")
    assert str(caught.value) == (
        f"annotation file {tmp_path / 'list.txt'}:3: not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_a_file_over_the_text_bound_is_refused_unread(tmp_path, monkeypatch):
    # a video given as a list: refused after MAX_TEXT_BYTES + 1 bytes, not read whole
    monkeypatch.setattr(annotations, "MAX_TEXT_BYTES", 16)
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")  # 16 bytes: taken
    assert len(load_annotations(tmp_path / "list.txt").records) == 2
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 0\n")
    with pytest.raises(AnnotationError) as caught:
        load_annotations(tmp_path / "list.txt")
    assert str(caught.value).startswith(f"annotation file {tmp_path / 'list.txt'} is over ")


def test_a_classes_file_or_csv_that_is_not_utf8_is_one_error(tmp_path, kinetics_tree):
    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    (tmp_path / "classes.txt").write_bytes(b"walk\n\xffjump\n")
    with pytest.raises(AnnotationError, match=r"classes file .*classes.txt:2: not UTF-8 text"):
        load_annotations(tmp_path / "list.txt", classes_file=tmp_path / "classes.txt")
    folder, root = kinetics_tree
    csv = folder / "train.csv"
    csv.write_bytes(csv.read_bytes() + b"caf\xe9,x,0,10,train\n")
    with pytest.raises(AnnotationError, match=r"train.csv:5: not UTF-8 text \(byte 0xe9\)"):
        load_annotations(csv, root=root)


def test_a_bad_byte_after_a_byte_order_mark_is_named_at_its_line(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"\xef\xbb\xbfa.mp4 0\nb\xff.mp4 1\n")
    with pytest.raises(AnnotationError) as caught:
        load_annotations(tmp_path / "list.txt")
    assert str(caught.value) == (
        f"annotation file {tmp_path / 'list.txt'}:2: not UTF-8 text (byte 0xff); save it as UTF-8"
    )


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, kinetics_tree):
    # read as part of the first path, the mark made the first video a missing file
    (tmp_path / "list.txt").write_bytes("a.mp4 1\r\nb.mp4 0\r\n".encode("utf-8-sig"))
    (tmp_path / "classes.txt").write_bytes("walk\njump\n".encode("utf-8-sig"))
    found = load_annotations(tmp_path / "list.txt", classes_file=tmp_path / "classes.txt")
    assert [(r.path, r.label) for r in found.records] == [
        (str(tmp_path / "a.mp4"), 1),
        (str(tmp_path / "b.mp4"), 0),
    ]
    assert found.classes == ["walk", "jump"]
    folder, root = kinetics_tree
    csv = folder / "train.csv"
    plain = load_annotations(csv, root=root)
    csv.write_bytes(csv.read_bytes().decode().encode("utf-8-sig"))
    assert detect_format(csv) == "kinetics_csv"
    assert load_annotations(csv, root=root) == plain


def test_kinetics_times_that_are_not_numbers_are_one_error(tmp_path, kinetics_tree):
    folder, root = kinetics_tree
    csv = folder / "train.csv"
    csv.write_text(csv.read_text() + "walk,x,inf,10,train,0\n")
    with pytest.raises(AnnotationError, match=r"train.csv:5: time_start 'inf' and time_end '10' "):
        load_annotations(csv, root=root)


def test_a_kinetics_header_with_spaces_is_read_as_data_prepare_checks_it(kinetics_tree):
    folder, root = kinetics_tree
    csv = folder / "train.csv"
    plain = load_annotations(csv, root=root)
    header, rest = csv.read_text().split("\n", 1)
    csv.write_text(header.replace(",", ", ") + "\n" + rest)
    assert load_annotations(csv, root=root) == plain


def test_a_kinetics_csv_with_spaces_between_fields_reads_as_the_plain_one(kinetics_tree):
    # the header was stripped and the rows were not: every youtube_id read " xyz", no video
    # matched, and data prepare wrote an empty list
    folder, root = kinetics_tree
    rows = [
        ["label", "youtube_id", "time_start", "time_end", "split"],
        ['"cooking, eggs"', "abc", "10", "20", "train"],
        ["massaging person's head", "xyz", "0", "10", "train"],
    ]
    csv = folder / "spaced.csv"
    csv.write_text("".join(",".join(row) + "\n" for row in rows))
    plain = annotations.read_kinetics_rows(csv)
    found = load_annotations(csv, root=root)
    assert found.classes == ["cooking, eggs", "massaging person's head"]
    assert [r.label for r in found.records] == [0, 1]
    for spaced in (", ", ",   "):  # a space after a comma does not hide a quote
        csv.write_text("".join(spaced.join(row) + " \n" for row in rows))
        assert annotations.read_kinetics_rows(csv) == plain, repr(spaced)
        assert load_annotations(csv, root=root) == found


def test_a_kinetics_label_a_classes_file_cannot_hold_is_refused_at_its_line(kinetics_tree):
    # read as two lines of classes.txt, "multi\nline" shifted every later class by one
    folder, root = kinetics_tree
    csv = folder / "train.csv"
    csv.write_text(csv.read_text() + '"multi\nline",x,0,10,train,0\nwalk,y,0,10,train,0\n')
    with pytest.raises(AnnotationError) as info:
        load_annotations(csv, root=root, classes_file=folder / "classes.txt")
    assert str(info.value) == (
        f"annotation file {csv}:5: the label 'multi\\nline' holds a line break, which a classes "
        "file (one name a line) cannot hold; fix the label (it becomes a line of classes.txt)"
    )
    assert not (folder / "classes.txt").exists()


def test_a_class_listed_twice_is_named_with_both_lines(tmp_path):
    (tmp_path / "classes.txt").write_text("walk\n\njump\n walk\n")
    with pytest.raises(AnnotationError) as info:
        annotations.read_classes(tmp_path / "classes.txt")
    assert str(info.value) == (
        f"classes file {tmp_path / 'classes.txt'} lists the class 'walk' twice (lines 1 and 4); "
        "remove one (a class's place in the file is its label)"
    )


def test_a_classes_file_with_carriage_returns_alone_is_refused_at_its_line(tmp_path):
    (tmp_path / "classes.txt").write_bytes(b"walk\rjump\rrun\r")
    with pytest.raises(AnnotationError) as info:
        annotations.read_classes(tmp_path / "classes.txt")
    assert str(info.value) == (
        f"classes file {tmp_path / 'classes.txt'} line 1: the name 'walk\\rjump\\rrun' holds a "
        "carriage return, which a classes file (one name a line) refuses as a line end; are its "
        "lines ended by \\r alone? save it with \\n line ends"
    )


def test_a_classes_file_an_earlier_octvideo_wrote_keeps_reading(tmp_path):
    # earlier writers joined the names with "\n" as they were: a run whose class name held a tab
    # could no longer be tested or resumed once reading refused control characters
    names = ["move\tleft", "ju\x07mp", "wa\x00lk", "a\x1cb", "x\u2028y", "wa\ufefflk", "run"]
    (tmp_path / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    assert annotations.read_classes(tmp_path / "classes.txt") == names
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 6\n")
    found = load_annotations(tmp_path / "list.txt", classes_file=tmp_path / "classes.txt")
    assert found.classes == names and [r.label for r in found.records] == [0, 6]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("multi\nline", "holds a line break, which a classes file (one name a line) cannot hold"),
        ("multi\r\nline", "holds a line break, which a classes file (one name a line) cannot hold"),
        ("wa\rlk", "holds a carriage return, which a classes file (one name a line) refuses as "),
        ("walk ", "has white space around it, which a classes file (one name a line) drops"),
        ("\xa0walk", "has white space around it, which a classes file (one name a line) drops"),
        ("", "is blank"),
        ("\ufeffwalk", "starts with a byte-order mark (U+FEFF), which is dropped where it starts "),
        ("walk\udcff", "holds a byte that is not UTF-8 text, which a classes file (UTF-8) cannot"),
        ("jump", "is listed twice"),
    ],
    ids=["lf", "crlf", "cr", "space", "nbsp", "blank", "bom", "not-utf8", "twice"],
)
def test_a_class_name_that_would_not_read_back_is_refused_unwritten(tmp_path, name, problem):
    # written as it was, "multi\nline" read back as two classes and "walk " as "walk"
    path = tmp_path / "classes.txt"
    with pytest.raises(AnnotationError) as info:
        annotations.write_classes(path, ["jump", name])
    assert str(info.value).startswith(f"classes file {path}: the class {name!r} {problem}")
    assert str(info.value).endswith("; rename that class in the data (its label or folder)")
    assert not path.exists()


def test_class_names_read_back_as_written(tmp_path):
    names = ["petting animal (not cat)", "café", "a,b", "#x", "٣", "x\u200dy", "\U0001f600"]
    names += ["move\tleft", "wa\x00lk", "a\x1cb\x85c", "x\u2028y\u2029z\x0bw\x0cv", "wa\ufefflk"]
    annotations.write_classes(tmp_path / "classes.txt", names)
    assert annotations.read_classes(tmp_path / "classes.txt") == names


def test_annotation_errors_are_usage_errors_and_value_errors(tmp_path, media):
    (tmp_path / "classes.txt").write_text("jump\nwalk\n")
    cases = {
        "bad.txt": "a.mp4 walking\n",  # malformed line
        "big.txt": "a.mp4 2\n",  # label outside the classes file
        "neg.txt": "a.mp4 -1\n",
        "out.txt": "../../a.mp4 0\n",  # leaves the data root
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(AnnotationError) as info:
            load_annotations(tmp_path / name, classes_file=tmp_path / "classes.txt")
        assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)
    (tmp_path / "tree" / "yoga").mkdir(parents=True)  # a folder not in the classes file
    with pytest.raises(AnnotationError) as info:
        load_annotations(tmp_path / "tree", classes_file=tmp_path / "classes.txt")
    assert str(info.value) == (
        f"{tmp_path / 'tree'}: folder 'yoga' is not among the 2 classes of classes file "
        f"{tmp_path / 'classes.txt'}; use the classes file of this dataset (data.classes_file), "
        "or remove the folder"
    )
    with pytest.raises(AnnotationError, match="is not a folder"):
        load_annotations(tmp_path / "bad.txt", fmt="folders")


@pytest.mark.parametrize("fmt", ["lines", "kinetics_csv"])
def test_a_folder_given_to_a_file_format_is_one_error_naming_the_format(tmp_path, media, fmt):
    root = split_tree(tmp_path, media)
    with pytest.raises(AnnotationError) as info:
        load_annotations(root / "val", fmt=fmt)
    assert str(info.value).startswith(f"{root / 'val'} is a folder: the {fmt} format reads ")


def test_a_classes_file_that_is_a_pipe_or_folder_is_refused_unwritten(tmp_path, media):
    # a FIFO or device was not read (is_file() is False) and was replaced by a regular file
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "folder").mkdir()
    for name, what in (("pipe", "a pipe"), ("folder", "a directory")):
        path = tmp_path / name
        with pytest.raises(AnnotationError, match=f"classes file {path} is {what}, not a file; "):
            load_annotations(tmp_path / "list.txt", classes_file=path)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_a_list_line_reads_back_as_the_path_written(tmp_path):
    # prepare wrote "train/b/take 2, final.mp4 0", which was split at its comma and refused;
    # a path starting with "#" was dropped as a comment
    paths = [
        "train/b/take 2, final.mp4",
        "#x.mp4",
        " lead.mp4",
        "a,b.mp4",
        "take, 5.mp4",
        "t\tb.mp4",
    ]
    (tmp_path / "list.txt").write_text("".join(list_line(p, i) for i, p in enumerate(paths)))
    found = read_lines(tmp_path / "list.txt")
    assert found == [(str(tmp_path / p), i) for i, p in enumerate(paths)]


def test_comma_lists_still_split_at_the_comma_before_the_label(tmp_path):
    (tmp_path / "list.txt").write_text("a.mp4,3\nb c.mp4, 4\nd.mp4 , 5\n")
    found = read_lines(tmp_path / "list.txt")
    assert found == [
        (str(tmp_path / "a.mp4"), 3),
        (str(tmp_path / "b c.mp4"), 4),
        (str(tmp_path / "d.mp4"), 5),
    ]


@pytest.mark.parametrize("path", ["new\nline.mp4", "trailing.mp4 ", "trailing.mp4,"])
def test_a_path_a_list_cannot_hold_is_refused_when_writing(path):
    with pytest.raises(ValueError, match="a 'path label' list"):
        list_line(path, 0)


def test_the_folder_given_is_the_folder_read(tmp_path, media):
    root = split_tree(tmp_path, media)
    # data.root=my/train used to make the validation folder my/val read my/train
    found = load_annotations(root / "val", root=root / "train")
    assert [r.path for r in found.records] == [
        str(root / "val/jump/val_jump.mp4"),
        str(root / "val/walk/val_walk.mp4"),
    ]
    # data.root=my used to make the classes "train" and "val"
    found = load_annotations(root / "train", root=root, fmt="folders")
    assert found.classes == ["jump", "walk"]


def test_a_classes_file_of_another_dataset_is_named_in_a_warning(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("jump\nwalk\nabseiling\nzumba\nyoga\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "train.txt", classes_file=classes)
    assert found.classes == ["jump", "walk", "abseiling", "zumba", "yoga"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert str(classes) in message and "3 of its 5 classes" in message
    assert "'abseiling', 'zumba', 'yoga'" in message


def test_no_warning_when_every_class_is_used_or_the_classes_come_from_training(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("c.mp4 1\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("jump\nwalk\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        train = load_annotations(tmp_path / "train.txt", classes_file=classes)
        # a validation list needs not hold every class of the training list
        load_annotations(tmp_path / "val.txt", classes_file=classes, classes=train.classes)
        # a classes file written from the list itself
        load_annotations(tmp_path / "train.txt", classes_file=tmp_path / "new.txt")
    assert not caplog.records


def test_the_shipped_class_list_is_never_offered_for_deletion(tmp_path, caplog):
    import octvideo

    assert Path(octvideo.__file__).resolve().parent == annotations.PACKAGE
    shipped = annotations.PACKAGE / "data" / "kinetics400_classes.txt"
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "train.txt", classes_file=shipped)
    assert len(found.classes) == 400
    [record] = caplog.records
    message = record.getMessage()
    assert "398 of its 400 classes" in message and "ships with octvideo" in message
    assert "model.num_classes" in message and "delete" not in message


@pytest.mark.parametrize("via", ["direct", "dotdot", "link"])
def test_class_names_are_never_written_into_the_package(tmp_path, monkeypatch, via):
    package = tmp_path / "site-packages" / "octvideo"
    (package / "data").mkdir(parents=True)
    monkeypatch.setattr(annotations, "PACKAGE", package)
    if via == "direct":
        target = package / "data" / "classes.txt"
    elif via == "dotdot":
        (tmp_path / "elsewhere").mkdir()
        target = tmp_path / "elsewhere" / ".." / "site-packages" / "octvideo" / "classes.txt"
    else:
        (tmp_path / "link").symlink_to(package / "data")
        target = tmp_path / "link" / "classes.txt"
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    with pytest.raises(UsageError) as err:
        load_annotations(tmp_path / "train.txt", classes_file=target)
    message = str(err.value)
    assert message.startswith(f"classes file {target} is inside the installed octvideo package")
    assert "\n" not in message and "data.classes_file" in message
    assert sorted(p.name for p in package.rglob("*")) == ["data"]
    # a path outside the package is written as before
    load_annotations(tmp_path / "train.txt", classes_file=tmp_path / "classes.txt")
    assert (tmp_path / "classes.txt").read_text() == "0\n1\n"


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("fmt", ["lines", "kinetics_csv"])
def test_a_repeated_video_is_listed_once_and_counted_in_one_warning(tmp_path, caplog, fmt):
    for stem in ("aaa_000010_000020", "bbb_000000_000010"):
        (tmp_path / f"{stem}.mp4").write_bytes(b"")
    if fmt == "lines":
        text = "aaa_000010_000020.mp4 0\nbbb_000000_000010.mp4 1\n./aaa_000010_000020.mp4 0\n"
        name = "train.txt"
    else:
        rows = ["jump,aaa,10,20", "run,bbb,0,10", "jump,aaa,10.0,20", "jump,gone,0,10"]
        text = "label,youtube_id,time_start,time_end\n" + "\n".join(rows * 2) + "\n"
        name = "train.csv"
    (tmp_path / name).write_text(text)
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / name)
    assert sorted(Path(r.path).name for r in found.records) == [
        "aaa_000010_000020.mp4",
        "bbb_000000_000010.mp4",
    ]
    repeats = [m for m in warnings_of(caplog) if ": dropped " in m]
    if fmt == "lines":
        assert repeats == [
            f"{tmp_path / name}: dropped 1 line that repeats an earlier one (the same video and "
            "label, e.g. line 3 repeats line 1); the other 2 name distinct videos"
        ]
    else:  # the missing video is counted once too
        assert found.missing == 1
        assert repeats == [
            f"{tmp_path / name}: dropped 5 rows that repeat an earlier one (the same video and "
            "label, e.g. line 4 repeats line 2); the other 3 name distinct videos"
        ]


@pytest.mark.parametrize("fmt", ["lines", "kinetics_csv"])
def test_a_video_under_two_labels_is_refused_naming_both_lines(tmp_path, fmt):
    if fmt == "lines":
        (tmp_path / "l").write_text("a.mp4 0\nb.mp4 1\na.mp4 1\n")
        line = f"{tmp_path / 'l'}:3: a.mp4 is labelled 1 here and 0 at line 1;"
    else:
        (tmp_path / "l").write_text("label,youtube_id,time_start,time_end\njump,a,1,2\nrun,a,1,2\n")
        line = f"annotation file {tmp_path / 'l'}:3: a_000001_000002 is labelled 'run' here and "
        line += "'jump' at line 2;"
    with pytest.raises(AnnotationError) as info:
        load_annotations(tmp_path / "l", fmt=fmt)
    assert str(info.value).startswith(line) and "remove one" in str(info.value)
    if fmt == "kinetics_csv":  # prepare reads the rows before it encodes: refused there too
        with pytest.raises(AnnotationError, match="labelled 'run' here"):
            annotations.read_kinetics_rows(tmp_path / "l", "--csv")


def test_hidden_and_macos_folders_are_no_classes_and_an_empty_class_is_named(tmp_path, caplog):
    for folder in ("jump/a.mp4", "run/b.mp4", ".ipynb_checkpoints/c.mp4", "__MACOSX/._a.mp4"):
        (tmp_path / "ff" / folder).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ff" / folder).write_bytes(b"")
    (tmp_path / "ff" / "walk").mkdir()
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "ff")
    assert found.classes == ["jump", "run", "walk"]
    assert [(Path(r.path).name, r.label) for r in found.records] == [("a.mp4", 0), ("b.mp4", 1)]
    assert warnings_of(caplog) == [
        f"{tmp_path / 'ff'}: skipped 2 folders that cannot be a class (hidden, __MACOSX or "
        "@eaDir: '.ipynb_checkpoints')",
        f"{tmp_path / 'ff'}: 1 class folder holds no video ('walk'); each stays a class, with no "
        "video to learn",
    ]


def test_hidden_files_in_class_folders_are_no_videos_and_one_line_counts_them(tmp_path, caplog):
    # a tree copied off a Mac: an AppleDouble ._x.mp4 beside each video was a record, a bad
    # video in data check, thousands of them in Kinetics
    for name in ("jump/a.mp4", "jump/._a.mp4", "jump/.b.mkv", "run/._c.mp4"):
        (tmp_path / "ff" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ff" / name).write_bytes(b"\x00\x05\x16\x07")  # AppleDouble's magic
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "ff")
    assert found.classes == ["jump", "run"]
    assert [(Path(r.path).name, r.label) for r in found.records] == [("a.mp4", 0)]
    assert warnings_of(caplog) == [
        f"{tmp_path / 'ff'}: skipped 3 hidden files named like videos (dot files such as the "
        "AppleDouble ._x.mp4 that macOS writes beside each file it copies: no video; e.g. "
        f"{tmp_path / 'ff' / 'jump' / '._a.mp4'})",
        f"{tmp_path / 'ff'}: 1 class folder holds no video ('run'); each stays a class, with no "
        "video to learn",
    ]


def test_class_names_meet_in_their_composed_unicode_form(tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # NFC, and NFD as macOS names folders
    (tmp_path / "classes.txt").write_text(f"abseiling\n{composed}\n")
    (tmp_path / "val" / decomposed).mkdir(parents=True)
    (tmp_path / "val" / decomposed / "a.mp4").write_bytes(b"")
    found = load_annotations(tmp_path / "val", classes_file=tmp_path / "classes.txt")
    assert [r.label for r in found.records] == [1]
    (tmp_path / "v.csv").write_text(f"label,youtube_id,time_start,time_end\n{decomposed},a,1,2\n")
    (tmp_path / "a_000001_000002.mp4").write_bytes(b"")
    found = load_annotations(tmp_path / "v.csv", classes_file=tmp_path / "classes.txt")
    assert [r.label for r in found.records] == [1]
    found = load_annotations(tmp_path / "val")  # a class list made from the folders is NFC
    assert found.classes == [composed]
    (tmp_path / "two.txt").write_text(f"{composed}\n{decomposed}\n")
    with pytest.raises(AnnotationError, match=r"twice \(lines 1 and 2, in two Unicode forms"):
        annotations.read_classes(tmp_path / "two.txt")


def test_classes_only_the_validation_list_has_are_named_as_such(tmp_path, caplog):
    (tmp_path / "classes.txt").write_text("jump\nrun\nzumba\nother\n")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("c.mp4 0\nd.mp4 2\n")
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        load_annotations(
            tmp_path / "train.txt",
            classes_file=tmp_path / "classes.txt",
            other_lists=[tmp_path / "val.txt"],
        )
    first, second = warnings_of(caplog)
    assert first == (
        f"classes file {tmp_path / 'classes.txt'}: 1 of its classes (e.g. 'zumba') has videos "
        f"in {tmp_path / 'val.txt'} but none in {tmp_path / 'train.txt'}; the model gets no "
        "training video of it"
    )
    assert "1 of its 4 classes are used by no video" in second and "'other'" in second


def test_an_unlabelled_kinetics_csv_is_refused_as_a_test_split_unless_labels_are_not_needed(
    tmp_path,
):
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\na,1,2,test\n")
    (tmp_path / "a_000001_000002.mp4").write_bytes(b"")
    with pytest.raises(AnnotationError, match="has no label column: an unlabelled test split"):
        load_annotations(tmp_path / "test.csv")
    found = load_annotations(tmp_path / "test.csv", need_labels=False)
    assert [(Path(r.path).name, r.label) for r in found.records] == [("a_000001_000002.mp4", -1)]
    assert found.classes == []


def test_a_list_of_paths_alone_is_refused_in_one_line_unless_labels_are_not_needed(tmp_path):
    # data prepare's list of an unlabelled CSV: data check reads it, training and testing name
    # the label it lacks
    (tmp_path / "test.txt").write_text("test/a b.mp4\ntest/c.MKV\ntest/c.MKV\n")
    with pytest.raises(AnnotationError) as caught:
        load_annotations(tmp_path / "test.txt")
    assert str(caught.value) == (
        f"{tmp_path / 'test.txt'}:1: 'test/a b.mp4' has no label: training and testing need "
        "'path label' lines (label an integer); a list of paths alone, as data prepare writes "
        "for an unlabelled CSV, is an input for octvideo predict and data check"
    )
    found = load_annotations(tmp_path / "test.txt", need_labels=False)
    assert [(r.path, r.label) for r in found.records] == [
        (str(tmp_path / "test" / "a b.mp4"), -1),
        (str(tmp_path / "test" / "c.MKV"), -1),
    ]
    assert found.classes == []
    (tmp_path / "mixed.txt").write_text("a.mp4 0\nb.mp4\n")  # a label forgotten
    with pytest.raises(AnnotationError, match=r"mixed.txt:2: 'b.mp4' has no label and line 1"):
        load_annotations(tmp_path / "mixed.txt", need_labels=False)
    with pytest.raises(AnnotationError, match=r"mixed.txt:2: 'b.mp4' has no label: training"):
        load_annotations(tmp_path / "mixed.txt")


def test_kinetics_videos_are_not_searched_in_folders_that_are_no_class_and_copies_are_named(
    tmp_path, caplog
):
    root = tmp_path / "raw"
    for name in (
        ".Trash-1000/files/aaa_000010_000020.mp4",  # a wrong copy in the trash
        "__MACOSX/train/jump/._aaa_000010_000020.mp4",
        "train/jump/aaa_000010_000020.mp4",
        "backup/ccc_000000_000010.mp4",  # a copy kept elsewhere in the tree
        "train/run/ccc_000000_000010.mp4",
        ".hidden/ddd_000000_000010.mp4",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    (root / "views").symlink_to("train")  # every video reached twice, each one file: no copy
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end\njump,aaa,10,20\nrun,ccc,0,10\njump,ddd,0,10\n"
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "train.csv", root=root)
    assert [(r.path, r.label) for r in found.records] == [
        (str(root / "train/jump/aaa_000010_000020.mp4"), 0),
        (str(root / "backup/ccc_000000_000010.mp4"), 1),
    ]
    assert found.missing == 1
    assert warnings_of(caplog) == [
        f"{tmp_path / 'train.csv'}: 1 of its videos have two or more files under {root}; the "
        f"first found (folders in name order) is used, e.g. for ccc_000000_000010 "
        f"{root / 'backup/ccc_000000_000010.mp4'}, not {root / 'train/run/ccc_000000_000010.mp4'}"
        "; move or remove the other copies",
        f"{tmp_path / 'train.csv'}: 1 of 3 rows have no video file under {root} (e.g. "
        f"ddd_000000_000010); 3 folders that are no class (hidden, __MACOSX or @eaDir, e.g. "
        f"{root / '.Trash-1000'}) were not searched",
    ]


def test_a_video_reached_by_two_paths_is_one_video(tmp_path, caplog):
    (tmp_path / "val" / "jump").mkdir(parents=True)
    (tmp_path / "val" / "jump" / "a.mp4").write_bytes(b"a")
    (tmp_path / "val" / "run").mkdir()
    (tmp_path / "val" / "run" / "b.mp4").write_bytes(b"b")
    (tmp_path / "val" / "linked").symlink_to("jump")
    absolute = tmp_path / "val" / "jump" / "a.mp4"
    (tmp_path / "dup.txt").write_text(
        f"val/jump/a.mp4 0\nval/linked/a.mp4 0\n{absolute} 0\nval/run/../jump/a.mp4 0\n"
        "val/run/b.mp4 1\nval/gone.mp4 1\nval/run/../gone.mp4 1\n"
    )
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        found = load_annotations(tmp_path / "dup.txt")
    assert [(Path(r.path).name, r.label) for r in found.records] == [
        ("a.mp4", 0),
        ("b.mp4", 1),
        ("gone.mp4", 1),
    ]
    assert warnings_of(caplog) == [
        f"{tmp_path / 'dup.txt'}: dropped 4 lines that repeat an earlier one (the same video and "
        "label, e.g. line 2 repeats line 1); the other 3 name distinct videos"
    ]
    for path, same in (("val/linked/a.mp4", f" (as {absolute}: the same file)"), (absolute, "")):
        (tmp_path / "two.txt").write_text(f"val/jump/a.mp4 0\n{path} 1\n")
        with pytest.raises(AnnotationError) as info:
            load_annotations(tmp_path / "two.txt")
        assert str(info.value) == (
            f"{tmp_path / 'two.txt'}:2: {path} is labelled 1 here and 0 at line 1{same}; a video "
            "has one label: remove one line"
        )


def test_the_walk_skips_the_excluded_folder_however_reached_and_links_to_what_holds_it(
    tmp_path, caplog
):
    top = tmp_path / "top"
    src, dst, other = top / "src", top / "dst", top / "other"
    for folder in (src / "train", dst / "train", other):
        folder.mkdir(parents=True)
    (src / "train" / "a.mp4").write_bytes(b"")
    (dst / "train" / "b.mp4").write_bytes(b"")
    (other / "out").symlink_to("../dst")  # DST reached past a link to a folder beside it
    (src / "other").symlink_to(other)
    (src / "up").symlink_to("..")  # holds SRC and DST
    (src / "disk").symlink_to(tmp_path / "top" / "dst" / "..")  # the same, spelled otherwise
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        walked = list(annotations.walk_tree(src, exclude=dst, exclude_name="DST"))
    assert [(os.path.relpath(f, src), files) for f, files in walked] == [
        (".", []),
        ("other", []),
        ("train", ["a.mp4"]),
    ]
    assert warnings_of(caplog) == [
        f"{src}/disk is a link to {top}, a folder that holds {src}; not followed",
        f"{src}/up is a link to {top}, a folder that holds {src}; not followed",
        f"{src}/other/out is a link to {dst}, DST {dst} or one in it; not followed",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        list(annotations.walk_tree(other, exclude=dst, exclude_name="DST"))
        list(annotations.walk_tree(top / "x", exclude=dst))  # no such folder: one line
    assert warnings_of(caplog) == [
        f"{other}/out is a link to {dst}, DST {dst} or one in it; not followed",
        f"{top / 'x'}: 1 folder could not be read and was stepped over (e.g. {top / 'x'}: No "
        "such file or directory)",
    ]


def test_the_walk_steps_over_a_folder_it_cannot_read_with_one_warning(
    tmp_path, caplog, monkeypatch
):
    for name in ("a", "b", "c", "d"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.mp4").write_bytes(b"")
    stat = os.stat

    def failing_stat(path, *args, **kwargs):  # a link into /proc whose target is gone
        if os.fspath(path) == str(tmp_path / "c"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", failing_stat)
    walked = []
    with caplog.at_level(logging.WARNING, logger="octvideo.data.annotations"):
        for folder, files in annotations.walk_tree(tmp_path):
            walked += files
            if folder == str(tmp_path):
                shutil.rmtree(tmp_path / "b")  # removed after it was listed
    assert walked == ["a.mp4", "d.mp4"]
    assert warnings_of(caplog) == [
        f"{tmp_path}: 2 folders could not be read and were stepped over (e.g. {tmp_path / 'c'}: "
        "No such file or directory)"
    ]
