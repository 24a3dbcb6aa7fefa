"""``octvideo import`` on the command line: what it prints, its one-line refusals, and the commands
of docs/zoo.md, which must parse as written."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import pytest
import torch

from octvideo.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def c2d_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PyTorchVideo C2D-R50 zoo file at stem width 8 (random weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorchvideo.models import hub

    torch.manual_seed(0)
    net = hub.c2d_r50(pretrained=False, stem_dim_out=8)
    path = tmp_path_factory.mktemp("zoo") / "C2D_8x8_R50.pyth"
    torch.save({"model_state": net.state_dict()}, path)
    return path


def test_import_writes_and_reports_the_checkpoint(c2d_zoo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "new" / "deeper" / "c2d_k400.ckpt"  # folders made by the write
    argv = ["import", str(c2d_zoo), "--from", "pytorchvideo", "--model", "c2d_r50"]
    assert main([*argv, "--classes", "kinetics400", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"wrote {out}: c2d_r50 alpha 0.0, 400 classes, 8 frames 8 apart at 30 fps (clip from the "
        "file name C2D_8x8_R50.pyth), test 10x3 views of 256"
    )
    assert lines[1].startswith(f"run config: {out.with_suffix('.yaml')} (--cfg of octvideo test")
    assert out.is_file() and out.with_suffix(".yaml").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "caffe2"], "--from 'caffe2': use one of pytorchvideo, torchvision, octvideo"),
        (
            ["--from", "pytorchvideo", "--model", "slow_r50"],
            "PyTorchVideo weights of c2d_r50, not of",
        ),
        (["--from", "pytorchvideo", "--clip", "1x8"], "--clip 1x8: c2d_r50 cannot take clips of"),
    ],
)
def test_a_refused_import_prints_one_line(
    c2d_zoo: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    out = tmp_path / "new" / "x.ckpt"
    argv = ["import", str(c2d_zoo), "--model", "c2d_r50", *args, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("octvideo import: error: ")
    assert message in err[0]
    assert not out.parent.exists()  # a refused command makes no folder either


def test_an_import_of_a_bad_checkpoint_makes_no_out_folder(tmp_path: Path, capsys) -> None:
    src = tmp_path / "C2D_8x8_R50.pyth"
    src.write_bytes(b"not a checkpoint")
    out = tmp_path / "new" / "o.ckpt"
    argv = ["import", str(src), "--from", "pytorchvideo", "--model", "c2d_r50", "--out", str(out)]
    assert main([*argv, "--classes", "kinetics400"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("octvideo import: error: ")
    assert str(src) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def _doc_commands() -> list[str]:
    """The ``octvideo ...`` commands of docs/zoo.md: indented blocks (continuations joined) and
    inline code."""
    text = (ROOT / "docs" / "zoo.md").read_text()
    commands = [c for c in re.findall(r"`(octvideo [^`]+)`", text) if " --" in c]  # not names
    block = ""
    for line in text.splitlines():
        if line.startswith("    "):
            block += line.strip()
            if block.endswith("\\"):
                block = block[:-1] + " "
                continue
            if block.startswith("octvideo "):
                commands.append(block)
        block = ""
    return commands


def test_docs_zoo_commands_parse_as_written() -> None:
    commands = _doc_commands()
    assert sum(c.startswith("octvideo import ") for c in commands) >= 3
    parser = build_parser()
    for command in commands:
        args = shlex.split(command)[1:]
        try:
            parser.parse_args(args)
        except SystemExit as err:  # argparse's way out
            pytest.fail(f"docs/zoo.md: {command!r} does not parse ({err})")
