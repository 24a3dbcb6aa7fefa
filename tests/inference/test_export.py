"""``octvideo export`` on a real full disk and onto a symbolic link: one line, no temporary file,
an earlier export and the link's target as they were. TorchScript's own file writer aborted the
whole process on a full disk (``c10::Error``) and left its temporary file."""

from __future__ import annotations

import os

import pytest

from octvideo.cli import main
from tests.small_disk import fill, small_disk


@pytest.mark.parametrize(("fmt", "name"), [("torchscript", "m.pt"), ("onnx", "m.onnx")])
def test_a_real_full_disk_is_one_line_and_keeps_the_earlier_export(
    request, checkpoint, tmp_path, capsys, fmt, name
):
    disk = small_disk(request, tmp_path / "disk")
    out = disk / name
    out.write_bytes(b"an earlier export")
    fill(disk, leave=8192)
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo export: stopped: cannot write {out} (No space left on device); the earlier "
        "file is kept; free space there or choose another folder"
    )
    assert out.read_bytes() == b"an earlier export"
    assert sorted(os.listdir(disk)) == ["ballast", name]  # no temporary file


@pytest.mark.parametrize("sidecar", [False, True], ids=["model", "sidecar"])
def test_out_onto_a_symbolic_link_is_refused_and_its_target_kept(
    checkpoint, tmp_path, capsys, sidecar
):
    target = tmp_path / "precious.onnx"
    target.write_bytes(b"keep")
    out = tmp_path / "m.onnx"
    link = out.with_name("m.onnx.json") if sidecar else out
    link.symlink_to(target)
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {link} is a symbolic link to {target}; give the real "
        "path or remove the link\n"
    )
    assert target.read_bytes() == b"keep" and link.is_symlink()
