"""``octvideo export``: the exported file reproduces the checkpoint's logits; it never writes over
its checkpoint or any file that is not an earlier export, and refuses outputs it cannot write with
one line before loading the checkpoint;
on a real full disk and onto a symbolic link: one line, no temporary file, an earlier export and
the link's target as they were. TorchScript's own file writer aborted the whole process on a full
disk (``c10::Error``) and left its temporary file."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from octvideo.cli import main
from octvideo.errors import UsageError
from octvideo.inference import Predictor
from octvideo.inference.export import (
    SUFFIX,
    default_output,
    example_clip,
    export,
    logit_gap,
    run_exported,
)
from tests.failing_writes import fail_output
from tests.small_disk import fill, small_disk


def _earlier_export(out: Path, fmt: str) -> bytes:
    """The files an earlier export left, in small: a TorchScript archive holding a model's code,
    or the start of an ONNX graph that PyTorch produced, and the preprocessing file beside it."""
    if fmt == "torchscript":
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as f:
            f.writestr("m/code/__torch__/m.py", "")
        out.write_bytes(archive.getvalue())
    else:
        out.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x062.14.1")
    notes = {"input_layout": "(B, 3, T, S, S) float32, RGB", "protocol": {}, "classes": []}
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(notes))
    return out.read_bytes()


@pytest.mark.parametrize(("fmt", "name"), [("torchscript", "m.pt"), ("onnx", "m.onnx")])
def test_a_real_full_disk_is_one_line_and_keeps_the_earlier_export(
    request, checkpoint, tmp_path, capsys, fmt, name
):
    disk = small_disk(request, tmp_path / "disk")
    out = disk / name
    earlier = _earlier_export(out, fmt)
    fill(disk, leave=8192)
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"octvideo export: stopped: cannot write {out} (No space left on device); the earlier "
        f"{name} and {name}.json are kept; free space there or choose another folder"
    )
    assert out.read_bytes() == earlier
    assert sorted(os.listdir(disk)) == ["ballast", name, f"{name}.json"]  # no temporary file


@pytest.mark.parametrize(
    ("how", "reason"), [("write", "No space left on device"), ("rename", "Operation not permitted")]
)
def test_a_preprocessing_file_that_cannot_be_written_keeps_the_earlier_pair(
    checkpoint, tmp_path, capsys, monkeypatch, how, reason
):
    # the model was renamed in place before its preprocessing file was written: a full disk or
    # an append-only earlier .json left the new model beside another model's class names
    out = tmp_path / "m.pt"
    notes = out.with_name("m.pt.json")
    earlier = (_earlier_export(out, "torchscript"), notes.read_bytes())
    fail_output(monkeypatch, how, notes)
    args = ["export", "--ckpt", str(checkpoint), "--format", "torchscript", "--out", str(out)]
    assert main(args) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"octvideo export: stopped: cannot write {notes} ({reason}); the earlier m.pt and "
        "m.pt.json are kept; "
    )
    assert (out.read_bytes(), notes.read_bytes()) == earlier
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "m.pt.json"]  # no temporary, no backup


@pytest.mark.parametrize("sidecar", [False, True], ids=["model", "sidecar"])
def test_out_onto_a_symbolic_link_is_refused_and_its_target_kept(
    checkpoint, tmp_path, capsys, sidecar
):
    target = tmp_path / "precious.onnx"
    target.write_bytes(b"keep")
    out = tmp_path / "m.onnx"
    link = out.with_name("m.onnx.json") if sidecar else out
    link.symlink_to(target)
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 2
    named = f"--out {out}: its preprocessing file {link}" if sidecar else f"--out {link}"
    assert capsys.readouterr().err == (
        f"octvideo export: error: {named} is a symbolic link to {target}; give the real path or "
        "remove the link\n"
    )
    assert target.read_bytes() == b"keep" and link.is_symlink()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_checkpoint(checkpoint, tmp_path, fmt, capsys):
    out = tmp_path / "new" / f"model.{fmt}"  # its folder made by the write
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    predictor = Predictor.from_checkpoint(checkpoint)
    clip = example_clip(predictor.protocol, 3, seed=7)  # a batch size the export never saw
    with torch.no_grad():
        expected = predictor.model(clip).numpy()
    got = run_exported(out, fmt, (clip,))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    notes = json.loads(out.with_suffix(out.suffix + ".json").read_text())
    assert notes["classes"] == predictor.classes
    assert notes["protocol"]["num_frames"] == 4 and notes["protocol"]["test_crop_size"] == 32


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_export_refuses_a_clip_of_another_size(checkpoint, tmp_path, fmt):
    """The octave layers' odd-size handling is fixed for the export's clip size: another size
    gave other logits (3 frames) or a tensor-size error in a later layer (33x33). TorchScript
    refuses it naming the export's size and the clip's; ONNX Runtime, the input's dimensions."""
    out = tmp_path / ("model.pt" if fmt == "torchscript" else "model.onnx")
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 0
    clip = torch.randn(2, 3, 3, 33, 33)
    if fmt == "onnx":
        with pytest.raises(Exception, match="invalid dimensions for input: clip") as caught:
            run_exported(out, fmt, (clip,))
        assert "index: 2 Got: 3 Expected: 4" in str(caught.value)
        return
    with pytest.raises(torch.jit.Error) as caught:
        run_exported(out, fmt, (clip,))
    assert (
        "ValueError: the exported model's clip input was traced at (T, H, W) 4x32x32 and takes "
        "that size only (any batch), got 3x33x33: prepare clips as the .json file beside the "
        "model says (frames, crop)" in str(caught.value)
    )


def test_an_export_refuses_a_clip_without_its_batch_axis_or_not_float32(checkpoint, tmp_path):
    """A clip without its batch axis, raw uint8 frames or float64 got torch's own error from the
    first convolution ("Expected 5-dimensional input ...", "expected scalar type Byte ...")."""
    out = tmp_path / "model.pt"
    assert (
        main(["export", "--ckpt", str(checkpoint), "--format", "torchscript", "--out", str(out)])
        == 0
    )
    clip = torch.randn(1, 3, 4, 32, 32)
    advice = (
        "prepare clips as the .json file beside the model says: normalised float32, with a batch "
        "axis first (clip[None] for one clip)"
    )
    for bad, got in [
        (clip[0], "float32 (3, 4, 32, 32)"),
        ((clip * 50).clamp(0, 255).to(torch.uint8), "uint8 (1, 3, 4, 32, 32)"),
        (clip.double(), "float64 (1, 3, 4, 32, 32)"),
    ]:
        with pytest.raises(torch.jit.Error) as caught:
            run_exported(out, "torchscript", (bad,))
        assert (
            f"ValueError: the exported model's clip input takes float32 clips (B, 3, 4, 32, 32), "
            f"got {got}: {advice}" in str(caught.value)
        )


def _rule(text: str, **names: float) -> int:
    """A formula of the preprocessing file, as a deployment evaluates it (integer arithmetic but
    for the stride); "... for k in 0 .. n" is evaluated for the one k in ``names``."""
    import math

    functions = {"floor": math.floor, "round_half_even": lambda x: int(np.rint(x))}
    functions |= {"min": min, "max": max}
    return eval(text.split(" for ")[0], {"__builtins__": {}}, functions | names)  # noqa: S307


def _deploy(notes: dict, model: Path, video: Path) -> np.ndarray:
    """Class probabilities of ``video`` computed from the exported ``model`` and its preprocessing
    file alone: PyAV frames, then each rule of ``notes``."""
    import av
    import torch.nn.functional as F

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    clip, protocol = notes["clip"], notes["protocol"]
    n, height, width = frames.shape[:3]
    names = {"N": n, "fps": fps, "num_frames": clip["num_frames"]}
    names |= {"sampling_rate": protocol["sampling_rate"], "target_fps": protocol["target_fps"]}
    names["stride"] = eval(clip["stride"], {"__builtins__": {}}, names)  # noqa: S307
    names["span"] = _rule(clip["span"], **names)
    names["start"] = _rule(clip["start"], **names)
    index = [_rule(clip["frame_index"], k=k, **names) for k in range(clip["num_frames"])]
    video_ = torch.from_numpy(frames[index]).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    resize, crop = notes["resize"], notes["crop"]
    assert resize["dtype"] == "uint8" and resize["interpolation"] == "bilinear"
    short, long = min(height, width), max(height, width)
    long_side = _rule(resize["long_side"], short=short, long=long)
    size = (resize["short_side"], long_side) if height <= width else (long_side, short)
    video_ = F.interpolate(
        video_,
        size=size,
        mode="bilinear",
        align_corners=resize["align_corners"],
        antialias=resize["antialias"],
    )  # uint8 in, uint8 out
    height, width = video_.shape[-2:]
    left = _rule(crop["left"], width=width, height=height)
    top = _rule(crop["top"], width=width, height=height)
    video_ = video_[..., top : top + crop["size"], left : left + crop["size"]].float() / 255
    norm = notes["normalise"]
    mean, std = torch.tensor(norm["mean"])[:, None, None], torch.tensor(norm["std"])[:, None, None]
    x = ((video_ - mean) / std).permute(1, 0, 2, 3)[None].contiguous()  # (1, 3, T, S, S)
    logits = run_exported(model, "onnx", (x,))
    return torch.from_numpy(logits).softmax(-1)[0].numpy()


def test_the_preprocessing_file_alone_gives_predicts_probabilities(tmp_path):
    """A deployment following the .json got other probabilities (up to 0.03 apart): it said
    "crop the centre" (torchvision's center_crop rounds the offset, predict floors it), not where
    the clip starts, and "x fps / 10 frames, rounded" (predict rounds each offset). A 16:9 H.264
    video at 24 fps, short side 38 (67 - 32 = 35: floor 17, round 18), data.target_fps 10
    (offsets 0, 4.8, 9.6, 14.4)."""
    from dataclasses import replace

    from octvideo.engine.checkpoint import atomic_save
    from octvideo.network import build_network
    from tests.conftest import META
    from tests.inference.media_helpers import encode

    clip = replace(META.clip, test_short_side=38, target_fps=10.0, mean=(0.4, 0.5, 0.6))
    meta = replace(META, clip=clip)
    torch.manual_seed(0)
    state = {f"model.{k}": v for k, v in build_network(meta.model).state_dict().items()}
    ckpt = tmp_path / "fps.ckpt"
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta.to_dict()}}, ckpt)
    video = encode(tmp_path / "wide.mp4", 30, rate=24, height=54, width=96)
    out = tmp_path / "m.onnx"
    notes = export(ckpt, "onnx", out).preprocessing
    notes = json.loads(notes.read_text())
    assert notes["format_version"] == 2
    assert notes["crop"]["left"] == "floor((width - 32) / 2)"
    result = Predictor.from_checkpoint(ckpt).predict(video, decoder="pyav")
    np.testing.assert_allclose(_deploy(notes, out, video), result.video.probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("frames", "alpha"), [(24, 8), (8, 2), (32, 8), (64, 4), (9, 3)])
def test_the_preprocessing_file_states_predicts_slow_pathway_and_views(frames, alpha):
    """The slow pathway's frames were "evenly spaced": predict truncates them (24 frames at
    alpha 8: 0, 11, 23, not 0, 12, 23). The test views' clip starts, as test computes them."""
    from octvideo.checkpoint_meta import ClipProtocol
    from octvideo.data.sampling import clip_window, uniform_clip_starts
    from octvideo.data.transforms import pack_pathways
    from octvideo.inference.export import preprocessing

    protocol = ClipProtocol(frames, 2, 32, 32, test_num_clips=3, slowfast_alpha=alpha)
    notes = preprocessing(protocol, ["a"], ["slow", "fast"])
    clip = torch.arange(frames).view(1, frames, 1, 1).expand(3, frames, 1, 1)
    slow = pack_pathways(clip, alpha)[0][0, :, 0, 0].tolist()
    assert notes["slow_pathway"]["clip_frames"] == slow
    assert f"frames {slow} of the clip" in notes["steps"][-1]
    views = notes["views"]["multi"]
    for n in (1, 20, 100, 101):
        names = {"N": n, "span": clip_window(frames, 2), "num_clips": 3}
        starts = [_rule(views["clip_start"], i=i, **names) for i in range(3)]
        assert starts == uniform_clip_starts(n, frames, 2, 3)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_export_named_with_bytes_not_utf8_is_made_and_checked(checkpoint, tmp_path, fmt):
    """torch.jit.load and onnxruntime take a path only as UTF-8 text: the check of the written
    model failed with a TypeError after the export was made, for a --out so named and for the
    default one of a checkpoint so named."""
    ckpt = tmp_path / os.fsdecode(b"c\xff.ckpt")
    shutil.copy(checkpoint, ckpt)
    named = tmp_path / os.fsdecode(b"m\xfe" + SUFFIX[fmt].encode())
    for out in (named, None):
        result = export(ckpt, fmt, out)
        assert result.path == (named if out is not None else default_output(ckpt, fmt))
        assert result.max_abs_diff < 1e-3 and result.preprocessing.is_file()
    clip = example_clip(Predictor.from_checkpoint(ckpt).protocol, 2)
    assert np.array_equal(
        run_exported(named, fmt, (clip,)), run_exported(result.path, fmt, (clip,))
    )


def test_export_rejects_unknown_format(checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--ckpt", str(checkpoint), "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_the_export_check_scales_with_the_logits():
    small = np.array([[0.5, -0.25]], dtype=np.float32)
    assert logit_gap(small + 5e-5, small, 1e-4)[1] == 1e-4  # logits below 1: absolute 1e-4
    diff, allowed = logit_gap(small + 2e-4, small, 1e-4)
    assert diff > allowed
    large = np.array([[2800.0, -1600.0]], dtype=np.float32)  # an untrained SlowFast's logits
    diff, allowed = logit_gap(large + 9.8e-4, large, 1e-4)  # float32 rounding at this size
    assert diff <= allowed == pytest.approx(0.28)


@pytest.fixture
def pt_checkpoint(checkpoint, tmp_path):
    """The tiny checkpoint under a name ending in .pt, like TorchScript's old default output."""
    path = tmp_path / "model.pt"
    shutil.copy(checkpoint, path)
    return path


def test_default_output_is_beside_and_never_the_checkpoint(pt_checkpoint, capsys):
    before = pt_checkpoint.read_bytes()
    assert main(["export", "--ckpt", str(pt_checkpoint), "--format", "torchscript"]) == 0
    out = pt_checkpoint.with_name("model.torchscript.pt")
    assert f"wrote {out} " in capsys.readouterr().out
    assert pt_checkpoint.read_bytes() == before
    assert sorted(p.name for p in pt_checkpoint.parent.iterdir()) == [
        "model.pt",
        "model.torchscript.pt",
        "model.torchscript.pt.json",
    ]


@pytest.mark.parametrize("spelling", ["same", "dotdot"])
def test_out_onto_the_checkpoint_is_refused(pt_checkpoint, capsys, spelling):
    before = pt_checkpoint.read_bytes()
    (pt_checkpoint.parent / "sub").mkdir()
    out = pt_checkpoint if spelling == "same" else pt_checkpoint.parent / "sub" / ".." / "model.pt"
    code = main(
        ["export", "--ckpt", str(pt_checkpoint), "--format", "torchscript", "--out", str(out)]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out} is the checkpoint {pt_checkpoint}: writing it "
        f"would destroy it; choose another path\n"
    )
    assert pt_checkpoint.read_bytes() == before


def test_a_default_output_onto_the_checkpoint_says_it_is_the_default(checkpoint, capsys):
    # a checkpoint named model.onnx: the default ONNX output is the checkpoint itself
    ckpt = checkpoint.parent / "model.onnx"
    ckpt.write_bytes(checkpoint.read_bytes())
    assert main(["export", "--ckpt", str(ckpt), "--format", "onnx"]) == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: the default --out {ckpt} is the checkpoint {ckpt}: writing it "
        "would destroy it; choose another path\n"
    )


def test_outputs_that_cannot_be_written_are_one_line_errors(checkpoint, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    some_dir = tmp_path / "some_dir"
    some_dir.mkdir()
    cases = {
        f"{a_file}/m.pt": f"--out {a_file}/m.pt: {a_file} is a file, not a folder; choose "
        f"another path",
        "/proc/m.pt": "--out /proc/m.pt: cannot write in /proc (No such file or directory); "
        "choose another path",
        str(some_dir): f"--out {some_dir} is a folder; give a file name",
    }
    for out, message in cases.items():
        args = ["export", "--ckpt", str(checkpoint), "--format", "torchscript", "--out", out]
        assert main(args) == 2, out
        assert capsys.readouterr().err == f"octvideo export: error: {message}\n"
    assert a_file.read_text() == "kept"
    assert list(some_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("onnx", "last.ckpt"),
        ("torchscript", "config.yaml"),
        ("torchscript", "clip.mp4"),
        ("onnx", "model.pt"),
        ("torchscript", "model.onnx"),
    ],
)
def test_out_must_end_in_the_format_extension(checkpoint, tmp_path, capsys, fmt, name):
    # any name was taken: an ONNX graph replaced the run's last.ckpt, its config or a video
    out = tmp_path / name
    out.write_text("kept")
    assert main(["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]) == 2
    extension = ".onnx" if fmt == "onnx" else ".pt or .torchscript"
    default = checkpoint.stem + (".onnx" if fmt == "onnx" else ".torchscript.pt")
    title = "an ONNX" if fmt == "onnx" else "a TorchScript"
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out}: {title} export is written to a {extension} "
        f"file; give such a name (default: {default})\n"
    )
    assert out.read_text() == "kept"


def test_an_empty_out_and_a_sidecar_in_the_way_name_what_the_user_gave(
    checkpoint, tmp_path, capsys
):
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", ""]) == 2
    assert capsys.readouterr().err == (
        "octvideo export: error: --out is empty; give a file name, or no --out for the default\n"
    )
    # not beside the checkpoint, where another test leaves a checkpoint named model.onnx
    out = tmp_path / "model.onnx"
    sidecar = tmp_path / "model.onnx.json"
    sidecar.mkdir()
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out}: its preprocessing file {sidecar} is a folder; give "
        "a file name\n"
    )


def test_a_torchscript_export_prints_no_torch_deprecation_warning(checkpoint, tmp_path, recwarn):
    assert main(["export", "--ckpt", str(checkpoint), "--format", "torchscript"]) == 0
    assert not [w for w in recwarn if "torch.jit" in str(w.message)]


def _tiny_checkpoint(
    path: Path, scale: dict[str, float], source: dict[str, str] | None = None
) -> Path:
    """The tiny test network's checkpoint (``META``) with the named weights multiplied (by
    ``float("nan")``, ``inf`` or a huge number), saved at ``path``; with ``source``, an
    import's (its metadata names the file imported)."""
    from octvideo.engine.checkpoint import atomic_save
    from octvideo.network import build_network
    from tests.conftest import META

    state = {f"model.{k}": v for k, v in build_network(META.model).state_dict().items()}
    for key, factor in scale.items():
        state[f"model.{key}"] *= factor
    meta = META.to_dict() if source is None else {**META.to_dict(), "source": source}
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta}}, path)
    return path


def test_a_checkpoint_whose_weights_hold_nan_is_refused_before_exporting(tmp_path, capsys):
    inf, nan = float("inf"), float("nan")
    path = _tiny_checkpoint(
        tmp_path / "diverged.ckpt", {"res4.0.bn_a.high.running_var": inf, "head.fc.weight": nan}
    )
    out = tmp_path / "new" / "m.onnx"  # a refused export makes no folder either
    assert main(["export", "--ckpt", str(path), "--format", "onnx", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"octvideo export: error: checkpoint {str(path)!r}: weight "
        "model.res4.0.bn_a.high.running_var holds 24 infinite values (and 1 more tensor); the "
        "checkpoint is broken"
    )
    assert sorted(os.listdir(tmp_path)) == ["diverged.ckpt"]


@pytest.mark.parametrize(
    ("source", "advice"),
    [
        (None, "use an earlier checkpoint of the run, or get the file again"),
        (
            {"from": "pytorchvideo", "file": "SLOW_8x8_R50.pyth", "sha256": "0" * 64},
            "get 'SLOW_8x8_R50.pyth' again and import it anew",  # no run to go back to
        ),
    ],
    ids=["run", "import"],
)
def test_a_checkpoint_whose_logits_overflow_is_named_so_and_nothing_written(
    tmp_path, capsys, source, advice
):
    """Finite weights so large that float32 activations overflow: NaN logits, which the
    comparison with the export would only report as a difference of nan."""
    path = _tiny_checkpoint(
        tmp_path / "overflowing.ckpt",
        {"stem.conv.conv_hh.weight": 1e25, "res2.0.conv_a.conv_hh.weight": 1e25},
        source,
    )
    out = tmp_path / "new" / "m.pt"
    assert main(["export", "--ckpt", str(path), "--format", "torchscript", "--out", str(out)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        r"octvideo export: error: the checkpoint's own model gives \d+ NaN and \d+ infinite "
        r"logits of 6 on random clips \(weights so large that its activations overflow "
        r"float32: a diverged run\?\): nothing exported; " + re.escape(advice),
        line,
    ), line
    assert sorted(os.listdir(tmp_path)) == ["overflowing.ckpt"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_existing_output_is_replaced_only_when_it_is_an_earlier_export(
    checkpoint, tmp_path, capsys, fmt
):
    # a user's model.pt (another project's weights) or model.onnx was replaced without a word
    out = tmp_path / ("model.pt" if fmt == "torchscript" else "model.onnx")
    notes = out.with_suffix(out.suffix + ".json")
    args = ["export", "--ckpt", str(checkpoint), "--format", fmt, "--out", str(out)]
    for _ in range(2):  # an earlier export is replaced
        assert main(args) == 0
    capsys.readouterr()
    if fmt == "torchscript":
        torch.save({"weights": torch.ones(2)}, out)  # a zip too, without a model's code
    else:
        out.write_bytes(b"\x08\x07\x12\x08skl2onnx")  # a graph another tool produced
    theirs = out.read_bytes()
    title = "TorchScript" if fmt == "torchscript" else "ONNX"
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out} exists and is not an earlier {title} export (a "
        f"model octvideo export wrote, with {notes.name} beside it): writing it would destroy it; "
        "choose another path or remove it\n"
    )
    assert out.read_bytes() == theirs
    out.unlink()
    notes.write_text('{"todo": "call alice"}')  # a user's file where the preprocessing goes
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"octvideo export: error: --out {out}: its preprocessing file {notes} exists and is not "
        "the preprocessing file of an earlier export: writing it would destroy it; choose "
        "another path or remove it\n"
    )
    assert notes.read_text() == '{"todo": "call alice"}' and not out.exists()


@pytest.mark.parametrize("kind", ["user model", "user notes", "read-only"])
def test_the_export_function_replaces_only_an_earlier_writable_export(checkpoint, tmp_path, kind):
    # the Python API as the CLI: export() replaced a user's model.onnx, or the JSON beside it
    out = tmp_path / "model.onnx"
    notes = out.with_suffix(".onnx.json")
    if kind == "user model":
        out.write_bytes(b"\x08\x07\x12\x08skl2onnx")
        kept, message = (
            out,
            (
                f"--out {out} exists and is not an earlier ONNX export (a model octvideo export "
                f"wrote, with {notes.name} beside it): writing it would destroy it; choose another "
                "path or remove it"
            ),
        )
    elif kind == "user notes":
        notes.write_text('{"todo": "call alice"}')
        kept, message = (
            notes,
            (
                f"--out {out}: its preprocessing file {notes} exists and is not the preprocessing "
                "file of an earlier export: writing it would destroy it; choose another path or "
                "remove it"
            ),
        )
    else:
        export(checkpoint, "onnx", out)
        out.chmod(0o444)  # its owner keeps this one
        kept, message = (
            out,
            (
                f"--out {out} is read-only: make it writable (chmod u+w) to replace it, or choose "
                "another path"
            ),
        )
    before, listed = kept.read_bytes(), sorted(os.listdir(tmp_path))
    with pytest.raises(UsageError) as caught:
        export(checkpoint, "onnx", out)
    assert str(caught.value) == message
    assert kept.read_bytes() == before and sorted(os.listdir(tmp_path)) == listed


def _odd_size_checkpoint(path: Path) -> Path:
    """A tiny Oct-I3D (alpha 0.5) checkpoint for 5-frame, 33-pixel clips: odd sizes at which
    the octave layers crop a low group to ceil(high / 2) (``octvideo.ops.pair.low_size``)."""
    from octvideo.engine.checkpoint import atomic_save
    from octvideo.network import build_network
    from tests.conftest import META

    meta = replace(
        META,
        model=replace(META.model, name="i3d_r18", alpha=0.5),
        clip=replace(META.clip, num_frames=5, test_short_side=33, test_crop_size=33),
    )
    torch.manual_seed(0)
    state = {f"model.{k}": v for k, v in build_network(meta.model).state_dict().items()}
    atomic_save({"state_dict": state, "hyper_parameters": {"meta": meta.to_dict()}}, path)
    return path


def test_an_onnx_export_at_odd_sizes_runs_and_matches_the_checkpoint(tmp_path, capsys):
    """At 5 frames and 33 pixels the ONNX graph cropped a 9-wide group's low group to 4, not
    5: torch.onnx records a traced size's ``-(-n // 2)`` as a truncating division, and ONNX
    Runtime refused the graph at its own size (broadcast 4 by 5 in res3.0's conv_a)."""
    ckpt = _odd_size_checkpoint(tmp_path / "odd.ckpt")
    out = tmp_path / "odd.onnx"
    assert main(["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    predictor = Predictor.from_checkpoint(ckpt)
    clip = example_clip(predictor.protocol, 3, seed=7)
    assert clip.shape == (3, 3, 5, 33, 33)
    with torch.no_grad():
        expected = predictor.model(clip).numpy()
    np.testing.assert_allclose(run_exported(out, "onnx", (clip,)), expected, rtol=0, atol=1e-5)


def test_onnx_runtime_refusing_the_exported_graph_is_one_line_and_writes_nothing(
    checkpoint, tmp_path, capsys, monkeypatch
):
    """An ONNX Runtime error in the export's own check of its file was a traceback."""
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def refuse(*args, **kwargs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code\n  broadcast 4 by 5")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    out = tmp_path / "new" / "m.onnx"
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "octvideo export: error: ONNX Runtime cannot run the graph exported at (T, H, W) "
        "4x32x32 ([ONNXRuntimeError] : 1 : FAIL : Non-zero status code): nothing written to "
        f"{out}; export with --format torchscript, which traces any clip size the checkpoint "
        "takes\n"
    )
    assert os.listdir(tmp_path) == []


def test_a_model_torch_cannot_write_as_onnx_is_one_line_and_writes_nothing(
    checkpoint, tmp_path, capsys, monkeypatch
):
    """torch.onnx's own refusal (a node ONNX cannot hold, such as a kernel size taken from a
    traced size) was a traceback of the exporter's internals."""

    def refuse(*args, **kwargs):
        raise torch.onnx.errors.OnnxExporterError("Failed to export a node\n  details")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    out = tmp_path / "new" / "m.onnx"
    assert main(["export", "--ckpt", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "octvideo export: error: torch.onnx cannot export the model at (T, H, W) 4x32x32 (Failed "
        f"to export a node): nothing written to {out}; export with --format torchscript, which "
        "traces any clip size the checkpoint takes\n"
    )
    assert os.listdir(tmp_path) == []
