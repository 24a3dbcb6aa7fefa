"""Checkpoint files on disk: a real full disk mid-write is one line with the previous checkpoint
intact, checkpoints get the umask's permissions, never go through a symbolic link, and a file
whose zip directory declares more than it holds (an octvideo checkpoint or a PyTorchVideo zoo file)
is refused before torch reads it. Files given as checkpoints that are not octvideo checkpoints:
one line naming the file and the cause, never torch's advice to load them with
``weights_only=False``, never a traceback. Weights that hold a NaN or an infinity are refused by
every command that reads them, before anything is written."""

from __future__ import annotations

import os
import pickle
import re
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import lightning as L
import pytest
import torch

from octvideo.cli import main
from octvideo.engine import checkpoint as checkpoint_module
from octvideo.engine.checkpoint import (
    WANTED,
    atomic_save,
    check_torch_archive,
    check_weight_values,
    last_good,
    load_checkpoint,
    load_pytorchvideo_checkpoint,
    model_state_dict,
)
from octvideo.engine.run import AtomicCheckpointIO, run_train
from octvideo.errors import (
    CheckpointError,
    CheckpointWriteError,
    OutputWriteError,
    RunStopped,
    UsageError,
)
from octvideo.models import create_model
from tests.crafted_checkpoints import declaring, inflating, sharing
from tests.engine.conftest import NUM_CLASSES, tiny_overrides
from tests.reliability.bad_input_matrix import NO_FILES, make_no_file
from tests.small_disk import fill, free_bytes, small_disk


def _state(step: int) -> dict:
    return {"global_step": step, "state_dict": {"w": torch.full((50_000,), float(step))}}


def test_a_real_full_disk_during_a_checkpoint_write_is_one_line(request, tmp_path):
    disk = small_disk(request, tmp_path / "run", size="1m")
    last = disk / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_state(3), last)  # about 200 KB
    fill(disk, leave=64 * 1024)
    with pytest.raises(CheckpointWriteError) as info:
        io.save_checkpoint(_state(4), last)
    message = str(info.value)
    assert isinstance(info.value, RunStopped)
    assert message == (
        f"cannot write checkpoint {last} (No space left on device); {last} (global step 3) is "
        "kept. Free space or fix the folder, then continue with --resume auto"
    )
    assert load_checkpoint(last)["global_step"] == 3
    assert sorted(os.listdir(disk)) == ["ballast", "last.ckpt"]  # no temporary file


def test_atomic_save_on_a_real_full_disk_raises_one_line(request, tmp_path):
    disk = small_disk(request, tmp_path / "disk", size="1m")
    fill(disk, leave=16 * 1024)
    with pytest.raises(OutputWriteError, match=r"\(No space left on device\); no part of it"):
        atomic_save(_state(1), disk / "best.ckpt")
    assert sorted(os.listdir(disk)) == ["ballast"]


def test_a_checkpoint_write_removes_the_temporaries_of_ended_writers_only(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    running = f".last.ckpt.{os.getpid()}-0123abcd.tmp.ckpt"  # a writer still at work
    left = [f".last.ckpt.{int(ended.stdout)}-0123abcd.tmp.ckpt", ".last.ckpt.a1b2_c3d.tmp"]
    for name in [running, *left]:
        (tmp_path / name).write_bytes(b"half")
    atomic_save(_state(2), tmp_path / "last.ckpt")
    assert sorted(os.listdir(tmp_path)) == sorted([running, "last.ckpt"])


class _FillDisk(L.Callback):
    """Fills the run's disk once training started (after the free-space check)."""

    def __init__(self, disk) -> None:
        self.disk = disk

    def on_train_start(self, trainer, pl_module) -> None:
        fill(self.disk, leave=4096)


@pytest.mark.heavy  # a short training run, about 20 s on two cores
def test_a_real_full_disk_stops_a_training_run_in_one_line(request, tmp_path, tiny_synth):
    disk = small_disk(request, tmp_path / "disk", size="4m")
    run = disk / "run"
    overrides = tiny_overrides(tiny_synth, **{"output.plot_curves": False})
    assert free_bytes(disk) > 2**20
    with pytest.raises(RunStopped) as info:
        run_train(None, overrides, out=str(run), callbacks=[_FillDisk(disk)])
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"cannot write checkpoint {re.escape(str(run / 'checkpoints'))}/(best|last)\.ckpt \(No "
        r"space left on device\); no checkpoint had been written yet \(.*\)\. Free space or fix "
        r"the folder, then continue with --resume auto",
        message,
    ), message
    assert os.listdir(run / "checkpoints") == []


def test_checkpoints_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_save(_state(1), tmp_path / "last.ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_a_symbolic_link_at_a_checkpoint_is_refused(tmp_path):
    target = tmp_path / "elsewhere.ckpt"
    atomic_save(_state(1), target)
    link = tmp_path / "last.ckpt"
    link.symlink_to(target)
    with pytest.raises(UsageError, match=r"last\.ckpt is a symbolic link to .*elsewhere\.ckpt; "):
        atomic_save(_state(2), link)
    assert link.is_symlink() and load_checkpoint(target)["global_step"] == 1


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """64 MiB of tensor in a 66 KB file (a 4 MB file of this kind holds 4 GiB)."""
    return inflating(tmp_path_factory.mktemp("bomb") / "bomb.ckpt", mib=64)


def test_an_inflating_checkpoint_is_refused_before_torch_reads_it(bomb, monkeypatch):
    loads = []
    monkeypatch.setattr(checkpoint_module.torch, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(UsageError) as info:
        load_checkpoint(bomb)
    message = str(info.value)
    assert message.startswith(f"checkpoint {str(bomb)!r} is refused before loading: its member")
    assert "is compressed (64.0 MiB inflated from a 0.1 MiB file)" in message
    assert not loads


def test_an_inflating_pytorchvideo_file_is_refused_before_loading(tmp_path):
    path = inflating(tmp_path / "zoo.pyth", mib=8)
    with pytest.raises(UsageError, match=r"is refused before loading: its member .* compressed"):
        load_pytorchvideo_checkpoint(create_model("i3d_r50"), path)


def test_a_pytorchvideo_file_that_is_no_checkpoint_is_refused_as_load_checkpoint_refuses(tmp_path):
    video = tmp_path / "clip.pyth"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))  # an MP4's first bytes
    with pytest.raises(UsageError, match=r"is not a torch checkpoint: neither the zip archive"):
        load_pytorchvideo_checkpoint(create_model("i3d_r50"), video)
    damaged = tmp_path / "damaged.pyth"
    damaged.write_bytes(b"\x80\x02}q\x00X")  # a legacy pickle that ends in its first key
    with pytest.raises(UsageError, match=r"ends before its data does: a checkpoint cut short"):
        load_pytorchvideo_checkpoint(create_model("i3d_r50"), damaged)
    listed = tmp_path / "list.pyth"
    torch.save([1, 2], listed)
    with pytest.raises(UsageError) as err:
        load_pytorchvideo_checkpoint(create_model("i3d_r50"), listed)
    assert str(err.value).endswith(f"; pass {WANTED['pytorchvideo']}")


@pytest.mark.parametrize(
    "layout",
    [
        lambda w: {"state_dict": {f"model.{k}": v for k, v in w.items()}, "global_step": 3},
        lambda w: {"model_state": w, "model_epoch": 196},  # PyTorchVideo's zoo, PySlowFast
        lambda w: {"model": w, "optimizer": {}, "epoch": 89},  # torchvision's reference scripts
        lambda w: w,  # a plain state dict
    ],
    ids=["octvideo", "pytorchvideo", "torchvision", "plain"],
)
def test_model_state_dict_reads_the_weights_of_every_layout(layout):
    """Every command reads a file's weights through ``model_state_dict``: import and train's
    ``model.pretrained`` alike."""
    weights = {"blocks.0.conv.weight": torch.ones(2), "blocks.0.norm.running_mean": torch.zeros(2)}
    got = model_state_dict(layout(weights))
    assert got.keys() == weights.keys() and all(got[k] is v for k, v in weights.items())


def _given_as_checkpoint(command: str, path: Path) -> list[str]:
    """Arguments of ``command`` with ``path`` as its checkpoint (and an empty video to predict)."""
    video = path.with_name("v.mp4")
    video.write_bytes(b"")
    return {
        "predict": ["predict", "--ckpt", str(path), str(video)],
        "export": ["export", "--ckpt", str(path), "--format", "onnx"],
        "test": ["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", str(path)],
    }[command]


@pytest.mark.parametrize("command", ["predict", "export", "test"])
def test_every_command_refuses_an_inflating_checkpoint_in_one_line(bomb, command, capsys):
    assert main(_given_as_checkpoint(command, bomb)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"octvideo {command}: error: checkpoint {str(bomb)!r} is refused")


@pytest.fixture(scope="module")
def torchscript(tmp_path_factory):
    """A TorchScript model as ``octvideo export --format torchscript`` writes one (torch.jit.save;
    its code members are compressed)."""
    path = tmp_path_factory.mktemp("export") / "last.torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace and save are deprecated
        torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), path)
    return path


def _torchscript_refused(path: Path) -> str:
    return (
        f"checkpoint {str(path)!r} is a TorchScript model (what 'octvideo export --format "
        "torchscript' and torch.jit.save write), not a checkpoint: it holds no training state or "
        "metadata; pass the .ckpt it was exported from (a run's checkpoints/last.ckpt or best.ckpt)"
    )


def test_a_torchscript_export_given_as_a_checkpoint_is_named_as_one(torchscript):
    with pytest.raises(UsageError) as info:
        load_checkpoint(torchscript)
    assert str(info.value) == _torchscript_refused(torchscript)


@pytest.mark.parametrize("command", ["predict", "export", "test"])
def test_every_command_names_a_torchscript_export_given_as_its_checkpoint(
    torchscript, command, capsys
):
    assert main(_given_as_checkpoint(command, torchscript)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"octvideo {command}: error: {_torchscript_refused(torchscript)}"


class _System:
    """Unpickling this would run ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _broken_weights(path: Path) -> Path:
    """A checkpoint whose weight ``model.stem.weight`` holds a NaN and an infinity, as a
    diverged run's last.ckpt does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {"model.stem.weight": torch.tensor([1.0, float("nan"), float("inf")])}
    torch.save({"state_dict": weights, "global_step": 3}, path)
    return path


def _broken_pretrained(path: Path) -> Path:
    """A checkpoint of the tiny run's network whose backbone weight ``stem.conv.conv_hh.weight``
    holds a NaN and an infinity: ``model.pretrained`` checks the weights it loads, so the file
    must fit the network for that check to be reached."""
    model = create_model("i3d_r18", num_classes=NUM_CLASSES, alpha=0.25, width=4)
    weights = {f"model.{k}": v for k, v in model.state_dict().items()}
    weights["model.stem.conv.conv_hh.weight"].view(-1)[:2] = torch.tensor(
        [float("nan"), float("inf")]
    )
    torch.save({"state_dict": weights, "global_step": 3}, path)
    return path


@pytest.mark.parametrize(
    "command", ["predict", "export", "test", "import", "train-pretrained", "train-resume"]
)
def test_every_command_refuses_weights_holding_nan_in_one_line(
    tmp_path, tiny_synth, command, capsys
):
    ckpt = _broken_weights(tmp_path / "run" / "checkpoints" / "last.ckpt")
    if command == "train-pretrained":
        _broken_pretrained(ckpt)
    run, out = tmp_path / "run", tmp_path / "new"
    argv = {
        "import": ["import", str(ckpt), "--from", "octvideo", "--model", "i3d_r18"],
        "train-pretrained": ["train", "--cfg", "oct_i3d_synth.yaml"],
        "train-resume": ["train", "--cfg", "oct_i3d_synth.yaml", "--resume", "auto"],
    }.get(command)
    if argv is None:
        argv = _given_as_checkpoint(command, ckpt)
    elif command == "import":
        argv += ["--out", str(tmp_path / "o.ckpt")]
    else:
        pretrained = {"model.pretrained": ckpt} if command == "train-pretrained" else {}
        argv += [
            "--out",
            str(out if pretrained else run),
            *tiny_overrides(tiny_synth, **pretrained),
        ]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    name = command.split("-")[0]
    refused = (
        f"checkpoint {str(ckpt)!r}: weight model.stem.weight holds 1 NaN and 1 infinite value; "
        "the checkpoint is broken (a diverged run, or a damaged file): use an earlier checkpoint "
        "of the run, or get the file again"
    )
    if command == "train-pretrained":  # what to do about a file that is there, not "put it there"
        refused = (
            f"model.pretrained={ckpt} (octvideo): "
            f"{refused.replace('model.stem.weight', 'stem.conv.conv_hh.weight')}; or set "
            "model.pretrained=PATH to other weights, or model.pretrained=null to start from "
            "random weights"
        )
    assert line == f"octvideo {name}: error: {refused}"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["predict", "export", "test"])
def test_every_command_refuses_a_negative_variance_in_one_line(tmp_path, command, capsys):
    # a damaged or edited file: BatchNorm divides by sqrt(var + eps), NaN in every logit
    ckpt = tmp_path / "last.ckpt"
    weights = {"model.stem.bn.high.running_var": torch.tensor([1.0, -1.0])}
    torch.save({"state_dict": weights, "global_step": 3}, ckpt)
    assert main(_given_as_checkpoint(command, ckpt)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo {command}: error: checkpoint {str(ckpt)!r}: weight "
        "model.stem.bn.high.running_var holds 1 negative variance; the checkpoint is broken (a "
        "damaged or edited file: no training writes a negative variance): use an earlier "
        "checkpoint of the run, or get the file again"
    )


@pytest.mark.parametrize(
    ("layout", "advice"),
    [
        ({"global_step": 3}, "use an earlier checkpoint of the run, or get the file again"),
        ({"hyper_parameters": {"meta": {"name": "run"}}}, "use an earlier checkpoint of the run"),
        (
            {"hyper_parameters": {"meta": {"source": {"from": "pytorchvideo", "file": "S.pyth"}}}},
            "get 'S.pyth' again and import it anew",
        ),
        ({"hyper_parameters": {"meta": {"source": {"file": 3}}}}, "get the source file again"),
        ({}, "the checkpoint is broken (a diverged run, or a damaged file): get the file again"),
    ],
)
def test_broken_weights_advice_fits_where_the_file_came_from(layout, advice):
    """A training run has earlier checkpoints; an imported file names its source; a zoo file
    or a plain state dict is got again."""
    weights = {"stem.weight": torch.tensor([1.0, float("nan")])}
    with pytest.raises(CheckpointError) as err:
        check_weight_values({"state_dict": weights, **layout} if layout else weights, "w.pt")
    assert str(err.value).startswith("checkpoint 'w.pt': weight stem.weight holds 1 NaN; the ")
    assert advice in str(err.value)


@pytest.mark.parametrize(("payload", "kind"), [(torch.zeros(3), "Tensor"), ([1, 2], "list")])
def test_a_file_holding_no_dict_is_not_a_checkpoint(tmp_path, payload, kind):
    path = tmp_path / "x.ckpt"
    torch.save(payload, path)
    with pytest.raises(UsageError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {str(path)!r} holds a {kind}, not the dict of weights that checkpoints and "
        "state dicts are; pass a checkpoint written by 'octvideo train' or 'octvideo import'"
    )
    assert last_good(path) == (
        f"{path} cannot be loaded (checkpoint {str(path)!r} holds a {kind}, not the dict of "
        "weights that checkpoints and state dicts are; pass a checkpoint written by 'octvideo "
        "train' (a run's checkpoints/last.ckpt))"
    )


@pytest.mark.parametrize("wants", sorted(WANTED))
def test_a_refusal_advises_the_file_its_caller_asks_for(tmp_path, wants):
    """import --from pytorchvideo advises a zoo .pyth, resume a run's checkpoint, ...: never an
    octvideo run's file to a caller that wants weights from elsewhere."""
    listed = tmp_path / "list.pyth"
    torch.save([1, 2], listed)
    video = _write(tmp_path / "clip.pyth", b"\x00\x00\x00\x18ftypisom")
    cut = tmp_path / "cut.pyth"
    torch.save({"w": torch.zeros(1000)}, cut)
    cut.write_bytes(cut.read_bytes()[:3000])
    for path in (listed, video, cut):
        with pytest.raises(UsageError) as err:
            load_checkpoint(path, wants=wants)
        assert str(err.value).endswith(f"; pass {WANTED[wants]}")
        assert "\n" not in str(err.value)
    assert WANTED["pytorchvideo"] == (
        "a PyTorchVideo model-zoo checkpoint (a .pyth, weights under 'model_state')"
    )


def test_octvideo_test_refuses_a_tensor_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "x.ckpt"
    torch.save(torch.zeros(3), path)
    assert main(["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("octvideo test: error: checkpoint ") and "holds a Tensor" in line


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _foreign_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:  # a zip of something else: no data.pkl
        archive.writestr("notes/readme.txt", "not weights")
    return path


def _cut_short(path: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    return _write(path, path.read_bytes()[:3000])


def _damaged_pickle(path: Path) -> Path:
    """A torch archive whose data.pkl is overwritten: its zip directory is whole."""
    torch.save({"state_dict": {"w": torch.zeros(10)}}, path.with_suffix(".good"))
    with (
        zipfile.ZipFile(path.with_suffix(".good")) as src,
        zipfile.ZipFile(path, "w") as out,
    ):
        for member in src.infolist():
            data = src.read(member)
            out.writestr(member, b"\xff" * len(data) if member.filename.endswith(".pkl") else data)
    return path


# every file a person can give as a checkpoint by mistake, and the words that say what it is
BAD_FILES = {
    "empty": (lambda d: _write(d / "x.ckpt", b""), "is an empty file"),
    "cut-short-zip": (lambda d: _cut_short(d / "x.ckpt"), "is a damaged zip archive"),
    "cut-short-legacy": (
        lambda d: _write(d / "x.ckpt", b"\x80\x02}q\x00"),
        "ends before its data does: a checkpoint cut short",
    ),
    "damaged": (lambda d: _damaged_pickle(d / "x.ckpt"), "is damaged: its data cannot be read"),
    "foreign-zip": (lambda d: _foreign_zip(d / "x.ckpt"), "is a zip archive but not a torch"),
    "text": (lambda d: _write(d / "x.ckpt", b"model: i3d_r50\n"), "is not a torch checkpoint"),
    "os-system": (
        lambda d: _write(d / "x.ckpt", pickle.dumps(_System(d / "pwned"), protocol=2)),
        "holds objects other than tensors and plain values (posix.system)",
    ),
    "pathlib": (
        lambda d: torch.save({"state_dict": {}, "obj": Path("x")}, d / "x.ckpt"),
        "holds objects other than tensors and plain values (pathlib.",
    ),
    "numpy": (
        lambda d: _write(d / "x.ckpt", torch.zeros(1).numpy().dumps()),
        "holds objects other than tensors and plain values (numpy.",
    ),
    "directory": (lambda d: (d / "x.ckpt").mkdir(), "is a directory, not a checkpoint file"),
}
# what a reader should never have to decode: torch's and pickle's names, and torch's advice
LIBRARY_WORDS = (
    "weights_only",
    "Error",
    "Unpickl",
    "Re-running",
    "trusted source",
    "add_safe_globals",
    "enforce fail",
    "hasRecord",
    "WeightsUnpickler",
)


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_file_that_is_no_checkpoint_is_one_plain_line_naming_it(tmp_path, kind):
    make, cause = BAD_FILES[kind]
    make(tmp_path)
    path = tmp_path / "x.ckpt"
    with pytest.raises(UsageError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {str(path)!r} {cause}"), message
    assert "\n" not in message
    assert not any(word in message for word in LIBRARY_WORDS), message
    advice = "give the path of the checkpoint file" if kind == "directory" else WANTED["octvideo"]
    assert message.endswith(advice)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "command", ["predict", "export", "test", "import", "train-resume", "train-pretrained"]
)
@pytest.mark.parametrize("kind", ["empty", "foreign-zip", "damaged"])
def test_every_command_words_a_bad_checkpoint_file_alike(
    tmp_path, tiny_synth, command, kind, capsys
):
    make, cause = BAD_FILES[kind]
    make(tmp_path)
    ckpt = tmp_path / "x.ckpt"
    train = ["train", "--cfg", "oct_i3d_synth.yaml", "--out", str(tmp_path / "run")]
    argv = {
        "import": ["import", str(ckpt), "--from", "octvideo", "--model", "i3d_r18"]
        + ["--out", str(tmp_path / "o.ckpt")],
        "train-resume": [*train, "--resume", str(ckpt), *tiny_overrides(tiny_synth)],
        "train-pretrained": [*train, *tiny_overrides(tiny_synth, **{"model.pretrained": ckpt})],
    }.get(command) or _given_as_checkpoint(command, ckpt)
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"octvideo {command.split('-')[0]}: error: ")
    assert f"checkpoint {str(ckpt)!r} {cause}" in line, line
    assert not any(word in line for word in LIBRARY_WORDS), line
    assert not (tmp_path / "run").exists() and not (tmp_path / "o.ckpt").exists()


@pytest.mark.parametrize(
    "data",
    [b"garbage" * 10, b"\x00\x00\x00\x18ftypisom", pickle.dumps([1, 2, 3], protocol=4)],
    ids=["garbage", "mp4", "pickle"],
)
def test_a_file_that_is_no_torch_checkpoint_says_so_before_it_is_unpickled(tmp_path, data):
    path = _write(tmp_path / "x.ckpt", data)
    with pytest.raises(UsageError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {str(path)!r} is not a torch checkpoint: neither the zip archive torch.save "
        "writes nor its legacy format (a video or another file given as the checkpoint?); pass "
        "a checkpoint written by 'octvideo train' or 'octvideo import'"
    )


def test_a_directory_is_not_a_checkpoint_file(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(UsageError, match=r"is a directory, not a checkpoint file"):
        load_checkpoint(folder)
    assert main(["test", "--cfg", "oct_i3d_synth.yaml", "--ckpt", f"{folder}/"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {str(folder)!r} is a directory, not a checkpoint file" in err
    assert "does not exist" not in err


@pytest.mark.parametrize("kind", NO_FILES)
def test_a_checkpoint_path_that_is_no_file_is_named_as_what_it_is(tmp_path, kind):
    path = tmp_path / "x.ckpt"
    words = make_no_file(path, kind)
    expected = (
        f"checkpoint {str(path)!r} {words}, not a checkpoint file; give the path of the "
        "checkpoint file"
    )
    with pytest.raises(UsageError) as info:
        load_checkpoint(path)
    assert str(info.value) == expected  # never "does not exist", and a pipe is never opened
    with pytest.raises(UsageError) as info:
        load_pytorchvideo_checkpoint(create_model("c2d_r18"), path)
    assert str(info.value) == expected


@pytest.mark.parametrize("command", ["predict", "export", "test", "import"])
def test_every_command_names_a_pipe_given_as_its_checkpoint(tmp_path, command, capsys):
    path = tmp_path / "x.ckpt"
    make_no_file(path, "pipe")
    argv = (
        [
            "import",
            str(path),
            "--from",
            "octvideo",
            "--model",
            "c2d_r18",
            "--out",
            str(tmp_path / "o.ckpt"),
        ]
        if command == "import"
        else _given_as_checkpoint(command, path)
    )
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"checkpoint {str(path)!r} is a pipe, not a checkpoint file" in line


# -- checkpoint archives -----------------------------------------------------------------------


def _check(path):
    with path.open("rb") as fh:
        check_torch_archive(fh, path)
        assert fh.tell() == 0


def test_a_checkpoint_torch_wrote_passes(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "meta": {"classes": ["a"] * 100}}, path)
    _check(path)


def test_a_file_that_is_no_zip_is_left_to_torch(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    _check(path)


def test_a_compressed_member_is_refused_before_it_is_read(tmp_path):
    path = inflating(tmp_path / "bomb.ckpt", mib=64)
    assert path.stat().st_size < 2**20  # 64 MiB of tensor in well under 1 MiB
    with pytest.raises(UsageError) as info:
        _check(path)
    message = str(info.value)
    assert message.startswith(f"checkpoint {str(path)!r} is refused before loading: its member ")
    assert "data/0 is compressed (64.0 MiB inflated from a 0.1 MiB file)" in message
    assert "\n" not in message


def test_a_member_declaring_more_than_the_file_is_refused(tmp_path):
    path = declaring(tmp_path / "big.ckpt", 0xF0000000)
    with pytest.raises(UsageError, match=r"data/0 declares 3840\.0 MiB, more than the whole file"):
        _check(path)


def test_members_sharing_their_bytes_are_refused(tmp_path):
    path = sharing(tmp_path / "shared.ckpt", copies=8)
    with pytest.raises(UsageError, match=r"its members declare 0\.6 MiB together, more than"):
        _check(path)


def test_a_pickle_larger_than_any_checkpoint_metadata_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "meta.ckpt"
    torch.save({f"key{i}": i for i in range(2000)}, path)
    monkeypatch.setattr(checkpoint_module, "MAX_PICKLE_BYTES", 4096)
    with pytest.raises(UsageError, match=r"its pickle \S+data\.pkl is 0\.0 MiB, more than a"):
        _check(path)


def test_a_checkpoint_cut_short_is_a_damaged_archive(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(UsageError, match=r"is a damaged zip archive: a checkpoint cut short"):
        _check(path)
    assert not zipfile.is_zipfile(path)
