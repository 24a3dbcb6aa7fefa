"""Fixtures of the data tests: a guard against encoding, and a tiny disk to fill (the test videos
are in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


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
