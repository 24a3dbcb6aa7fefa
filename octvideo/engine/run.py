"""``octvideo train`` and ``octvideo test`` as plain functions that tests call in-process.

    result = run_train("i3d_r50_oct_a0.1_8x8.yaml", ["optim.lr=0.05"], resume="auto")
    report = run_test("i3d_r50_oct_a0.1_8x8.yaml", ckpt=result.best_ckpt)

A run directory holds ``config.yaml`` (the resolved config), ``checkpoints/{last,best}.ckpt``,
``logs/version_N/metrics.csv`` (CSV log), ``tb/`` (TensorBoard), ``curves.png``, ``replicas.json``
and, after ``octvideo test``, ``test/`` with the evaluation report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import re
import shlex
import shutil
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from octvideo import signals
from octvideo.checkpoint_meta import (
    CheckpointMeta,
    ClipProtocol,
    stored_meta,
)
from octvideo.config import (
    RunConfig,
    dump_yaml,
    flatten,
    from_dict,
    load_config,
    override_list,
    parse_overrides,
    read_config_file,
    resolve_config_path,
    save_config,
    to_dict,
)
from octvideo.data.datasets import OutOfOpenFiles
from octvideo.data.open_files import (
    DATA_LOADER_OPEN_FILES,
    open_files_message,
    out_of_open_files,
    reserve_open_files,
    stop_forked_workers_out_of_files,
)
from octvideo.engine.build import (
    build_classifier,
    check_clip,
    check_training_precision,
    on_gpu,
    resolve_precision,
)
from octvideo.engine.callbacks import (
    CheckpointOnSigterm,
    EpochLog,
    PreciseBatchNorm,
    ReplicaCheck,
    TrainingCurves,
    at_final_step,
)
from octvideo.engine.checkpoint import (
    atomic_save,
    broken_advice,
    last_good,
    load_checkpoint,
)
from octvideo.engine.evaluate import (
    REPORT_FILES,
    check_report_files,
    remove_report,
    summarize,
    write_report,
)
from octvideo.engine.lightning_state import (
    FolderCheckpoint,
    TopKCheckpoint,
    completed_test_batches,
    epoch_in_progress,
    epochs_done,
    forget_val_batches,
    mark_validation_started,
    val_batches_unfinished,
    validation_under_way,
)
from octvideo.engine.module import VALIDATION_SET, VideoClassifier, validation_set_like
from octvideo.engine.settings import (
    differences,
    model_settings,
    refit_overrides,
    said,
    shown,
)
from octvideo.errors import (
    AnnotationError,
    CheckpointWriteError,
    ConfigError,
    Interrupted,
    NonFiniteLoss,
    OctvideoError,
    OutputWriteError,
    RunStopped,
    Terminated,
    TooManyBadVideos,
    UsageError,
    one_line,
    raise_terminated,
)
from octvideo.models.cost import measure_cost
from octvideo.ops import fuse_for_inference
from octvideo.paths import (
    RUN_MARK,
    TEST_MARK,
    ReadFiles,
    ReadFolders,
    check_folder,
    check_output_file,
    check_outside_data,
    check_utf8,
    hold_folder,
    is_marked,
    is_missing,
    mark_folder,
    nearest_existing,
    read_utf8,
    same_file,
    why_not_a_file,
    write_atomically,
)
from octvideo.streams import RESULT

logger = logging.getLogger(__name__)

# ``import lightning`` gives the "lightning" logger a console handler of its own. Its packages'
# loggers print through handlers of their own when logging was not configured before the import,
# and through the root logger when it was (``octvideo train`` imports this module after ``main``
# configured logging): with its own handler as well, each of their lines would print twice.
logging.getLogger("lightning").handlers.clear()

LAST = "last.ckpt"
BEST = "best.ckpt"


@dataclass
class TrainResult:
    """What a training run left behind."""

    run_dir: Path
    last_ckpt: Path
    best_ckpt: Path | None
    global_step: int
    metrics: dict[str, float]

    def finished(self) -> str:
        """What a stop that comes once the run has returned says after ``stopped by SIGTERM``
        (or Ctrl-C), as one as it ended does (``_fit``): ``after the run finished at global step
        9, its files written: <last.ckpt> (global step 9) is kept, and so is <best.ckpt>``."""
        return _finished(self.last_ckpt, self.global_step)


@dataclass
class TestResult:
    """What ``octvideo test`` computed and wrote (under DDP, on global rank 0; the other ranks
    get empty ``metrics`` and ``files``)."""

    out_dir: Path
    metrics: dict[str, Any]
    files: dict[str, Path]


def _config(
    cfg: str | Path | RunConfig | None, overrides: Sequence[str], out: str | None
) -> tuple[RunConfig, Path | None]:
    """The run's config, the overrides and ``out`` applied, and the file it was read from (None
    for the defaults or a ``RunConfig``). A ``RunConfig`` is checked as ``load_config`` checks a
    file (one changed in Python since it loaded may hold any value) and copied, not changed.

    Raises:
        ConfigError: ``load_config``'s line, naming the key.
    """
    # quoted: a folder named "yes", "null" or "[1]" is that text, not a YAML bool, null or list
    extra = [f"output.dir={json.dumps(out)}"] if out else []
    loaded = load_config(cfg, [*override_list(overrides), *extra])
    named = cfg is not None and not isinstance(cfg, RunConfig)
    return loaded, resolve_config_path(cfg) if named else None


def run_dir_of(cfg: RunConfig) -> Path:
    """``output.dir`` if set, else ``output.root/<output.name or the config's name>``."""
    if cfg.output.dir:
        return Path(cfg.output.dir)
    return Path(cfg.output.root) / (cfg.output.name or cfg.name)


def check_run_folder_named(
    cfg: RunConfig, cfg_file: Path | None, overrides: Sequence[str], out: str | None, doing: str
) -> None:
    """Refuses a run folder's own config.yaml as the ``--cfg`` of a command that writes where it
    says, when it names another folder than the one holding it and neither ``--out`` nor an
    ``output`` override says where: the folder was moved or copied since its run wrote it
    (``output.dir``), or that is relative to another working folder, and the command would
    ``doing`` the folder named (for a copy, the original, whose report or checkpoints it would
    replace).

    Every path the refusal gives is right from the current folder, where the command reads it: a
    relative folder named is said as it resolves here too (from inside ``base``, ``base`` is
    ``base/base``), and it is offered as an ``--out`` only where it is a folder; one that does not
    exist would be a new folder, not the run's.

    Raises:
        UsageError: names both folders and the ``--out`` of each that exists.
    """
    if cfg_file is None or out or cfg_file.name != "config.yaml":
        return
    folder = cfg_file.parent
    named = run_dir_of(cfg)
    if not (folder / "checkpoints").is_dir() or same_file(named, folder):
        return
    if any(key.split(".")[0] == "output" for key, _ in parse_overrides(overrides)):
        return
    why = "the run folder was moved or copied"
    where = f"{named} (output.dir"
    if not named.is_absolute():
        why += ", or the command runs in another working folder than its run"
        where += f", from here {os.path.abspath(named)}"
    advice = f"add --out {shlex.quote(str(folder))} to {doing} it"
    if named.is_dir():
        advice += f", or --out {shlex.quote(str(named))} for that one"
    else:
        where += ", which does not exist"
    raise UsageError(
        f"--cfg {cfg_file} is the config of the run folder {folder}, but names the folder "
        f"{where}): {why}; {advice} (nothing was changed)"
    )


# Lightning writes the run's config into its logs (hparams.yaml) and TensorBoard takes the run
# folder's path as text: both UTF-8 only, and both fail only once the run folder is made
RUN_LOGS = "the run's logs (Lightning's hparams.yaml, TensorBoard)"


def check_run_text(cfg: RunConfig, out: str | os.PathLike[str] | None = None) -> None:
    """Refuses, before anything is written, a run whose folder (``out``: ``--out``) or config
    holds a file name's bytes that are not UTF-8 (``paths.not_utf8``), which ``RUN_LOGS`` cannot
    take: the config's name (its file's name), ``output.dir`` or any other value. Only these
    reach the config so: a config file and an override are read as UTF-8 YAML.

    Raises:
        UsageError: ``paths.check_utf8``'s line, naming the option or key.
    """
    if out is not None:
        check_utf8("--out", os.fspath(out), RUN_LOGS, "choose another --out name")
    for key, value in flatten(to_dict(cfg)):
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            if key == "name":
                what, advice = "config name (the --cfg file's)", "rename it, or set name=NAME"
            else:
                what, advice = key, f"give {key} a UTF-8 name"
            check_utf8(what, text, RUN_LOGS, advice)


def data_folders(cfg: RunConfig) -> ReadFolders:
    """The folders the config's data is read from as a whole, by every command that reads it:
    a list that is a folder, a class-folder root, whose every sub-folder is a class. An output
    folder there would be taken for a class by the next command (``check_outside_data``). A
    lines list names its videos, and a Kinetics CSV's video root (``data.root``, else the CSV's
    folder) is searched only for files named like videos, matched to its rows by name: a run
    folder, a report or a study holds none, so neither is read as a whole."""
    lists = [(key, getattr(cfg.data, key)) for key in ("train_list", "val_list", "test_list")]
    folders = [(key, path) for key, path in lists if path and Path(path).is_dir()]
    return ReadFolders([(f"the class folders of data.{key}", path) for key, path in folders])


def _datamodule(cfg: RunConfig):
    """The data module, its class count checked against the model's. A ``data.classes_file``
    that does not exist yet is not written here (the classes come from the training list), but
    by ``_write_classes_file`` once every check of the run has passed."""
    from octvideo.data import VideoDataModule

    data = cfg.data
    if data.classes_file and Path(data.classes_file).is_dir():
        raise UsageError(
            f"data.classes_file={data.classes_file} is a folder; give the path of a classes file "
            "(one class name a line), or of a new file to write the training list's classes to"
        )
    if data.classes_file and not Path(data.classes_file).exists():
        data = dataclasses.replace(data, classes_file="")
    datamodule = VideoDataModule(data)
    if datamodule.num_classes == 0:  # no classes file and a list without videos: no labels
        listed = data.train_list or data.val_list or data.test_list
        raise AnnotationError(
            f"data: {listed} lists no video that exists, so there are no classes to take from "
            "it; check the list's paths against data.root, or the class folders' videos against "
            "data.video_extensions"
        )
    if datamodule.num_classes != cfg.model.num_classes:
        source = (
            f"data.classes_file={data.classes_file}"
            if data.classes_file
            else f"the labels of {data.train_list or data.val_list or data.test_list}"
        )
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} but the data has "
            f"{datamodule.num_classes} classes (from {source}); set model.num_classes="
            f"{datamodule.num_classes}, or point data.classes_file at this dataset's classes"
        )
    return datamodule


def _write_classes_file(cfg: RunConfig, classes: Sequence[str]) -> None:
    """Writes ``data.classes_file`` from the data's classes when it does not exist (the data
    layer's contract), after the run's checks.

    Raises:
        UsageError: the file cannot be written.
    """
    path = cfg.data.classes_file
    if not path or Path(path).exists():
        return
    from octvideo.data.annotations import write_classes

    try:
        write_classes(path, list(classes))
    except OSError as err:
        raise UsageError(
            f"data.classes_file={path} cannot be written ({err.strerror or err}); choose "
            "another path, or write the class names there, one a line"
        ) from err
    logger.info("wrote %d class names to %s", len(classes), path)


def show_progress_bar(cfg: RunConfig) -> bool:
    """Lightning's progress bar where ``trainer.progress_bar`` is on and stdout is a terminal;
    elsewhere (a log file, a pipe, ``make demo`` under a CI job) it would be pages of carriage
    returns, and training logs one line per epoch instead (``EpochLog``)."""
    return cfg.trainer.progress_bar and sys.stdout.isatty()


def world_size(cfg: RunConfig) -> int:
    """Processes a run takes: devices per node (-1: every GPU; one process on a CPU) x nodes."""
    t = cfg.trainer
    if t.devices != -1:
        return t.devices * t.num_nodes
    return (max(1, torch.cuda.device_count()) if on_gpu(t.accelerator) else 1) * t.num_nodes


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with atomic writes and ``weights_only=True`` loading."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        try:
            atomic_save(checkpoint, path)
        except OutputWriteError as err:
            raise CheckpointWriteError(
                f"cannot write checkpoint {path} ({err.reason}); {last_good(path)}. Free space "
                "or fix the folder, then continue with --resume auto",
                err,
            ) from err
        logger.debug("checkpoint written: %s", path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError("octvideo checkpoints load with weights_only=True only")
        return load_checkpoint(path, map_location=map_location or "cpu")


# Lightning's lines that tell a user of octvideo nothing, left out where a trainer is made: its
# advertisements ("💡 Tip: ...", whatever they advertise), the Ctrl-C and SIGTERM lines that
# octvideo's own stop line says better, and the deprecation warning that Lightning's own code
# (its pytree flattening) raises in torch
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.signal_connector",
)
_LIGHTNING_NOISE = (
    "💡 Tip:",
    "Detected KeyboardInterrupt, attempting graceful shutdown",
    "Received SIGTERM:",
)


class _LightningNoise(logging.Filter):
    """Leaves out the records of Lightning's loggers (``_LIGHTNING_LOGGERS``) that open with
    ``_LIGHTNING_NOISE``, after the ``[rank: N]`` that Lightning puts before some."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = re.sub(r"^\s*\[rank: \d+\]\s*", "", str(record.msg)).lstrip()
        return not text.startswith(_LIGHTNING_NOISE)


_QUIET = _LightningNoise()


def _quiet_lightning() -> None:
    """Leaves out ``_LIGHTNING_NOISE``, the pytree deprecation warning and the warning of an
    epoch shorter than ``trainer.log_every_n_steps``, and nothing else of Lightning's: the loggers
    and the warnings are named (each is added once)."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).addFilter(_QUIET)
    warnings.filterwarnings(
        "ignore",
        r"`?isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
    )
    # "The number of training batches (3) is smaller than the logging interval
    # Trainer(log_every_n_steps=5)": the interval counts optimiser steps over the whole run, not
    # within an epoch, so short epochs still log a step every N, and each epoch logs its means
    warnings.filterwarnings(
        "ignore",
        r"The number of training batches \(\d+\) is smaller than the logging interval",
        UserWarning,
    )


# what Lightning's seed_everything sets in the environment, which a later Trainer reads
_SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextlib.contextmanager
def _caller_state_kept() -> Iterator[None]:
    """Puts back, as ``run_train`` or ``run_test`` returns or raises, the process state that the
    run changes for itself: the warnings filters and the filter on Lightning's loggers
    (``_quiet_lightning``; a caller's own Trainer logs its SIGTERM and Ctrl-C lines again), the
    random generators of Python, NumPy and torch that ``trainer.seed`` seeds (CUDA's where CUDA
    was in use before the run) and ``_SEED_VARIABLES``."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    quieted = [log for log in loggers if _QUIET not in log.filters]
    variables = {name: os.environ.get(name) for name in _SEED_VARIABLES}
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        with warnings.catch_warnings():
            yield
    finally:
        for log in quieted:
            log.removeFilter(_QUIET)
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _trainer(
    cfg: RunConfig,
    run_dir: Path,
    callbacks: list[L.Callback],
    loggers: list | bool,
) -> L.Trainer:
    _quiet_lightning()
    t = cfg.trainer
    precision = resolve_precision(t.precision, t.accelerator)
    if t.sync_batchnorm and not on_gpu(t.accelerator):
        raise ConfigError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm is CUDA-only)"
        )
    # -1 is "all devices": all GPUs, and on a CPU the one process (Lightning refuses -1 there)
    devices = t.devices if t.devices != -1 or on_gpu(t.accelerator) else 1
    world = world_size(cfg)
    strategy = t.strategy
    if strategy == "auto" and (world > 1 or devices == -1):
        strategy = "ddp"
    try:
        return L.Trainer(
            default_root_dir=run_dir,
            accelerator=t.accelerator,
            devices=devices,
            num_nodes=t.num_nodes,
            strategy=strategy,
            precision=precision,
            sync_batchnorm=t.sync_batchnorm,
            max_epochs=t.max_epochs,
            gradient_clip_val=t.gradient_clip_val or None,
            gradient_clip_algorithm="norm",
            accumulate_grad_batches=t.accumulate_grad_batches,
            deterministic=t.deterministic,
            log_every_n_steps=t.log_every_n_steps,
            check_val_every_n_epoch=t.check_val_every_n_epoch,
            num_sanity_val_steps=t.num_sanity_val_steps,
            enable_progress_bar=show_progress_bar(cfg),
            enable_model_summary=False,
            callbacks=callbacks,
            logger=loggers,
            plugins=[AtomicCheckpointIO()],
        )
    except (MisconfigurationException, ValueError, TypeError, ImportError, RuntimeError) as err:
        reason = one_line(err)
        raise ConfigError(
            f"trainer.accelerator={t.accelerator} trainer.devices={t.devices} "
            f"trainer.strategy={t.strategy}: {reason}"
        ) from err


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """``None`` = fresh start; ``"auto"`` = the run's last.ckpt if there is one; else a path.

    Raises:
        UsageError: an explicit path that does not exist.
    """
    if not resume:
        return None
    if resume == "auto":
        last = run_dir / "checkpoints" / LAST
        if last.is_file():
            logger.info("resuming from %s", last)
            return last
        logger.info("--resume auto: no %s yet, starting a new run", last)
        return None
    path = Path(resume)
    if path.is_dir():
        raise UsageError(
            f"--resume {resume} is a directory; pass a checkpoint file, or continue a run folder "
            "with --out FOLDER --resume auto"
        )
    why = why_not_a_file(path)
    if is_missing(why):
        raise UsageError(f"--resume {resume}: no such checkpoint")
    if why:  # a pipe, a device, a broken link
        raise UsageError(f"--resume {resume} {why}; pass a checkpoint file")
    return path


def _output_folder(folder: Path, *, create: bool, setting: str = "--out or output.dir") -> None:
    """Refuses an output folder that could not be created or written (a file in its way is
    named); ``create`` makes it and writes a file in it. The checks of a run create nothing and
    come before its first file; the folder is made after them, so a run fails before training,
    not at its first checkpoint.

    Raises:
        UsageError: "output folder F: ... ; choose another with ``setting``".
    """
    check_folder("output folder", folder, advice=f"choose another with {setting}", create=create)


def check_new_run(ckpt_dir: Path) -> None:
    """Refuses to start a run over another run's checkpoints, which it would replace.

    Raises:
        UsageError: ``ckpt_dir`` holds last.ckpt or best.ckpt.
    """
    kept = [name for name in (LAST, BEST) if (ckpt_dir / name).is_file()]
    if not kept:
        return
    then = "continue it with --resume auto, or" if LAST in kept else "delete them or"
    raise UsageError(
        f"{ckpt_dir.parent} already holds a run ({' and '.join(kept)} in {ckpt_dir}); {then} "
        "start a new run with another --out (nothing was changed)"
    )


def check_run_files(
    cfg: RunConfig, cfg_file: Path | None, run_dir: Path, ckpt_path: Path | None
) -> None:
    """Refuses, before anything is written, a run whose own files would destroy another file:
    a symbolic link at one of them (writing through it would overwrite the file it points to),
    a folder there, or one of the files the run reads (the ``--cfg`` file, the lists, the
    classes file, the resume checkpoint).

    The run folder's ``config.yaml`` may be the ``--cfg`` file only when the run continues from a
    checkpoint of that folder: it is then the run's own record, which the resumed run rewrites
    with the config it continues with. A new run would replace it, and with it whatever the
    user's file held beyond the resolved config.

    A new run (or a branch into the folder) replaces the ``config.yaml``, ``replicas.json`` and
    ``curves.png`` it finds only in a run folder (``is_run_folder``): they are then an earlier
    run's, stopped before its first checkpoint or whose checkpoints were deleted
    (``check_new_run`` refuses a folder that holds them). Elsewhere they are someone else's
    (notes, a figure, a recipe in a project folder given as ``--out .``), and refused. The logs
    are never replaced: each run writes a new ``version_N``.

    Raises:
        UsageError: names the file and what it is.
    """
    d = cfg.data
    inputs = [("--cfg", cfg_file), ("data.train_list", d.train_list), ("data.val_list", d.val_list)]
    inputs += [("data.classes_file", d.classes_file)] if Path(d.classes_file).is_file() else []
    inputs += [("the resume checkpoint", ckpt_path)]
    reads = ReadFiles([(what, path) for what, path in inputs if path])
    ckpt_dir = run_dir / "checkpoints"
    config_yaml = run_dir / "config.yaml"
    outputs = [config_yaml, run_dir / "replicas.json", ckpt_dir / LAST, ckpt_dir / BEST]
    outputs += [run_dir / "curves.png"] if cfg.output.plot_curves else []
    for path in outputs:
        found = reads.find(path)
        if found and found[0] == "--cfg" and path == config_yaml:
            if ckpt_path is not None and in_run_folder(ckpt_path, ckpt_dir):
                continue  # the run's own record, continued
            raise UsageError(
                f"--cfg {cfg_file} is the config.yaml of the run folder {run_dir}, which a new "
                "run replaces with its resolved config; pass a copy kept outside the run "
                "folder, or choose another --out (nothing was changed)"
            )
        resumed = path.parent == ckpt_dir  # a checkpoint resumed from is rewritten
        check_output_file("the run's file", path, None if resumed else reads, folder=False)
    continued = ckpt_path is not None and in_run_folder(ckpt_path, ckpt_dir)
    if continued or is_run_folder(run_dir):
        return
    for path in outputs:
        if path.parent == run_dir and path.exists():
            raise UsageError(
                f"{run_dir} holds {path.name}, which a new run would replace, but no "
                f"{RUN_MARK}, which every run writes there first: it is not an earlier run's; "
                "move it away, or choose another --out (nothing was changed)"
            )


# What a train of octvideo before RUN_MARK wrote beside config.yaml as trainer.fit began:
# Lightning's hparams.yaml in the version folders of its CSV and TensorBoard logs
EARLIER_RUN_FILES = ("logs/version_*/hparams.yaml", "tb/version_*/hparams.yaml", "replicas.json")


def is_run_folder(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run's folder, whose files a new run may replace: it holds
    ``RUN_MARK``, which every run writes there before its first file, or (a run of octvideo
    before the mark) a ``config.yaml`` that is a resolved run config, with every section and
    the name a run writes (a recipe sets only what it changes), which names ``run_dir`` as its
    run folder or has one of ``EARLIER_RUN_FILES`` beside it. ``output.dir`` is relative to
    the working folder of its run, so a folder moved, renamed or used from another working
    folder is known by those files, which such a run wrote as it began training, before its
    first checkpoint. A user's ``config.yaml`` that is no run config (notes, a recipe, beside a
    ``checkpoints/`` folder of its own) is not a run's."""
    if is_marked(run_dir, RUN_MARK):
        return True
    config_yaml = run_dir / "config.yaml"
    if why_not_a_file(config_yaml) is not None:
        return False
    sections = {section.name for section in dataclasses.fields(RunConfig)}
    try:
        content = read_config_file(config_yaml)
        if not isinstance(content, dict) or not sections <= content.keys():
            return False
        written = from_dict(content)
    except (OctvideoError, OSError, ValueError):  # no run config: not a run's
        return False
    if same_file(run_dir_of(written), run_dir):
        return True
    return any(path.is_file() for pattern in EARLIER_RUN_FILES for path in run_dir.glob(pattern))


def check_free_space(folder: Path, model: torch.nn.Module, momentum: bool) -> None:
    """Fail before training when the disk cannot hold the run's two checkpoints (last and best).

    Raises:
        RunStopped: less free space than two checkpoints of this model need.
    """
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    need = 2 * weights * (2 if momentum else 1)  # weights (+ momentum buffers), last + best
    free = shutil.disk_usage(nearest_existing(folder)).free  # before the folder is made
    if free < need:
        raise RunStopped(
            f"only {free / 2**20:.1f} MiB free on the disk of {folder}; the run's two "
            f"checkpoints need about {need / 2**20:.1f} MiB. Free space or choose another "
            "--out"
        )


def in_run_folder(path: str | Path, ckpt_dir: Path) -> bool:
    """Whether the checkpoint ``path`` is one of ``ckpt_dir``'s: a resume of the run in its own
    folder, not a branch into another."""
    return Path(path).resolve().parent == ckpt_dir.resolve()


def resume_is_finished(
    checkpoint: dict[str, Any], cfg: RunConfig, path: str | Path, ckpt_dir: Path
) -> bool:
    """Whether the checkpoint is a finished run resumed in its own folder, which has nothing to
    train; refuses it where ``trainer.max_epochs`` leaves it nothing to train elsewhere.

    Lightning trains nothing once the epochs a checkpoint has completed reach
    ``trainer.max_epochs`` (or fails on a lower value). So a checkpoint that has trained more
    (also part of an epoch beyond it) is refused: the run folder would be rewritten for a run
    that trains nothing, its config.yaml recording a schedule its checkpoints do not have.
    One that has trained exactly ``trainer.max_epochs`` is a finished run: in its own folder
    there is nothing to do (True: the caller reports its checkpoints and writes nothing), and
    resumed into another folder (``--out``) it is refused, as it would leave a folder without
    checkpoints. A run with epochs left may go on in another folder, as a new branch, where that
    holds no run of its own (``check_new_run``, which the caller runs).

    Returns:
        True for a finished run resumed in its own folder, else False.

    Raises:
        UsageError: the checkpoint has trained ``trainer.max_epochs`` or more (in its own
            folder: more).
    """
    done, limit = epochs_done(checkpoint), cfg.trainer.max_epochs
    if done is None or done < limit:  # epochs left to train
        return False
    own = in_run_folder(path, ckpt_dir)
    partial = epoch_in_progress(checkpoint)
    finished = done == limit and not partial
    if finished and own:
        return True
    if finished:
        has = f"has trained all {done} epochs of trainer.max_epochs={limit}"
    else:
        trained = f"{done} epochs{f' and part of epoch {done + 1}' if partial else ''}"
        if validation_under_way(checkpoint):  # stopped during its validation
            trained = f"{done + 1} epochs, the last not validated yet"
        has = f"has trained {trained}, more than trainer.max_epochs={limit}"
    further = f"set trainer.max_epochs={done + 1} or more to train it further"
    if own:
        raise UsageError(
            f"checkpoint {path} {has}, so resuming it would train nothing; {further}, or "
            f"start a new run from its weights with model.pretrained={path} and another "
            "--out (nothing was changed)"
        )
    raise UsageError(
        f"checkpoint {path} {has}, so resuming it into {ckpt_dir.parent} would train and "
        f"write nothing; {further}, use its checkpoints in {Path(path).parent}, or start a "
        f"new run from its weights with model.pretrained={path}"
    )


def check_same_position(state: dict[str, int], world: int, videos: int, path: str | Path) -> None:
    """One-line error when a resume would run over other processes or another training list than
    the checkpoint's epoch was shared out over (``state``: the datamodule's saved state): its
    position in the epoch and the steps left could not be found (an epoch was trained again and
    the rest ran at lr 0).

    Raises:
        UsageError: names what changed.
    """
    changed = []
    if state.get("world_size", world) != world:
        changed.append(
            f"world size {state['world_size']} there, {world} here (trainer.devices x "
            "trainer.num_nodes)"
        )
    if state.get("train_videos", videos) != videos:
        changed.append(f"training videos {state['train_videos']} there, {videos} here")
    if changed:
        raise UsageError(
            f"cannot resume from {path}: {'; '.join(changed)}, so its place in the epoch and "
            f"the steps left are not known; resume with the same, or start a new run from its "
            f"weights with model.pretrained={path}"
        )


def check_same_validation(
    checkpoint: dict[str, Any], records: Sequence[Any], cfg: RunConfig, path: str | Path
) -> None:
    """Refuses to resume a checkpoint whose run validated on other videos than ``records``
    (``validation_set``: another list, or the list edited; the same videos moved elsewhere
    pass): its scores, and best.ckpt's, would be compared with scores over another set. A
    checkpoint that records none (an older octvideo's, a bare state dict), or records them in a
    later octvideo's form, is not compared.

    Raises:
        UsageError: names both sets (their videos and lists) and what to do.
    """
    there = checkpoint.get(VALIDATION_SET)
    here = validation_set_like(there, records)  # in the form of the checkpoint's record
    if here is None or there == here:
        return
    meta = stored_meta(checkpoint, path)
    stored = ((meta.config if meta is not None else None) or {}).get("data") or {}
    listed = f" of data.val_list={shown(stored['val_list'])}" if "val_list" in stored else ""
    other = "" if there.get("videos") != here["videos"] else ", other ones"
    fix = "its run's validation videos"
    if stored.get("val_list", cfg.data.val_list) != cfg.data.val_list:
        fix = f"data.val_list={shown(stored['val_list'])}"
    raise UsageError(
        f"cannot resume from {path} on other validation videos than its run's "
        f"({there.get('videos')} videos{listed} there, {here['videos']}{other} of "
        f"data.val_list={shown(cfg.data.val_list)} here): its scores and best.ckpt's would be "
        f"over another set; resume with {fix}, or start a new run from its weights with "
        f"model.pretrained={path} (nothing was changed)"
    )


# What a resumed run keeps of its run's config besides the model section: the settings that
# decide the clips training and validation see (data.seed also which videos the batches of the
# epoch under way held, so that a change mid-epoch would show some videos twice and others
# never), trainer.seed, the rest of the run's random draws, and the metric best.ckpt keeps the
# highest of. The schedule and the optimiser's settings may change (``octvideo.engine.optim``
# logs what did); the batch size, world size and training videos are checked with the position
# in the epoch (``check_same_position``), the validation videos by ``check_same_validation``.
RESUME_KEEPS = (
    "data.seed",
    "data.decode_short_side",
    "data.num_frames",
    "data.sampling_rate",
    "data.target_fps",
    "data.slowfast_alpha",
    "data.train_jitter_scales",
    "data.train_crop_size",
    "data.val_crop_size",
    "data.random_flip",
    "data.mean",
    "data.std",
    "trainer.seed",
    "output.monitor",
)

# model keys a resume may change: the class count (build_classifier's refusal names the classes)
# and the weights a new run starts from, which a resume takes from its checkpoint instead
RESUME_FREE = ("model.num_classes", "model.pretrained", "model.pretrained_kind")


def check_same_run(checkpoint: dict[str, Any], cfg: RunConfig, path: str | Path) -> None:
    """Refuses to resume a checkpoint with another model section (any key but those of
    ``RESUME_FREE``: a dropout, an octave whose weights have the same shapes) or another setting
    of ``RESUME_KEEPS`` or another precision than its run's (``trainer.precision`` resolved:
    ``auto`` or ``16-mixed`` that trains as it did passes), which the checkpoint's metadata
    records: the weights trained so far would go on as another network or on other clips, while
    config.yaml and every checkpoint after it would call the whole run by the new settings. A
    checkpoint without metadata (a bare state dict) is not compared, nor are the
    ``RESUME_KEEPS`` or the precision of one that stores no run config.

    Raises:
        UsageError: names each setting that differs, its run's value and this one, and the
            overrides that resume it as it was.
    """
    meta = stored_meta(checkpoint, path)
    if meta is None:
        return
    there = model_settings(meta.model, RESUME_FREE)
    here = model_settings(cfg.model, RESUME_FREE)
    stored = dict(flatten(meta.config or {}))
    ours = dict(flatten(to_dict(cfg)))
    for key in RESUME_KEEPS:
        if key in stored:
            there[key], here[key] = stored[key], ours[key]
    if "trainer.precision" in stored:  # what ran (older runs recorded what was asked)
        there["trainer.precision"] = _precision_that_ran(stored)
        here["trainer.precision"] = _precision_that_ran(ours)
    differ = differences(there, here, meta.model)
    if not differ:
        return
    raise UsageError(
        f"cannot resume from {path} with other settings than its run's ({said(differ)}): its "
        f"weights would go on as another run; resume with {refit_overrides(meta.model, differ)}, "
        f"or start a new run from its weights with model.pretrained={path} (nothing was changed)"
    )


def _precision_that_ran(flat: dict[str, Any]) -> str:
    """The precision a flattened run config trains in: its ``trainer.precision`` resolved for
    its ``trainer.accelerator`` on this machine, silently (``resolve_precision``)."""
    accelerator = str(flat.get("trainer.accelerator", "auto"))
    return resolve_precision(str(flat["trainer.precision"]), accelerator, say=False)


# model keys a test may differ in: those a resume may (RESUME_FREE), and those that act only in
# training: dropout is off in evaluation, and zero_init_final_bn sets only the initial weights,
# which the checkpoint's replace
TEST_FREE = (*RESUME_FREE, "model.dropout", "model.extra.zero_init_final_bn")


def check_same_model(checkpoint: dict[str, Any], cfg: RunConfig, path: str | Path) -> None:
    """Refuses to test a checkpoint in another network than its run's: a model section that
    differs from its metadata in a key other than ``TEST_FREE`` (an octave, an alpha split or a
    flag that keeps the weights' shapes, so that they load into it), which would score another
    network than the one trained. A checkpoint without metadata is not compared.

    Raises:
        UsageError: names each key, its value here and in training, and the overrides.
    """
    meta = stored_meta(checkpoint, path)
    if meta is None:
        return
    differ = differences(
        model_settings(meta.model, TEST_FREE), model_settings(cfg.model, TEST_FREE), meta.model
    )
    if not differ:
        return
    if meta.source is None:
        config = "the --cfg of its run folder (config.yaml)"
    else:  # imported: no run folder, but the run config its import wrote beside it
        config = f"the --cfg its import wrote beside it ({Path(path).with_suffix('.yaml')})"
    raise UsageError(
        f"checkpoint {path} was trained as another network than the config builds "
        f"({said(differ)}): its weights would be scored in a network they were not trained in; "
        f"test with {refit_overrides(meta.model, differ)}, or with {config}"
    )


def check_same_clips(
    checkpoint: dict[str, Any], cfg: RunConfig, path: str | Path, allow: bool = False
) -> None:
    """Refuses to test a checkpoint on clips other than it was trained on: other frames, frame
    rate, SlowFast ratio or normalisation than its metadata records (``allow``: a warning).

    Raises:
        UsageError: names each setting, its value here and in training, and the overrides.
    """
    meta = stored_meta(checkpoint, path)
    if meta is None:  # a bare state dict: nothing recorded to compare
        return
    stored, ours = meta.clip, ClipProtocol.from_data(cfg.data)
    differ = {
        key: (_config_value(getattr(stored, key)), _config_value(getattr(ours, key)))
        for key in ("num_frames", "sampling_rate", "target_fps", "slowfast_alpha", "mean", "std")
        if getattr(stored, key) != getattr(ours, key)
    }
    if not differ:
        return
    said = "; ".join(
        f"data.{k}={here} here, {trained} in training" for k, (trained, here) in differ.items()
    )
    fix = " ".join(f"data.{k}={shown(trained)}" for k, (trained, _) in differ.items())
    if allow:
        logger.warning(
            "checkpoint %s is tested on other clips than it was trained on: %s", path, said
        )
        return
    raise UsageError(
        f"checkpoint {path} was trained on other clips than the config gives ({said}); test "
        f"with {fix}, or set test.allow_other_clip=true to test on these on purpose"
    )


def _config_value(value: Any) -> Any:
    """A setting as the config writes it (a list for a tuple)."""
    return list(value) if isinstance(value, tuple) else value


class _BestCheckpoint(TopKCheckpoint):
    """best.ckpt; an epoch whose validation scored no video (every one failed to decode) leaves
    it as it was, with a warning, where Lightning stopped the run (the metric is missing). Its
    score stays with the run folder when the folder is moved or copied (``FolderCheckpoint``)."""

    def skip_top_k(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> bool:
        if self.monitor in monitor_candidates:
            return False
        logger.warning(
            "best.ckpt not updated at epoch %d: validation scored no video, so there is no "
            "%s; check data.val_list with 'octvideo data check'",
            trainer.current_epoch,
            self.monitor,
        )
        return True


class _LastCheckpoint(FolderCheckpoint):
    """last.ckpt; the step trigger skips the run's last step (``at_final_step``).

    With ``before_validation``, last.ckpt is also written as each validation of the fit starts
    (after precise BN, whose callback comes first: Lightning calls checkpoint callbacks last),
    marked so that a run resumed from it validates that epoch first
    (``mark_validation_started``). A run stopped during an epoch's validation (SIGTERM, Ctrl-C,
    a crash), which Lightning leaves with no checkpoint of its own, so keeps the epoch's
    training: it goes on as the uninterrupted run would, with the same validation metrics,
    best.ckpt and weights. The epoch-end write that follows is not held back by this one
    (``_last_global_step_saved`` is left as it was).
    """

    def __init__(self, *, before_validation: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before_validation = before_validation
        self._writing_before_validation = False

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not at_final_step(trainer):
            super().on_train_batch_end(trainer, *args, **kwargs)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if not (self.before_validation and fitting):
            return
        if val_batches_unfinished(trainer):
            # resumed from the mark: last.ckpt holds this state already. The counters start
            # from none, as the epoch's validation does when it is not resumed, so the
            # checkpoints after it are the uninterrupted run's.
            forget_val_batches(trainer)
            if trainer.is_global_zero:
                logger.info(
                    "epoch %d/%d: the run stopped during its validation, after its training; "
                    "validating it now, then training goes on",
                    trainer.current_epoch + 1,
                    trainer.max_epochs,
                )
            return
        self._writing_before_validation = True
        try:  # the whole training state; collective under DDP, as the trainer's saves are
            path = Path(str(self.dirpath)) / f"{self.filename}{self.FILE_EXTENSION}"
            trainer.save_checkpoint(path, weights_only=False)
        finally:
            self._writing_before_validation = False

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._writing_before_validation:
            mark_validation_started(checkpoint)


def _last_checkpoint(
    ckpt_dir: Path, *, before_validation: bool = False, **trigger: int
) -> _LastCheckpoint:
    return _LastCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
        before_validation=before_validation,
        **trigger,
    )


def _module(
    cfg: RunConfig, model: torch.nn.Module, meta: dict[str, Any] | None = None
) -> VideoClassifier:
    """The training logic around ``model`` (``VideoClassifier``), from the run's sections;
    ``meta`` goes into every checkpoint it writes."""
    return VideoClassifier(
        model,
        optim=to_dict(cfg.optim),
        num_classes=cfg.model.num_classes,
        batch_size=cfg.data.batch_size,
        seed=cfg.trainer.seed,
        meta=meta,
        memory_format=cfg.trainer.memory_format,
    )


def _sigterm_raises() -> contextlib.AbstractContextManager[Any]:
    """SIGTERM raises ``Terminated`` where the command is (its checks, loading, report), as Ctrl-C
    raises ``KeyboardInterrupt``; inside Lightning's loops, Lightning's own handler stops at a
    batch boundary instead (``_lightning_loop``). Only in the main thread and where SIGTERM has
    no handler (a caller's own is left alone); the default is put back after."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return contextlib.nullcontext()
    return signals.handler(signal.SIGTERM, raise_terminated)


class _SigtermForLightning(L.Callback):
    """The SIGTERM handler while ``trainer.fit`` or ``trainer.test`` runs outside Lightning's
    loop (its setup before it, its teardown after): it keeps the stop for Lightning, which
    installs its own handler only as its loop begins and until then leaves SIGTERM to the
    default action, an end without a line. As Lightning's loop (or its sanity check) starts,
    a kept stop is sent again, to Lightning's handler, which stops at the first batch boundary.
    Lightning's handler calls this one too (it calls one it finds): that one is its own.

    ``ctrl_c`` is the SIGINT handler, which raises ``KeyboardInterrupt`` until the run's last
    training step has ended (``at_final_step``) and from then on holds Ctrl-C (``held``):
    Lightning would end the fit at once, as a stop in the loop, its logs and files unwritten.
    Set before the fit, so that Lightning puts it back as it ends (it puts back every handler it
    found); the first callback, so that its hooks come before the others'.

    With ``finishing``, SIGTERM is held from that step on as well: this one replaces
    Lightning's handler, which would stop the last epoch's validation or end (that epoch's
    last.ckpt written, so a resume has nothing to train and curves.png and replicas.json are
    never written). Not where Lightning has already noted a SIGTERM: its stop in the
    validation keeps the last.ckpt written as that starts, which a resume validates."""

    def __init__(self, *, finishing: bool = False) -> None:
        self.pending = False
        self.trained = False
        self.held = False
        self.finishing = finishing

    def __call__(self, signum: int, frame: object) -> None:
        if signal.getsignal(signal.SIGTERM) is self:  # not when Lightning's handler calls it
            self.pending = True

    def _resend(self, *args: object) -> None:
        if self.pending:
            self.pending = False
            signal.raise_signal(signal.SIGTERM)

    on_sanity_check_start = on_train_start = on_test_start = _resend

    def ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        if not self.trained:
            signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt
        self.held = True

    def _trained(self, trainer: L.Trainer) -> None:
        if self.trained or not at_final_step(trainer):
            return
        self.trained = True
        if self.finishing and not trainer.received_sigterm:
            signal.signal(signal.SIGTERM, self)  # Lightning puts its own found one back

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._trained(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._trained(trainer)  # also a run resumed to validate its last epoch

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.trained = True


@contextlib.contextmanager
def _lightning_loop(
    trainer: L.Trainer, stopped: Callable[[], str], finished: Callable[[], str] | None = None
) -> Iterator[None]:
    """Runs ``trainer.fit`` or ``trainer.test``, which stop at a batch boundary on SIGTERM and
    Ctrl-C and leave by ``SystemExit`` (status 0 or 1): that becomes ``Terminated`` or
    ``Interrupted``, ``stopped by SIGTERM <stopped()>``, ``stopped()`` saying where the loop
    stopped and what was kept. A SIGTERM before Lightning's loop starts stops it at its first
    batch boundary; one after the loop ended, as the command goes on (``Terminated``).
    With ``finished``, a SIGTERM or Ctrl-C after the last training step (the last epoch's
    validation and end, Lightning's end of training, its teardown, the rest of the block) is
    held until the block ends, its files written, and then raises ``Terminated`` or
    ``Interrupted``: ``stopped by SIGTERM <finished()>`` (``_SigtermForLightning`` holds it;
    Lightning's own SIGTERM handler, where it noted one before, only notes it once training
    has ended: ``trainer.received_sigterm``). Lightning ignores Ctrl-C once it is stopping and
    leaves it so: the SIGINT handler is put back."""
    ours = signal.getsignal(signal.SIGTERM) is raise_terminated
    keep = _SigtermForLightning(finishing=ours and finished is not None)
    # Lightning's handler alone in its loop, which lets the batch end; ours after
    sigterm = signals.handler(signal.SIGTERM, keep) if ours else contextlib.nullcontext()
    # Python's own Ctrl-C only: one ignored, or a caller's handler, is left as it is
    hold = finished is not None and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    sigint = (
        signals.handler(signal.SIGINT, keep.ctrl_c) if hold else signals.restored(signal.SIGINT)
    )
    trainer.callbacks.insert(0, keep)
    try:
        with sigint, sigterm:
            try:
                yield
            except SystemExit as err:
                if not trainer.interrupted:
                    raise
                kind = Terminated if isinstance(err, SIGTERMException) else Interrupted
                raise kind(f"stopped by {kind.cause} {stopped()}") from err
            # told here, where a further stop is held as well (``keep``)
            if finished is not None:
                if ours and (keep.pending or trainer.received_sigterm):
                    raise Terminated(f"stopped by {Terminated.cause} {finished()}")
                if keep.held:
                    raise Interrupted(f"stopped by {Interrupted.cause} {finished()}")
    finally:
        trainer.callbacks.remove(keep)
    if keep.pending:  # sent after the loop ended: ours answers it, where the command is
        signal.raise_signal(signal.SIGTERM)


@contextlib.contextmanager
def _data_faults(datamodule: Any, last: Path | None = None) -> Iterator[None]:
    """Turns a data fault in the loop inside into ``RunStopped``: a data-loader worker that died
    (a decoder crash, the kernel's out-of-memory killer) names the file it was decoding, a
    training item that found no decodable video names the files tried, and running out of open
    files names the open-file limit and where: in a data-loader worker (its decoder, or a
    forked worker that then exits rather than hang) or in this command.
    ``last``: the run's last.ckpt, which the message then says is kept (as it is at the time of
    the fault)."""
    with stop_forked_workers_out_of_files() as worker_ran_out:
        try:
            yield
        except (OSError, RuntimeError) as err:  # TooManyBadVideos is a RuntimeError
            # EMFILE here (starting a worker) or in a worker: the limit, not a video, is at fault
            if isinstance(err, TooManyBadVideos):  # also one rebuilt from a worker's traceback
                reason = err.reason
            elif worker_ran_out() or (isinstance(err, OutOfOpenFiles) and err.in_worker):
                reason = open_files_message("a data-loader worker")
            elif out_of_open_files(err):
                reason = open_files_message("this command")
            elif isinstance(err, RuntimeError):
                reason = datamodule.worker_crash_report(err)
            else:
                reason = None
            if reason is None:
                raise
            raise RunStopped(f"{reason}{_kept(last)}") from err


def _kept(last: Path | None) -> str:
    return "" if last is None else f"; {last_good(last)}"


def _check_training(cfg: RunConfig) -> None:
    """Refuses the settings a training run cannot start with: clips the model cannot take, a
    missing training or validation list, a precision the accelerator cannot train in, and the
    skipping of non-finite steps under gradient accumulation.

    Raises:
        ConfigError: names the setting and what to set instead.
    """
    check_clip(cfg.model, cfg.data, (cfg.data.train_crop_size, cfg.data.val_crop_size))
    missing = [f"data.{k}" for k in ("train_list", "val_list") if not getattr(cfg.data, k)]
    if missing:  # else the validation set would be asked for only after the first epoch
        raise ConfigError(
            f"training needs {' and '.join(missing)} (best.ckpt is chosen by validation "
            "accuracy); set them to annotation files"
        )
    check_training_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if cfg.optim.on_nonfinite_loss == "skip" and cfg.trainer.accumulate_grad_batches > 1:
        raise ConfigError(
            "optim.on_nonfinite_loss=skip skips a step by leaving out its backward pass, which "
            "cannot take back the other batches accumulated into it (trainer."
            f"accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}): the step would be "
            "taken on a partial gradient; use optim.on_nonfinite_loss=stop with accumulation"
        )


def _reserve_open_files(cfg: RunConfig) -> None:
    """Raises the soft open-file limit to the hard one and refuses one too low for
    ``data.num_workers`` data-loader workers (``open_files.reserve_open_files``).

    Raises:
        ConfigError: names the limit, data.num_workers and the limit it needs.
    """
    try:
        workers = cfg.data.num_workers
        reserve_open_files(f"data.num_workers {workers}", workers, DATA_LOADER_OPEN_FILES)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _train_callbacks(cfg: RunConfig, run_dir: Path, datamodule: Any) -> list[L.Callback]:
    """The run's own callbacks: best.ckpt and last.ckpt, last.ckpt on SIGTERM, bad videos,
    replicas.json, and as the config says precise BatchNorm, curves.png and the epoch log."""
    ckpt_dir = run_dir / "checkpoints"
    best = _BestCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=cfg.output.monitor,
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    # last.ckpt: the newest state, as each validation starts (a stop during it keeps the
    # epoch's training), at every epoch end and, optionally, every N optimiser steps (a crash
    # loses at most that much). Lightning wants the two triggers in separate callbacks.
    every_epoch = _last_checkpoint(ckpt_dir, before_validation=True, every_n_epochs=1)
    own: list[L.Callback] = [best, every_epoch]
    if cfg.output.ckpt_every_n_steps:
        own.append(_last_checkpoint(ckpt_dir, every_n_train_steps=cfg.output.ckpt_every_n_steps))
    from octvideo.data import BadVideoCallback

    own += [
        CheckpointOnSigterm(ckpt_dir / LAST),
        BadVideoCallback(),
        ReplicaCheck(run_dir / "replicas.json"),
    ]
    if cfg.trainer.precise_bn_batches:
        own.append(
            PreciseBatchNorm(cfg.trainer.precise_bn_batches, datamodule.precise_bn_dataloader)
        )
    if cfg.output.plot_curves:
        own.append(TrainingCurves(run_dir / "curves.png"))
    if not show_progress_bar(cfg):
        own.append(EpochLog())
    return own


def run_train(
    cfg: str | Path | RunConfig,
    overrides: Sequence[str] = (),
    *,
    resume: str | None = None,
    out: str | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Train a model as the config says. The caller's warnings filters, logging and random
    generators are as they were when it returns (``_caller_state_kept``).

    Args:
        cfg: a config path, a shipped config name or a ``RunConfig``, which is checked as
            ``load_config`` checks a file and copied (overrides and ``out`` apply to the copy).
        overrides: ``key=value`` strings.
        resume: ``"auto"`` (last.ckpt of the run dir if present) or a checkpoint path; an
            explicit path wins over auto.
        out: run directory (overrides ``output.dir``).
        callbacks: extra Lightning callbacks.

    Returns:
        Where the run wrote and its final metrics. A run resumed in its own folder from a
        checkpoint that has trained all ``trainer.max_epochs`` trains and writes nothing, and
        returns its checkpoints (with empty ``metrics``).

    Raises:
        UsageError: a bad config, clips the model cannot take, an output folder that cannot be
            written, a run folder that already holds another run's checkpoints (without
            ``resume``), a resume checkpoint that does not fit the model, its classes or its
            batch size, of another model section, seed or clip settings than its run
            (``check_same_run``), or with fewer ``trainer.max_epochs`` than it has trained.
            Raised before anything is written.
        RunStopped: a fault during the run: a disk too full for the checkpoints (before
            training or at a write), a non-finite loss, a data-loader worker that died. The
            message names the cause and the last good checkpoint, which is kept.
        Interrupted: Ctrl-C; ``Terminated`` (a subclass) for SIGTERM, before which last.ckpt is
            written at the end of the batch under way. Where they come during training, the
            message says so: ``stopped by SIGTERM at global step 5; <last.ckpt> (global step 5)
            is kept; continue with --resume auto``. A SIGTERM or Ctrl-C after the last training
            step lets the run write its files first: ``stopped by SIGTERM after the run
            finished ...`` (``TrainResult.finished``).
    """
    with _caller_state_kept(), _sigterm_raises():
        return _train(cfg, overrides, resume, out, callbacks)


def writes_run_folder() -> bool:
    """Whether this process is the one of a run that writes its folder (global rank 0), known
    before the trainer is: Lightning's rank from the launcher's environment (``RANK``,
    ``LOCAL_RANK``, ``SLURM_PROCID``, as ``octvideo.cli.run`` reads it) on the first node
    (``NODE_RANK``, which Lightning's launcher reads for the node of a local rank)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK") or 0) == 0


def hold_run_folder(run_dir: Path) -> contextlib.AbstractContextManager[Any]:
    """Makes this run the only command writing ``run_dir`` (``paths.hold_folder``): a second
    ``train``, ``train --resume`` or a sweep's run into it is refused before it writes anything.
    Under DDP only the process that writes the folder holds it (``writes_run_folder``).

    Raises:
        UsageError: "run folder R is in use by octvideo train (pid 123); wait for it to end, or
            choose another --out (nothing was changed)".
    """
    if not writes_run_folder():
        return contextlib.nullcontext()
    return hold_folder(
        run_dir, "train", name=f"run folder {run_dir}", advice="choose another --out"
    )


def _train(
    cfg: str | Path | RunConfig,
    overrides: Sequence[str],
    resume: str | None,
    out: str | None,
    callbacks: Sequence[L.Callback],
) -> TrainResult:
    cfg, cfg_file = _config(cfg, overrides, out)
    check_run_text(cfg, out)
    check_run_folder_named(cfg, cfg_file, overrides, out, "train in")
    run_dir = run_dir_of(cfg)
    # Every check comes before the first file or folder is written: a refused run leaves nothing
    # (the run folder's lock file, and the folders made for it, are removed).
    check_outside_data("run folder", run_dir, data_folders(cfg), "choose another --out")
    _check_training(cfg)
    asked = cfg.trainer.precision
    cfg = _with_precision_that_runs(cfg)
    _reserve_open_files(cfg)
    _output_folder(run_dir / "checkpoints", create=False)
    with hold_run_folder(run_dir):
        return _train_in(cfg, cfg_file, run_dir, resume, callbacks, asked)


def _with_precision_that_runs(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the precision its run trains in as ``trainer.precision``
    (``resolve_precision``: ``auto`` for this machine, ``16-mixed`` on a CPU as bf16-mixed, said
    in one line), so that config.yaml, Lightning's hparams.yaml and the checkpoints record what
    ran, and a run resumed from them runs the same (``auto`` would resolve anew elsewhere)."""
    t = cfg.trainer
    ran = resolve_precision(t.precision, t.accelerator)
    return dataclasses.replace(cfg, trainer=dataclasses.replace(t, precision=ran))


def _save_run_config(cfg: RunConfig, path: Path, asked: str) -> None:
    """``save_config``, and where ``trainer.precision`` resolved to another precision than the
    one asked for (``_with_precision_that_runs``), a first comment line that says both."""
    ran = cfg.trainer.precision
    if asked == ran:
        save_config(cfg, path)
        return
    note = (
        f"# trainer.precision={asked} was asked for; the run trains in {ran} on this machine, "
        "as trainer.precision below records\n"
    )
    write_atomically(path, note + dump_yaml(to_dict(cfg), sort_keys=False))


def _train_in(
    cfg: RunConfig,
    cfg_file: Path | None,
    run_dir: Path,
    resume: str | None,
    callbacks: Sequence[L.Callback],
    asked: str,
) -> TrainResult:
    """``_train`` once the run folder is held; ``asked``: the ``trainer.precision`` of the
    config before ``_with_precision_that_runs``."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = resolve_resume(resume, run_dir)
    if ckpt_path is None or not in_run_folder(ckpt_path, ckpt_dir):  # a new run, or a branch
        check_new_run(ckpt_dir)
    check_run_files(cfg, cfg_file, run_dir, ckpt_path)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    datamodule = _datamodule(cfg)
    # the training and validation lists read and counted here, not in trainer.fit after
    # config.yaml and the logs are written (an empty list refused there would change them)
    datamodule.setup("fit")
    from octvideo.data.datamodule import check_every_rank_has_one

    check_every_rank_has_one(len(datamodule.val_dataset), world_size(cfg), "validation videos")
    check_some_video_exists(datamodule.train_dataset.records, cfg.data.train_list)
    # a resume checkpoint's refusals come before config.yaml and the logs are touched
    checkpoint = load_checkpoint(ckpt_path, wants="run") if ckpt_path is not None else None
    if checkpoint is not None:
        check_same_run(checkpoint, cfg, ckpt_path)  # names a changed key, not a shape
    model = build_classifier(cfg.model, datamodule.classes, checkpoint, ckpt_path)
    finished, step = False, 0
    if checkpoint is not None:
        finished, step = _resume(checkpoint, cfg, ckpt_path, ckpt_dir, datamodule)
        del checkpoint  # the model holds its weights; trainer.fit reads the file for the rest
    if finished:  # nothing to train: its folder, config.yaml and logs are left as they are
        logger.info(
            "%s has trained all trainer.max_epochs=%d epochs: nothing to train, nothing written",
            ckpt_path,
            cfg.trainer.max_epochs,
        )
        return _result(run_dir, step, metrics={})
    check_free_space(ckpt_dir, model, momentum=cfg.optim.momentum > 0)
    module = _module(cfg, model, meta=CheckpointMeta.from_run(cfg, datamodule.classes).to_dict())
    own = _train_callbacks(cfg, run_dir, datamodule)
    loggers: list = [CSVLogger(run_dir, name="logs")]
    if cfg.output.tensorboard:
        loggers.append(TensorBoardLogger(run_dir, name="tb", default_hp_metric=False))
    trainer = _trainer(cfg, run_dir, [*own, *callbacks], loggers)
    # checks done: the first writes, the run's mark first in its folder (check_run_files)
    if trainer.is_global_zero:
        _write_classes_file(cfg, datamodule.classes)
        mark_folder(run_dir, RUN_MARK, "train")
    _output_folder(ckpt_dir, create=True)
    if trainer.is_global_zero:
        _save_run_config(cfg, run_dir / "config.yaml", asked)
    return _fit(trainer, module, datamodule, ckpt_path, run_dir)


def _fit(
    trainer: L.Trainer,
    module: VideoClassifier,
    datamodule: Any,
    ckpt_path: Path | None,
    run_dir: Path,
) -> TrainResult:
    """``trainer.fit`` from ``ckpt_path`` (None: from the start) and what the run in
    ``run_dir`` left; a stop or a fault in it names the global step reached and the run's
    last.ckpt, which is kept. A SIGTERM or Ctrl-C after the last training step lets the run
    write its files (curves.png, replicas.json, the logs) and then says that it finished and
    which checkpoints are kept: ``stopped by SIGTERM after the run finished at global step 9,
    its files written: <last.ckpt> (global step 9) is kept, and so is <best.ckpt>``.

    Raises:
        Interrupted, RunStopped, NonFiniteLoss: as ``run_train`` says.
    """
    last = run_dir / "checkpoints" / LAST

    def stopped() -> str:
        return (
            f"at global step {trainer.global_step}; {last_good(last)}; continue with --resume auto"
        )

    def finished() -> str:
        return _finished(last, trainer.global_step)

    try:
        with warnings.catch_warnings(), _lightning_loop(trainer, stopped, finished):
            with _data_faults(datamodule, last):
                # the datamodule's state_dict makes mid-epoch resumes exact (VideoDataModule)
                warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that")
                trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            # inside the loop's block: a SIGTERM from here on waits for it to end
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            if trainer.is_global_zero:
                logger.info("run directory: %s", run_dir.resolve(), extra=RESULT)
            result = _result(run_dir, trainer.global_step, metrics)
    except NonFiniteLoss as err:
        raise NonFiniteLoss(f"{err}; {last_good(last)}") from err
    return result


def _finished(last: Path, step: int) -> str:
    """``after the run finished at global step <step>, its files written: <last> (global step
    N) is kept``, and the best.ckpt beside ``last`` where there is one."""
    best = last.with_name(BEST)
    also = f", and so is {best}" if best.is_file() else ""
    return (
        f"after the run finished at global step {step}, its files written: {last_good(last)}{also}"
    )


def _resume(
    checkpoint: dict[str, Any],
    cfg: RunConfig,
    ckpt_path: Path,
    ckpt_dir: Path,
    datamodule: Any,
) -> tuple[bool, int]:
    """Checks that ``checkpoint`` may be continued into ``ckpt_dir`` with this config and gives
    the data module its place in the epoch.

    Returns:
        Whether it is a finished run in its own folder (``resume_is_finished``: nothing to
        train), and its global step.

    Raises:
        UsageError: ``trainer.max_epochs`` leaves it nothing to train, or it was trained over
            other processes or another training list (``check_same_position``), or validated
            on other videos (``check_same_validation``).
    """
    finished = resume_is_finished(checkpoint, cfg, ckpt_path, ckpt_dir)
    position = checkpoint.get(type(datamodule).__qualname__) or {}
    check_same_position(position, world_size(cfg), datamodule.num_train_videos, ckpt_path)
    check_same_validation(checkpoint, datamodule.val_dataset.records, cfg, ckpt_path)
    datamodule.load_state_dict(position)
    return finished, int(checkpoint.get("global_step") or 0)


def _result(run_dir: Path, step: int, metrics: dict[str, float]) -> TrainResult:
    """What the run in ``run_dir`` left, at global step ``step``: its best.ckpt where it has
    one (a run resumed into a new folder has none until its first validation)."""
    ckpt_dir = run_dir / "checkpoints"
    best = ckpt_dir / BEST
    return TrainResult(
        run_dir=run_dir,
        last_ckpt=ckpt_dir / LAST,
        best_ckpt=best if best.is_file() else None,
        global_step=step,
        metrics=metrics,
    )


def check_some_video_exists(records: Sequence[Any], listed: str) -> None:
    """Refuses a list none of whose videos is a file, before the run's first write: training on
    it would only fail to decode every video and stop, leaving the run folder behind. A stat
    per video up to the first that exists; videos that are missing among others are reported
    by the data loader as they fail.

    Raises:
        AnnotationError: no listed video exists.
    """
    if records and not any(os.path.exists(r.path) for r in records):
        raise AnnotationError(
            f"data: {listed} lists no video that exists ({len(records)} listed, e.g. "
            f"{records[0].path}); check the list's paths against data.root"
        )


def _test_reads(cfg: RunConfig, cfg_file: Path | None, ckpt: str | Path) -> ReadFiles:
    """The files ``octvideo test`` reads, which its report must not overwrite: the ``--cfg``
    file, the checkpoint, the lists (the test list, and the list the classes come from) and the
    classes file (also when it does not exist yet: the test writes it from the list first)."""
    d = cfg.data
    files = [("--cfg", cfg_file), ("the checkpoint --ckpt", ckpt)]
    files += [(f"data.{key}", getattr(d, key)) for key in ("test_list", "val_list", "train_list")]
    files += [("data.classes_file", d.classes_file)]
    return ReadFiles([(what, path) for what, path in files if path])


def _test_protocol(cfg: RunConfig, ckpt: str | Path, model: torch.nn.Module) -> dict[str, Any]:
    """How the report's figures were made: the checkpoint, the model, the clips and views, and
    (``test.count_flops``) the model's GFLOPs per view and in all: the multiply-adds of the
    convolutions and the classifier (``measure_cost``), the count ``octvideo models``, ``sweep``
    and the README give; Non-local attention products apart, as ``models``' ``+attn``."""
    d = cfg.data
    protocol: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "model": cfg.model.name,
        "alpha": cfg.model.alpha,
        "num_frames": d.num_frames,
        "sampling_rate": d.sampling_rate,
        "target_fps": d.target_fps,
        "temporal_clips": d.test_num_clips,
        "spatial_crops": d.test_num_crops,
        "views": d.test_num_clips * d.test_num_crops,
        "short_side": d.test_short_side,
        "crop_size": d.test_crop_size,
        "aggregation": "mean of softmax over views",
    }
    if cfg.test.count_flops:
        cost = measure_cost(model, d.slow_frames, d.test_crop_size)
        gflops = cost.gflops
        # four significant digits: a small model's count would round to 0.0 at four decimals
        protocol["gflops_per_view"] = float(f"{gflops:.4g}")
        protocol["attention_gflops_per_view"] = float(f"{cost.attention_gflops:.4g}")
        protocol["gflops_total"] = float(f"{gflops * protocol['views']:.4g}")
        protocol["gflops"] = f"{gflops:.4g} x {protocol['views']} views at {d.test_crop_size}"
    return protocol


def run_test(
    cfg: str | Path | RunConfig,
    overrides: Sequence[str] = (),
    *,
    ckpt: str | Path | None,
    out: str | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TestResult:
    """Multi-view test of a checkpoint; writes the report into ``<run dir>/test``.
    ``cfg`` and ``out`` as ``run_train`` takes them; ``callbacks``: extra Lightning callbacks.
    The caller's warnings filters, logging and random generators are as they were when it
    returns (``_caller_state_kept``).

    The evaluation begins by removing the report files of an earlier test there (a refused test
    leaves them as they were): a test that is stopped or fails leaves no report, never the
    earlier one, which would pass for its result. ``summary.json`` is written last, so a folder
    that holds one holds the whole report of the test that finished last.

    Raises:
        UsageError: no checkpoint given (testing random weights is never what was meant), a
            checkpoint that does not fit the model or was trained on other classes, clips the
            model cannot take, a report folder that cannot be written, or one another test is
            writing (``_hold_report_folder``). Raised before the evaluation.
        Interrupted: Ctrl-C; ``Terminated`` (a subclass) for SIGTERM, on which the evaluation
            stops after the batch under way: ``stopped by SIGTERM after 3 of 12 test batches;
            <report folder> holds no report ...``. SIGTERM during the last batch lets the test
            finish and write its report.
    """
    with _caller_state_kept(), _sigterm_raises():
        return _test(cfg, overrides, ckpt, out, callbacks)


def _test(
    cfg: str | Path | RunConfig,
    overrides: Sequence[str],
    ckpt: str | Path | None,
    out: str | None,
    callbacks: Sequence[L.Callback],
) -> TestResult:
    if not ckpt:
        raise UsageError("a checkpoint is required: octvideo test --cfg CFG --ckpt CKPT")
    cfg, cfg_file = _config(cfg, overrides, out)
    if not cfg.test.out_dir:
        check_run_folder_named(cfg, cfg_file, overrides, out, "test into")
    check_clip(cfg.model, cfg.data, (cfg.data.test_crop_size,))
    _reserve_open_files(cfg)
    run_dir = run_dir_of(cfg)
    out_dir = Path(cfg.test.out_dir) if cfg.test.out_dir else run_dir / "test"
    # the report is checked before the checkpoint is loaded, not after the whole evaluation
    advice = "choose another --out or test.out_dir"
    check_outside_data("report folder", out_dir, data_folders(cfg), advice)
    _output_folder(out_dir, create=False, setting="--out or test.out_dir")
    check_report_files(out_dir, reads=_test_reads(cfg, cfg_file, ckpt))
    check_earlier_report(out_dir)
    with _hold_report_folder(out_dir):
        return _test_in(cfg, ckpt, run_dir, out_dir, callbacks)


SUMMARY_LIMIT = 2**24  # bytes; a test's summary.json is a few kilobytes


def check_earlier_report(out_dir: Path) -> None:
    """Refuses report files in ``out_dir`` that no test wrote, which a test removes as it begins
    (``remove_report``) and then replaces. A test writes ``TEST_MARK`` in its report folder
    before any other file, so report files beside it are a test's: a finished one's, or what a
    test killed as it wrote its report left. A folder of a test of octvideo before the mark is
    known by its ``summary.json``, which reads as a test's (its ``metrics`` and ``protocol``)
    and is written last. Any other report file is someone else's (a ``predictions.csv`` of one's
    own in a ``test.out_dir``), and refused.

    Raises:
        UsageError: names the folder and the file.
    """
    found = [name for name in REPORT_FILES.values() if (out_dir / name).exists()]
    if not found or is_marked(out_dir, TEST_MARK):
        return
    summary = out_dir / REPORT_FILES["summary"]
    with contextlib.suppress(OSError, ValueError):  # unreadable, or not JSON: not a test's
        earlier = json.loads(read_utf8(summary, SUMMARY_LIMIT))
        if isinstance(earlier, dict) and {"metrics", "protocol"} <= earlier.keys():
            return
    raise UsageError(
        f"report folder {out_dir} holds {found[0]}, which a test would replace, but no "
        f"{TEST_MARK}, which every test writes there first: it is not an earlier test's "
        "report; move it away, or choose another --out or test.out_dir (nothing was changed)"
    )


def _forget_report(out_dir: Path) -> None:
    """Removes what a test that did not finish wrote in ``out_dir``, its mark last, so that it
    leaves no report (and a report folder it made, none). A report file that cannot be removed
    keeps the mark, so the next test there replaces it."""
    with contextlib.suppress(OSError):  # the error that stopped the test is the one to tell
        remove_report(out_dir)
        (out_dir / TEST_MARK).unlink(missing_ok=True)


def _hold_report_folder(out_dir: Path) -> contextlib.AbstractContextManager[Any]:
    """Makes this test the only command writing its report folder (``paths.hold_folder``): a
    second test into it is refused before it loads the checkpoint. The run folder is not held:
    a ``train`` there writes no report, and testing its checkpoints while it runs is common.
    Under DDP only the process that writes the report holds it.

    Raises:
        UsageError: "report folder R/test is in use by octvideo test (pid 123); wait for it to
            end, or choose another --out or test.out_dir (nothing was changed)".
    """
    if not writes_run_folder():
        return contextlib.nullcontext()
    return hold_folder(
        out_dir,
        "test",
        name=f"report folder {out_dir}",
        advice="choose another --out or test.out_dir",
    )


def _test_in(
    cfg: RunConfig,
    ckpt: str | Path,
    run_dir: Path,
    out_dir: Path,
    callbacks: Sequence[L.Callback],
) -> TestResult:
    """``_test``'s work, its report folder held (``_hold_report_folder``)."""
    checkpoint = load_checkpoint(ckpt)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    datamodule = _datamodule(cfg)
    model = build_classifier(cfg.model, datamodule.classes, checkpoint, ckpt)
    check_same_model(checkpoint, cfg, ckpt)  # names a changed key the shapes did not show
    check_same_clips(checkpoint, cfg, ckpt, allow=cfg.test.allow_other_clip)
    # the test list read and counted here, not in trainer.test after the report folder is made
    # (an empty list refused there would leave it behind)
    datamodule.setup("test")
    # a fused copy; the FLOPs below count the model as built
    module = _module(cfg, fuse_for_inference(model))
    from octvideo.data import BadVideoCallback

    trainer = _trainer(cfg, run_dir, [BadVideoCallback(), *callbacks], loggers=False)
    # checks done: the first writes, the test's mark first in its folder (check_earlier_report)
    if trainer.is_global_zero:
        _write_classes_file(cfg, datamodule.classes)
    _output_folder(out_dir, create=True, setting="--out or test.out_dir")
    if trainer.is_global_zero:  # the process that writes the report
        mark_folder(out_dir, TEST_MARK, "test")
    try:
        removed = remove_report(out_dir) if trainer.is_global_zero else []
        if removed:
            logger.info("removed the earlier report in %s", out_dir)
        return _evaluate(
            cfg, ckpt, checkpoint, model, module, datamodule, trainer, out_dir, removed
        )
    except BaseException:  # stopped or failed from here on: no report is left
        if trainer.is_global_zero:
            _forget_report(out_dir)
        raise


def _evaluate(
    cfg: RunConfig,
    ckpt: str | Path,
    checkpoint: dict[str, Any],
    model: torch.nn.Module,
    module: VideoClassifier,
    datamodule: Any,
    trainer: L.Trainer,
    out_dir: Path,
    removed: Sequence[Path],
) -> TestResult:
    """``_test_in``'s evaluation and report, once the earlier report was ``removed``."""

    def stopped() -> str:
        done = completed_test_batches(trainer)
        total = sum(trainer.num_test_batches)
        batches = f"{done} of {total:g}" if math.isfinite(total) else f"{done}"
        earlier = " (the earlier one was removed as this test began)" if removed else ""
        return (
            f"after {batches} test batches; {out_dir} holds no report{earlier}; run the test "
            "again for one"
        )

    with _lightning_loop(trainer, stopped), _data_faults(datamodule):
        trainer.test(module, datamodule=datamodule, verbose=False)
    if trainer.received_sigterm:
        logger.info(
            "SIGTERM during the last test batch: the evaluation is whole, writing its report"
        )
    if not trainer.is_global_zero:  # rank 0 gathered the views and writes the report
        return TestResult(out_dir=out_dir, metrics={}, files={})
    views = module.test_views
    if views is None:
        raise RuntimeError("the test loop produced no outputs")
    advice = broken_advice(checkpoint)  # for logits that overflow: what to do, by its origin
    try:
        files = write_report(
            out_dir,
            views,
            classes=datamodule.classes,
            paths=[r.path for r in datamodule.test_dataset.records],
            protocol=_test_protocol(cfg, ckpt, model),
            confusion_png=cfg.test.confusion_matrix,
            advice=advice,
        )
    except OutputWriteError as err:  # the report's files go (_test_in): say so, and of the earlier
        earlier = " (the earlier one was removed as this test began)" if removed else ""
        raise OutputWriteError(
            err.path,
            OSError(err.errno, err.reason),
            existed=False,
            kept=f"{out_dir} holds no report{earlier}",
        ) from err
    metrics = summarize(views, advice=advice)
    logger.info(
        "video top-1 %.2f%%, top-%d %.2f%% (%d videos, %d failed); clip top-1 %.2f%%; "
        "mean class accuracy %.2f%%",
        100 * metrics["video_top1"],
        metrics["top5_k"],  # 5, or the class count when there are fewer classes
        100 * metrics["video_top5"],
        metrics["num_videos"],
        metrics["num_failed"],
        100 * metrics["clip_top1"],
        100 * metrics["mean_class_accuracy"],
        extra=RESULT,
    )
    return TestResult(out_dir=out_dir, metrics=metrics, files=files)
