"""``VideoDataModule``: annotations -> datasets -> DataLoaders for Lightning.

    dm = VideoDataModule(DataConfig(train_list=..., val_list=...))
    dm.classes, dm.num_classes               # from the training list (or classes_file)
    trainer.fit(model, datamodule=dm)        # add BadVideoCallback() to the trainer's callbacks

Batches (default collate of ``octvideo.data.datasets`` items):

    train  {"video": float32 (B, 3, T, H, W) | [slow (B, 3, T/alpha, H, W), fast (B, 3, T, H, W)],
            "label": int64 (B,), "video_index": int64 (B,), "skipped": int64 (B,),
            "errors": list[str] (B,)}
    val    {"video", "label", "video_index", "ok": bool (B,), "error": list[str] (B,)}
    test   val + "temporal_index": int64 (B,), "spatial_index": int64 (B,); one row per view

Rows with ``ok == False`` are videos that failed to decode: drop them and count them (see
``octvideo.data.datasets``); ``dm.test_dataset.records[video_index]`` names the video.

Sampling: training uses ``EpochSampler`` (a ``DistributedSampler`` over the ranks of an initialised
process group, or a single-rank one) that shuffles with ``(seed, epoch)`` and yields
``(index, epoch)`` so each item seeds its own augmentation; Lightning calls its ``set_epoch`` and,
since it is a ``DistributedSampler``, does not replace it under DDP. The last partial batch is
dropped in training. Validation uses Lightning's ``UnrepeatedDistributedSampler`` and test
``ShareSampler`` (a contiguous share, so a clip's crops are decoded once): each rank gets a
disjoint share and no view is repeated to pad (a padded view would be counted twice by the
multi-view average).

Resuming: the datamodule's ``state_dict`` (saved by Lightning in every checkpoint) records the epoch
and the batches of it already trained on; after ``load_state_dict`` the next training loader starts
that epoch's permutation at the following batch. A run resumed from a mid-epoch checkpoint
therefore sees exactly the batches an uninterrupted run would have seen, in the same order
(Lightning alone would restart the epoch's permutation from its first batch, and would shuffle the
first resumed epoch with the sampler's initial epoch number).

Precise BN (``trainer.precise_bn_batches``) reads ``precise_bn_dataloader(epoch)``: the same
sampler and augmentation in a loader of its own, so the training position is untouched.

Workers: each DataLoader worker ignores SIGINT, SIGTERM and SIGHUP (``_loader_worker_init``): a
stop sent to the whole process group is the run's, which stops at a batch boundary and ends its
workers (PyTorch asks each to exit after its item, and kills one that has not after 5 s).
Where workers do not fork (not Linux), they keep the stops' defaults.

User errors (no list set, a list with no existing video, a malformed annotation) raise
``octvideo.errors.AnnotationError``, a ``UsageError`` the command line prints as one line.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import tempfile
import weakref
from collections.abc import Iterator
from functools import cached_property
from multiprocessing.context import ForkContext, ForkProcess

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, DistributedSampler

from octvideo import signals
from octvideo.data.annotations import CLASSES_FILE_SOURCE, Annotations, load_annotations
from octvideo.data.config import DataConfig, check_data_config
from octvideo.data.datasets import VideoDataset, worker_crash_report
from octvideo.data.ranks import is_global_zero, world
from octvideo.data.workers import KillingPopen, machine_worker_limit
from octvideo.errors import AnnotationError, UsageError
from octvideo.paths import printable

logger = logging.getLogger(__name__)

STAGES = ("fit", "validate", "test")  # the stages whose datasets ``setup`` builds


class EpochSampler(DistributedSampler):
    """Shuffles per epoch like ``DistributedSampler`` and yields ``(index, epoch)`` pairs.

    ``resume(epoch, skip)`` makes the next pass over ``epoch`` start at position ``skip`` of this
    rank's permutation (once; later epochs are whole). ``len`` stays the whole epoch's.
    """

    _resume: tuple[int, int] | None = None

    def resume(self, epoch: int, skip: int) -> None:
        """Start the next pass over ``epoch`` after its first ``skip`` items."""
        self.set_epoch(epoch)
        self._resume = (epoch, skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        indices = list(super().__iter__())
        if self._resume is not None and self._resume[0] == epoch:
            indices = indices[self._resume[1] :]
            self._resume = None
        return ((index, epoch) for index in indices)


def check_every_rank_has_one(size: int, num_replicas: int, what: str) -> None:
    """One-line error when an evaluation set has fewer items than processes: a rank with none
    would not take part in the others' gathers and reductions (the run would hang or abort).

    Raises:
        UsageError: names the counts.
    """
    if size < num_replicas:
        raise UsageError(
            f"data: {size} {what} for {num_replicas} processes; evaluate with at most "
            f"{size} processes (trainer.devices x trainer.num_nodes), or list more videos"
        )


class ShareSampler(DistributedSampler):
    """This rank's contiguous share of the dataset, each index on exactly one rank, in order.

    The test views of a video are neighbours (its clips, each clip's crops), so a rank decodes
    a clip once for all its crops; ``UnrepeatedDistributedSampler`` deals the indices round
    robin, which put a clip's 3 crops on 3 ranks, each decoding it. A ``DistributedSampler``,
    so Lightning keeps it under DDP.
    """

    def __init__(self, dataset: VideoDataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        size = len(dataset)
        check_every_rank_has_one(size, num_replicas, "test views")
        self.start, self.end = rank * size // num_replicas, (rank + 1) * size // num_replicas

    def __iter__(self) -> Iterator[int]:  # type: ignore[override]
        return iter(range(self.start, self.end))

    def __len__(self) -> int:
        return self.end - self.start


class _LoaderWorker(ForkProcess):
    """A DataLoader worker, forked as by PyTorch's default, that ignores the stops of its process
    group (``_loader_worker_init``): ``terminate()`` kills it (``KillingPopen``). PyTorch
    terminates a worker that has not exited 5 s after it was asked to, and multiprocessing every
    worker left at the exit; a SIGTERM ignored left that exit waiting on the worker for ever."""

    @staticmethod
    def _Popen(process_obj: ForkProcess) -> KillingPopen:
        return KillingPopen(process_obj)


class _LoaderContext(ForkContext):
    Process = _LoaderWorker


def _loader_context() -> ForkContext | None:
    """The context DataLoader workers start from: ``_LoaderContext`` where they fork (Linux);
    None (PyTorch's default, whose workers keep the stops' default) where they start otherwise."""
    return _LoaderContext() if mp.get_start_method() == "fork" else None


def _loader_worker_init(worker_id: int) -> None:
    """What each DataLoader worker runs first: a stop sent to the whole process group (SIGTERM
    from a scheduler, SIGHUP, Ctrl-C) is left to the run, which stops at a batch boundary keeping
    last.ckpt and ends its workers (``signals.ignore_stops``)."""
    if isinstance(mp.current_process(), _LoaderWorker):
        signals.ignore_stops()


# the passes over a loader whose workers ignore the group's stops, while referenced
_live_passes: weakref.WeakSet = weakref.WeakSet()


@atexit.register  # before multiprocessing's exit function, registered as torch was imported
def _end_live_passes() -> None:
    """At the exit, asks the workers of each loader pass still referenced (a stopped run's, held
    by its error) to exit, as the pass does when it is freed. Multiprocessing would kill them
    instead, and PyTorch report each as a worker that failed, traceback and all."""
    for passes in list(_live_passes):
        passes._shutdown_workers()


class BoundedDataLoader(DataLoader):
    """A ``DataLoader`` that leaves PyTorch's per-core worker warning to octvideo's own bound.

    PyTorch warns, at the loader's start and at each pass's, that the loader "might get running
    slow or even freeze" when it starts more workers than the process has cores. octvideo takes up
    to ``WORKERS_PER_CORE`` a core (``check_worker_count``, which ``data.num_workers`` passes
    before a run starts: a worker that waits on storage leaves its core to another), so that
    warning came twice per command for counts it takes. Within that bound the check is not run;
    past it (a ``DataConfig`` built without the run's checks), PyTorch's warning stands.
    """

    def _get_iterator(self) -> Iterator:
        # where PyTorch forks the workers: a stop sent to the group then waits in each worker
        # until it ignores it (``_loader_worker_init``); PyTorch's own SIGTERM handler, set
        # before, ended a worker on a SIGTERM that is not its parent's
        if not isinstance(self.multiprocessing_context, _LoaderContext):
            return super()._get_iterator()
        with signals.held_for_fork():
            passes = super()._get_iterator()
        _live_passes.add(passes)
        return passes

    def check_worker_number_rationality(self) -> None:
        if self.num_workers > machine_worker_limit():
            super().check_worker_number_rationality()


def _warn_shared_videos(
    train_list: str, train: VideoDataset, val_list: str, val: VideoDataset
) -> None:
    """One warning line counting the videos both the training and the validation list hold (the
    same path, whatever label), naming one: a video trained on is scored as unseen (train/val
    leakage). A set of paths, no file opened: a file reached by two spellings (a link) passes."""
    labels = {os.path.normpath(record.path): record.label for record in train.records}
    shared = sorted(
        (os.path.normpath(record.path), record.label)
        for record in val.records
        if os.path.normpath(record.path) in labels
    )
    if shared and is_global_zero():  # every rank reads both lists: said once
        path, label = shared[0]
        logger.warning(
            "data: %d videos of data.val_list=%s are in data.train_list=%s too (train/val "
            "leakage: a video trained on is scored as unseen), e.g. %s (label %d in training, %d "
            "in validation); drop them from one list",
            len(shared),
            val_list,
            train_list,
            printable(path),
            labels[path],
            label,
        )


class VideoDataModule(L.LightningDataModule):
    """Train / val / test loaders over annotated videos.

    Args:
        cfg: the data section.

    Raises:
        TypeError: ``cfg`` is not a ``DataConfig``.
    """

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__()
        self.cfg = check_data_config(cfg, "VideoDataModule")
        self.train_dataset: VideoDataset | None = None
        self.val_dataset: VideoDataset | None = None
        self.test_dataset: VideoDataset | None = None
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches done) from a checkpoint
        self._trail: tempfile.TemporaryDirectory | None = None  # what each worker decodes

    def worker_crash_report(self, err: BaseException) -> str | None:
        """For an error from a DataLoader whose worker died: one line naming the file it was
        decoding (None for any other error).

        Raises:
            SIGTERMException: the trainer had received SIGTERM: the worker died of the same stop
                (sent to the whole process group before it could ignore it), not of its video,
                and the run stops as on SIGTERM.
        """
        report = worker_crash_report(err, self._trail.name if self._trail else None)
        trainer = self.trainer
        if report is not None and trainer is not None and trainer.received_sigterm:
            raise SIGTERMException from err
        return report

    def state_dict(self) -> dict[str, int]:
        """The training position: epoch, batches of it done, the batch size they had, and the
        processes and training videos the epoch was shared out over (a resume checks them)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {
            "epoch": int(trainer.current_epoch),
            "batches_done": int(done),
            "batch_size": int(self.cfg.batch_size),
            "world_size": int(trainer.world_size),
            "train_videos": self.num_train_videos,
        }

    @property
    def num_train_videos(self) -> int:
        """Videos of the training list that exist (0 without a training list)."""
        if not self.cfg.train_list:
            return 0
        return len(self._class_source.records)  # with a training list, it is the class source

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue at the position ``state_dict`` recorded (see module docstring).

        Raises:
            UsageError: the checkpoint's batch size differs from ``data.batch_size`` (the batches
                already done could not be located in the epoch).
        """
        if not state:
            return
        if state["batch_size"] != self.cfg.batch_size:
            raise UsageError(
                f"data.batch_size={self.cfg.batch_size} but the checkpoint was trained with "
                f"batch size {state['batch_size']}; resume with data.batch_size="
                f"{state['batch_size']}"
            )
        self._resume_at = (state["epoch"], state["batches_done"])

    def _read(self, path: str, classes: list[str] | None) -> Annotations:
        cfg = self.cfg
        return load_annotations(
            path,
            root=cfg.root or None,
            fmt=cfg.annotation_format,
            classes_file=cfg.classes_file or None,
            classes=classes,
            classes_source=self._classes_from,
            extensions=tuple(cfg.video_extensions),
            allow_outside_root=cfg.allow_outside_root,
            # a class the first list lacks but the validation list has is named as such
            other_lists=[
                other
                for other in (cfg.train_list, cfg.val_list, cfg.test_list)
                if other and other != path and classes is None
            ],
        )

    @property
    def _first_list(self) -> str:
        """The first list set, training, else validation, else test: every list's labels are
        indices into its classes (or those of ``data.classes_file``)."""
        cfg = self.cfg
        first = cfg.train_list or cfg.val_list or cfg.test_list
        if not first:
            raise AnnotationError("data: set data.train_list, data.val_list or data.test_list")
        return first

    @cached_property
    def _class_source(self) -> Annotations:
        """The annotations of ``_first_list``, which give the class list."""
        return self._read(self._first_list, None)

    @cached_property
    def _classes_from(self) -> str:
        """Where the class list comes from, as the refusal of a label outside it names it:
        ``data.classes_file`` where that file exists, else the first list (whose classes
        ``load_annotations`` then writes to the file). Taken before the first list is read."""
        file = self.cfg.classes_file
        if file and os.path.isfile(file):
            return f"{CLASSES_FILE_SOURCE}, {file}"
        return f"the first list, {self._first_list}"

    @property
    def classes(self) -> list[str]:
        """Class names; label ``i`` is ``classes[i]``."""
        return self._class_source.classes

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def _dataset(self, path: str, mode: str) -> VideoDataset:
        # the first list was read for the classes: a Kinetics list is not walked twice
        first = path == self._first_list
        annotations = self._class_source if first else self._read(path, self.classes)
        if not annotations.records:
            raise AnnotationError(
                f"data: {path} lists no video that exists; check the list's paths against "
                "data.root, or the class folders' videos against data.video_extensions"
            )
        if is_global_zero():  # every rank reads the whole list
            logger.info("%s: %d videos from %s", mode, len(annotations.records), path)
        dataset = VideoDataset(annotations.records, self.cfg, mode)
        if self.cfg.num_workers > 0:
            if self._trail is None:
                self._trail = tempfile.TemporaryDirectory(prefix="octvideo-decoding-")
            dataset.trail_dir = self._trail.name
        return dataset

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``fit``, ``validate``, ``test`` or None for all).

        Raises:
            ValueError: another stage (``predict`` included: predict reads videos through
                ``octvideo.inference``), naming the stages taken.
        """
        if stage is not None and stage not in STAGES:
            taken = ", ".join(repr(name) for name in STAGES)
            raise ValueError(f"VideoDataModule.setup takes stage {taken} or None, got {stage!r}")
        cfg = self.cfg
        if stage in ("fit", None) and cfg.train_list and self.train_dataset is None:
            self.train_dataset = self._dataset(cfg.train_list, "train")
        if stage in ("fit", "validate", None) and cfg.val_list and self.val_dataset is None:
            self.val_dataset = self._dataset(cfg.val_list, "val")
            if self.train_dataset is not None:
                _warn_shared_videos(
                    cfg.train_list, self.train_dataset, cfg.val_list, self.val_dataset
                )
        test_list = cfg.test_list or cfg.val_list
        if stage in ("test", None) and test_list and self.test_dataset is None:
            self.test_dataset = self._dataset(test_list, "test")

    def _loader(
        self,
        dataset: VideoDataset | None,
        sampler: DistributedSampler,
        persistent: bool = True,
        **kw,
    ) -> BoundedDataLoader:
        cfg = self.cfg
        workers = cfg.num_workers
        # The workers fork (PyTorch's default), unlike octvideo's own workers
        # (``octvideo.data.workers``): from the fork server they loaded 3-16% fewer clips a second,
        # and the train and test processes never decode before their loaders start.
        return BoundedDataLoader(
            dataset,
            worker_init_fn=_loader_worker_init,
            multiprocessing_context=_loader_context() if workers > 0 else None,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=cfg.pin_memory and torch.cuda.is_available(),
            persistent_workers=persistent and cfg.persistent_workers and workers > 0,
            prefetch_factor=cfg.prefetch_factor if workers > 0 else None,
            **kw,
        )

    def _stage_dataset(self, stage: str) -> tuple[VideoDataset | None, str]:
        """The dataset that ``stage``'s loader reads (None before ``setup``) and its name."""
        if stage == "fit":
            return self.train_dataset, "train_dataset"
        if stage == "validate":
            return self.val_dataset, "val_dataset"
        return self.test_dataset, "test_dataset"

    def _require(self, stage: str) -> VideoDataset:
        """The dataset of ``stage`` (``fit``, ``validate`` or ``test``), set up on first use.

        Raises:
            AnnotationError: no list is set for it.
        """
        dataset, name = self._stage_dataset(stage)
        if dataset is None:
            self.setup(stage)
            dataset = self._stage_dataset(stage)[0]
        if dataset is None:
            raise AnnotationError(f"data: no annotations for {name} (set the matching data.*_list)")
        return dataset

    def _train_sampler(self) -> tuple[VideoDataset, EpochSampler, bool]:
        """The training set, its sampler over this rank's share, and whether to drop the last
        partial batch."""
        dataset = self._require("fit")
        replicas, rank = world()
        sampler = EpochSampler(
            dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=self.cfg.seed
        )
        return dataset, sampler, len(dataset) >= self.cfg.batch_size * replicas

    def train_dataloader(self) -> DataLoader:
        dataset, sampler, drop_last = self._train_sampler()
        if self._resume_at is not None:
            epoch, done = self._resume_at
            per_epoch = (
                len(sampler) // self.cfg.batch_size
                if drop_last
                else -(-len(sampler) // self.cfg.batch_size)
            )
            if done >= per_epoch:
                sampler.resume(epoch + 1, 0)
            else:
                sampler.resume(epoch, done * self.cfg.batch_size)
                if is_global_zero():  # every rank resumes at the same batch
                    logger.info("resuming epoch %d at batch %d of %d", epoch, done, per_epoch)
            self._resume_at = None
        return self._loader(dataset, sampler, drop_last=drop_last)

    def precise_bn_dataloader(self, epoch: int) -> DataLoader:
        """Training batches for recomputing batch-norm statistics (``PreciseBatchNorm``): epoch
        ``epoch``'s order from its start, augmented as in training, from a loader of its own
        whose workers end with it, so the training loader's position is not touched."""
        dataset, sampler, drop_last = self._train_sampler()
        sampler.set_epoch(epoch)
        return self._loader(dataset, sampler, persistent=False, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        dataset = self._require("validate")
        replicas, rank = world()
        check_every_rank_has_one(len(dataset), replicas, "validation videos")
        sampler = UnrepeatedDistributedSampler(
            dataset, num_replicas=replicas, rank=rank, shuffle=False
        )
        return self._loader(dataset, sampler)

    def test_dataloader(self) -> DataLoader:
        dataset = self._require("test")
        replicas, rank = world()
        return self._loader(dataset, ShareSampler(dataset, replicas, rank))
