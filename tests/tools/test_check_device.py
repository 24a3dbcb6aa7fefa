"""tools/check_device.py: the float64 device check passes on equal paths and fails on unequal;
every option out of bounds is one line naming it, exit 2, before any model is built."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def tool(load_tool, monkeypatch):
    module = load_tool("check_device")
    # two small networks: an octave one with odd sizes, and the spatio-temporal octave
    monkeypatch.setattr(
        module, "CASES", [("c2d_r18", 0.25, (1, 2, 2)), ("i3d_r18", 0.5, (2, 2, 2))]
    )
    return module


def test_cpu_fast_path_passes(tool, capsys) -> None:
    assert tool.main(["--device", "cpu", "--size", "4", "19"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("float64, 4x19x19 clips, batch 2: cpu (channels-last)")
    assert [line.split()[:3] for line in out[1:]] == [
        ["ok", "c2d_r18", "alpha=0.25"],
        ["ok", "i3d_r18", "alpha=0.5"],
    ]


@pytest.mark.parametrize("which", ["inference", "training", "gradient", "nan"])
def test_a_difference_on_the_device_fails(tool, monkeypatch, capsys, which) -> None:
    run = tool._run

    def off_on_device(model, x, device, channels_last):
        infer, train, grads = run(model, x, device, channels_last)
        if channels_last:  # the device's run, not the CPU reference
            if which == "inference":
                infer = infer + 1e-6 * infer.abs().max()
            elif which == "training":
                train = train * (1 + 1e-6)
            elif which == "nan":
                name = sorted(grads)[-1]
                bad = grads[name].flatten().clone()
                bad[0] = torch.nan
                grads = {**grads, name: bad.reshape(grads[name].shape)}
            else:
                name = sorted(grads)[-1]
                grads = {**grads, name: grads[name] + 1e-6 * grads[name].abs().max()}
        return infer, train, grads

    monkeypatch.setattr(tool, "_run", off_on_device)
    assert tool.main(["--device", "cpu", "--size", "4", "19"]) == 1
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 2 and all(line.startswith("FAIL") for line in lines)


def test_missing_cuda_is_a_clear_error(tool, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as err:
        tool.main(["--device", "cuda"])
    assert err.value.code == 2
    assert "--device cuda: this torch sees no CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["--device", "nan"], "argument --device: 'nan': give cpu, cuda or cuda:N"),
        (["--device", "cuda:x"], "argument --device: 'cuda:x': give cpu, cuda or cuda:N"),
        (
            ["--device", "cpu", "--size", "1000000000", "1000000000"],
            "argument --size: FRAMES 1000000000: give 4 to 64 frames (--size 64 256)",
        ),
        (
            ["--device", "cpu", "--size", "8", "1000000000"],
            "argument --size: SIDE 1000000000: give 19 to 256 pixels (--size 8 256)",
        ),
        (["--size", "0", "0"], "argument --size: FRAMES 0: give 4 to 64 frames (--size 4 19)"),
        (["--size", "4", "3"], "argument --size: SIDE 3: give 19 to 256 pixels (--size 4 19)"),
        (["--size", "4", "x"], "argument --size: 'x' is not a whole number"),
        (["--rtol", "nan"], "argument --rtol: 'nan' is not a number"),
        (["--rtol", "-1"], "argument --rtol: '-1': give a relative difference from 0 to 1"),
        (["--rtol", "2"], "argument --rtol: '2': give a relative difference from 0 to 1"),
        (["--rtol", "1e400"], "argument --rtol: '1e400' is past the largest number a float"),
    ],
)
def test_every_option_out_of_bounds_is_one_line_before_any_work(
    tool, monkeypatch, capsys, argv, refusal
) -> None:
    def no_work(*args):
        raise AssertionError("a model was built")

    monkeypatch.setattr(tool, "check", no_work)
    with pytest.raises(SystemExit) as err:
        tool.main(argv)
    assert err.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"tools/check_device.py: error: {refusal}"), line


def test_a_cuda_index_the_machine_lacks_is_named(tool, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SystemExit) as err:
        tool.main(["--device", "cuda:3"])
    assert err.value.code == 2
    assert capsys.readouterr().err == (
        "tools/check_device.py: error: --device cuda:3: this torch sees 1 CUDA device(s), "
        "cuda:0 to cuda:0\n"
    )


@pytest.mark.parametrize("argv", [["--rtol", "0"], ["--rtol", "1"], ["--size", "64", "256"]])
def test_the_bounds_themselves_are_accepted(tool, argv) -> None:
    args = tool.parse_args(["--device", "cpu", *argv])
    assert args.rtol in (0.0, 1.0, 1e-9) and args.size in ([4, 35], [64, 256], (4, 35))
