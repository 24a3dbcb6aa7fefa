"""Training and evaluation: the LightningModule, multi-view evaluation, checkpoints, callbacks
behind the ``octvideo train`` / ``octvideo test`` commands (``octvideo.cli.run``).

Public API:
    run_train(cfg, overrides=(), *, resume=None, out=None, callbacks=()) -> TrainResult
    run_test(cfg, overrides=(), *, ckpt, out=None) -> TestResult
    VideoClassifier(model, *, optim, num_classes, batch_size, seed=0, meta=None)
    evaluate:   ViewOutputs, VideoScores, aggregate_views, summarize, write_report
    checkpoint: AtomicCheckpointIO, atomic_save, load_checkpoint, model_state_dict
    optim:      LRSchedule, param_groups, scaled_lr
    build:      build_model(model_cfg)
"""

from octvideo.engine.build import build_model
from octvideo.engine.checkpoint import (
    AtomicCheckpointIO,
    atomic_save,
    load_checkpoint,
    model_state_dict,
)
from octvideo.engine.evaluate import (
    VideoScores,
    ViewOutputs,
    aggregate_views,
    summarize,
    write_report,
)
from octvideo.engine.module import VideoClassifier
from octvideo.engine.optim import LRSchedule, param_groups, scaled_lr
from octvideo.engine.run import TestResult, TrainResult, run_test, run_train

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
