"""The machine a measurement ran on, named the same way in the study's table (``octvideo sweep``)
and in the benchmark records (BENCHMARKS.md)."""

from __future__ import annotations

import os
import platform
import subprocess

import torch


def machine(threads: bool = False) -> str:
    """The CPU's model name (and the first GPU's, where there is one), torch's CPU threads where
    ``threads`` is set, and torch's version."""
    cpu = platform.processor() or platform.machine()
    try:  # lscpu, in English, also names the CPU where /proc/cpuinfo has no model name (Arm)
        lscpu = subprocess.run(
            ["lscpu"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        ).stdout
        names = [ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln]
        cpu = names[0] if names else cpu
    except OSError:  # no lscpu on this machine: the platform's name stands
        pass
    if torch.cuda.is_available():
        cpu += f"; {torch.cuda.get_device_name(0)}"
    count = f", {torch.get_num_threads()} threads" if threads else ""
    return f"{cpu}{count}, torch {torch.__version__}"
