"""Deployment paths: every model runs under ``torch.compile`` and exports to ONNX (the legacy
TorchScript-tracing exporter, ``dynamo=False``: the pair type is a NamedTuple of tensors, which
tracing flattens) at alpha 0.1 and 0.5, with outputs equal to eager. `make test` runs one small
model; the full matrix is heavy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from octvideo.models import create_model, list_models

SMALL = "c2d_r18"


def _cases(light: tuple[float, ...] = (0.1, 0.5)) -> list[object]:
    return [
        pytest.param(
            name,
            alpha,
            id=f"{name}-a{alpha}",
            marks=[] if name == SMALL and alpha in light else [pytest.mark.heavy],
        )
        for name in list_models()
        for alpha in (0.1, 0.5)
    ]


def _inputs(model: torch.nn.Module) -> torch.Tensor | list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if hasattr(model, "slowfast_alpha"):
        return [
            torch.randn(1, 3, 2, 40, 40, generator=g),
            torch.randn(1, 3, 8, 40, 40, generator=g),
        ]
    return torch.randn(1, 3, 4, 40, 40, generator=g)


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


@pytest.mark.parametrize(("name", "alpha"), _cases())
def test_onnx_export_matches_eager(name: str, alpha: float, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = create_model(name, alpha=alpha, num_classes=5).eval()
    x = _inputs(model)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings of the legacy exporter
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tensors = x if isinstance(x, list) else [x]
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), tensors, strict=True)}
    got = torch.from_numpy(session.run(None, feeds)[0])
    with torch.no_grad():
        _close(got, model(x))


# Inductor on 2 CPU cores takes ~1.5 min per model: one case in `make test`.
@pytest.mark.parametrize(("name", "alpha"), _cases(light=(0.5,)))
def test_compile_matches_eager(name: str, alpha: float) -> None:
    model = create_model(name, alpha=alpha, num_classes=5).eval()
    x = _inputs(model)
    compiled = torch.compile(model)
    with torch.no_grad():
        _close(compiled(x), model(x))
