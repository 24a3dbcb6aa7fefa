"""``predict --render`` outputs: never through a symbolic link, and a real full disk stops the
run in one line with no half video left."""

from __future__ import annotations

import os

import pytest

from octvideo.cli import UsageError, main
from octvideo.inference.predictor import Predictor
from octvideo.inference.render import render
from tests.small_disk import fill, small_disk


def test_render_onto_a_symbolic_link_is_refused_and_its_target_kept(
    checkpoint, videos, tmp_path, capsys
):
    target = tmp_path / "holiday.mp4"
    target.write_bytes(b"a video of someone's")
    link = tmp_path / "out.mp4"
    link.symlink_to(target)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["short"]), "--render", str(link)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo predict: error: --render {link} is a symbolic link to {target}; give the real "
        "path or remove the link\n"
    )
    assert target.read_bytes() == b"a video of someone's"


def test_render_itself_refuses_a_symbolic_link(checkpoint, videos, tmp_path):
    predictor = Predictor.from_checkpoint(checkpoint)
    result = predictor.predict(str(videos["short"]))
    target = tmp_path / "holiday.mp4"
    target.write_bytes(b"keep")
    link = tmp_path / "out.mp4"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="is a symbolic link to"):
        render(result, predictor.classes, link)
    assert target.read_bytes() == b"keep" and sorted(os.listdir(tmp_path)) == [
        "holiday.mp4",
        "out.mp4",
    ]


def test_render_on_a_real_full_disk_stops_in_one_line(
    request, checkpoint, videos, tmp_path, capsys
):
    disk = small_disk(request, tmp_path / "disk")
    out = disk / "short.pred.mp4"
    fill(disk, leave=0)
    args = ["predict", "--ckpt", str(checkpoint), str(videos["long"]), "--render", str(out)]
    assert main([*args, "--quiet"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo predict: stopped: cannot write {out} (No space left on device); no part of it "
        "is left; free space there or choose another folder"
    )
    assert sorted(os.listdir(disk)) == ["ballast"]
