"""A class-folder annotation path is the folder read, whatever ``data.root`` says."""

from __future__ import annotations

import shutil

from octvideo.data import VideoDataModule, load_annotations
from tests.data.media_helpers import small_config


def split_tree(tmp_path, media):
    """``my/train/{jump,walk}/`` and ``my/val/{jump,walk}/``, one video each, distinct names."""
    root = tmp_path / "my"
    for split in ("train", "val"):
        for cls in ("jump", "walk"):
            (root / split / cls).mkdir(parents=True)
            shutil.copy(media["h264.mp4"], root / split / cls / f"{split}_{cls}.mp4")
    return root


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


def test_datamodule_with_a_root_reads_each_split_folder(tmp_path, media, monkeypatch):
    split_tree(tmp_path, media)
    monkeypatch.chdir(tmp_path)  # relative folders are taken like relative list files
    cfg = small_config(root="my/train", train_list="my/train", val_list="my/val")
    dm = VideoDataModule(cfg)
    dm.setup("fit")
    assert dm.classes == ["jump", "walk"]
    assert [r.path for r in dm.val_dataset.records] == [
        "my/val/jump/val_jump.mp4",
        "my/val/walk/val_walk.mp4",
    ]
    dm = VideoDataModule(small_config(root="my", train_list="my/train", val_list="my/val"))
    assert dm.classes == ["jump", "walk"]
