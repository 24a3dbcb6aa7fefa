"""A write that fails at one output file, as a full disk fails it or an append-only earlier file
refuses its rename, for the tests of outputs written as one result (``paths.AtomicOutputs``)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from octvideo.paths import AtomicOutput


def fail_output(monkeypatch: pytest.MonkeyPatch, how: str, path: Path) -> None:
    """Makes the write of ``path`` fail as a full disk does (``how="write"``: ENOSPC), or its
    rename in place as over an append-only earlier file (``"rename"``: EPERM)."""
    if how == "write":
        real_write = AtomicOutput.write

        def write(self: AtomicOutput, data: bytes | str) -> None:
            if self.path == path:
                self.discard()
                raise self.error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            real_write(self, data)

        monkeypatch.setattr(AtomicOutput, "write", write)
    else:
        real_replace = os.replace

        def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            if Path(dst) == path:
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
