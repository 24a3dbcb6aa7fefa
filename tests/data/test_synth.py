"""The synthetic set: deterministic real files, and only temporal information tells classes apart.

A small MLP on statistics of one frame (where the shape is, how big, how it
is oriented, its colours, a coarse thumbnail) stays near chance, while the same model on the change
of the shape statistics between two consecutive frames separates the classes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.data import decode, load_annotations, probe
from octvideo.data import synth as synth_module
from octvideo.data.synth import CLASSES, iter_clip
from octvideo.errors import UsageError
from octvideo.paths import LOCK_NAME, hold_folder
from tests.data.media_helpers import data_error, data_stopped
from tests.failing_writes import fail_output


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--num-train",
                "300",
                "--num-val",
                "150",
                "--size",
                "32",
                "--frames",
                "8",
                "--seed",
                "3",
                "-q",
            ]
        )
        == 0
    )
    return out


def test_layout_and_files(synth_set):
    train = load_annotations(synth_set / "train.txt", classes_file=synth_set / "classes.txt")
    val = load_annotations(synth_set / "val.txt", classes_file=synth_set / "classes.txt")
    assert train.classes == list(CLASSES) and len(train.records) == 300 and len(val.records) == 150
    assert np.bincount([r.label for r in train.records]).tolist() == [50] * 6
    info = probe(train.records[0].path, decoder="decord")
    assert (info.num_frames, info.width, info.height) == (8, 32, 32)
    assert (synth_set / "train.txt").read_text().splitlines()[1] == "train/move_right/00001.mp4 1"


def test_deterministic_for_a_seed(tmp_path):
    """Same bytes from two processes whose allocators hand out differently filled memory.

    glibc fills each malloc'd block with the complement of ``MALLOC_PERTURB_``'s byte, so an encoder
    that reads memory it never wrote gives different files here; x264's MB-tree did, for 3 of these
    12 clips.
    """

    def digest(out, perturb):
        script = (
            "import sys; from octvideo.data.synth import generate_synthetic; "
            "generate_synthetic(sys.argv[1], num_train=6, num_val=6, size=32, frames=8, seed=5, "
            "progress=False)"
        )
        env = {**os.environ, "MALLOC_PERTURB_": str(perturb)}
        subprocess.run([sys.executable, "-c", script, str(out)], env=env, check=True)
        return {
            p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in out.rglob("*.mp4")
        }

    first = digest(tmp_path / "a", 1)
    assert len(first) == 12 and first == digest(tmp_path / "b", 200)
    with pytest.raises(UsageError, match="--size must be an even number"):
        main_args = ["data", "synth", "--out", str(tmp_path / "c"), "--size", "33", "-q"]
        from octvideo.cli import build_parser
        from octvideo.cli.data import run_synth

        run_synth(build_parser().parse_args(main_args))


def shape_stats(frame: np.ndarray) -> np.ndarray:
    """Circular centroid (x, y) in radians, log area, orientation theta of the shape."""
    size = frame.shape[0]
    background = np.median(frame.reshape(-1, 3), axis=0)
    mask = np.abs(frame.astype(np.float32) - background).sum(-1) > 90  # (H, W)
    ys, xs = np.nonzero(mask)
    angle_x, angle_y = 2 * np.pi * xs / size, 2 * np.pi * ys / size
    cx = np.arctan2(np.sin(angle_x).mean(), np.cos(angle_x).mean())
    cy = np.arctan2(np.sin(angle_y).mean(), np.cos(angle_y).mean())
    # Centre the shape (it may wrap around the edges) before taking second moments.
    centred = np.roll(
        mask,
        (size // 2 - round(cy * size / (2 * np.pi)), size // 2 - round(cx * size / (2 * np.pi))),
        axis=(0, 1),
    )
    ys, xs = np.nonzero(centred)
    dx, dy = xs - xs.mean(), ys - ys.mean()
    theta = 0.5 * np.arctan2(2 * (dx * dy).mean(), (dx * dx).mean() - (dy * dy).mean())
    return np.array([cx, cy, np.log(len(xs) + 1), theta])


def wrap(angle: np.ndarray, period: float) -> np.ndarray:
    return (angle + period / 2) % period - period / 2


def fit_and_score(train_x, train_y, val_x, val_y) -> float:
    """A small MLP classifier (standardised features, Adam); validation accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xt = torch.tensor((train_x - mean) / std, dtype=torch.float32)
    xv = torch.tensor((val_x - mean) / std, dtype=torch.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(xt.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(CLASSES))
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(model(xt), torch.tensor(train_y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float((model(xv).argmax(1).numpy() == val_y).mean())


def features(root, split):
    records = load_annotations(root / f"{split}.txt").records
    one, two, labels = [], [], []
    for record in records:
        clip = decode(record.path, [3, 4]).numpy()  # (2, H, W, 3)
        a, b = shape_stats(clip[0]), shape_stats(clip[1])
        thumb = clip[0].reshape(4, 8, 4, 8, 3).mean((1, 3)).ravel() / 255  # 4x4 colour thumbnail
        one.append(
            np.concatenate(
                [np.sin(a[:2]), np.cos(a[:2]), a[2:3], np.sin(2 * a[3:]), np.cos(2 * a[3:]), thumb]
            )
        )
        change = np.concatenate(
            [wrap(b[:2] - a[:2], 2 * np.pi), b[2:3] - a[2:3], wrap(b[3:] - a[3:], np.pi)]
        )
        two.append(change)
        labels.append(record.label)
    return np.array(one), np.array(two), np.array(labels)


def test_one_frame_is_near_chance_two_frames_suffice(synth_set):
    one_tr, two_tr, y_tr = features(synth_set, "train")
    one_va, two_va, y_va = features(synth_set, "val")
    single = fit_and_score(one_tr, y_tr, one_va, y_va)
    pair = fit_and_score(two_tr, y_tr, two_va, y_va)
    chance = 1 / len(CLASSES)
    assert single < chance + 0.12, f"one frame reaches {single:.2f} (chance {chance:.2f})"
    assert pair > 3 * chance, f"two frames reach only {pair:.2f}"  # measured 0.64 at 32 px


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--frames", "10000000", "--frames must be 2 to 1024 frames per clip, got 10000000"),
        ("--frames", "1", "--frames must be 2 to 1024 frames per clip, got 1"),
        ("--num-train", "100001", "--num-train must be 1 to 100000 clips, got 100001"),
        ("--num-train", "0", "--num-train must be 1 to 100000 clips, got 0"),
        ("--num-val", "99999999999", "--num-val must be 0 to 100000 clips, got 99999999999"),
        ("--seed", "-1", "--seed must be 0 to 9223372036854775807, got -1"),
    ],
)
def test_counts_past_their_bounds_are_refused_before_any_output(
    tmp_path, capsys, option, value, message
):
    line = data_error(capsys, "synth", "--out", str(tmp_path / "s"), option, value)
    assert line == f"octvideo data synth: error: {message}"
    assert not (tmp_path / "s").exists()


def test_a_clip_is_drawn_a_frame_at_a_time():
    """The first frame comes before the others are drawn, so memory does not grow with frames."""
    rng = np.random.default_rng(7)
    frames = iter_clip(3, 32, 5, rng)
    first = next(frames)
    drawn = rng.bit_generator.state
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    rest = list(frames)
    assert len(rest) == 4 and rng.bit_generator.state != drawn


def test_clip_n_of_a_split_draws_from_seed_split_and_n(tmp_path):
    """The module docstring's promise: clip n of split s (train 0, val 1) is the clip drawn from
    ``default_rng([seed, s, n])``, encoded alike, whatever the other clips."""
    out = synth_module.generate_synthetic(
        tmp_path / "s", num_train=2, num_val=2, size=16, frames=2, seed=4, progress=False
    )
    for split, split_id in (("train", 0), ("val", 1)):
        for n in range(2):
            want = tmp_path / f"{split}{n}.mp4"
            rng = np.random.default_rng([4, split_id, n])
            synth_module.write_video(want, iter_clip(n % 6, 16, 2, rng))
            got = out / split / CLASSES[n % 6] / f"{n:05d}.mp4"
            assert got.read_bytes() == want.read_bytes(), got


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_a_comment_written_with_a_video_is_read_back(tmp_path, suffix):
    # the tag by which a writer (tools/bench.py long-video) knows its own earlier output
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    tagged, plain = tmp_path / f"tagged{suffix}", tmp_path / f"plain{suffix}"
    synth_module.write_video(tagged, frames, comment="octvideo test")
    synth_module.write_video(plain, frames)
    assert synth_module.video_comment(tagged) == "octvideo test"
    assert synth_module.video_comment(plain) is None
    (tmp_path / "notes.mp4").write_text("my notes\n")  # no container: no comment, no error
    assert synth_module.video_comment(tmp_path / "notes.mp4") is None
    assert decode(tagged).shape[0] == 2


def test_a_full_disk_is_one_line_and_leaves_only_whole_files(tmp_path, monkeypatch, capsys):
    real = synth_module.write_video
    written = []

    def full_disk_at_the_third(path, clip, fps=synth_module.FPS):
        if len(written) == 2:
            Path(path).write_bytes(b"\0" * 100)  # half a video reached the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        real(path, clip, fps)

    monkeypatch.setattr(synth_module, "write_video", full_disk_at_the_third)
    out = tmp_path / "s"
    (out).mkdir()
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES))  # an earlier run
    (out / "train.txt").write_text("old list of an earlier run\n")
    args = [
        "--out",
        str(out),
        "--num-train",
        "4",
        "--num-val",
        "0",
        "--size",
        "16",
        "--frames",
        "2",
    ]
    line = data_stopped(capsys, "synth", *args)
    assert line == (
        f"octvideo data synth: stopped: writing {out / 'train/rotate_cw/00002.mp4'} failed (No "
        f"space left on device); 2 of 4 clips were written, the lists not yet; free space in {out} "
        "and run again"
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["classes.txt", "train/move_left/00000.mp4", "train/move_right/00001.mp4"]


@pytest.mark.parametrize(
    ("how", "reason"), [("write", "No space left on device"), ("rename", "Operation not permitted")]
)
def test_a_list_that_cannot_be_written_leaves_neither_list(
    tmp_path, capsys, monkeypatch, how, reason
):
    # train.txt was written before val.txt: a full disk or an append-only val.txt left a
    # train.txt alone, which reads as a finished run (the earlier set's lists are removed first)
    out = tmp_path / "s"
    args = [
        "--out",
        str(out),
        "--num-train",
        "2",
        "--num-val",
        "1",
        "--size",
        "16",
        "--frames",
        "2",
    ]
    assert main(["data", "synth", *args, "-q"]) == 0
    fail_output(monkeypatch, how, out / "val.txt")
    line = data_stopped(capsys, "synth", *args, "--seed", "1")
    assert line == (
        f"octvideo data synth: stopped: writing {out / 'val.txt'} failed ({reason}); 3 of 3 "
        f"clips were written, the lists not yet; free space in {out} and run again"
    )
    assert sorted(os.listdir(out)) == ["classes.txt", "train", "val"]  # no list, no temporary
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "classes.txt",
        "train/move_left/00000.mp4",
        "train/move_right/00001.mp4",
        "val/move_left/00000.mp4",
    ]


def test_a_real_full_disk_is_one_line_and_every_clip_left_decodes(tiny_disk, capsys):
    out = tiny_disk / "s"
    line = data_stopped(capsys, "synth", "--out", str(out), "--num-train", "200")
    assert line.startswith("octvideo data synth: stopped: writing ")
    assert "(No space left on device)" in line
    assert not (out / "train.txt").exists()
    clips = sorted(out.rglob("*.mp4"))
    assert clips and all(p.name[0].isdigit() for p in clips)  # no temporary file left
    for clip in clips:
        assert probe(clip, decoder="pyav").num_frames == 16
        assert decode(clip, [15], decoder="pyav").shape == (1, 64, 64, 3)


def synth_error(capsys, *args: str) -> str:
    return data_error(capsys, "synth", *args)


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "existing_file").write_text("keep me\n")
    line = synth_error(capsys, "--out", str(tmp_path / "existing_file"), "--num-train", "1")
    assert line == (
        f"octvideo data synth: error: --out {tmp_path / 'existing_file'} cannot be the output "
        "folder (it is a file); choose another --out"
    )
    assert (tmp_path / "existing_file").read_text() == "keep me\n"


def test_an_out_holding_another_dataset_is_refused_naming_its_files(tmp_path, capsys):
    # synth used to delete train.txt and replace classes.txt of any folder, a Kinetics one too
    out = tmp_path / "k400"
    out.mkdir()
    (out / "train.txt").write_text("abseiling/a.mp4 0\n")
    (out / "classes.txt").write_text("abseiling\nair drumming\n")
    line = synth_error(capsys, "--out", str(out), "--num-train", "1", "--num-val", "0")
    assert line == (
        f"octvideo data synth: error: --out {out} holds train.txt, classes.txt of another dataset "
        "(its classes.txt is no synth class list), which synth would replace; choose an empty or "
        "new --out"
    )
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "train.txt"]
    assert (out / "train.txt").read_text() == "abseiling/a.mp4 0\n"


def test_a_list_name_that_is_a_pipe_is_refused_in_an_earlier_set(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    os.mkfifo(out / "val.txt")
    line = synth_error(capsys, "--out", str(out), "--num-train", "1", "--num-val", "0")
    assert line.startswith(f"octvideo data synth: error: --out {out / 'val.txt'} is ")
    assert stat.S_ISFIFO(os.lstat(out / "val.txt").st_mode)


def test_an_earlier_synth_set_or_a_folder_of_other_files_is_written(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.md").write_text("mine\n")  # nothing synth writes: kept
    args = ["data", "synth", "--out", str(out), "--num-train", "2", "--num-val", "1", "-q"]
    assert main([*args, "--size", "16", "--frames", "2"]) == 0
    assert main([*args, "--size", "16", "--frames", "2", "--seed", "1"]) == 0  # its own set
    assert (out / "notes.md").read_text() == "mine\n"
    assert len((out / "train.txt").read_text().splitlines()) == 2


def test_a_size_beyond_the_limit_is_refused_before_allocating(tmp_path, capsys):
    line = synth_error(capsys, "--out", str(tmp_path / "s"), "--size", "100000")
    assert line == (
        "octvideo data synth: error: --size must be at most 1024 (a synthetic clip of "
        "100000x100000 pixels would need 447 GiB of memory), got 100000"
    )
    assert not (tmp_path / "s").exists()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


def test_rewriting_an_earlier_set_leaves_exactly_the_new_set_and_other_files(tmp_path):
    # the lists used to be rewritten while the earlier clips stayed in the class folders, where a
    # class-folder reader (data.train_list=out/train) would train on them
    out = tmp_path / "s"
    args = ["data", "synth", "--out", str(out), "--size", "16", "--frames", "2", "-q"]
    assert main([*args, "--num-train", "12", "--num-val", "6"]) == 0
    (out / "train" / "grow" / "mine.mp4").write_bytes(b"a user's clip")
    for killed in (".00010.mp4.12345-0123abcd.tmp.mp4", ".00004.mp4.0123abcd.tmp.mp4"):
        (out / "train" / "grow" / killed).write_bytes(b"half")  # left by killed runs (pid, none)
    assert main([*args, "--num-train", "3", "--num-val", "0"]) == 0
    assert _files(out) == [
        "classes.txt",
        "train.txt",
        "train/grow/mine.mp4",
        "train/move_left/00000.mp4",
        "train/move_right/00001.mp4",
        "train/rotate_cw/00002.mp4",
        "val.txt",
    ]
    assert main([*args, "--preset", "yardstick", "--num-train", "2", "--num-val", "1"]) == 0
    listed = {
        line.split()[0]
        for split in ("train", "val")
        for line in (out / f"{split}.txt").read_text().splitlines()
    }
    clips = {name for name in _files(out) if name.endswith(".mp4")}
    assert len(listed) == 3
    assert clips == listed | {"train/grow/mine.mp4"}
    assert sorted(p.name for p in (out / "train").iterdir()) == ["grow", "slide_fast", "slide_slow"]


def test_an_out_another_synth_writes_is_refused_before_anything_changes(tmp_path, capsys):
    # two synths into one folder removed each other's clips: both ended with status 0, their
    # lists naming clips that were gone, or one stopped saying "free space"
    out = tmp_path / "s"
    args = ["--out", str(out), "--size", "16", "--frames", "2"]
    assert main(["data", "synth", *args, "--num-train", "6", "--num-val", "2", "-q"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with hold_folder(out, "data synth"):  # the other synth, going on
        line = synth_error(capsys, *args, "--num-train", "3", "--num-val", "0")
    assert line == (
        f"octvideo data synth: error: --out {out} is in use by octvideo data synth (pid "
        f"{os.getpid()}); wait for it to end, or choose another --out (nothing was changed)"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["data", "synth", *args, "--num-train", "3", "--num-val", "0", "-q"]) == 0
    assert not (out / LOCK_NAME).exists()  # freed as it ended
    assert len((out / "train.txt").read_text().splitlines()) == 3


def test_a_set_a_synth_wrote_while_this_one_waited_to_start_is_replaced(tmp_path, monkeypatch):
    # whether ``out`` holds an earlier set is decided holding it: a synth that ended between the
    # first look and the lock leaves a set that this run replaces whole, no clip of it kept
    other, out = tmp_path / "other", tmp_path / "s"
    args = ["data", "synth", "--size", "16", "--frames", "2", "-q"]
    assert main([*args, "--out", str(other), "--num-train", "12", "--num-val", "6"]) == 0
    real = synth_module.hold_folder

    def meanwhile(folder, *rest, **options):
        shutil.copytree(other, folder, dirs_exist_ok=True)  # its set, written as it ended
        return real(folder, *rest, **options)

    monkeypatch.setattr(synth_module, "hold_folder", meanwhile)
    assert main([*args, "--out", str(out), "--num-train", "3", "--num-val", "0"]) == 0
    assert _files(out) == [
        "classes.txt",
        "train.txt",
        "train/move_left/00000.mp4",
        "train/move_right/00001.mp4",
        "train/rotate_cw/00002.mp4",
        "val.txt",
    ]


def test_rewriting_an_earlier_set_does_not_follow_a_linked_class_folder(tmp_path):
    out = tmp_path / "s"
    args = ["data", "synth", "--out", str(out), "--size", "16", "--frames", "2", "-q"]
    assert main([*args, "--num-train", "1", "--num-val", "0"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "00001.mp4").write_bytes(b"not synth's")
    (out / "train" / "move_right").symlink_to(elsewhere)
    assert main([*args, "--num-train", "1", "--num-val", "0"]) == 0
    assert (elsewhere / "00001.mp4").read_bytes() == b"not synth's"
    assert (out / "train" / "move_right").is_symlink()
    assert (out / "train.txt").read_text() == "train/move_left/00000.mp4 0\n"
