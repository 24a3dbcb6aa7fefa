"""``data.target_fps`` travels with the checkpoint: predict counts the clip stride at the trained
frame rate, and test refuses another one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from octvideo.checkpoint_meta import CheckpointMeta
from octvideo.config import load_config
from octvideo.data.decoding import VideoInfo
from octvideo.engine.run import check_same_clips, checkpoint_meta
from octvideo.errors import UsageError
from octvideo.inference import Predictor


def test_the_checkpoint_records_target_fps_and_test_checks_it():
    trained = load_config(None, ["data.target_fps=30"])
    meta = checkpoint_meta(trained, ["a", "b"])
    assert CheckpointMeta.from_dict(meta).clip.target_fps == 30.0
    unset = {**meta, "clip": {**meta["clip"]} | {"target_fps": None}}
    assert CheckpointMeta.from_dict(unset).clip.target_fps is None
    checkpoint = {"hyper_parameters": {"meta": meta}}
    check_same_clips(checkpoint, trained, "x.ckpt")  # the same: no error
    with pytest.raises(UsageError, match=r"data.target_fps=None here, 30.0 in training"):
        check_same_clips(checkpoint, load_config(None, []), "x.ckpt")


@pytest.mark.parametrize(
    ("target", "fps", "stride"), [(None, 60.0, 2), (30.0, 60.0, 4), (30.0, 30.0, 2)]
)
def test_predict_windows_use_the_trained_stride(checkpoint, target, fps, stride):
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.protocol.sampling_rate == 2
    predictor.protocol = dataclasses.replace(predictor.protocol, target_fps=target)
    info = VideoInfo(int(10 * fps), fps, 64, 48, "pyav")
    for views in ("center", "multi"):
        plan, _ = predictor._clip_plan(info, views, None, None)
        assert all(np.diff(p).tolist() == [stride] * (len(p) - 1) for p in plan)
    plan, times = predictor._clip_plan(info, "center", 2.0, 1.0)
    assert len(times) == 9 and all(np.diff(p).tolist() == [stride] * (len(p) - 1) for p in plan)
