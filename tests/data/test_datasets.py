"""Datasets and the datamodule: shapes, frame indices, bad-video policy, workers, DDP shares."""

from __future__ import annotations

import logging

import pytest
import torch

from octvideo.data import BadVideoTracker, VideoDataModule, VideoDataset
from octvideo.data.annotations import VideoRecord
from octvideo.data.datamodule import EpochSampler
from octvideo.data.decoding import VideoInfo
from octvideo.data.sampling import multiview_clip_indices
from octvideo.errors import TooManyBadVideos
from tests.data.media_helpers import NUM_FRAMES, frame_index, small_config

GOOD = ["h264.mp4", "mpeg4.avi", "mjpeg.avi", "vp9.webm", "odd.mkv", "vfr.mp4"]


def indices_of(video: torch.Tensor) -> list[int]:
    """Frame indices of a (3, T, H, W) clip of the test videos (median grey level per frame)."""
    return [frame_index(float(video[:, t].median()) * 255) for t in range(video.shape[1])]


def records(media, names) -> list[VideoRecord]:
    return [VideoRecord(str(media[n]), i) for i, n in enumerate(names)]


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


@pytest.fixture
def lines_dataset(tmp_path, media):
    names = ["h264.mp4", "mpeg4.avi", "mjpeg.avi", "vp9.webm", "odd.mkv", "vfr.mp4", "short.mp4"]
    body = "".join(f"{media[n]} {i % 3}\n" for i, n in enumerate(names))
    (tmp_path / "train.txt").write_text(body + f"{media['zero.mp4']} 1\n")
    (tmp_path / "val.txt").write_text(body)
    return tmp_path


def test_datamodule_batches_follow_the_contract(lines_dataset):
    cfg = small_config(
        train_list=str(lines_dataset / "train.txt"),
        val_list=str(lines_dataset / "val.txt"),
        classes_file=str(lines_dataset / "classes.txt"),
    )
    dm = VideoDataModule(cfg)
    assert dm.classes == ["0", "1", "2"] and dm.num_classes == 3
    train = list(dm.train_dataloader())
    assert len(train) == 2  # 8 videos, batch 4, last partial batch dropped
    batch = train[0]
    assert batch["video"].shape == (4, 3, 4, 32, 32) and batch["video"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["video_index"].dtype == torch.int64
    # zero.mp4 is stepped over at least once (a retry may draw it again); each skip is named.
    skipped = sum(int(b["skipped"].sum()) for b in train)
    named = [line for b in train for text in b["errors"] for line in text.split("\n") if line]
    assert skipped >= 1 and len(named) == skipped
    assert all(line.startswith(str(lines_dataset.parent)) and "zero.mp4" in line for line in named)
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (4, 3, 4, 32, 32) and val["ok"].all()
    test = list(dm.test_dataloader())
    assert sum(len(b["label"]) for b in test) == 7 * 9
    assert dm.test_dataset.records[6][0].endswith("short.mp4")


def test_two_workers_yield_the_same_batches_as_none(lines_dataset):
    def batches(workers: int) -> list[dict]:
        cfg = small_config(train_list=str(lines_dataset / "val.txt"), num_workers=workers, seed=7)
        loader = VideoDataModule(cfg).train_dataloader()
        out = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            out.extend(loader)
        return out

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["video_index"], b["video_index"])
        assert torch.equal(a["video"], b["video"])
    assert not torch.equal(serial[0]["video"], serial[1]["video"])


def test_samplers_split_ranks_without_overlap(media):
    dataset = VideoDataset(records(media, GOOD + GOOD[:3]), small_config(), "train")
    shares = [list(EpochSampler(dataset, num_replicas=2, rank=r, seed=0)) for r in (0, 1)]
    indices = [i for share in shares for i, _ in share]
    assert len(shares[0]) == len(shares[1]) == 5  # 9 videos padded to 10
    assert set(indices) == set(range(9))
    assert {epoch for share in shares for _, epoch in share} == {0}


def test_a_resumed_sampler_continues_its_epoch_once(media):
    dataset = VideoDataset(records(media, GOOD + GOOD[:3]), small_config(), "train")
    whole = EpochSampler(dataset, num_replicas=1, rank=0, seed=3)
    whole.set_epoch(2)
    epoch2 = list(whole)
    resumed = EpochSampler(dataset, num_replicas=1, rank=0, seed=3)
    resumed.resume(2, 4)
    assert list(resumed) == epoch2[4:]
    assert list(resumed) == epoch2  # only the first pass skips
    assert len(resumed) == len(epoch2)
