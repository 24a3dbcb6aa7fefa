"""tools/bench_layouts.py: each case runs in its layout, and one tiny run end to end."""

from __future__ import annotations

import pytest

from octvideo.models import create_model
from octvideo.ops import is_channels_last


def test_case_puts_weights_and_clips_in_its_layout(load_tool) -> None:
    tool = load_tool("bench_layouts")
    args = tool.parse_args(["--model", "i3d_r18", "--frames", "4", "--size", "32"])
    model = create_model("i3d_r18", alpha=0.5, num_classes=400, width=4)
    stem = next(p for p in model.parameters() if p.dim() == 5)
    for name, layout in tool.LAYOUTS.items():
        case = tool.Case(model, layout, args)
        want = name == "channels-last"
        assert is_channels_last(stem) is want
        assert is_channels_last(case.infer_clip) is want
        assert is_channels_last(case.train_clip) is want
        assert case.infer_clip.shape == (1, 3, 4, 32, 32) and case.labels.shape == (2,)


def test_tiny_run_reports_both_layouts_and_ratios(load_tool, capsys, tmp_path) -> None:
    tool = load_tool("bench_layouts")
    out = tmp_path / "bench.md"
    argv = "--model i3d_r18 --alphas 0.5 0 --frames 4 --size 32 --repeats 2 --threads 2"
    assert tool.main([*argv.split(), "--append", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(f"\n`python tools/bench_layouts.py {argv} --append {out}`")
    assert printed.strip() in text and "cpu float32, threads 2" in printed
    rows = [ln for ln in printed.splitlines() if ln.startswith("| 0")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in rows]
    assert [(c[0], c[1]) for c in cells] == [
        ("0.5", "contiguous"),
        ("0.5", "channels-last"),
        ("0.0", "contiguous"),
        ("0.0", "channels-last"),
    ]
    for contiguous, last in (cells[0:2], cells[2:4]):
        # the ratio is of unrounded medians; the printed times are rounded to 0.1 ms
        assert float(last[4]) == pytest.approx(float(last[2]) / float(contiguous[2]), rel=0.05)
        assert contiguous[4:] == ["", ""] and float(last[5]) > 0
    for alpha in ("0.5", "0.0"):  # each round's own ratio, per alpha and kind
        for kind in ("inference", "training step"):
            prefix = f"alpha {alpha}, channels-last / contiguous, {kind}, per round: median "
            line = next(ln for ln in printed.splitlines() if ln.startswith(prefix))
            assert line.endswith("over 2 rounds.")
