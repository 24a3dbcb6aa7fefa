"""The datamodule: the batch contract, workers, samplers across ranks and resumes, input errors
as user errors, class folders read as given (``data.root``, ``.m4v`` videos), and ``ShareSampler``
(the test views split into contiguous shares, so a clip's crops stay on one rank)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import Dataset

from octvideo.data import VideoDataModule, VideoDataset
from octvideo.data import datamodule as datamodule_module
from octvideo.data.datamodule import EpochSampler, ShareSampler
from octvideo.data.synth import generate_synthetic
from octvideo.data.workers import WORKERS_PER_CORE
from octvideo.errors import UsageError
from octvideo.signals import STOPS
from tests.data.media_helpers import (
    GOOD,
    records,
    small_config,
    split_tree,
)
from tests.engine.conftest import tiny_overrides


def test_datamodule_input_errors_are_usage_errors(tmp_path, media):
    with pytest.raises(UsageError, match="set data.train_list"):
        _ = VideoDataModule(small_config()).classes
    (tmp_path / "val.txt").write_text("# every video of this list was removed\n")
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    cfg = small_config(train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
    with pytest.raises(UsageError, match="val.txt lists no video that exists"):
        VideoDataModule(cfg).setup("fit")
    with pytest.raises(UsageError, match="no annotations for test_dataset"):
        VideoDataModule(small_config(train_list=str(tmp_path / "train.txt"))).test_dataloader()


@pytest.mark.parametrize("cfg", [None, {"num_frames": 8}, "data.yaml"])
def test_a_config_other_than_a_data_config_is_one_line(cfg):
    with pytest.raises(TypeError) as err:
        VideoDataModule(cfg)
    assert str(err.value) == (
        "VideoDataModule takes a DataConfig (octvideo.data.DataConfig; a run config's .data), "
        f"got {type(cfg).__name__}; build one with DataConfig(**fields)"
    )


@pytest.mark.parametrize("stage", ["bogus", "predict", "train", ""])
def test_setup_refuses_a_stage_it_has_no_datasets_for_naming_its_stages(stage):
    dm = VideoDataModule(small_config(val_list="val.txt"))
    with pytest.raises(ValueError) as err:
        dm.setup(stage)
    assert str(err.value) == (
        f"VideoDataModule.setup takes stage 'fit', 'validate', 'test' or None, got {stage!r}"
    )
    assert dm.val_dataset is None and dm.test_dataset is None


def test_the_first_list_set_gives_the_classes_and_only_a_training_list_counts(tmp_path, media):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 2\n")
    (tmp_path / "val.txt").write_text("a.mp4 1\n")
    dm = VideoDataModule(small_config(val_list=str(tmp_path / "val.txt")))
    assert dm.classes == ["0", "1"] and dm.num_train_videos == 0
    with pytest.raises(UsageError, match=r"no annotations for train_dataset \(set the matching"):
        dm.train_dataloader()
    dm = VideoDataModule(small_config(train_list=str(tmp_path / "train.txt")))
    assert dm.classes == ["0", "1", "2"] and dm.num_train_videos == 2
    with pytest.raises(UsageError, match=r"no annotations for val_dataset \(set the matching"):
        dm.val_dataloader()


def test_a_label_outside_the_first_lists_classes_names_that_list(tmp_path, media):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("a.mp4 2\n")
    cfg = small_config(train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
    with pytest.raises(UsageError) as info:
        VideoDataModule(cfg).setup("fit")
    assert f"label 2 is outside the 2 classes of the first list, {tmp_path / 'train.txt'};" in str(
        info.value
    )


@pytest.mark.parametrize("file_first", [True, False])
def test_a_label_outside_the_classes_names_the_classes_file_where_it_gave_them(
    tmp_path, media, file_first
):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("a.mp4 2\n")
    classes = tmp_path / "classes.txt"
    if file_first:
        classes.write_text("run\njump\n")
    cfg = small_config(
        train_list=str(tmp_path / "train.txt"),
        val_list=str(tmp_path / "val.txt"),
        classes_file=str(classes),
    )
    with pytest.raises(UsageError) as info:
        VideoDataModule(cfg).setup("fit")
    # without the file, the first list gives the classes (and they are written to the file)
    source = (
        f"data.classes_file, {classes}"
        if file_first
        else f"the first list, {tmp_path / 'train.txt'}"
    )
    assert f"label 2 is outside the 2 classes of {source};" in str(info.value)
    # the advice fits the source: a classes file is not told to use the classes file
    assert ("use the classes file of this dataset" in str(info.value)) is not file_first
    if file_first:
        assert str(info.value).endswith(
            "fix the labels, or set data.classes_file to the classes file the labels were "
            "numbered with"
        )


def test_each_list_is_read_once_the_first_for_its_classes_too(tmp_path, media, monkeypatch):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("a.mp4 1\n")
    read = []
    load = datamodule_module.load_annotations
    monkeypatch.setattr(
        datamodule_module,
        "load_annotations",
        lambda path, **kw: read.append(path) or load(path, **kw),
    )
    cfg = small_config(train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
    dm = VideoDataModule(cfg)
    dm.setup("fit")
    assert dm.classes == ["0", "1"] and len(dm.train_dataset) == 2
    assert read == [str(tmp_path / "train.txt"), str(tmp_path / "val.txt")]


def test_datamodule_with_a_root_reads_each_split_folder(tmp_path, media, monkeypatch):
    split_tree(tmp_path, media)
    monkeypatch.chdir(tmp_path)  # relative folders are taken like relative list files
    cfg = small_config(root="my/train", train_list="my/train", val_list="my/val")
    dm = VideoDataModule(cfg)
    dm.setup("fit")
    assert dm.classes == ["jump", "walk"]
    assert [r.path for r in dm.val_dataset.records] == [
        "my/val/jump/val_jump.mp4",
        "my/val/walk/val_walk.mp4",
    ]
    dm = VideoDataModule(small_config(root="my", train_list="my/train", val_list="my/val"))
    assert dm.classes == ["jump", "walk"]


def test_m4v_videos_of_a_class_folder_are_trained_on(tmp_path, media):
    for cls, suffix in (("jump", ".mp4"), ("walk", ".m4v")):
        (tmp_path / "train" / cls).mkdir(parents=True)
        shutil.copy(media["h264.mp4"], tmp_path / "train" / cls / f"clip{suffix}")
    dm = VideoDataModule(small_config(train_list=str(tmp_path / "train")))
    dm.setup("fit")
    assert [r.label for r in dm.train_dataset.records] == [0, 1]  # the .m4v was dropped


class Views:
    """Test views of ``videos`` videos x ``clips`` clips x ``crops`` crops, in the dataset's
    order (``VideoDataset._eval_item``)."""

    def __init__(self, videos: int, clips: int, crops: int) -> None:
        self.clips, self.crops = clips, crops
        self.size = videos * clips * crops

    def __len__(self) -> int:
        return self.size

    def clip_of(self, index: int) -> tuple[int, int]:
        video, view = divmod(index, self.clips * self.crops)
        return video, view // self.crops


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("videos", [1, 7, 20])
def test_shares_cover_every_view_once_and_keep_clips_together(world, videos):
    views = Views(videos, clips=10, crops=3)
    shares = [list(ShareSampler(views, world, rank)) for rank in range(world)]
    assert [len(ShareSampler(views, world, rank)) for rank in range(world)] == list(
        map(len, shares)
    )
    assert sorted(i for share in shares for i in share) == list(range(len(views)))
    # decodes: one per clip per rank that holds any of its crops; a share boundary can split
    # at most one clip
    decodes = sum(len({views.clip_of(i) for i in share}) for share in shares)
    assert decodes <= videos * 10 + world - 1
    if world > 1:  # the round-robin deal decoded each clip on up to 3 ranks
        dealt = [
            list(UnrepeatedDistributedSampler(views, num_replicas=world, rank=r, shuffle=False))
            for r in range(world)
        ]
        assert sum(len({views.clip_of(i) for i in share}) for share in dealt) > decodes


def test_fewer_views_than_processes_is_refused():
    with pytest.raises(UsageError) as err:
        ShareSampler(Views(1, clips=2, crops=1), 4, 0)
    assert str(err.value) == (
        "data: 2 test views for 4 processes; evaluate with at most 2 processes (trainer.devices "
        "x trainer.num_nodes), or list more videos"
    )


def test_fewer_validation_videos_than_processes_is_refused(tmp_path, media, monkeypatch):
    # Lightning's sampler asserted; a rank without a video would not join the metrics' sync
    for i in range(2):
        (tmp_path / "val" / "jump").mkdir(parents=True, exist_ok=True)
        shutil.copy(media["h264.mp4"], tmp_path / "val" / "jump" / f"{i}.mp4")
    monkeypatch.setattr(datamodule_module, "world", lambda: (4, 1))
    dm = VideoDataModule(small_config(val_list=str(tmp_path / "val")))
    with pytest.raises(UsageError, match="data: 2 validation videos for 4 processes; evaluate"):
        dm.val_dataloader()


@pytest.fixture
def lines_dataset(tmp_path, media):
    names = ["h264.mp4", "mpeg4.avi", "mjpeg.avi", "vp9.webm", "odd.mkv", "vfr.mp4", "short.mp4"]
    body = "".join(f"{media[n]} {i % 3}\n" for i, n in enumerate(names))
    (tmp_path / "train.txt").write_text(body + f"{media['zero.mp4']} 1\n")
    (tmp_path / "val.txt").write_text(body)
    return tmp_path


def test_datamodule_batches_follow_the_contract(lines_dataset):
    cfg = small_config(
        train_list=str(lines_dataset / "train.txt"),
        val_list=str(lines_dataset / "val.txt"),
        classes_file=str(lines_dataset / "classes.txt"),
    )
    dm = VideoDataModule(cfg)
    assert dm.classes == ["0", "1", "2"] and dm.num_classes == 3
    train = list(dm.train_dataloader())
    assert len(train) == 2  # 8 videos, batch 4, last partial batch dropped
    batch = train[0]
    assert batch["video"].shape == (4, 3, 4, 32, 32) and batch["video"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["video_index"].dtype == torch.int64
    # zero.mp4 is stepped over at least once (a retry may draw it again); each skip is named.
    skipped = sum(int(b["skipped"].sum()) for b in train)
    named = [line for b in train for text in b["errors"] for line in text.split("\n") if line]
    assert skipped >= 1 and len(named) == skipped
    assert all(line.startswith(str(lines_dataset.parent)) and "zero.mp4" in line for line in named)
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (4, 3, 4, 32, 32) and val["ok"].all()
    test = list(dm.test_dataloader())
    assert sum(len(b["label"]) for b in test) == 7 * 9
    assert dm.test_dataset.records[6][0].endswith("short.mp4")


def test_two_workers_yield_the_same_batches_as_none(lines_dataset):
    def batches(workers: int) -> list[dict]:
        cfg = small_config(train_list=str(lines_dataset / "val.txt"), num_workers=workers, seed=7)
        loader = VideoDataModule(cfg).train_dataloader()
        out = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            out.extend(loader)
        return out

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["video_index"], b["video_index"])
        assert torch.equal(a["video"], b["video"])
    assert not torch.equal(serial[0]["video"], serial[1]["video"])


def test_workers_within_octvideos_bound_start_without_torchs_per_core_warning(
    lines_dataset, monkeypatch
):
    # PyTorch warned that the loader "might get running slow or even freeze" past one worker a
    # core, twice a command, for counts data.num_workers takes (up to 4 a core); past octvideo's
    # bound (a DataConfig built without a run's checks) its warning stands
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # one core
    monkeypatch.setattr(os, "cpu_count", lambda: 1)

    def warned(workers: int) -> list[str]:
        cfg = small_config(train_list=str(lines_dataset / "val.txt"), num_workers=workers)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loader = VideoDataModule(cfg).train_dataloader()
            if workers == 2:  # a pass starts the workers, where PyTorch checks again
                assert next(iter(loader))["video"].shape == (4, 3, 4, 32, 32)
        return [str(w.message) for w in caught if "worker processes in total" in str(w.message)]

    assert warned(2) == warned(WORKERS_PER_CORE) == []
    (message,) = warned(WORKERS_PER_CORE + 1)
    assert f"will create {WORKERS_PER_CORE + 1} worker processes" in message


def test_samplers_split_ranks_without_overlap(media):
    dataset = VideoDataset(records(media, GOOD + GOOD[:3]), small_config(), "train")
    shares = [list(EpochSampler(dataset, num_replicas=2, rank=r, seed=0)) for r in (0, 1)]
    indices = [i for share in shares for i, _ in share]
    assert len(shares[0]) == len(shares[1]) == 5  # 9 videos padded to 10
    assert set(indices) == set(range(9))
    assert {epoch for share in shares for _, epoch in share} == {0}


def test_a_resumed_sampler_continues_its_epoch_once(media):
    dataset = VideoDataset(records(media, GOOD + GOOD[:3]), small_config(), "train")
    whole = EpochSampler(dataset, num_replicas=1, rank=0, seed=3)
    whole.set_epoch(2)
    epoch2 = list(whole)
    resumed = EpochSampler(dataset, num_replicas=1, rank=0, seed=3)
    resumed.resume(2, 4)
    assert list(resumed) == epoch2[4:]
    assert list(resumed) == epoch2  # only the first pass skips
    assert len(resumed) == len(epoch2)


class _StopDispositions(Dataset):
    """Each item: whether SIGINT, SIGTERM and SIGHUP are ignored in the process that loads it."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> list[bool]:
        return [signal.getsignal(signum) == signal.SIG_IGN for signum in STOPS]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers fork on Linux")
def test_loader_workers_leave_the_groups_stops_to_the_run(lines_dataset):
    # a SIGTERM or SIGHUP sent to the whole process group killed the workers: the run lost its
    # steps since the last checkpoint and named a good video as the one that killed a worker
    def caller(signum: int, frame: object) -> None: ...

    for signum in STOPS:  # the caller's own handlers (not ignored, as under nohup or in a job)
        signal.signal(signum, caller)  # tests/conftest.py puts the earlier ones back
    dm = VideoDataModule(small_config(train_list=str(lines_dataset / "val.txt"), num_workers=2))
    loader = dm._loader(_StopDispositions(), None, persistent=False)
    (batch,) = list(loader)  # SIGINT, SIGTERM, SIGHUP, each of the 2 items
    assert [column.tolist() for column in batch] == [[True, True]] * 3
    assert [signal.getsignal(signum) is caller for signum in STOPS] == [True] * 3


def test_a_worker_dead_once_sigterm_came_is_the_stop_not_a_bad_video(lines_dataset):
    dm = VideoDataModule(small_config(train_list=str(lines_dataset / "val.txt"), num_workers=2))
    dead = RuntimeError("DataLoader worker (pid 123) is killed by signal: Terminated. ")
    assert "killed by signal" in dm.worker_crash_report(dead)
    dm.trainer = type("Trainer", (), {"received_sigterm": True})()
    with pytest.raises(SIGTERMException):
        dm.worker_crash_report(dead)
    assert dm.worker_crash_report(ValueError("another error")) is None


_STOPPED_IN_STEP_1 = """
import json, sys, time
import lightning as L
from octvideo import cli
from octvideo.engine import run as engine_run

class WaitForTheStop(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 1:
            open(sys.argv[1], "w").close()  # the test now sends SIGTERM to the process group
            # until the stop has come, however long that takes (a run that never gets it is
            # ended by the test's hang guard, not by a clock here)
            while not trainer.received_sigterm:
                time.sleep(0.01)

own = engine_run._train_callbacks
engine_run._train_callbacks = lambda *a: [*own(*a), WaitForTheStop()]
sys.exit(cli.main(json.loads(sys.argv[2])))
"""


def _terminal_signals() -> None:
    """A terminal's process: SIGINT and SIGHUP at their defaults, where a runner started in the
    background or under nohup hands its children them ignored (which octvideo keeps)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers fork on Linux")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_sent_to_the_process_group_of_a_run_with_workers_keeps_its_step(tmp_path, signum):
    # scancel, a SLURM time limit, systemd, a terminal closed: the workers died of the stop too,
    # and the run said "DataLoader worker ... killed by signal: Terminated. while decoding <a
    # good video>; ... remove it", status 1, its steps since the last checkpoint lost
    data = generate_synthetic(
        tmp_path / "data", num_train=12, num_val=6, size=32, frames=8, progress=False
    )
    run, ready = tmp_path / "run", tmp_path / "ready"
    args = ["train", "--cfg", "oct_i3d_synth", "--out", str(run)]
    args += tiny_overrides(data, **{"data.num_workers": 2, "output.plot_curves": False})
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOPPED_IN_STEP_1, str(ready), json.dumps(args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        start_new_session=True,  # a process group of its own: the run and its workers
        preexec_fn=_terminal_signals,
    )
    try:
        while not ready.exists() and proc.poll() is None:
            time.sleep(0.05)  # waits for the run to reach step 1, however long that takes
        assert ready.exists(), proc.communicate()[1][-3000:]
        os.killpg(proc.pid, signum)
        err = proc.communicate(timeout=600)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    last = run / "checkpoints" / "last.ckpt"
    assert err.strip().splitlines()[-1] == (
        f"octvideo train: stopped by SIGTERM at global step 2; {last} (global step 2) is kept; "
        "continue with --resume auto"
    ), err[-3000:]
    assert proc.returncode == 143
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("launcher", "said"),
    [
        ({}, True),  # a process of its own
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun's first
        ({"RANK": "1", "LOCAL_RANK": "0"}, False),  # torchrun, second node
        ({"LOCAL_RANK": "1"}, False),  # Lightning's ddp runs the command again with it
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),  # its first on the second node
    ],
)
def test_the_lists_lines_are_said_by_global_rank_zero_alone(
    tmp_path, media, monkeypatch, caplog, launcher, said
):
    """Every process of a distributed run reads both lists alike: the counts and the leakage
    warning are said once, by the process of global rank 0, before the process group exists."""
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in launcher.items():
        monkeypatch.setenv(name, value)
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    shutil.copy(media["h264.mp4"], tmp_path / "b.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("a.mp4 1\n")
    cfg = small_config(train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
    with caplog.at_level("INFO", logger="octvideo.data.datamodule"):
        VideoDataModule(cfg).setup("fit")
    lines = [r.getMessage() for r in caplog.records if r.name == "octvideo.data.datamodule"]
    expected = [
        f"train: 2 videos from {tmp_path / 'train.txt'}",
        f"val: 1 videos from {tmp_path / 'val.txt'}",
    ]
    assert [line for line in lines if " videos from " in line] == (expected if said else [])
    assert sum("train/val leakage" in line for line in lines) == (1 if said else 0)
