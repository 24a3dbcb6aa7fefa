"""``octvideo export`` never writes over its checkpoint, and refuses outputs it cannot write with
one line before loading the checkpoint."""

from __future__ import annotations

import shutil

import pytest

from octvideo.cli import main


@pytest.fixture
def pt_checkpoint(checkpoint, tmp_path):
    """The tiny checkpoint under a name ending in .pt, like TorchScript's old default output."""
    path = tmp_path / "model.pt"
    shutil.copy(checkpoint, path)
    return path


def test_default_output_is_beside_and_never_the_checkpoint(pt_checkpoint, capsys):
    before = pt_checkpoint.read_bytes()
    assert main(["export", "--ckpt", str(pt_checkpoint), "--format", "torchscript"]) == 0
    out = pt_checkpoint.with_name("model.torchscript.pt")
    assert f"wrote {out} " in capsys.readouterr().out
    assert pt_checkpoint.read_bytes() == before
    assert sorted(p.name for p in pt_checkpoint.parent.iterdir()) == [
        "model.pt",
        "model.torchscript.pt",
        "model.torchscript.pt.json",
    ]


@pytest.mark.parametrize("spelling", ["same", "dotdot"])
def test_out_onto_the_checkpoint_is_refused(pt_checkpoint, capsys, spelling):
    before = pt_checkpoint.read_bytes()
    (pt_checkpoint.parent / "sub").mkdir()
    out = pt_checkpoint if spelling == "same" else pt_checkpoint.parent / "sub" / ".." / "model.pt"
    code = main(
        ["export", "--ckpt", str(pt_checkpoint), "--format", "torchscript", "--out", str(out)]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out} is the checkpoint {pt_checkpoint}: writing it "
        f"would destroy it; choose another path\n"
    )
    assert pt_checkpoint.read_bytes() == before


def test_outputs_that_cannot_be_written_are_one_line_errors(checkpoint, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    some_dir = tmp_path / "some_dir"
    some_dir.mkdir()
    cases = {
        f"{a_file}/m.pt": f"--out {a_file}/m.pt: {a_file} is a file, not a folder; choose "
        f"another path",
        "/proc/m.pt": "--out /proc/m.pt: cannot write in /proc (No such file or directory); "
        "choose another path",
        str(some_dir): f"--out {some_dir} is a folder; give a file name",
    }
    for out, message in cases.items():
        args = ["export", "--ckpt", str(checkpoint), "--format", "torchscript", "--out", out]
        assert main(args) == 2, out
        assert capsys.readouterr().err == f"octvideo export: error: {message}\n"
    assert a_file.read_text() == "kept"
    assert list(some_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("onnx", "last.ckpt"),
        ("torchscript", "config.yaml"),
        ("torchscript", "clip.mp4"),
        ("onnx", "model.pt"),
        ("torchscript", "model.onnx"),
    ],
)
def test_out_must_end_in_the_format_extension(checkpoint, tmp_path, capsys, fmt, name):
    # any name was taken: an ONNX graph replaced the run's last.ckpt, its config or a video
    out = tmp_path / name
    out.write_text("kept")
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 2
    extension = ".onnx" if fmt == "onnx" else ".pt or .torchscript"
    default = checkpoint.stem + (".onnx" if fmt == "onnx" else ".torchscript.pt")
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out}: a {fmt} export is written to a {extension} file; "
        f"give such a name (default: {default})\n"
    )
    assert out.read_text() == "kept"
