"""Bad annotations are user errors: ``AnnotationError`` (a ``UsageError`` and a ``ValueError``),
one line and exit status 2 from ``octvideo train``, never a traceback."""

from __future__ import annotations

import shutil

import pytest

from octvideo import cli
from octvideo.data import VideoDataModule, load_annotations
from octvideo.errors import AnnotationError, UsageError
from tests.data.media_helpers import small_config


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
    with pytest.raises(AnnotationError, match="folder 'yoga' is not in the class list"):
        load_annotations(tmp_path / "tree", classes_file=tmp_path / "classes.txt")
    with pytest.raises(AnnotationError, match="is not a folder"):
        load_annotations(tmp_path / "bad.txt", fmt="folders")


def test_datamodule_input_errors_are_usage_errors(tmp_path, media):
    with pytest.raises(UsageError, match="set data.train_list"):
        _ = VideoDataModule(small_config()).classes
    (tmp_path / "val.txt").write_text("# every video of this list was removed\n")
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    cfg = small_config(train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
    with pytest.raises(UsageError, match="val.txt lists no video that exists"):
        VideoDataModule(cfg).setup("fit")
    with pytest.raises(UsageError, match="no annotations for test_dataset"):
        VideoDataModule(small_config(train_list=str(tmp_path / "train.txt"))).test_dataloader()


def tiny_run(tmp_path, train: str, val: str) -> list[str]:
    settings = {
        "model.num_classes": 2,
        "model.extra": "{width: 4}",
        "data.train_list": train,
        "data.val_list": val,
        "data.classes_file": tmp_path / "classes.txt",
        "data.num_frames": 4,
        "data.train_jitter_scales": "[32, 32]",
        "data.train_crop_size": 32,
        "data.val_crop_size": 32,
        "data.test_short_side": 32,
        "data.test_crop_size": 32,
        "data.batch_size": 2,
        "data.num_workers": 0,
        "trainer.max_epochs": 1,
        "trainer.progress_bar": False,
        "output.tensorboard": False,
    }
    overrides = [f"{k}={v}" for k, v in settings.items()]
    return ["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run"), *overrides]


def one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


def test_train_reports_bad_annotations_in_one_line(tmp_path, media, capsys):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "classes.txt").write_text("jump\nwalk\n")
    (tmp_path / "train.txt").write_text("a.mp4 0\na.mp4 1\n")
    (tmp_path / "big.txt").write_text("a.mp4 0\na.mp4 2\n")
    (tmp_path / "gone").mkdir()  # a class-folder root without class folders
    line = one_line_error(capsys, tiny_run(tmp_path, tmp_path / "big.txt", tmp_path / "train.txt"))
    assert line.startswith("octvideo train: error: ") and "label 2 is outside the 2 classes" in line
    line = one_line_error(capsys, tiny_run(tmp_path, tmp_path / "train.txt", tmp_path / "gone"))
    assert line == (
        f"octvideo train: error: data: {tmp_path / 'gone'} lists no video that exists; "
        "check the list's paths against data.root, or the class folders' videos against "
        "data.video_extensions"
    )
