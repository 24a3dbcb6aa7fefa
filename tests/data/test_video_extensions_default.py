"""Class folders count the same video suffixes as ``data check``, ``data prepare`` and Kinetics."""

from __future__ import annotations

import shutil

from octvideo.data import DataConfig, VideoDataModule
from octvideo.data.annotations import VIDEO_EXTENSIONS
from tests.data.media_helpers import small_config


def test_default_video_extensions_are_the_annotation_ones():
    assert tuple(DataConfig().video_extensions) == VIDEO_EXTENSIONS
    assert ".m4v" in DataConfig().video_extensions


def test_m4v_videos_of_a_class_folder_are_trained_on(tmp_path, media):
    for cls, suffix in (("jump", ".mp4"), ("walk", ".m4v")):
        (tmp_path / "train" / cls).mkdir(parents=True)
        shutil.copy(media["h264.mp4"], tmp_path / "train" / cls / f"clip{suffix}")
    dm = VideoDataModule(small_config(train_list=str(tmp_path / "train")))
    dm.setup("fit")
    assert [r.label for r in dm.train_dataset.records] == [0, 1]  # the .m4v was dropped
