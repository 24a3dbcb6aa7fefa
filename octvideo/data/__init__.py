"""octvideo's data layer: from a folder of videos to batches of clips.

Annotation file -> (path, label) records -> decoder (decord, PyAV fallback) -> clip sampler ->
``torchvision.transforms.v2`` -> (B, 3, T, H, W) batches, for Kinetics-style data and for the
synthetic set of ``octvideo data synth``. Data pipeline of the video experiments in "Drop an Octave"
(Chen et al., ICCV 2019) and the Non-local video ResNets (Wang et al., CVPR 2018).

Public API:
    DataConfig                          the ``data`` config section (``octvideo.data.config``)
    VideoDataModule(cfg)                LightningDataModule: train/val/test_dataloader, classes,
                                        num_classes, train/val/test_dataset (``.records``)
    EpochSampler                        the training sampler: shuffles per epoch, resumes mid-epoch
    VideoDataset(records, cfg, mode)    map-style dataset, mode "train" | "val" | "test"
    BadVideoCallback, BadVideoTracker   main-process reporting of bad videos
    decode(path, indices=None, *, decoder="auto", short_side=None) -> uint8 (T, H, W, 3)
    probe(path, *, decoder="auto") -> VideoInfo(num_frames, fps, width, height, decoder)
    decode_clip(path, choose, *, decoder, short_side) -> (frames, indices, info)
    load_annotations(path, *, root, fmt, classes_file, classes, extensions, allow_outside_root)
        -> Annotations(records, classes, missing, missing_examples)
    VideoRecord(path, label)            one annotated video

The clip transforms (``train_transform``, ``val_transform``, ``eval_transform``,
``pack_pathways``) are in ``octvideo.data.transforms``.

Batches: train ``{"video": float32 (B, 3, T, H, W) or [slow, fast], "label": int64 (B,),
"video_index": int64 (B,), "skipped": int64 (B,), "errors": list[str]}``. Validation adds
nothing random and carries ``"ok": bool (B,)`` and ``"error": list[str]``; test items are single
views with ``"temporal_index"`` and ``"spatial_index"`` as well.

Failure design. Workers are separate processes, so failures travel in the batch itself:
- evaluation (val/test) never substitutes a video: a video that fails to decode yields its views
  with ``ok=False``, an all-zero video of the normal shape and the decoder's ``error``; the engine
  drops those rows, names the video with ``dataset.records[video_index]`` and counts it as failed
  in its report.
- training steps over a bad file to another random index (at most ``max_retries`` times) and
  reports ``skipped`` / ``errors`` in the batch; ``BadVideoCallback`` logs each file's decoder error
  once and the number skipped at each epoch end (metric ``data/skipped_videos``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from octvideo.lazy import lazy_exports

if TYPE_CHECKING:
    from octvideo.data.annotations import Annotations, VideoRecord, load_annotations
    from octvideo.data.callbacks import BadVideoCallback, BadVideoTracker
    from octvideo.data.config import DataConfig
    from octvideo.data.datamodule import EpochSampler, VideoDataModule
    from octvideo.data.datasets import VideoDataset
    from octvideo.data.decoding import VideoInfo, decode, decode_clip, probe

# Each public name and its submodule, imported on first use (PEP 562): ``callbacks`` and
# ``datamodule`` import Lightning, which the commands that never train (predict, data check,
# data prepare) and their workers would otherwise pay for at start-up.
_SUBMODULES = {
    "Annotations": "annotations",
    "VideoRecord": "annotations",
    "load_annotations": "annotations",
    "BadVideoCallback": "callbacks",
    "BadVideoTracker": "callbacks",
    "DataConfig": "config",
    "EpochSampler": "datamodule",
    "VideoDataModule": "datamodule",
    "VideoDataset": "datasets",
    "VideoInfo": "decoding",
    "decode": "decoding",
    "decode_clip": "decoding",
    "probe": "decoding",
}

__all__ = [
    "Annotations",
    "BadVideoCallback",
    "BadVideoTracker",
    "DataConfig",
    "EpochSampler",
    "VideoDataModule",
    "VideoDataset",
    "VideoInfo",
    "VideoRecord",
    "decode",
    "decode_clip",
    "load_annotations",
    "probe",
]


__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES, __all__)
