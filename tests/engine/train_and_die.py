"""Runs ``run_train`` in this process and kills it with SIGKILL at a chosen point.

    python train_and_die.py RUN_DIR OVERRIDES_JSON step N        # after optimiser step N
    python train_and_die.py RUN_DIR OVERRIDES_JSON ckpt-write N  # half-way through writing the
                                                                 # first checkpoint of step N

SIGKILL cannot be caught: nothing in the process gets to clean up, as when a job is preempted or
the kernel's OOM killer strikes.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import lightning as L
import torch

from octvideo.engine import checkpoint
from octvideo.engine.run import run_train


class KillAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def die_while_writing(step: int) -> None:
    """Patch the checkpoint writer: the first checkpoint of ``step`` is cut in half, then kill."""
    real_save = torch.save
    real_write = checkpoint.AtomicOutput.write
    dying = []

    def save(obj, fh, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("global_step") == step:
            dying.append(step)
        real_save(obj, fh, *args, **kwargs)

    def write(self, data) -> None:
        if dying:  # the serialised checkpoint of ``step``, on its way to the temporary file
            with open(self.tmp, "wb") as fh:
                fh.write(bytes(data)[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(self, data)

    checkpoint.torch.save = save  # the module's reference to torch is the torch module itself
    checkpoint.AtomicOutput.write = write


def main() -> None:
    run_dir, overrides_json, mode, step = sys.argv[1:5]
    overrides = json.loads(overrides_json)
    callbacks = []
    if mode == "step":
        callbacks.append(KillAtStep(int(step)))
    elif mode == "ckpt-write":
        die_while_writing(int(step))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    run_train(None, overrides, out=run_dir, resume="auto", callbacks=callbacks)
    raise SystemExit("the run finished without being killed")


if __name__ == "__main__":
    main()
