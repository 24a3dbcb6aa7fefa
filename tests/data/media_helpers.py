"""Helpers of the data tests: encoding test videos with PyAV, and running ``octvideo data``
commands that must refuse their arguments.

Frame ``i`` of every generated video is a flat grey of level ``level(i) = 12 + 10 * i`` with a small
dark square in one corner (so it is not a trivial stream), which lets a test read back which frame
it got from any decoder and through any transform that keeps the mean.
"""

from __future__ import annotations

import contextlib
import fractions
import os
import resource
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from octvideo.data import DataConfig
from octvideo.data.annotations import VideoRecord

NUM_FRAMES = 24
SHORT_FRAMES = 5


def level(i: int) -> int:
    """Grey level of frame ``i``."""
    return 12 + 10 * i


def frame_index(mean_level: float) -> int:
    """The frame index whose grey level is nearest ``mean_level``."""
    return round((mean_level - 12) / 10)


def make_frames(n: int, height: int, width: int) -> np.ndarray:
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i] = level(i)
        frames[i, :4, :4] = 0
    return frames


def encode(
    path: Path,
    codec: str,
    n: int = NUM_FRAMES,
    height: int = 64,
    width: int = 96,
    pix_fmt: str = "yuv420p",
    pts_ms: list[int] | None = None,
) -> Path:
    """Encode test frames with PyAV; ``pts_ms`` gives variable frame timestamps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, array in enumerate(make_frames(n, height, width)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


GOOD = ("h264.mp4", "mpeg4.avi", "mjpeg.avi", "vp9.webm", "odd.mkv", "vfr.mp4")
BAD = ("truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4")


def data_error(capsys, command: str, *args: str) -> str:
    """Run ``octvideo data COMMAND ARGS -q``; assert exit status 2 and return its one stderr
    line."""
    from octvideo.cli import main

    capsys.readouterr()
    assert main(["data", command, *args, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def data_stopped(capsys, command: str, *args: str) -> str:
    """Run ``octvideo data COMMAND ARGS -q``; assert exit status 1 (a run stopped by a fault
    outside the code) and return its one stderr line."""
    from octvideo.cli import main

    capsys.readouterr()
    assert main(["data", command, *args, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def small_config(**overrides) -> DataConfig:
    """Tiny clips, identity normalisation so pixel values map back to frame indices."""
    base = dict(
        num_frames=4,
        sampling_rate=3,
        train_jitter_scales=(40, 48),
        train_crop_size=32,
        val_crop_size=32,
        test_short_side=36,
        test_crop_size=32,
        test_num_clips=3,
        test_num_crops=3,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        batch_size=4,
        num_workers=0,
        decoder="auto",
        max_retries=5,
    )
    base.update(overrides)
    return DataConfig(**base)


def records(media: dict[str, Path], names: Sequence[str]) -> list[VideoRecord]:
    """One record per test video name, labelled by its position."""
    return [VideoRecord(str(media[n]), i) for i, n in enumerate(names)]


def raw_tree(tmp_path: Path, media: dict[str, Path], files: dict[str, str]) -> Path:
    """``tmp_path/raw`` with ``files`` (relative path -> test video name) copied in."""
    src = tmp_path / "raw"
    for rel, name in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(media[name], src / rel)
    return src


def split_tree(tmp_path: Path, media: dict[str, Path]) -> Path:
    """``my/train/{jump,walk}/`` and ``my/val/{jump,walk}/``, one video each, distinct names."""
    root = tmp_path / "my"
    for split in ("train", "val"):
        for cls in ("jump", "walk"):
            (root / split / cls).mkdir(parents=True)
            shutil.copy(media["h264.mp4"], root / split / cls / f"{split}_{cls}.mp4")
    return root


def encode_b_frames(path: Path, codec: str, n: int = NUM_FRAMES, b_frames: int = 2) -> Path:
    """Encode test frames with up to ``b_frames`` B-frames between reference frames (Xvid and
    DivX files have them in MPEG-4 Part 2; x264 in H.264), which the decoder has to reorder."""
    with av.open(str(path), "w") as container:
        options = {"bf": str(b_frames)}
        if codec == "libx264":  # else x264 leaves B-frames out of frames this plain
            options["x264-params"] = "b-adapt=0"
        stream = container.add_stream(codec, rate=12, options=options)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.bit_rate = 4_000_000  # MPEG-4's default rate blurs neighbouring grey levels
        for array in make_frames(n, 64, 96):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())
    return path


def turned_pattern(height: int = 64, width: int = 96) -> np.ndarray:
    """A frame whose every turn and mirror differs: red grows to the right, green downwards."""
    array = np.zeros((height, width, 3), np.uint8)
    array[..., 0] = np.linspace(20, 235, width, dtype=np.uint8)[None, :]
    array[..., 1] = np.linspace(20, 235, height, dtype=np.uint8)[:, None]
    array[..., 2] = 128
    return array


# (a, b, c, d) of a display matrix (x' = a x + c y, y' = b x + d y), and the displayed frame of a
# stored one, written out independently of the code under test
TURNS = {
    "upright": ((1, 0, 0, 1), lambda f: f),
    "90": ((0, 1, -1, 0), lambda f: np.rot90(f, -1)),  # clockwise: a phone shot upright
    "180": ((-1, 0, 0, -1), lambda f: np.rot90(f, 2)),
    "270": ((0, -1, 1, 0), lambda f: np.rot90(f, 1)),
    "mirror": ((-1, 0, 0, 1), lambda f: f[:, ::-1]),  # decord alone turned this 180 degrees
    "flip": ((1, 0, 0, -1), lambda f: f[::-1]),  # decord alone left this as stored
    "transpose": ((0, 1, 1, 0), lambda f: f.transpose(1, 0, 2)),
    "antitranspose": ((0, -1, -1, 0), lambda f: np.rot90(f, 2).transpose(1, 0, 2)),
}


def encode_turned(path: Path, turn: tuple[int, int, int, int] | None, n: int = 6) -> Path:
    """``n`` H.264 frames of ``turned_pattern`` (96x64 stored) with a display matrix whose
    rotation-and-mirror part is ``turn`` = (a, b, c, d), in units of 1 (x' = a x + c y,
    y' = b x + d y, FFmpeg's layout), as a phone writes one for a video shot upright; None
    writes no matrix."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "4"}
        if turn is not None:
            a, b, c, d = (65536 * v for v in turn)
            stream.set_display_matrix([a, b, 0, c, d, 0, 0, 0, 1 << 30])
        for _ in range(n):
            frame = av.VideoFrame.from_ndarray(turned_pattern(), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


COVER_LEVEL = 250  # the cover picture's grey, frame 24's: never one of the movie's 24 frames


def _add_cover(container: av.container.OutputContainer) -> None:
    """A white picture muxed into ``container`` as a cover (an attached picture: one frame)."""
    cover = container.add_stream("mjpeg", rate=1)
    cover.width, cover.height, cover.pix_fmt = 96, 64, "yuvj420p"
    cover.disposition = av.stream.Disposition.attached_pic
    picture = np.full((64, 96, 3), COVER_LEVEL, np.uint8)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
    for packet in [*cover.encode(frame), *cover.encode()]:
        container.mux(packet)


def with_cover(path: Path, turned: bool = False) -> Path:
    """An MP4 of the test frames (H.264 with B-frames, 12 fps; with ``turned``, a display matrix
    of 90 degrees clockwise) and a cover picture, which FFmpeg's MP4 muxer stores as artwork in
    the metadata box (``moov/udta``) after the movie's track."""
    with av.open(str(path), "w") as container:
        movie = container.add_stream("libx264", rate=12, options={"bf": "2"})
        movie.width, movie.height, movie.pix_fmt = 96, 64, "yuv420p"
        if turned:
            movie.set_display_matrix([0, 1 << 16, 0, -1 << 16, 0, 0, 0, 0, 1 << 30])
        _add_cover(container)
        for array in make_frames(NUM_FRAMES, 64, 96):
            container.mux(movie.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(movie.encode())
    return path


def cover_first(source: Path, path: Path) -> Path:
    """``source`` (an MP4 with a cover, ``with_cover``) with its metadata box moved before the
    movie's track, so that FFmpeg reads the cover as video stream 0, as in a file whose muxer
    wrote its artwork first. The media data lies before ``moov``: no offset changes."""
    data = bytearray(source.read_bytes())
    at = data.index(b"moov") - 4
    end = at + int.from_bytes(data[at : at + 4], "big")
    boxes, box = [], at + 8
    while box < end:
        size = int.from_bytes(data[box : box + 4], "big")
        boxes.append(bytes(data[box : box + size]))
        box += size
    boxes.sort(key=lambda b: b[4:8] not in (b"mvhd", b"udta"))  # mvhd, udta, then the tracks
    data[at + 8 : end] = b"".join(boxes)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:  # the layout this helper is for
        first = container.streams.video[0]
        assert first.disposition & av.stream.Disposition.attached_pic
    return path


def cover_only(path: Path) -> Path:
    """A music file: AAC audio and a cover picture, no other video."""
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=48000)
        _add_cover(container)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, 1024 * i
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


@contextlib.contextmanager
def no_free_files() -> Iterator[None]:
    """Inside, this process can open no more files (EMFILE): its soft open-file limit is lowered
    to a few past the files it holds, and those few are taken."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = len(os.listdir("/proc/self/fd"))
    taken: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 16, hard))
    try:
        with contextlib.suppress(OSError):
            while len(taken) < 64:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def cut_recordings_in(root: Path) -> dict[str, Path]:
    """An MP4 whose index (moov box) follows its frames, as a camera writes it, cut: inside its
    index before the sample descriptions (PyAV finds a video stream without a codec) and at 10, 50
    and 90 % of its bytes (before the index: FFmpeg finds none)."""
    whole = root / "whole.mp4"
    with av.open(str(whole), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(40):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 5, np.uint8), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    data = whole.read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")  # the index last
    cuts = {"in_index": data.index(b"stsd") - 4}
    cuts.update({f"at_{p}": len(data) * p // 100 for p in (10, 50, 90)})
    files = {}
    for name, size in cuts.items():
        files[name] = root / f"{name}.mp4"
        files[name].write_bytes(data[:size])
    return files


def ffmpeg_fails(monkeypatch, code: int) -> None:
    """Makes PyAV's open fail with FFmpeg's error AVERROR(``code``)."""

    def fail(*args, **kwargs):
        av.error.err_check(-code, args[0])

    monkeypatch.setattr(av, "open", fail)
