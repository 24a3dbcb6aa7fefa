"""Clip sampling: which frame indices make a clip.

A clip is ``T = num_frames`` frames ``tau = sampling_rate`` apart, spanning
``window = (T - 1) * tau + 1`` frames. Time is counted in frames, not seconds, so variable frame
rate files and wrong container durations cannot shift a clip. With ``data.target_fps`` the stride
is counted at that rate instead (``clip_stride``): ``tau * fps / target_fps`` frames of a video at
``fps``, so a clip spans the same seconds at any frame rate (PySlowFast's ``DATA.TARGET_FPS``);
the k-th frame is ``start + round(k * stride)``.

Training: the start is uniform over ``[0, num_video_frames - window]`` (``random_clip_indices``),
drawn from a ``torch.Generator`` the dataset seeds per (seed, epoch, index), so a clip does not
depend on which worker loads it. pytorchvideo's ``RandomClipSampler`` draws from Python's global
``random`` state, which would tie clips to worker scheduling, so it is not used here.

Testing: ``N`` clips whose starts split ``[0, num_video_frames - window]`` evenly, start
``i * (num_video_frames - window) / N`` rounded down: pytorchvideo's
``ConstantClipsPerVideoSampler`` with frames as its time unit (the same rule as PySlowFast's
``get_start_end_idx`` for test clips). One test clip is the centre clip, which validation during
training also uses (the rule above would take the first: the test would score another clip than
validation and ``predict``).

Videos shorter than a clip: indices past the last frame are clamped to it, i.e. the last frame
repeats (PySlowFast's choice); the clip keeps its T frames and all views of such a video are equal.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler


def clip_stride(sampling_rate: int, fps: float, target_fps: float | None) -> float:
    """Frames between a clip's frames in a video at ``fps``: ``sampling_rate``, or, counted at
    ``target_fps``, ``sampling_rate * fps / target_fps`` (as is when the video's fps is unknown)."""
    if target_fps is None or not fps or fps <= 0:
        return sampling_rate
    return sampling_rate * fps / target_fps


def clip_window(num_frames: int, sampling_rate: float) -> int:
    """Frames spanned by a clip of ``num_frames`` frames ``sampling_rate`` apart."""
    return int(round((num_frames - 1) * sampling_rate)) + 1


def clip_indices(
    start: int, num_frames: int, sampling_rate: float, video_frames: int
) -> np.ndarray:
    """Indices ``start + round(k * sampling_rate)`` for k < num_frames, clamped to the last frame.

    Returns:
        int64 array (num_frames,).
    """
    steps = np.rint(np.arange(num_frames, dtype=np.float64) * sampling_rate).astype(np.int64)
    return np.minimum(start + steps, video_frames - 1)


def random_clip_indices(
    video_frames: int, num_frames: int, sampling_rate: float, generator: torch.Generator
) -> np.ndarray:
    """A training clip at a uniformly random start.

    Returns:
        int64 array (num_frames,).
    """
    max_start = max(video_frames - clip_window(num_frames, sampling_rate), 0)
    start = int(torch.randint(0, max_start + 1, (1,), generator=generator))
    return clip_indices(start, num_frames, sampling_rate, video_frames)


def center_clip_indices(video_frames: int, num_frames: int, sampling_rate: float) -> np.ndarray:
    """The clip centred in the video (validation).

    Returns:
        int64 array (num_frames,).
    """
    max_start = max(video_frames - clip_window(num_frames, sampling_rate), 0)
    return clip_indices(max_start // 2, num_frames, sampling_rate, video_frames)


def uniform_clip_starts(
    video_frames: int, num_frames: int, sampling_rate: float, num_clips: int
) -> list[int]:
    """Starts of the ``num_clips`` evenly spread test clips of a video (one: the centre clip)."""
    window = clip_window(num_frames, sampling_rate)
    if num_clips == 1:
        return [max(video_frames - window, 0) // 2]
    sampler = ConstantClipsPerVideoSampler(
        clip_duration=Fraction(window), clips_per_video=num_clips
    )
    starts = []
    for _ in range(num_clips):
        info = sampler(0, Fraction(video_frames), {})
        starts.append(int(info.clip_start_sec))  # Fraction -> floor
    sampler.reset()
    return starts


def multiview_clip_indices(
    video_frames: int, num_frames: int, sampling_rate: float, num_clips: int
) -> list[np.ndarray]:
    """The frame indices of each of the ``num_clips`` test clips.

    Returns:
        ``num_clips`` int64 arrays (num_frames,).
    """
    return [
        clip_indices(s, num_frames, sampling_rate, video_frames)
        for s in uniform_clip_starts(video_frames, num_frames, sampling_rate, num_clips)
    ]
