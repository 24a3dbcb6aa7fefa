"""``octvideo train`` and ``test`` on the command line: bad annotations are one line and exit
status 2, never a traceback; a stop after the run returned says that it finished."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from octvideo import cli
from octvideo.cli import run as cli_run


def tiny_run(tmp_path, train: str, val: str) -> list[str]:
    settings = {
        "model.num_classes": 2,
        "model.extra": "{width: 4}",
        "data.train_list": train,
        "data.val_list": val,
        "data.classes_file": tmp_path / "classes.txt",
        "data.num_frames": 4,
        "data.train_jitter_scales": "[32, 32]",
        "data.train_crop_size": 32,
        "data.val_crop_size": 32,
        "data.test_short_side": 32,
        "data.test_crop_size": 32,
        "data.batch_size": 2,
        "data.num_workers": 0,
        "trainer.max_epochs": 1,
        "trainer.progress_bar": False,
        "output.tensorboard": False,
    }
    overrides = [f"{k}={v}" for k, v in settings.items()]
    return ["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run"), *overrides]


def one_line_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


def test_train_reports_bad_annotations_in_one_line(tmp_path, media, capsys):
    shutil.copy(media["h264.mp4"], tmp_path / "a.mp4")
    (tmp_path / "classes.txt").write_text("jump\nwalk\n")
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "big.txt").write_text("a.mp4 0\nb.mp4 2\n")
    (tmp_path / "gone").mkdir()  # a class-folder root without class folders
    line = one_line_error(capsys, tiny_run(tmp_path, tmp_path / "big.txt", tmp_path / "train.txt"))
    assert line.startswith("octvideo train: error: ") and "label 2 is outside the 2 classes" in line
    line = one_line_error(capsys, tiny_run(tmp_path, tmp_path / "train.txt", tmp_path / "gone"))
    assert line == (
        f"octvideo train: error: data: {tmp_path / 'gone'} lists no video that exists; "
        "check the list's paths against data.root, or the class folders' videos against "
        "data.video_extensions"
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_after_the_run_returned_says_the_run_finished(
    tmp_path, monkeypatch, capsys, signum, status
):
    # "octvideo train: stopped by SIGTERM" alone, as if the run had not finished
    import torch

    from octvideo.engine.run import TrainResult

    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    torch.save({"global_step": 9}, ckpts / "last.ckpt")
    result = TrainResult(tmp_path / "run", ckpts / "last.ckpt", None, 9, {})
    monkeypatch.setattr(cli_run, "run_train", lambda *args, **kwargs: result)

    def stopped() -> bool:  # as the command writes its last lines
        os.kill(os.getpid(), signum)
        return True

    monkeypatch.setattr(cli_run, "_is_rank_zero", stopped)
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main(["train", "--cfg", "oct_i3d_synth", "--out", str(tmp_path / "run")]) == (
            status
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    cause = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"octvideo train: stopped by {cause} after the run finished at global step 9, its files "
        f"written: {ckpts / 'last.ckpt'} (global step 9) is kept"
    ]
