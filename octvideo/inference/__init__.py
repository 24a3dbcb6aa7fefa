"""Inference from trained checkpoints.

Public API:
    Predictor                 a checkpoint's network and clip protocol: centre clip, multi-view,
                              sliding windows (``Predictor.from_checkpoint``)
    ClipProtocol              how a checkpoint's clips are sampled and normalised
    Prediction                the scores of one window or of a whole video
    VideoResult               what ``Predictor.predict`` returns for one input
    window_times(duration, window, stride) -> [(start, end)]

The rest lives in submodules: many inputs at the model's speed (``pipeline``), prediction records
as a table, JSON Lines or CSV (``output``), predictions drawn into a video (``render``) and
TorchScript / ONNX export (``export``).

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
    window_times,
)

__all__ = [
    "ClipProtocol",
    "Prediction",
    "Predictor",
    "VideoResult",
    "window_times",
]
