"""Map-style video datasets for training, validation and multi-view testing.

Items (``VideoDataset.__getitem__``), collated by the default collate into batches:

    train  {"video": (3, T, H, W) float32 | [slow, fast], "label": int, "video_index": int,
            "skipped": int, "errors": str}
    val    {"video", "label", "video_index", "ok": bool, "error": str}
    test   {"video", "label", "video_index", "temporal_index": int, "spatial_index": int,
            "ok": bool, "error": str}          (one item per view)

Bad videos (missing, zero bytes, not a video, truncated, a decoder error):

- train: the item is drawn again from another index picked at random (seeded by the item), up to
  ``max_retries`` times; the item reports ``skipped`` (how many bad files it stepped over) and
  ``errors`` (``"path<TAB>decoder error"`` lines). Counts and messages travel in the batch because
  workers are other processes; ``BadVideoTracker`` / ``BadVideoCallback`` in the main process log
  each file's error once and the skip count at each epoch end. When every retry fails the loader
  raises ``RuntimeError`` with all the errors: a dataset that bad should stop the run.
- out of open files: a decoder that runs out (``open_files.out_of_open_files``) is no bad
  video; the item raises it as ``OutOfOpenFiles``, never retries or fails the video, and the run
  stops on it (``engine.run`` words it as the open-file limit). A decoder out of memory is a bad
  video: FFmpeg says so for a corrupt header too, and a real shortage fails every retry.
- val / test: never a substitute. The item keeps its video's label and indices, has
  ``ok=False``, ``error`` set, and an all-zero ``video`` of the normal shape (so it collates); the
  consumer must drop rows with ``ok == False`` and count them as failed. ``dataset.records[i]``
  names video ``i``.

Randomness: a training item ``(index, epoch)`` (``EpochSampler`` yields these) seeds its own
generator from ``(cfg.seed, epoch, index, attempt)``: clip start, scale, crop and flip do not depend
on the worker that loads the item, so 0 and N workers give the same batches.

Crashes: a decoder can kill its worker process outright (a segfault in FFmpeg), and PyTorch then
reports only the worker's pid. With ``trail_dir`` set, each worker writes the path it is about to
decode to ``trail_dir/<pid>``; ``worker_crash_report`` turns the DataLoader's error back into the
file that killed the worker.

Test views of one video are ``num_clips * num_crops`` consecutive indices
``(video * num_clips + temporal_index) * num_crops + spatial_index``; the dataset keeps the last
decoded clip, so the crops of one temporal clip decode it once.
"""

from __future__ import annotations

import errno
import logging
import operator
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from octvideo.argtypes import is_whole
from octvideo.data.annotations import VideoRecord
from octvideo.data.config import DataConfig, check_data_config
from octvideo.data.decoding import VideoInfo, decode_clip
from octvideo.data.open_files import out_of_files_error
from octvideo.data.sampling import (
    center_clip_indices,
    clip_stride,
    multiview_clip_indices,
    random_clip_indices,
)
from octvideo.data.transforms import (
    eval_transform,
    pack_pathways,
    train_transform,
    val_transform,
)
from octvideo.errors import DecodeError, TooManyBadVideos, failure_reason, first_line

logger = logging.getLogger(__name__)

MODES = ("train", "val", "test")
# PyTorch's words for a dead worker: "DataLoader worker (pid 123) is killed by signal: ...",
# "DataLoader worker (pid(s) 123, 456) exited unexpectedly".
_WORKER_DIED = re.compile(r"DataLoader worker \(pid(?:\(s\))? ([\d, ]+)\)")


def _leave_trail(folder: str, path: str) -> None:
    """Note in ``folder/<pid>`` the file this process is about to decode (best effort: a folder
    removed under a running loader costs the crash report its file name, never the clip)."""
    try:
        with open(  # noqa: PTH123
            os.path.join(folder, str(os.getpid())),  # noqa: PTH118
            "w",
            encoding="utf-8",
            errors="surrogateescape",
        ) as fh:
            fh.write(path)
    except OSError:
        pass


def worker_crash_report(err: BaseException, trail_dir: str | os.PathLike | None) -> str | None:
    """One line naming the file a dead DataLoader worker was decoding; None for other errors."""
    chain: list[BaseException] = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    for error in chain:
        match = _WORKER_DIED.search(str(error))
        if match is None:
            continue
        reason = first_line(error)
        files = []
        for pid in re.findall(r"\d+", match.group(1)):
            trail = Path(trail_dir, pid) if trail_dir else None
            if trail is not None and trail.is_file():
                files.append(trail.read_text(encoding="utf-8", errors="surrogateescape"))
        if not files:
            return f"{reason} (the file it was decoding is unknown)"
        return (
            f"{reason} while decoding {', '.join(files)}; check it with `octvideo data check` "
            "and fix or remove it from the list"
        )
    return None


class OutOfOpenFiles(OSError):
    """EMFILE or ENFILE met decoding a video. PyTorch rebuilds a data-loader worker's error in
    its caller from the worker's text alone (``type(err)(text)``), which leaves a plain
    ``OSError`` without its errno; this one keeps it, so that the caller stops on the open-file
    limit (``open_files.out_of_open_files``) and not on a video. ``in_worker``: it is such a
    rebuild, met by a data-loader worker, not by this process."""

    def __init__(self, *args: object) -> None:
        self.in_worker = len(args) == 1  # PyTorch's rebuild: the worker's traceback as text
        if self.in_worker:
            args = (errno.EMFILE, args[0])
        super().__init__(*args)


def _stop_if_out_of_open_files(err: BaseException) -> None:
    """Raises the EMFILE or ENFILE ``err`` is, or came from (``open_files.out_of_files_error``),
    as ``OutOfOpenFiles``: no video is to blame."""
    found = out_of_files_error(err)
    if found is not None:
        raise OutOfOpenFiles(found.errno, found.strerror, found.filename) from err


def _record(i: int, record: object) -> VideoRecord:
    """``record`` (``records[i]``) as a ``VideoRecord``: its path as a string, its label as is.

    Raises:
        ValueError: not a (path, label) pair, or a label that is not a whole number of 0 or more.
    """
    if not isinstance(record, Sequence) or isinstance(record, str | bytes) or len(record) != 2:
        raise ValueError(f"records[{i}] must be a (path, label) pair, got {record!r}")
    path, label = record
    if not is_whole(label) or label < 0:
        raise ValueError(
            f"records[{i}] ({path}): label must be a whole number of 0 or more (a class index), "
            f"got {label!r}"
        )
    return VideoRecord(str(path), int(label))


def item_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2)
    return int(state[0]) << 31 ^ int(state[1])


class VideoDataset(Dataset):
    """Clips of annotated videos.

    Indexed as a sequence: ``dataset[-1]`` is the last item, an index outside
    ``[-len, len)`` raises ``IndexError``, and a training index may come with its epoch,
    ``dataset[(index, epoch)]`` (``EpochSampler`` yields these).

    Args:
        records: (path, label) of each video; a label is a class index, a whole number of 0 or
            more.
        cfg: the data section.
        mode: ``"train"`` (random clip, augmentation, retries), ``"val"`` (centre clip and crop)
            or ``"test"`` (``test_num_clips x test_num_crops`` views per video).

    Raises:
        ValueError: a record that is not a (path, label) pair or whose label is not a whole number
            of 0 or more, or a ``mode`` not in ``MODES``.
        TypeError: ``cfg`` is not a ``DataConfig``.
    """

    def __init__(self, records: Sequence[VideoRecord], cfg: DataConfig, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.cfg = check_data_config(cfg, "VideoDataset")
        self.records = [_record(i, record) for i, record in enumerate(records)]
        self.mode = mode
        self.views_per_video = cfg.test_num_clips * cfg.test_num_crops if mode == "test" else 1
        if mode == "train":
            self._transforms = [train_transform(cfg)]
        elif mode == "val":
            self._transforms = [val_transform(cfg)]
        else:
            positions = [1] if cfg.test_num_crops == 1 else [0, 1, 2]
            self._transforms = [eval_transform(cfg, p) for p in positions]
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None
        self._failed: dict[int, str] = {}  # video index -> error, in this process
        self.trail_dir: str | None = None  # see module docstring, "Crashes"

    def __len__(self) -> int:
        return len(self.records) * self.views_per_video

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        index = self._position(index)
        if self.mode == "train":
            return self._train_item(index, int(epoch))
        return self._eval_item(index)

    def _position(self, index: object) -> int:
        """``index`` as a position in ``[0, len)``: a negative one counts from the end.

        Raises:
            TypeError: not a whole number.
            IndexError: outside ``[-len, len)``.
        """
        try:
            position = operator.index(index)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"VideoDataset index must be a whole number, got {index!r}") from None
        size = len(self)
        if not -size <= position < size:
            raise IndexError(f"VideoDataset index {position} is out of range for {size} items")
        return position % size

    def _pack(self, video: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        alpha = self.cfg.slowfast_alpha
        return video if alpha is None else pack_pathways(video, alpha)

    def _decode(self, video_index: int, choose) -> torch.Tensor:  # (T, H, W, 3) uint8
        path = self.records[video_index].path
        if self.trail_dir is not None:
            _leave_trail(self.trail_dir, path)
        frames, _, _ = decode_clip(
            path,
            choose,
            decoder=self.cfg.decoder,
            short_side=self.cfg.decode_short_side,
        )
        return frames

    def _train_item(self, index: int, epoch: int) -> dict:
        cfg = self.cfg
        failures: list[tuple[str, str]] = []  # (path, error) of each video tried
        video_index = index
        for attempt in range(cfg.max_retries + 1):
            # one seed per draw: seeded alike, the first draws of the replacement video, the clip
            # start and the scale jitter were one number (start and scale tied modulo their gcd)
            pick_seed, clip_seed, aug_seed = (
                item_seed(cfg.seed, epoch, index, attempt, draw) for draw in range(3)
            )
            if attempt > 0:
                picker = torch.Generator().manual_seed(pick_seed)
                video_index = int(torch.randint(len(self.records), (1,), generator=picker))

            def choose(info: VideoInfo, seed: int = clip_seed) -> np.ndarray:
                gen = torch.Generator().manual_seed(seed)
                stride = clip_stride(cfg.sampling_rate, info.fps, cfg.target_fps)
                return random_clip_indices(info.num_frames, cfg.num_frames, stride, gen)

            try:
                frames = self._decode(video_index, choose)
            except (DecodeError, OSError, IndexError) as err:
                _stop_if_out_of_open_files(err)
                path = self.records[video_index].path
                logger.debug("skipping %s: %s", path, err)
                failures.append((path, str(err)))
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(aug_seed)
                video = self._transforms[0](frames)  # (3, T, H, W)
            return {
                "video": self._pack(video),
                "label": self.records[video_index].label,
                "video_index": video_index,
                "skipped": len(failures),
                "errors": "\n".join(f"{path}\t{error}" for path, error in failures),
            }
        tried = "; ".join(f"{path}: {error}" for path, error in failures)
        raise TooManyBadVideos(
            f"{cfg.max_retries + 1} videos in a row failed to decode (data.max_retries="
            f"{cfg.max_retries}); run `octvideo data check` on the annotations: {tried}",
            failures=failures,
        )

    def _placeholder(self) -> torch.Tensor:
        cfg = self.cfg
        size = cfg.val_crop_size if self.mode == "val" else cfg.test_crop_size
        return torch.zeros(3, cfg.num_frames, size, size)  # (3, T, S, S)

    def _eval_item(self, index: int) -> dict:
        cfg = self.cfg
        video_index, view = divmod(index, self.views_per_video)
        temporal_index, spatial_index = divmod(
            view, cfg.test_num_crops if self.mode == "test" else 1
        )
        item = {"label": self.records[video_index].label, "video_index": video_index}
        if self.mode == "test":
            item.update(temporal_index=temporal_index, spatial_index=spatial_index)
        error = self._failed.get(video_index)  # its other views are not decoded again
        if error is None:
            try:
                frames = self._eval_frames(video_index, temporal_index)
            except (DecodeError, OSError, IndexError) as err:
                _stop_if_out_of_open_files(err)
                error = self._failed[video_index] = failure_reason(err)
                logger.debug("failed: %s", error)
        if error is not None:
            return {**item, "video": self._pack(self._placeholder()), "ok": False, "error": error}
        video = self._transforms[spatial_index](frames)  # (3, T, S, S)
        return {**item, "video": self._pack(video), "ok": True, "error": ""}

    def _eval_frames(self, video_index: int, temporal_index: int) -> torch.Tensor:
        key = (video_index, temporal_index)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        cfg = self.cfg
        if self.mode == "val":

            def choose(info: VideoInfo) -> np.ndarray:
                stride = clip_stride(cfg.sampling_rate, info.fps, cfg.target_fps)
                return center_clip_indices(info.num_frames, cfg.num_frames, stride)

        else:

            def choose(info: VideoInfo) -> np.ndarray:
                stride = clip_stride(cfg.sampling_rate, info.fps, cfg.target_fps)
                return multiview_clip_indices(
                    info.num_frames, cfg.num_frames, stride, cfg.test_num_clips
                )[temporal_index]

        frames = self._decode(video_index, choose)
        self._cache = (key, frames)
        return frames
