"""``tools/bench.py conv-views`` (octvideo.bench.conv_views): the 2D view it times is the same
convolution as the 3D one, forward and backward, a malformed case is refused by name, and its
rows on injected times."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import octvideo.bench.conv_views as conv_views
from octvideo.bench.cli import main


@pytest.fixture
def tool():
    return conv_views


def _to_5d(t: torch.Tensor, like: torch.Tensor, temporal_kernel: int) -> torch.Tensor:
    b, _, frames, h, w = like.shape
    if temporal_kernel == 1:  # (B*T, C, H, W)
        return t.reshape(b, frames, *t.shape[1:]).permute(0, 2, 1, 3, 4)
    return t.unflatten(3, (h, w))  # (B, C, T, H*W)


@pytest.mark.parametrize("kernel", [(3, 1, 1), (5, 1, 1), (1, 3, 3), (1, 1, 1)])
def test_view_is_the_3d_convolution(tool, kernel: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    views = tool._views((2, 6, 4, 5, 7, 3, *kernel))
    g3, x3, w3, p3 = views["3d"]
    g2, x2, w2, p2 = views["2d"]
    assert x2.data_ptr() == x3.data_ptr() and g2.data_ptr() == g3.data_ptr()  # free views
    y3 = F.conv3d(x3, w3, None, 1, p3)
    y2 = F.conv2d(x2, w2, None, 1, p2)
    torch.testing.assert_close(_to_5d(y2, x3, kernel[0]), y3, rtol=1e-5, atol=1e-5)
    mask = [True, True, False]
    gx3, gw3, _ = torch.ops.aten.convolution_backward(
        g3, x3, w3, None, [1] * 3, p3, [1] * 3, False, [0] * 3, 1, mask
    )
    gx2, gw2, _ = torch.ops.aten.convolution_backward(
        g2, x2, w2, None, [1] * 2, p2, [1] * 2, False, [0] * 2, 1, mask
    )
    torch.testing.assert_close(_to_5d(gx2, x3, kernel[0]), gx3, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw2.reshape(gw3.shape), gw3, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("1,2,3", "nine positive integers"),
        ("x", "nine positive integers"),  # int() refused it as "invalid _case value"
        ("2,8,4,8,8,4,3,1,1_0", "nine positive integers"),  # int() reads 10
        ("2,8,4,8,8,4,3,1,\u0661", "nine positive integers"),  # the Arabic-Indic 1
        ("2,8,4,8,8,0,3,1,1", "nine positive integers"),
        ("2,8,4,8,8,4,3,3,3", "k x 1 x 1 or 1 x k x k"),
        ("64,256,64,256,256,64,3,1,1", "over 268435456 elements"),  # a 68 GB input
    ],
)
def test_malformed_case_is_refused(case: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["conv-views", "--case", case])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("tools/bench.py conv-views: error: argument --case: ")
    assert message in line


def test_one_small_case_prints_its_row(capsys) -> None:
    assert main(["conv-views", "--case", "1,4,3,6,6,2,3,1,1", "--repeats", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1, 4")]
    assert len(rows) == 1 and rows[0].startswith("| 1, 4, 3, 6, 6 -> 2 | 3x1x1 |")
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    # the measured figures are numbers; their size is the machine's (a busy one printed 0.0)
    assert len(cells) == 9 and all(float(c) >= 0 for c in cells[2:])


def test_measure_takes_medians_of_interleaved_rounds(tool) -> None:
    # an injected clock (no real time is read): start 0, then the call's duration in ms / 1e3
    durations = [5.0, 9.0, 1.0, 7.0, 3.0, 8.0, 2.0, 6.0, 4.0, 10.0, 3.0, 5.0]
    readings = iter(v for d in durations for v in (0.0, d / 1e3))
    ms = tool.measure((1, 4, 3, 6, 6, 2, 3, 1, 1), repeats=3, timer=lambda: next(readings))
    # one call of each per round, forward 3D, backward 3D, forward 2D, backward 2D in the first
    # and third rounds, reversed in the second: forward 3D took 5, 6 and 4 ms, backward 3D 9, 2
    # and 10, forward 2D 1, 8 and 3, backward 2D 7, 3 and 5
    assert ms == pytest.approx(
        {"forward 3d": 5.0, "backward 3d": 9.0, "forward 2d": 3.0, "backward 2d": 5.0}
    )
    assert next(readings, None) is None  # the clock read twice a timed call, never in warm-up


def test_row_arithmetic_on_injected_times(tool, monkeypatch, capsys) -> None:
    case = (2, 256, 8, 56, 56, 64, 3, 1, 1)  # never run: measure is replaced
    times = {"forward 3d": 4.0, "forward 2d": 2.0, "backward 3d": 8.0, "backward 2d": 6.0}
    monkeypatch.setattr(tool, "measure", lambda c, repeats: times)
    assert main(["conv-views", "--case", ",".join(map(str, case)), "--repeats", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2, 256")]
    # 2 466 250 752 multiply-adds in the faster forward's 2 ms: 1233.1 G per second
    assert rows == [
        "| 2, 256, 8, 56, 56 -> 64 | 3x1x1 | 4.0 | 2.0 | 0.50 | 8.0 | 6.0 | 0.75 | 1233.1 |"
    ]


def test_macs_counts_the_convolution(tool) -> None:
    # B * T * H * W output positions, C_out * C_in * kT * kH * kW each
    assert tool.macs((2, 6, 4, 5, 7, 3, 3, 1, 1)) == 2 * 4 * 5 * 7 * 3 * 6 * 3
