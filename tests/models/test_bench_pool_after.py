"""tools/bench_pool_after.py: both variants it times compute the same layer, and its "chosen"
column is ``octconv.pools_after``'s choice."""

from __future__ import annotations

import pytest


@pytest.fixture
def tool(load_tool):
    return load_tool("bench_pool_after")


def test_table_rows_agree_and_name_the_choice(tool, capsys, monkeypatch) -> None:
    # small maps of the same channel counts: the table's arithmetic, not its timings
    monkeypatch.setattr(
        tool, "CASES", [(c_in, c_out, 2, 8, k) for c_in, c_out, _, _, k in tool.CASES]
    )
    assert tool.main(["--alpha", "0.1", "--repeats", "1", "--threads", "1"]) == 0
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "->" in line
    ]
    rows = rows[1:]  # the header names the columns
    assert len(rows) == len(tool.CASES)
    for row, (c_in, c_out, *_rest) in zip(rows, tool.CASES, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == f"{c_in} -> {c_out}"
        assert cells[7] == ("yes" if c_in >= 2 * c_out else "no"), row  # alpha 0.1: reductions
        assert float(cells[8]) < 1e-4, row
