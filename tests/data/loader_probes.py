"""A dataset whose items tell where a DataLoader worker came from: a module-level class, so that
a worker started from the fork server can unpickle it (by reference) without importing a test."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from octvideo.data import decoding


class WorkerOrigin(Dataset):
    """``size`` items, each ``(parent pid, decoding.PYAV_THREADS)`` of the process loading it."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[int, int]:
        return os.getppid(), decoding.PYAV_THREADS
