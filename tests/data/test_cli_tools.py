"""``octvideo data check`` and ``octvideo data prepare``, called in-process."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from octvideo.cli import main
from octvideo.data import check as check_module
from octvideo.data import probe
from octvideo.data.annotations import kinetics_name
from octvideo.data.check import read_report


def test_check_lists_bad_files_and_survives_a_decoder_crash(tmp_path, media, monkeypatch):
    names = ["h264.mp4", "vp9.webm", "truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{media[n]} 0\n" for n in names))
    real = check_module.check_one

    def crash_on_vp9(path: str, decoder: str) -> str:
        if path.endswith("vp9.webm"):
            os.kill(os.getpid(), signal.SIGSEGV)  # what a decoder bug does to its process
        return real(path, decoder)

    monkeypatch.setattr(check_module, "check_one", crash_on_vp9)  # inherited by forked workers
    out = tmp_path / "bad.txt"
    status = main(["data", "check", str(tmp_path / "list.txt"), "--out", str(out), "-q"])
    assert status == 1
    bad = dict(read_report(out))
    assert set(bad) == {str(media[n]) for n in names[1:]}
    assert "exit code -11" in bad[str(media["vp9.webm"])]
    assert "DecodeError" in bad[str(media["zero.mp4"])]
    assert "FileNotFoundError" in bad[str(media["missing.mp4"])]


def test_prepare_rescales_resumes_and_writes_annotations(tmp_path, media):
    src = tmp_path / "raw"
    csv = ["label,youtube_id,time_start,time_end,split"]
    for i, (cls, name) in enumerate(
        [("abseiling", "odd.mkv"), ("zumba", "vp9.webm"), ("zumba", "text.mp4")]
    ):
        (src / "train").mkdir(parents=True, exist_ok=True)
        stem = kinetics_name(f"id{i}", 0, 10)
        shutil.copy(media[name], src / "train" / f"{stem}{os.path.splitext(name)[1]}")
        csv.append(f"{cls},id{i},0,10,train")
    csv.append("zumba,never,0,10,train")
    (tmp_path / "train.csv").write_text("\n".join(csv) + "\n")
    dst = tmp_path / "k400_320"
    args = [
        "data",
        "prepare",
        str(src),
        str(dst),
        "--short-side",
        "32",
        "--csv",
        str(tmp_path / "train.csv"),
        "-q",
    ]
    assert main(args) == 1  # text.mp4 failed
    [(failed, _)] = read_report(dst / "prepare_errors.jsonl")
    assert failed.endswith("id2_000000_000010.mp4")
    info = probe(dst / "train" / "id0_000000_000010.mp4")
    assert (info.num_frames, info.height, info.width) == (24, 32, 46)
    assert (dst / "classes.txt").read_text() == "abseiling\nzumba\n"
    assert (dst / "train.txt").read_text() == (
        "train/id0_000000_000010.mp4 0\ntrain/id1_000000_000010.mp4 1\n"
    )
    before = (dst / "train" / "id1_000000_000010.mp4").stat().st_mtime_ns
    assert main(args) == 1  # resumed: only the failing file is tried again
    assert (dst / "train" / "id1_000000_000010.mp4").stat().st_mtime_ns == before
    assert not list(dst.rglob("*.part.mp4"))


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "check", "--workers", "0", "list.txt"],
        ["data", "prepare", "--workers", "-2", "src", "dst"],
    ],
)
def test_worker_counts_below_one_are_refused_by_the_parser(argv, capsys):
    # they used to run with one worker as if nothing were wrong
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument --workers: {argv[3]!r}: give 1 or more" in capsys.readouterr().err
