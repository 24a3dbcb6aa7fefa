"""Files from strangers: checkpoints never run pickled code, YAML never builds Python objects."""

from __future__ import annotations

import os
import pickle

import pytest

from octvideo.cli import main
from octvideo.config import load_config
from octvideo.engine.checkpoint import load_checkpoint
from octvideo.errors import ConfigError, UsageError


class _Payload:
    """Unpickling this runs ``os.system`` and would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    with path.open("wb") as f:
        # protocol 2 starts as torch's legacy format does, so the payload reaches the unpickler
        pickle.dump({"state_dict": {}, "hyper_parameters": _Payload(str(marker))}, f, protocol=2)
    return path, marker


def test_malicious_checkpoint_is_refused_without_running_it(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(UsageError, match=r"holds objects other than tensors and plain values"):
        load_checkpoint(path)
    assert not marker.exists()
    with path.open("rb") as f:  # the payload is live: a plain unpickler runs it
        pickle.load(f)  # noqa: S301
    assert marker.exists()


@pytest.mark.parametrize("command", ["predict", "export", "test"])
def test_every_command_refuses_the_malicious_checkpoint(
    malicious_checkpoint, tmp_path, command, capsys
):
    path, marker = malicious_checkpoint
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    args = {
        "predict": ["predict", "--ckpt", str(path), str(video)],
        "export": ["export", "--ckpt", str(path), "--format", "onnx"],
        "test": ["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", str(path)],
    }[command]
    assert main(args) == 2
    assert "holds objects other than tensors and plain values (posix.system)" in (
        capsys.readouterr().err
    )
    assert not marker.exists()


def test_yaml_with_python_tags_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"model:\n  name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        load_config(cfg)
    assert not marker.exists()
