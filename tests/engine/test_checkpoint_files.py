"""Files given as checkpoints that are not octvideo checkpoints: one line naming the file and the
cause, never torch's advice to load them with ``weights_only=False``, never a traceback."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from octvideo.cli import main
from octvideo.engine.checkpoint import last_good, load_checkpoint
from octvideo.errors import UsageError


class _System:
    """Unpickling this would run ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(("payload", "kind"), [(torch.zeros(3), "Tensor"), ([1, 2], "list")])
def test_a_file_holding_no_dict_is_not_a_checkpoint(tmp_path, payload, kind):
    path = tmp_path / "x.ckpt"
    torch.save(payload, path)
    with pytest.raises(UsageError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {str(path)!r} holds a {kind}, not an octvideo or ")
    assert "Lightning checkpoint" in message and "\n" not in message
    assert last_good(path).startswith(f"{path} cannot be loaded (checkpoint ")


def test_octvideo_test_refuses_a_tensor_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "x.ckpt"
    torch.save(torch.zeros(3), path)
    assert main(["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("octvideo test: error: checkpoint ") and "holds a Tensor" in line


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda d: _write(d / "x.ckpt", b"garbage" * 10), "UnpicklingError: Unsupported operand"),
        (lambda d: _write(d / "x.ckpt", b""), "EOFError: the file is empty"),
        (lambda d: _write(d / "x.ckpt", b"\x80\x02}q\x00"), "EOFError: the file ends before"),
        (
            lambda d: _write(d / "x.ckpt", pickle.dumps(_System(d / "pwned"), protocol=2)),
            "UnpicklingError: Trying to load unsupported GLOBAL posix.system",
        ),
        (
            lambda d: torch.save({"state_dict": {}, "obj": Path("x")}, d / "x.ckpt"),
            "UnpicklingError: Unsupported global: GLOBAL pathlib.",
        ),
        (
            lambda d: _write(d / "x.ckpt", torch.zeros(1).numpy().dumps()),
            "UnpicklingError: Unsupported global: GLOBAL numpy.",
        ),
    ],
    ids=["garbage", "empty", "cut-short", "os-system", "pathlib", "numpy"],
)
def test_an_unloadable_file_names_the_cause_without_unsafe_advice(tmp_path, make, cause):
    make(tmp_path)
    path = tmp_path / "x.ckpt"
    with pytest.raises(UsageError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {str(path)!r} cannot be loaded with weights_only=True: ")
    assert cause in message, message
    assert "\n" not in message
    assert "weights_only=False" not in message and "weights_only` set to `False`" not in message
    assert "Re-running" not in message and "trusted source" not in message
    assert "add_safe_globals" not in message and "if you trust" not in message
    assert not (tmp_path / "pwned").exists()


def test_a_directory_is_not_a_checkpoint_file(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(UsageError, match=r"is a directory, not a checkpoint file"):
        load_checkpoint(folder)
    assert main(["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", f"{folder}/"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {str(folder)!r} is a directory, not a checkpoint file" in err
    assert "does not exist" not in err
