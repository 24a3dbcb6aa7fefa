"""octvideo.data.ranks: which process of a distributed run this is, from the process group or,
before one exists, from the launcher's variables; and it loads no Lightning."""

from __future__ import annotations

import pytest

from octvideo.data.ranks import is_global_zero, world
from tests.scripts import run_code


@pytest.mark.parametrize(
    ("launcher", "zero"),
    [
        ({}, True),  # a process of its own
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun's first
        ({"RANK": "1", "LOCAL_RANK": "0"}, False),  # torchrun, second node
        ({"RANK": " 0 ", "LOCAL_RANK": "1"}, True),  # the global rank decides, spaces aside
        ({"LOCAL_RANK": "1"}, False),  # Lightning's ddp runs the command again with it
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),  # its first on the second node
        ({"GROUP_RANK": "2"}, False),  # torchrun's group of a later node
        ({"LOCAL_RANK": ""}, True),  # set but empty: unset
    ],
)
def test_global_rank_zero_is_read_from_the_launchers_variables(monkeypatch, launcher, zero):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in launcher.items():
        monkeypatch.setenv(name, value)
    assert is_global_zero() is zero


def test_without_a_process_group_the_world_is_this_one_process():
    assert world() == (1, 0)


def test_asking_loads_no_lightning():
    done = run_code(
        "import sys\nfrom octvideo.data.ranks import is_global_zero\nis_global_zero()\n"
        "print(sorted(m for m in ('lightning', 'lightning.pytorch') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"]
