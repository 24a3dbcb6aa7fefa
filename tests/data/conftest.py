"""Session fixtures of the data tests: the test videos, encoded once with PyAV."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.data.media_helpers import NUM_FRAMES, SHORT_FRAMES, encode


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of the test videos: good ones, a short one, and bad ones."""
    root = tmp_path_factory.mktemp("media")
    files = {
        "h264.mp4": encode(root / "h264.mp4", "libx264"),
        "mpeg4.avi": encode(root / "mpeg4.avi", "mpeg4"),
        "mjpeg.avi": encode(root / "mjpeg.avi", "mjpeg", pix_fmt="yuvj420p"),
        "vp9.webm": encode(root / "vp9.webm", "libvpx-vp9"),
        "odd.mkv": encode(root / "odd.mkv", "mpeg4", height=37, width=53),
        "short.mp4": encode(root / "short.mp4", "libx264", n=SHORT_FRAMES),
    }
    gaps = [40 if i % 3 else 120 for i in range(NUM_FRAMES - 1)]
    files["vfr.mp4"] = encode(root / "vfr.mp4", "libx264", pts_ms=np.cumsum([0, *gaps]).tolist())
    whole = files["h264.mp4"].read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    for name in ("truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"):
        files[name] = root / name
    return files


@pytest.fixture
def no_encoding(monkeypatch):
    """Fail the test if ``data prepare`` encodes anything (its checks must refuse first)."""
    from octvideo.data import prepare as prepare_module

    def refuse(*args, **kwargs) -> None:
        raise AssertionError("encoded before the checks refused the run")

    monkeypatch.setattr(prepare_module, "_run_jobs", refuse)


@pytest.fixture
def tiny_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A real 1 MiB tmpfs, to fill; skipped where mounting one is not permitted (not root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    request.addfinalizer(lambda: subprocess.run(["umount", str(mount)], check=False))
    return mount
