"""The error of a video that fails to decode is one ``DecodeError: ...`` text for all its views,
whatever the number of views and data-loader workers, from the dataset to ``failed_videos.txt``."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader

from octvideo.data import VideoDataset
from octvideo.data.annotations import VideoRecord
from octvideo.engine.run import run_test
from tests.data.media_helpers import small_config


@pytest.mark.parametrize("workers", [0, 2])
def test_every_view_of_a_failed_video_has_the_same_single_prefix_error(media, workers):
    cfg = small_config()  # 3 clips x 3 crops
    videos = [VideoRecord(str(media["h264.mp4"]), 0), VideoRecord(str(media["zero.mp4"]), 1)]
    dataset = VideoDataset(videos, cfg, "test")
    assert dataset.views_per_video == 9
    loader = DataLoader(dataset, batch_size=4, num_workers=workers)
    errors = [
        (int(vid), message)
        for batch in loader
        for vid, ok, message in zip(batch["video_index"], batch["ok"], batch["error"], strict=True)
        if not ok
    ]
    assert [vid for vid, _ in errors] == [1] * 9
    assert len({message for _, message in errors}) == 1
    message = errors[0][1]
    assert message.startswith("DecodeError: ") and message.count("DecodeError") == 1, message
    assert "cannot open it" in message


@pytest.mark.parametrize("workers", [0, 2])
def test_failed_videos_txt_names_the_error_once(media, checkpoint, tmp_path, workers):
    # the shared tiny checkpoint (tests/conftest.py): c2d_r18 of width 8, 3 classes, 4 x 32 x 32
    (tmp_path / "classes.txt").write_text("left\nright\nstill\n")
    val = tmp_path / "val.txt"
    val.write_text(f"{media['h264.mp4']} 0\n{media['zero.mp4']} 1\n{media['odd.mkv']} 2\n")
    overrides = {
        "model.name": "c2d_r18",
        "model.num_classes": 3,
        "model.alpha": 0.25,
        "model.extra": "{width: 8}",
        "data.val_list": val,
        "data.classes_file": tmp_path / "classes.txt",
        "data.decoder": "pyav",
        "data.num_frames": 4,
        "data.sampling_rate": 2,
        "data.test_short_side": 32,
        "data.test_crop_size": 32,
        "data.test_num_clips": 3,
        "data.test_num_crops": 3,
        "data.batch_size": 4,
        "data.num_workers": workers,
        "trainer.accelerator": "cpu",
        "trainer.progress_bar": False,
        "test.count_flops": False,
        "test.confusion_matrix": False,
    }
    result = run_test(
        None,
        [f"{k}={v}" for k, v in overrides.items()],
        ckpt=checkpoint,
        out=str(tmp_path / "run"),
    )
    assert result.metrics["num_failed"] == 1 and result.metrics["num_videos"] == 2
    (line,) = result.files["failed"].read_text().splitlines()
    path, message = line.split("\t")
    assert path == str(media["zero.mp4"])
    assert message.startswith("DecodeError: ") and message.count("DecodeError") == 1, message
    assert "cannot open it" in message
