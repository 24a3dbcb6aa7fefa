"""``tools/bench.py long-video`` (octvideo.bench.long_video): one validation clip of each class,
in the order of classes.txt, joined into one video; a folder that is not a synthetic set is
refused in one line."""

from __future__ import annotations

from pathlib import Path

from octvideo.bench.cli import main
from octvideo.data.decoding import probe
from octvideo.data.synth import generate_synthetic


def test_one_clip_of_each_class_in_order(tmp_path: Path, capsys) -> None:
    # two validation clips of each class: the first of each is taken
    synth = generate_synthetic(tmp_path / "synth", 1, 12, size=32, frames=4, progress=False)
    classes = (synth / "classes.txt").read_text().split()
    out = tmp_path / "demo" / "long.mp4"
    assert main(["long-video", str(synth), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    seconds = 4 / probe(synth / "val" / classes[0] / "00000.mp4").fps
    assert [ln.split()[-1] for ln in lines[:-1]] == classes
    assert lines[0].startswith(f"{0:5.1f}-{seconds:5.1f} s")
    assert lines[-1] == f"wrote {out} ({len(classes) * seconds:.1f} s)"
    assert probe(out).num_frames == 4 * len(classes)


def test_a_folder_without_lists_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["long-video", str(tmp_path), "--out", str(tmp_path / "x.mp4")]) == 2
    assert capsys.readouterr().err == (
        f"tools/bench.py long-video: error: {tmp_path} has no classes.txt and val.txt: pass a "
        "folder written by 'octvideo data synth'\n"
    )
    assert not (tmp_path / "x.mp4").exists()


def test_an_out_that_is_one_of_its_clips_is_refused_before_anything_is_written(
    tmp_path: Path, capsys
) -> None:
    synth = generate_synthetic(tmp_path / "synth", 1, 6, size=32, frames=4, progress=False)
    clip = synth / "val" / (synth / "classes.txt").read_text().split()[0] / "00000.mp4"
    before = clip.read_bytes()
    assert main(["long-video", str(synth), "--out", str(clip)]) == 2
    assert capsys.readouterr().err == (
        f"tools/bench.py long-video: error: --out {clip} is a clip it joins {clip}: writing it "
        "would destroy it; choose another path\n"
    )
    assert clip.read_bytes() == before
