"""``octvideo data synth``: an output that is a file and an impossible frame size are one line."""

from __future__ import annotations

from tests.data.media_helpers import data_error


def synth_error(capsys, *args: str) -> str:
    return data_error(capsys, "synth", *args)


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "existing_file").write_text("keep me\n")
    line = synth_error(capsys, "--out", str(tmp_path / "existing_file"), "--num-train", "1")
    assert line == (
        f"octvideo data: error: --out {tmp_path / 'existing_file'} cannot be the output folder "
        "(it is a file); choose another --out"
    )
    assert (tmp_path / "existing_file").read_text() == "keep me\n"


def test_a_size_beyond_the_limit_is_refused_before_allocating(tmp_path, capsys):
    line = synth_error(capsys, "--out", str(tmp_path / "s"), "--size", "100000")
    assert line == (
        "octvideo data: error: --size must be at most 1024 (a synthetic clip of 100000x100000 "
        "pixels would need 447 GiB of memory), got 100000"
    )
    assert not (tmp_path / "s").exists()
