"""Running a test's Python source as a user's script: a file run by path, in a fresh interpreter,
which multiprocessing runs again in each worker it starts (unlike ``python -c``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run_script(
    folder: Path, source: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Writes ``source`` to ``folder/script.py`` and runs it with ``args`` from the repository
    root, octvideo importable; its output is captured as text. ``timeout`` only stops a hang."""
    script = folder / "script.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
