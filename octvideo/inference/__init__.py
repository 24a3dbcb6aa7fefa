"""Inference from trained checkpoints: ``Predictor`` (centre clip, multi-view, sliding windows),
prediction records (table, JSON Lines, CSV), rendering predictions into video, and export.

    from octvideo.inference import Predictor
    predictor = Predictor.from_checkpoint("runs/demo/checkpoints/best.ckpt")
    result = predictor.predict("video.mp4", window="2s", stride="1s")
    result.video.top(predictor.classes, 5)
"""

from octvideo.inference.predictor import (
    ClipProtocol,
    Prediction,
    Predictor,
    VideoResult,
    expand_inputs,
    parse_seconds,
    window_times,
)

__all__ = [
    "ClipProtocol",
    "Prediction",
    "Predictor",
    "VideoResult",
    "expand_inputs",
    "parse_seconds",
    "window_times",
]
