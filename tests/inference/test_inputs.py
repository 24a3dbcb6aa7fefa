"""Input discovery (``expand_inputs``): files as given, folders searched for videos, input and
annotation lists read as paths; what cannot be looked at is kept, to fail alone."""

from __future__ import annotations

import os

import pytest

from octvideo.data import load_annotations
from octvideo.inference import Predictor
from octvideo.inference.inputs import (
    RENDER_EXTENSIONS,
    RENDER_SUFFIX,
    expand_inputs,
    folder_input_error,
    is_render_name,
)
from tests.reliability.bad_input_matrix import NO_FILES, make_no_file


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint)


def test_folder_and_list_inputs(videos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# videos\n{videos['short']}\n{videos['odd'].name}\n")
    expanded = expand_inputs([listing])
    assert expanded == [str(videos["short"]), str(tmp_path / videos["odd"].name)]
    folder = expand_inputs([videos["short"].parent])
    assert str(videos["short"]) in folder and all(p.endswith((".mp4",)) for p in folder)


def test_a_folder_given_to_predict_yields_the_videos_data_commands_count(tmp_path):
    (tmp_path / "walk").mkdir()
    for name in ("a.mpg", "b.MPEG", "c.ogv", "d.m4v", "e.mp4", "notes.txt", "song.mp3"):
        (tmp_path / "walk" / name).write_bytes(b"")
    assert expand_inputs([tmp_path]) == [r.path for r in load_annotations(tmp_path).records]


@pytest.mark.parametrize(
    ("names", "lines", "want"),
    [
        # "path label" lines, as `octvideo data synth` writes them, were taken whole: every
        # video "did not exist"; a file named "d 7" is its whole line; a missing one is kept,
        # to be reported as failed by its path
        (
            ["a.mp4", "b c.mp4", "d 7"],
            "val/a.mp4 0\nval/b c.mp4 12\nval/d 7\nval/missing.mp4 3\n",
            ["a.mp4", "b c.mp4", "d 7", "missing.mp4"],
        ),
        # "path,label" lines (a comma list) were taken whole, where test and train split them
        (
            ["a.mp4", "take 2, final.mp4"],
            "val/a.mp4,4\nval/take 2, final.mp4 5\n",
            ["a.mp4", "take 2, final.mp4"],
        ),
    ],
    ids=["space", "comma"],
)
def test_annotation_lists_are_input_lists_split_as_training_splits_them(
    tmp_path, names, lines, want
):
    (tmp_path / "val").mkdir()
    for name in names:
        (tmp_path / "val" / name).write_bytes(b"")
    listing = tmp_path / "val.txt"
    listing.write_text(lines)
    assert expand_inputs([listing]) == [str(tmp_path / "val" / name) for name in want]


def test_a_folder_lists_every_entry_named_like_a_video_to_fail_as_alone(predictor, tmp_path):
    folder = tmp_path / "videos"
    (folder / "links").mkdir(parents=True)
    links = folder / "links"
    (links / "dangling.mp4").symlink_to("nope")
    (links / "l1.mp4").symlink_to("l2.mp4")
    (links / "l2.mp4").symlink_to("l1.mp4")
    (links / "zero.mp4").symlink_to("/dev/zero")
    os.mkfifo(links / "fifo.mp4")
    (folder / "empty.mp4").mkdir()  # a folder named like a video, holding none
    (folder / "holder.mp4").mkdir()  # one holding a video: searched, as given alone
    (folder / "holder.mp4" / "inner.mp4").write_bytes(b"")
    (folder / "notes.txt").write_bytes(b"")
    found = expand_inputs([folder])
    names = ["empty.mp4", "holder.mp4/inner.mp4", "links/dangling.mp4", "links/fifo.mp4"]
    names += ["links/l1.mp4", "links/l2.mp4", "links/zero.mp4"]
    assert found == [str(folder / name) for name in names]
    for path in found:
        alone = predictor.predict(path)
        assert not alone.ok
        assert alone.error == predictor.predict(expand_inputs([path])[0]).error


def test_a_folder_search_leaves_out_the_renders_predict_writes(tmp_path):
    # --render FILE writes any render extension: a.pred.mkv was predicted by a folder rerun
    renders = ["a.pred.mp4", "a.2.pred.mp4", "b~1f2e3d4c.pred.mp4", "c.PRED.MP4"]
    renders += [f"d.pred{ext}" for ext in RENDER_EXTENSIONS] + ["e.Pred.MKV"]
    videos = ["a.mkv", "a.mp4", "f.preds.mkv", "g.pred.mp4.mkv", "pred.avi"]
    for name in renders + videos:
        (tmp_path / name).write_bytes(b"")
    assert RENDER_SUFFIX == ".pred.mp4"
    assert all(is_render_name(name) for name in renders)
    assert expand_inputs([tmp_path]) == [str(tmp_path / name) for name in videos]
    # named, a render is an input like any file
    assert expand_inputs([tmp_path / "a.pred.mp4"]) == [str(tmp_path / "a.pred.mp4")]


@pytest.mark.parametrize("kind", NO_FILES)
def test_an_input_list_that_is_no_file_is_named_for_what_it_is(tmp_path, kind):
    # it was taken for a video: "FileNotFoundError: ... not a video file"
    path = tmp_path / "inputs.txt"
    what = make_no_file(path, kind)
    with pytest.raises(ValueError) as err:
        expand_inputs([path])
    assert str(err.value) == f"input list {path} {what}, not a file; give the file itself"


def test_an_input_whose_name_is_too_long_to_look_at_is_kept(tmp_path):
    long = tmp_path / ("a" * 300 + ".mp4")
    assert expand_inputs([long]) == [str(long)]


def test_a_folder_search_skips_what_data_commands_skip_and_says_so_in_one_line(tmp_path, caplog):
    # a folder copied from a Mac or a USB stick failed with exit status 1 on its AppleDouble
    # files, and the trash's deleted videos were predicted
    (tmp_path / "sub" / "__MACOSX").mkdir(parents=True)
    (tmp_path / ".Trash-1000" / "files").mkdir(parents=True)
    (tmp_path / "@eaDir").mkdir()
    for name in (
        "clip.mp4",
        "._clip.mp4",
        "sub/b.mp4",
        "sub/__MACOSX/._b.mp4",
        ".Trash-1000/files/deleted.mp4",
        "@eaDir/clip.mp4",
        ".notes.txt",  # hidden, but named like no video: not counted
    ):
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level("WARNING", logger="octvideo.inference.inputs"):
        assert expand_inputs([tmp_path]) == [
            str(tmp_path / "clip.mp4"),
            str(tmp_path / "sub/b.mp4"),
        ]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: skipped 3 folders (hidden, __MACOSX or @eaDir, as data prepare and check "
        f"skip: {str(tmp_path / '.Trash-1000')!r}) and 1 hidden file "
        f"({str(tmp_path / '._clip.mp4')!r}); give one by name to predict it"
    ]
    # named, a hidden file or a skipped folder is an input like any other, and says nothing
    caplog.clear()
    hidden = [str(tmp_path / "._clip.mp4"), str(tmp_path / ".Trash-1000" / "files")]
    assert expand_inputs(hidden) == [hidden[0], str(tmp_path / ".Trash-1000/files/deleted.mp4")]
    assert not caplog.records


def test_a_folder_without_videos_is_kept_to_fail_in_one_line_that_says_so(tmp_path, caplog):
    # a warning "no video files under emp", then the record's "IsADirectoryError: emp is a
    # directory, not a video file": two lines that contradicted each other
    empty, holder = tmp_path / "emp", tmp_path / "holder"
    (empty / "sub").mkdir(parents=True)
    (empty / "self").symlink_to(empty)  # a link back up, not followed
    (holder / "named.mp4").mkdir(parents=True)  # named like a video, holding none
    (holder / "videos").mkdir()
    (holder / "videos" / "a.mp4").write_bytes(b"")
    (holder / "link.mp4").symlink_to(holder / "videos")  # a link, not followed by the search
    with caplog.at_level("WARNING", logger="octvideo.inference.inputs"):
        found = expand_inputs([empty, holder])
    assert not caplog.records
    named, link = str(holder / "named.mp4"), str(holder / "link.mp4")
    assert found == [str(empty), str(holder / "link.mp4"), named, str(holder / "videos/a.mp4")]
    assert folder_input_error(str(empty)) == (
        f"{empty} is a folder that holds no video files (.mp4, .webm, .mkv, .avi, .mov, .m4v, "
        ".mpg, .mpeg, .ogv); give a folder of videos, the videos themselves or a .txt list of them"
    )
    assert folder_input_error(named).startswith(f"{named} is a folder that holds no video files")
    assert folder_input_error(link) == (
        f"{link} links to a folder of videos, which a folder search does not follow; give the "
        "link itself as an input"
    )
    assert expand_inputs([link]) == [f"{link}/a.mp4"]  # as the line says
    for path in (str(holder / "videos/a.mp4"), str(tmp_path / "missing.mp4")):
        assert folder_input_error(path) is None  # a file's reason is its decoder's
