"""Fixtures of the reliability tests: the bad-input matrix, made once per session with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.bad_input_matrix import EXPECTED, write_audio_only, write_video


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    good = write_video(root / "good.mp4")
    files = {}
    files["zero_byte.mp4"] = root / "zero_byte.mp4"
    files["zero_byte.mp4"].write_bytes(b"")
    whole = good.read_bytes()
    files["truncated.mp4"] = root / "truncated.mp4"
    files["truncated.mp4"].write_bytes(whole[: len(whole) // 3])
    files["not_video.mp4"] = root / "not_video.mp4"
    files["not_video.mp4"].write_bytes(b"\x89PNG not a video at all " * 200)
    files["audio_only.mp4"] = write_audio_only(root / "audio_only.mp4")
    files["one_frame.mp4"] = write_video(root / "one_frame.mp4", 1)
    files["wide_10000x10.mp4"] = write_video(root / "wide_10000x10.mp4", 3, height=10, width=10000)
    files["grayscale.mkv"] = write_video(
        root / "grayscale.mkv", codec="ffv1", pix_fmt="gray", in_format="gray"
    )
    # stored 96x64 and shown upright, 64 wide and 96 high (decord takes widths of 48 wrongly)
    rotated = root / "rotated.mp4"
    files["rotated.mp4"] = write_video(rotated, height=64, width=96, quarter_turns=1)
    marker = "TITLEMARKERTITLE"
    utf8 = write_video(root / "broken_utf8_meta.mp4", metadata={"title": marker})
    data = utf8.read_bytes()
    assert marker.encode() in data
    utf8.write_bytes(data.replace(marker.encode(), b"\xff\xfe\xc3\x28broken\xe2\x82\x28title"))
    files["broken_utf8_meta.mp4"] = utf8
    files["dir_named.mp4"] = root / "dir_named.mp4"
    files["dir_named.mp4"].mkdir()
    loop = root / "symlink_loop.mp4"
    os.symlink(loop.name, loop)
    files["symlink_loop.mp4"] = loop
    files["fifo.mp4"] = root / "fifo.mp4"
    os.mkfifo(files["fifo.mp4"])
    files["broken_link.mp4"] = root / "broken_link.mp4"
    os.symlink("moved_away.mp4", files["broken_link.mp4"])
    files["device_link.mp4"] = root / "device_link.mp4"
    os.symlink(os.devnull, files["device_link.mp4"])
    name = "spaces and ünïcødé 東京.mp4"
    files[name] = write_video(root / name)
    assert set(files) == set(EXPECTED)
    return files
