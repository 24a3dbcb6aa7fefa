"""The bad-input matrix through data loading, ``octvideo data check`` and ``octvideo predict``:
every input gets its defined outcome, with an error that names it, and nothing crashes."""

from __future__ import annotations

import json
import os

import av
import pytest

from octvideo.cli import main
from octvideo.data import DataConfig, VideoDataset, decode, load_annotations
from octvideo.data.annotations import VideoRecord
from octvideo.data.check import check_videos
from tests.reliability.bad_input_matrix import EXPECTED, GOOD_FRAMES

# What the error of each bad input says, so a user knows what is wrong with it.
REASONS = {
    "zero_byte.mp4": "cannot open it",
    "truncated.mp4": "cannot open it",
    "not_video.mp4": "not a video container",
    "audio_only.mp4": "no video stream",
    "wide_10000x10.mp4": "aspect ratio 1000:1",
    "dir_named.mp4": "is a directory",
    "symlink_loop.mp4": "symlink loop",
    "fifo.mp4": "is a pipe, not a video file",
    "broken_link.mp4": "is a broken symlink",
    "device_link.mp4": "links to a device, not a video file",
}
# predict takes a folder as a folder of videos: one named like a video, with none, says that
PREDICT_REASONS = {**REASONS, "dir_named.mp4": "is a folder that holds no video files"}
DECODERS = ("decord", "pyav", "auto")
BAD = sorted(n for n, outcome in EXPECTED.items() if outcome == "bad")
GOOD = sorted(n for n, outcome in EXPECTED.items() if outcome == "ok")


def _cfg(**kw) -> DataConfig:
    base = dict(
        decoder="auto",
        num_frames=4,
        sampling_rate=2,
        train_jitter_scales=(32, 40),
        train_crop_size=32,
        val_crop_size=32,
        test_short_side=32,
        test_crop_size=32,
        test_num_clips=2,
        test_num_crops=1,
        num_workers=0,
        batch_size=2,
        max_retries=20,
        seed=3,
    )
    base.update(kw)
    return DataConfig(**base)


def test_every_bad_input_has_a_reason():
    assert set(REASONS) == set(BAD)


def test_evaluation_flags_exactly_the_bad_videos(bad_inputs):
    records = [VideoRecord(str(bad_inputs[n]), i % 2) for i, n in enumerate(sorted(EXPECTED))]
    dataset = VideoDataset(records, _cfg(), "val")
    for i, name in enumerate(sorted(EXPECTED)):
        item = dataset[i]
        assert item["ok"] == (EXPECTED[name] == "ok"), (name, item["error"])
        if not item["ok"]:
            assert REASONS[name] in item["error"], (name, item["error"])
            assert item["video"].abs().sum() == 0  # a placeholder, never another video
        else:
            assert item["video"].shape == (3, 4, 32, 32)


def test_training_steps_over_bad_videos_only(bad_inputs):
    records = [VideoRecord(str(bad_inputs[n]), i % 2) for i, n in enumerate(sorted(EXPECTED))]
    dataset = VideoDataset(records, _cfg(), "train")
    good_indices = {i for i, n in enumerate(sorted(EXPECTED)) if EXPECTED[n] == "ok"}
    for i, name in enumerate(sorted(EXPECTED)):
        item = dataset[(i, 0)]
        assert item["video_index"] in good_indices
        if EXPECTED[name] == "bad":
            assert item["skipped"] >= 1 and str(bad_inputs[name]) in item["errors"]
        else:
            assert item["skipped"] == 0 and item["video_index"] == i


def test_data_check_lists_exactly_the_bad_files(bad_inputs, tmp_path):
    listing = tmp_path / "all.txt"
    listing.write_text("".join(f"{bad_inputs[n]} 0\n" for n in sorted(EXPECTED)), encoding="utf-8")
    report = check_videos(listing, out=tmp_path / "bad.txt", workers=2, progress=False)
    assert report.total == len(EXPECTED)
    bad = {path: error for path, error in report.bad}
    assert set(bad) == {str(bad_inputs[n]) for n in BAD}, bad
    for name in BAD:
        assert REASONS[name] in bad[str(bad_inputs[name])], name
    written = (tmp_path / "bad.txt").read_text(encoding="utf-8").splitlines()
    assert len(written) == len(BAD)


def test_a_class_folder_of_the_matrix_is_read_and_checked_as_its_list_is(bad_inputs, tmp_path):
    # in a class-folder root (data check ROOT, data.annotation_format=folders) the links, the
    # pipe and the folder named like a video were left out unseen, in the count and the report
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "all").symlink_to(bad_inputs["fifo.mp4"].parent, target_is_directory=True)
    found = load_annotations(tmp_path / "root")
    listed = sorted(os.path.basename(r.path) for r in found.records)
    assert listed == sorted([*EXPECTED, "good.mp4"])  # good.mp4: the source of truncated.mp4
    report = check_videos(tmp_path / "root", workers=2, progress=False)
    assert report.total == len(listed)
    bad = {os.path.basename(path): error for path, error in report.bad}
    assert set(bad) == set(BAD), bad
    for name in BAD:
        assert REASONS[name] in bad[name], name


def test_the_rotated_input_is_turned_alike_by_every_decoder(bad_inputs):
    # a "rotate" tag in the stream metadata wrote no display matrix: the test was of an upright
    # video. The matrix is real: stored 96 wide and 64 high, shown 64 wide and 96 high
    path = bad_inputs["rotated.mp4"]
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height, frame.rotation) == (96, 64, 90)
    shapes = {decoder: tuple(decode(path, decoder=decoder).shape) for decoder in DECODERS}
    assert shapes == dict.fromkeys(DECODERS, (GOOD_FRAMES, 96, 64, 3))


def test_predict_reports_bad_inputs_and_predicts_the_rest(bad_inputs, checkpoint, tmp_path):
    out = tmp_path / "preds.jsonl"
    inputs = [str(bad_inputs[n]) for n in sorted(EXPECTED)]
    code = main(["predict", "--ckpt", str(checkpoint), *inputs, "--out", str(out), "--quiet"])
    assert code == 1
    rows = {r["path"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == set(inputs)
    for name in sorted(EXPECTED):
        row = rows[str(bad_inputs[name])]
        assert row["ok"] == (EXPECTED[name] == "ok"), (name, row["error"])
        if row["ok"]:
            assert len(row["top"]) == 3
        else:
            assert PREDICT_REASONS[name] in row["error"], (name, row["error"])


@pytest.mark.parametrize("name", GOOD)
def test_good_odd_inputs_decode_to_rgb_frames(bad_inputs, name):
    frames = decode(bad_inputs[name])
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.shape[0] >= 1


def test_list_paths_cannot_climb_out_of_the_data_root(tmp_path):
    from octvideo.data import load_annotations

    root = tmp_path / "data"
    root.mkdir()
    (root / "train.txt").write_text("clips/a.mp4 0\n../../etc/passwd 1\n")
    with pytest.raises(ValueError, match=r"train.txt:2: '../../etc/passwd' leaves the data root"):
        load_annotations(root / "train.txt")
    found = load_annotations(root / "train.txt", allow_outside_root=True)
    assert found.records[1].path == str(tmp_path.parent / "etc" / "passwd")
    assert found.records[0].path == str(root / "clips" / "a.mp4")
    # a path that only passes through ".." but stays inside is fine
    (root / "ok.txt").write_text("clips/../clips/b.mp4 0\n")
    assert load_annotations(root / "ok.txt").records[0].path == str(root / "clips" / "b.mp4")
