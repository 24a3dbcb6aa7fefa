"""A real full disk for tests: a small tmpfs mounted on a folder of the test, filled on demand.

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the test is skipped. The tmpfs
is unmounted in a finalizer, whatever the test did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def small_disk(request: pytest.FixtureRequest, folder: Path, size: str = "1m") -> Path:
    """Mounts a tmpfs of ``size`` on ``folder`` (created) for the rest of the test."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("no mount command to make a small disk")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")

    def unmount() -> None:
        # lazy: a file a failed test left open must not keep the mount
        subprocess.run(["umount", "-l", str(folder)], check=True)

    request.addfinalizer(unmount)
    return folder


def fill(folder: Path, leave: int = 0) -> Path:
    """Fills the file system of ``folder`` with a ballast file, leaving about ``leave`` bytes."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    ballast = folder / "ballast"
    with ballast.open("wb") as fh:
        fh.write(bytes(max(free - leave, 0)))
    return ballast


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
