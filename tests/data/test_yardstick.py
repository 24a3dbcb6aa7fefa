"""The yardstick set (``data synth --preset yardstick``): deterministic files, twelve named
classes, the demo preset untouched, the demo's bounds, and the design's promises per fine-grained
pair: one scene law for every class, so that the class shows only in how frames change."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from octvideo.cli import main
from octvideo.data import load_annotations, probe
from octvideo.data import synth as synth_module
from octvideo.data.yardstick import CLASSES, PAIRS, iter_clip
from tests.data.media_helpers import data_error

SEEDS = range(6)
SIZE, FRAMES = 32, 12


def render_clip(label: int, size: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack(list(iter_clip(label, size, frames, rng)))  # (frames, size, size, 3)


def clips(name: str, seed: int) -> np.ndarray:
    return render_clip(CLASSES.index(name), SIZE, FRAMES, np.random.default_rng([seed, 0, 0]))


def digest_tree(root) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_same_files_on_every_run(tmp_path):
    """Two processes whose allocators fill memory differently write the same bytes."""

    def run(out, perturb):
        command = [
            sys.executable,
            "-c",
            "import sys; from octvideo.cli import main; sys.exit(main(sys.argv[1:]))",
            "data",
            "synth",
            "--preset",
            "yardstick",
            "--out",
            str(out),
            "--num-train",
            "12",
            "--num-val",
            "3",
            "--size",
            "32",
            "--frames",
            "6",
            "--seed",
            "9",
            "-q",
        ]
        env = {**os.environ, "MALLOC_PERTURB_": str(perturb)}
        subprocess.run(command, env=env, check=True, capture_output=True)
        return digest_tree(out)

    first = run(tmp_path / "a", 1)
    assert len(first) == 12 + 3 + 3 and first == run(tmp_path / "b", 200)


def test_twelve_named_classes_in_turn(tmp_path):
    out = tmp_path / "y"
    args = ["data", "synth", "--preset", "yardstick", "--out", str(out), "--size", "32"]
    assert main([*args, "--frames", "4", "--num-train", "24", "--num-val", "0", "-q"]) == 0
    assert (out / "classes.txt").read_text().split() == list(CLASSES)
    assert len(CLASSES) == 12 and len(set(CLASSES)) == 12
    train = load_annotations(out / "train.txt", classes_file=out / "classes.txt")
    assert [r.label for r in train.records] == [n % 12 for n in range(24)]
    assert (out / "train.txt").read_text().splitlines()[11] == "train/pass/00011.mp4 11"
    info = probe(train.records[0].path, decoder="pyav")
    assert (info.num_frames, info.width, info.height) == (4, 32, 32)
    assert {a for pair in PAIRS for a in pair[:2]} <= set(CLASSES)


def test_demo_preset_is_the_default_and_unchanged(tmp_path):
    common = ["--num-train", "6", "--num-val", "2", "--size", "16", "--frames", "3", "-q"]
    assert main(["data", "synth", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["data", "synth", "--preset", "demo", "--out", str(tmp_path / "b"), *common]) == 0
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert (tmp_path / "a" / "classes.txt").read_text().split() == list(synth_module.CLASSES)
    # the demo's frames before encoding, pinned: a change here changes every demo file (a new
    # numpy or Pillow that draws differently needs a new pin, and a note that the demo changed)
    frames = np.stack(list(synth_module.iter_clip(3, 32, 5, np.random.default_rng(7))))
    assert hashlib.md5(frames.tobytes()).hexdigest() == "626905a5a229dff04b8f149d86b67a92"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--frames", "10000000", "--frames must be 2 to 1024 frames per clip, got 10000000"),
        ("--frames", "1", "--frames must be 2 to 1024 frames per clip, got 1"),
        ("--num-train", "100001", "--num-train must be 1 to 100000 clips, got 100001"),
        ("--num-train", "0", "--num-train must be 1 to 100000 clips, got 0"),
        ("--num-val", "99999999999", "--num-val must be 0 to 100000 clips, got 99999999999"),
        ("--seed", "-1", "--seed must be 0 to 9223372036854775807, got -1"),
        ("--size", "33", "--size must be an even number >= 16, got 33"),
    ],
)
def test_bounds_are_the_demos_and_refused_before_any_output(
    tmp_path, capsys, option, value, message
):
    out = tmp_path / "y"
    line = data_error(capsys, "synth", "--preset", "yardstick", "--out", str(out), option, value)
    assert line == f"octvideo data synth: error: {message}"
    assert not out.exists()


def test_drawing_the_set_imports_neither_the_writer_nor_the_encoder():
    """The yardstick draws frames with numpy and Pillow only: synth (which writes the sets and
    imports it) and PyAV are not needed to draw a clip."""
    code = (
        "import sys, numpy as np; from octvideo.data import yardstick; "
        "next(yardstick.iter_clip(0, 16, 2, np.random.default_rng(0))); "
        "print(sorted({'av', 'octvideo.data.synth'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_an_unknown_preset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--preset must be one of demo, yardstick, got 'kinetics'"):
        synth_module.generate_synthetic(tmp_path / "y", preset="kinetics", progress=False)
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_first_frame_is_the_same_whatever_the_class(seed):
    """Every class draws one scene from one law, in the same order: with the same draws, frame 0
    is the same picture in all twelve classes, so it carries no class (nor does its law)."""
    first = {name: clips(name, seed)[0] for name in CLASSES}
    for name in CLASSES:
        assert np.array_equal(first[name], first[CLASSES[0]]), name


def test_the_frames_of_every_class_are_pinned():
    """The draws and their order, pinned: the study's numbers hold for these clips only (a new
    numpy or Pillow that draws differently needs a new pin, and a note that the set changed)."""
    digest = hashlib.md5()
    for label in range(len(CLASSES)):
        rng = np.random.default_rng([0, 0, label])
        digest.update(render_clip(label, SIZE, 6, rng).tobytes())
    assert digest.hexdigest() == "cbbcfa8e0257076c52e8e2217c8fcc37"


@pytest.mark.parametrize("seed", SEEDS)
def test_every_class_moves_differently_from_its_pair(seed):
    for a, b, _ in PAIRS:
        assert not np.array_equal(clips(a, seed), clips(b, seed)), (a, b)


def leading_equal_frames(a: np.ndarray, b: np.ndarray) -> int:
    """How many frames the two clips share from the start."""
    same = [np.array_equal(x, y) for x, y in zip(a, b, strict=True)]
    return same.index(False) if False in same else len(same)


@pytest.mark.parametrize("seed", SEEDS)
def test_fine_grained_pairs_part_only_where_the_design_says(seed):
    """Periodic vs one-way: the same until the first reversal (at least a quarter of the clip).
    Approach vs pass: the same until the approach stops (at least 35% of the clip). Slow vs fast:
    the same start, and apart from the next frame on."""
    quarter = (FRAMES - 1) // 4 + 1  # frames with t / (FRAMES - 1) <= 0.25
    slow, fast = clips("slide_slow", seed), clips("slide_fast", seed)
    assert leading_equal_frames(slow, fast) == 1
    assert leading_equal_frames(fast, clips("oscillate", seed)) >= quarter
    rock = clips("rock", seed)
    turns = (clips("turn_cw", seed), clips("turn_ccw", seed))
    assert max(leading_equal_frames(rock, turn) for turn in turns) >= quarter
    assert min(leading_equal_frames(rock, turn) for turn in turns) == 1
    approach, passing = clips("approach", seed), clips("pass", seed)
    assert leading_equal_frames(approach, passing) >= int(0.35 * (FRAMES - 1)) + 1
    actor_first, partner_first = clips("actor_hops_first", seed), clips("partner_hops_first", seed)
    assert leading_equal_frames(actor_first, partner_first) >= 1
    cw, ccw = clips("part_cw", seed), clips("part_ccw", seed)
    assert leading_equal_frames(cw, ccw) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_a_part_turning_changes_only_pixels_near_the_still_actor(seed):
    """part_cw against the still scene: the difference is confined to a disc-sized patch, the
    rest of the actor holds still."""
    still_scene = clips("part_cw", seed)
    other = clips("part_ccw", seed)
    diff = np.abs(still_scene.astype(int) - other.astype(int)).sum(-1).max(0)  # (H, W)
    ys, xs = np.nonzero(diff > 40)
    assert len(ys) and max(np.ptp(ys), np.ptp(xs)) < 0.3 * SIZE
