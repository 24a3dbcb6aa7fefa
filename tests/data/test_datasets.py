"""Datasets: shapes, frame indices, bad-video policy and one error text for every view of a video
that fails, and ``data.target_fps`` (a clip spans the same seconds at any frame rate)."""

from __future__ import annotations

import dataclasses
import errno
import logging

import numpy as np
import pytest
import torch
from torch._utils import ExceptionWrapper
from torch.utils.data import DataLoader

from octvideo.data import BadVideoTracker, VideoDataset
from octvideo.data.annotations import VideoRecord
from octvideo.data.datasets import OutOfOpenFiles
from octvideo.data.decoding import VideoInfo
from octvideo.data.open_files import out_of_open_files
from octvideo.data.sampling import multiview_clip_indices
from octvideo.errors import TooManyBadVideos
from tests.data.media_helpers import (
    GOOD,
    NUM_FRAMES,
    ffmpeg_fails,
    frame_index,
    no_free_files,
    records,
    small_config,
)


def indices_of(video: torch.Tensor) -> list[int]:
    """Frame indices of a (3, T, H, W) clip of the test videos (median grey level per frame)."""
    return [frame_index(float(video[:, t].median()) * 255) for t in range(video.shape[1])]


def test_clip_start_and_augmentation_are_drawn_independently(media, monkeypatch):
    # 186 frames, clips of 8 at stride 8: 130 starts; a 65-way scale draw seeded like the start
    # was the start modulo 65 for every item
    dataset = VideoDataset(
        records(media, GOOD[:1]), small_config(num_frames=8, sampling_rate=8), "train"
    )
    info = VideoInfo(num_frames=186, fps=30.0, width=64, height=48, decoder="pyav")
    monkeypatch.setattr(dataset, "_decode", lambda i, choose: torch.from_numpy(choose(info)))
    monkeypatch.setattr(dataset, "_transforms", [lambda start: (start, torch.randint(65, ()))])
    pairs = [dataset[(0, epoch)]["video"] for epoch in range(200)]
    tied = sum(int(start[0]) % 65 == int(scale) for start, scale in pairs)
    assert tied < 20  # about 200 / 65 by chance; 200 when tied


def test_train_items_shapes_labels_and_strided_indices(media):
    dataset = VideoDataset(records(media, GOOD), small_config(), "train")
    for index in range(len(GOOD)):
        item = dataset[(index, 0)]
        assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
        assert item["label"] == index and item["video_index"] == index
        assert item["skipped"] == 0 and item["errors"] == ""
        got = indices_of(item["video"])
        assert [b - a for a, b in zip(got, got[1:], strict=False)] == [3, 3, 3]
        assert got[0] >= 0 and got[-1] < NUM_FRAMES
    # Same (index, epoch) -> same clip; another epoch -> (almost surely) another one.
    a, b = dataset[(0, 0)]["video"], dataset[(0, 0)]["video"]
    assert torch.equal(a, b)
    starts = {indices_of(dataset[(0, e)]["video"])[0] for e in range(8)}
    assert len(starts) > 1


def test_short_video_repeats_last_frame(media):
    dataset = VideoDataset(records(media, ["short.mp4"]), small_config(), "train")
    assert indices_of(dataset[0]["video"]) == [0, 3, 4, 4]


def test_multiview_test_items(media):
    cfg = small_config()
    dataset = VideoDataset(records(media, ["h264.mp4", "odd.mkv"]), cfg, "test")
    assert len(dataset) == 2 * 3 * 3
    expected = multiview_clip_indices(NUM_FRAMES, 4, 3, 3)
    crops = []
    for index in range(9, 18):  # the second video (odd.mkv, 53x37 -> 51x36 before cropping)
        item = dataset[index]
        assert item["ok"] is True and item["error"] == ""
        assert (item["video_index"], item["label"]) == (1, 1)
        assert (item["temporal_index"], item["spatial_index"]) == divmod(index - 9, 3)
        assert item["video"].shape == (3, 4, 32, 32)
        assert indices_of(item["video"]) == expected[item["temporal_index"]].tolist()
        crops.append(item["video"])
    # Three different crops along the long (horizontal) side, the corner mark only in crop 0.
    assert crops[0][:, :, :2, :2].mean() < 0.05 < crops[1][:, :, :2, :2].mean()


def test_slowfast_packing(media):
    cfg = small_config(num_frames=8, sampling_rate=2, slowfast_alpha=4)
    slow, fast = VideoDataset(records(media, ["h264.mp4"]), cfg, "train")[0]["video"]
    assert slow.shape == (3, 2, 32, 32) and fast.shape == (3, 8, 32, 32)
    assert torch.equal(slow, fast[:, [0, 7]])
    failed = VideoDataset(records(media, ["zero.mp4"]), cfg, "test")[0]
    assert [v.shape for v in failed["video"]] == [(3, 2, 32, 32), (3, 8, 32, 32)]


BAD = ["truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"]


def test_training_steps_over_bad_files_and_reports_them(media):
    dataset = VideoDataset(
        records(media, ["h264.mp4", *BAD]), small_config(max_retries=30), "train"
    )
    for bad_index, name in enumerate(BAD, start=1):
        item = dataset[(bad_index, 0)]
        assert item["video_index"] == 0 and item["label"] == 0  # the only good video
        assert item["skipped"] >= 1
        lines = item["errors"].split("\n")
        assert len(lines) == item["skipped"]
        assert lines[0].startswith(str(media[name]) + "\t")
        assert ("does not exist" if name == "missing.mp4" else "cannot open it") in lines[0]


def test_training_gives_up_after_max_retries(media):
    dataset = VideoDataset(records(media, BAD), small_config(max_retries=2), "train")
    with pytest.raises(RuntimeError, match=r"3 videos in a row failed.*octvideo data check"):
        dataset[0]


def test_training_gives_up_naming_each_video_tried_and_its_error(media):
    dataset = VideoDataset(records(media, BAD), small_config(max_retries=2), "train")
    with pytest.raises(TooManyBadVideos) as err:
        dataset[0]
    bad = {str(media[name]) for name in BAD}
    assert len(err.value.failures) == 3
    assert all(path in bad and error for path, error in err.value.failures)
    for path, error in err.value.failures:
        assert f"{path}: {error}" in str(err.value)


def test_evaluation_never_substitutes_and_counts_failures(media, caplog):
    names = ["h264.mp4", "truncated.mp4", "vp9.webm", "missing.mp4"]
    cfg = small_config(test_num_clips=2)
    dm_dataset = VideoDataset(records(media, names), cfg, "test")
    tracker = BadVideoTracker()
    loader = torch.utils.data.DataLoader(dm_dataset, batch_size=5)
    rows = 0
    with caplog.at_level(logging.WARNING, logger="octvideo.data.callbacks"):
        for batch in loader:
            tracker.update(batch, "test")
            failed = ~batch["ok"]
            assert (batch["video_index"][failed] % 2 == 1).all()  # only the bad videos fail
            assert (batch["video"][failed] == 0).all()
            assert batch["label"].tolist() == batch["video_index"].tolist()
            rows += len(batch["ok"])
    assert rows == 4 * 6
    assert tracker.end_epoch("test") == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # once per failed video, not once per view
    assert "truncated.mp4" in warnings[0] and "missing.mp4" in warnings[1]
    val = VideoDataset(records(media, names), cfg, "val")
    assert [val[i]["ok"] for i in range(4)] == [True, False, True, False]


def test_tracker_counts_training_skips_per_epoch(caplog):
    tracker = BadVideoTracker()
    batch = {
        "skipped": torch.tensor([0, 2, 1]),
        "errors": ["", "a.mp4\tboom\nb.mp4\tbang", "a.mp4\tboom"],
    }
    with caplog.at_level(logging.WARNING, logger="octvideo.data.callbacks"):
        tracker.update(batch, "train")
        tracker.update(batch, "train")
    assert tracker.end_epoch("train") == 6
    assert tracker.end_epoch("train") == 0
    assert sorted(r.getMessage() for r in caplog.records) == [
        "bad video a.mp4: boom",
        "bad video b.mp4: bang",
    ]


def _chosen(cfg, mode: str, fps: float) -> list[np.ndarray]:
    """The frame indices each item of a one-video dataset asks of a 300-frame video at fps."""
    dataset = VideoDataset([VideoRecord("v.mp4", 0)], cfg, mode)
    chosen = []

    def decode(video_index, choose):
        indices = choose(VideoInfo(300, fps, 64, 48, "pyav"))
        chosen.append(indices)
        return torch.zeros(len(indices), 48, 64, 3, dtype=torch.uint8)

    dataset._decode = decode
    for i in range(len(dataset) if mode != "train" else 1):
        dataset[(i, 0) if mode == "train" else i]
    return chosen


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_every_mode_spans_the_same_seconds_at_any_frame_rate(mode):
    cfg = small_config(sampling_rate=3, target_fps=30.0, test_num_crops=1)
    for fps, stride in ((30.0, 3), (60.0, 6), (15.0, 1.5)):
        for indices in _chosen(cfg, mode, fps):
            steps = np.diff(indices)
            assert np.abs(steps - stride).max() <= 0.5, (fps, indices)
    own = dataclasses.replace(cfg, target_fps=None)
    for indices in _chosen(own, mode, 60.0):
        assert np.diff(indices).tolist() == [3, 3, 3]


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


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_indices_count_from_the_end_as_a_sequence_does(media, mode):
    dataset = VideoDataset(records(media, ["h264.mp4", "odd.mkv"]), small_config(), mode)
    size = len(dataset)
    last = dataset[-1] if mode != "train" else dataset[(-1, 0)]
    assert last["video_index"] == 1 and last["label"] == 1
    if mode == "test":
        assert (last["temporal_index"], last["spatial_index"]) == (2, 2)
        assert dataset[-size]["video_index"] == 0
    for index in (size, -size - 1):
        with pytest.raises(IndexError, match=f"^VideoDataset index {index} is out of range for "):
            dataset[index]
    with pytest.raises(TypeError, match=r"^VideoDataset index must be a whole number, got 1\.5"):
        dataset[1.5]


@pytest.mark.parametrize("label", [-1, "2", 1.5, True, None])
def test_a_label_that_is_no_class_index_is_refused_at_construction(media, label):
    path = str(media["h264.mp4"])
    with pytest.raises(ValueError) as err:
        VideoDataset([(path, 0), (path, label)], small_config(), "val")
    assert str(err.value) == (
        f"records[1] ({path}): label must be a whole number of 0 or more (a class index), "
        f"got {label!r}"
    )
    assert VideoDataset([(path, np.int64(2))], small_config(), "val").records[0].label == 2


def test_records_and_config_of_another_shape_are_refused(media):
    path = str(media["h264.mp4"])
    with pytest.raises(ValueError, match=r"^records\[0\] must be a \(path, label\) pair, got"):
        VideoDataset([path], small_config(), "val")
    with pytest.raises(TypeError, match="^VideoDataset takes a DataConfig .* got dict;"):
        VideoDataset([(path, 0)], dataclasses.asdict(small_config()), "val")


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_running_out_of_open_files_stops_the_item_and_blames_no_video(media, mode):
    # the decoder's EMFILE was a bad video: training drew other videos and gave up with
    # TooManyBadVideos blaming them, evaluation counted the video as failed
    dataset = VideoDataset(records(media, ["h264.mp4"] * 3), small_config(max_retries=2), mode)
    dataset[0]  # the decoders loaded before the files run out
    dataset._cache = None
    with no_free_files(), pytest.raises(OutOfOpenFiles) as caught:
        dataset[1 * dataset.views_per_video]
    assert out_of_open_files(caught.value) and not caught.value.in_worker
    assert dataset._failed == {}
    assert dataset[1 * dataset.views_per_video]["video"].shape[1] == 4  # the video was fine


@pytest.mark.parametrize("mode", ["train", "val"])
def test_a_decoder_out_of_memory_is_a_bad_video_not_a_stop(media, monkeypatch, mode):
    # FFmpeg's ENOMEM is also a corrupt header's: it stopped the run with a traceback
    path = str(media["h264.mp4"])
    ffmpeg_fails(monkeypatch, errno.ENOMEM)
    cfg = small_config(max_retries=1, decoder="pyav")
    dataset = VideoDataset(records(media, ["h264.mp4"] * 2), cfg, mode)
    error = f"DecodeError: {path}: pyav cannot open it: Cannot allocate memory"
    if mode == "train":  # skipped, and a list of such videos stops the run in one line
        with pytest.raises(TooManyBadVideos) as caught:
            dataset[0]
        assert "Cannot allocate memory" in caught.value.reason
        return
    item = dataset[0]
    assert not item["ok"] and item["error"] == error


def test_out_of_open_files_in_a_worker_keeps_its_errno_through_pytorchs_rebuild():
    # PyTorch raises a worker's error in its caller as type(err)(text): a plain OSError lost
    # its errno there, and the run blamed no limit
    try:
        raise OutOfOpenFiles(errno.EMFILE, "Too many open files", "a.mp4")
    except OutOfOpenFiles:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(OutOfOpenFiles) as caught:
        wrapper.reraise()
    assert caught.value.errno == errno.EMFILE
    assert out_of_open_files(caught.value)
    assert caught.value.in_worker  # so the run blames a data-loader worker, not itself
