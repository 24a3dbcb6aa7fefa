"""Training and evaluation: the LightningModule, multi-view evaluation, checkpoints, callbacks
behind the ``octvideo train`` / ``octvideo test`` commands (``octvideo.cli.run``).

Public API:
    run_train(cfg, overrides=(), *, resume=None, out=None, callbacks=()) -> TrainResult
    run_test(cfg, overrides=(), *, ckpt, out=None) -> TestResult
    VideoClassifier(model, *, optim, num_classes, batch_size, seed=0, meta=None)
    evaluate:   ViewOutputs, VideoScores, aggregate_views, summarize, write_report
    checkpoint: atomic_save, load_checkpoint, model_state_dict
    run:        AtomicCheckpointIO, Lightning's checkpoint I/O over atomic_save and load_checkpoint
    optim:      LRSchedule, param_groups, scaled_lr
    build:      build_model(model_cfg)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from octvideo.lazy import lazy_exports

if TYPE_CHECKING:
    from octvideo.engine.build import build_model
    from octvideo.engine.checkpoint import atomic_save, load_checkpoint, model_state_dict
    from octvideo.engine.evaluate import (
        VideoScores,
        ViewOutputs,
        aggregate_views,
        summarize,
        write_report,
    )
    from octvideo.engine.module import VideoClassifier
    from octvideo.engine.optim import LRSchedule, param_groups, scaled_lr
    from octvideo.engine.run import (
        AtomicCheckpointIO,
        TestResult,
        TrainResult,
        run_test,
        run_train,
    )

# Each public name and its submodule, imported on first use (PEP 562): ``module`` and ``run``
# import Lightning, which ``octvideo predict`` and ``octvideo export`` (through ``build`` and
# ``checkpoint``) would otherwise pay for at start-up.
_SUBMODULES = {
    "build_model": "build",
    "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
    "model_state_dict": "checkpoint",
    "VideoScores": "evaluate",
    "ViewOutputs": "evaluate",
    "aggregate_views": "evaluate",
    "summarize": "evaluate",
    "write_report": "evaluate",
    "VideoClassifier": "module",
    "LRSchedule": "optim",
    "param_groups": "optim",
    "scaled_lr": "optim",
    "AtomicCheckpointIO": "run",
    "TestResult": "run",
    "TrainResult": "run",
    "run_test": "run",
    "run_train": "run",
}

__all__ = [
    "AtomicCheckpointIO",
    "LRSchedule",
    "TestResult",
    "TrainResult",
    "VideoClassifier",
    "VideoScores",
    "ViewOutputs",
    "aggregate_views",
    "atomic_save",
    "build_model",
    "load_checkpoint",
    "model_state_dict",
    "param_groups",
    "run_test",
    "run_train",
    "scaled_lr",
    "summarize",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, __all__)
