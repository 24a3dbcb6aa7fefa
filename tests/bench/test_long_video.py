"""``tools/bench.py long-video`` (octvideo.bench.long_video): one validation clip of each class,
in the order of classes.txt, joined into one video; a folder that is not a synthetic set is
refused in one line, and so is a file at ``--out`` that is no earlier long video, or read-only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from octvideo.bench.cli import main
from octvideo.bench.long_video import LONG_VIDEO_TAG
from octvideo.data.decoding import probe
from octvideo.data.synth import generate_synthetic, video_comment
from octvideo.paths import RUN_MARK

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench.py"


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


def _synth(tmp_path: Path) -> Path:
    return generate_synthetic(tmp_path / "synth", 1, 6, size=32, frames=4, progress=False)


def test_a_rerun_replaces_its_own_long_video(tmp_path: Path, capsys) -> None:
    synth = _synth(tmp_path)
    out = tmp_path / "long.mp4"
    for _ in range(2):  # the second run finds the first's video, known by its tag
        assert main(["long-video", str(synth), "--out", str(out)]) == 0
        assert video_comment(out) == LONG_VIDEO_TAG
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kind", ["notes", "read-only notes", "a video", "read-only long video"])
def test_a_file_it_did_not_write_or_a_read_only_one_is_refused_and_kept(
    tmp_path: Path, capsys, kind: str
) -> None:
    # it replaced any file at --out, and reset a read-only file's mode
    synth = _synth(tmp_path)
    out = tmp_path / "notes.mp4"
    if kind.endswith("notes"):
        out.write_text("my notes\n")
    elif kind == "a video":
        out.write_bytes((synth / "val" / "move_left" / "00000.mp4").read_bytes())
    else:
        assert main(["long-video", str(synth), "--out", str(out)]) == 0
        capsys.readouterr()
    if kind.startswith("read-only"):
        out.chmod(0o444)
    before, mode = out.read_bytes(), out.stat().st_mode
    assert main(["long-video", str(synth), "--out", str(out)]) == 2
    if kind == "read-only long video":
        why = "is read-only: make it writable (chmod u+w) to replace it, or choose another path"
    else:
        why = (
            "exists and is not a long video of this command (one it wrote, or the demo's "
            "<run>/long_video.mp4): writing it would destroy it; choose another path or remove it"
        )
    assert capsys.readouterr() == ("", f"tools/bench.py long-video: error: --out {out} {why}\n")
    assert out.read_bytes() == before and out.stat().st_mode == mode


def test_the_demos_long_video_from_before_the_tag_is_replaced_in_a_run_folder_only(
    tmp_path: Path, capsys
) -> None:
    synth = _synth(tmp_path)
    untagged = (synth / "val" / "move_left" / "00000.mp4").read_bytes()  # as write_video wrote
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / RUN_MARK).write_text("octvideo train writes its files here and replaces them\n")
    other = tmp_path / "videos"
    other.mkdir()
    for folder in (run, other):
        (folder / "long_video.mp4").write_bytes(untagged)
    assert main(["long-video", str(synth), "--out", str(run / "long_video.mp4")]) == 0
    assert video_comment(run / "long_video.mp4") == LONG_VIDEO_TAG
    assert main(["long-video", str(synth), "--out", str(other / "long_video.mp4")]) == 2
    assert "exists and is not a long video" in capsys.readouterr().err
    assert (other / "long_video.mp4").read_bytes() == untagged


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_stdout_whose_reader_is_gone_or_full_loses_only_the_lines(tmp_path: Path) -> None:
    # ``| true`` and ``> /dev/full`` ended in a traceback with no video: the lines describing it
    # were printed before it was written
    synth = _synth(tmp_path)
    gone = tmp_path / "gone.mp4"
    command = [sys.executable, str(BENCH), "long-video", str(synth), "--out"]
    proc = subprocess.Popen([*command, str(gone)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader went away before the first line
    err = proc.stderr.read()
    assert proc.wait() == 0 and err == b""  # the video is its output: the run went on
    assert probe(gone).num_frames == 4 * 6
    full = tmp_path / "full.mp4"
    with open("/dev/full", "w") as stdout:
        done = subprocess.run([*command, str(full)], stdout=stdout, stderr=subprocess.PIPE)
    assert done.returncode == 0  # it stopped with status 1, its video written all the same
    assert done.stderr.decode() == (
        "tools/bench.py long-video: the lines to stdout from the first that could not be written "
        "on were dropped (No space left on device)\n"
    )
    assert probe(full).num_frames == 4 * 6
