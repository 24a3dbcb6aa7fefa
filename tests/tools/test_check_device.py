"""tools/check_device.py: the float64 device check passes on equal paths and fails on unequal."""

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
