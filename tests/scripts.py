"""Running a test's Python source in a fresh interpreter from the repository root, octvideo
importable: as a user's script (a file run by path, which multiprocessing runs again in each worker
it starts) or as ``python -c`` (which it does not)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _run(argv: list[str], timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script(
    folder: Path, source: str, *args: str, timeout: float = 300, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Writes ``source`` to ``folder/script.py`` and runs it with ``args`` in ``cwd``; its output
    is captured as text. ``timeout`` only stops a hang."""
    script = folder / "script.py"
    script.write_text(source)
    return _run([str(script), *args], timeout, cwd)


def run_code(source: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` as ``python -c`` with ``args``; its output is captured as text.
    ``timeout`` only stops a hang."""
    return _run(["-c", source, *args], timeout, ROOT)
