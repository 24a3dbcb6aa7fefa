"""Which process of a distributed run this is, without Lightning: the commands that never train
(``octvideo predict``, ``data check``) and the engine's checks before a run (``engine.build``)
ask it too, and Lightning adds about 0.8 s to their start."""

from __future__ import annotations

import os

import torch

# The variables a launcher gives each process before its process group is made: torchrun's
# ``RANK`` (global), and the node's and the local rank (Lightning's ``ddp`` runs the command
# again in each process of a node but the first, with ``LOCAL_RANK`` and ``NODE_RANK`` set)
_GLOBAL_RANK = "RANK"
_PART_RANKS = ("NODE_RANK", "GROUP_RANK", "LOCAL_RANK")


def world() -> tuple[int, int]:
    """(num_replicas, rank) of the initialised process group, or (1, 0)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def is_global_zero() -> bool:
    """Whether this process is the global rank 0 of its run, which alone says the lines every
    process would say alike (a list's video count): its rank in the initialised process group,
    else as the launcher's variables say (``_PART_RANKS``: rank 0 on node 0); a process
    without them is a run of its own."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    if os.environ.get(_GLOBAL_RANK, "").strip():
        return os.environ[_GLOBAL_RANK].strip() == "0"
    return all(os.environ.get(name, "").strip() in ("", "0") for name in _PART_RANKS)
