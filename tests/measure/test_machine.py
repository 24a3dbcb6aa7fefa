"""``octvideo.measure.machine``: the one name of the machine that the study's table and the
benchmark records give."""

from __future__ import annotations

import platform
import subprocess

import pytest
import torch

from octvideo.measure.machine import machine

TORCH = f"torch {torch.__version__}"


def test_the_cpu_is_lscpus_model_name_in_english_then_the_gpu_and_torch(monkeypatch) -> None:
    calls = []

    def lscpu(args, **kwargs):
        calls.append(kwargs)
        out = "Architecture: aarch64\nModel name:     Neoverse-V2\nModel name: Other\n"
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(subprocess, "run", lscpu)
    monkeypatch.setattr(platform, "processor", lambda: "aarch64")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine() == f"Neoverse-V2, {TORCH}"
    assert calls[0]["env"]["LC_ALL"] == "C"  # "Model name" is not translated
    threads = torch.get_num_threads()
    assert machine(threads=True) == f"Neoverse-V2, {threads} threads, {TORCH}"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"GPU {index}")
    assert machine() == f"Neoverse-V2; GPU 0, {TORCH}"


@pytest.mark.parametrize("out", [None, "Architecture: x86_64\n"])
def test_without_lscpu_or_its_model_name_the_platform_names_the_cpu(monkeypatch, out) -> None:
    def lscpu(args, **kwargs):
        if out is None:
            raise FileNotFoundError(2, "No such file or directory", "lscpu")
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr(subprocess, "run", lscpu)
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine() == f"riscv64, {TORCH}"
