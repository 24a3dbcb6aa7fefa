"""Graph capture (``octvideo.ops.capture``): what each predicate answers in eager calls, under
``torch.jit.trace`` and under ``torch.compile``; a traced octave model refuses a clip of another
size, and gives eager's logits at its own."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from octvideo.models import create_model
from octvideo.ops.capture import capturing, guard_traced_size, scripting_or_tracing, tracing
from tests.ops.tensor_helpers import CL


def _answers() -> dict[str, bool]:
    return {
        "tracing": tracing(),
        "scripting_or_tracing": scripting_or_tracing(),
        "capturing": capturing(),
    }


def test_each_predicate_names_what_records_the_ops():
    """Eager: none; ``torch.jit.trace``: all three; ``torch.compile``: ``capturing`` alone."""
    seen: dict[str, dict[str, bool]] = {"eager": _answers()}

    def record(where: str):
        def fn(x: torch.Tensor) -> torch.Tensor:
            seen[where] = _answers()
            return x + 1

        return fn

    x = torch.zeros(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation
        torch.jit.trace(record("trace"), x, check_trace=False)
    torch.compile(record("compile"), backend="eager", fullgraph=True)(x)
    assert seen == {
        "eager": dict.fromkeys(("tracing", "scripting_or_tracing", "capturing"), False),
        "trace": dict.fromkeys(("tracing", "scripting_or_tracing", "capturing"), True),
        "compile": {"tracing": False, "scripting_or_tracing": False, "capturing": True},
    }


def _traced_i3d(fmt: torch.memory_format, size: tuple[int, int, int]):
    """An Oct-I3D-18 (width 8, alpha 0.25), and its trace on a clip of (T, H, W) ``size``, saved
    and loaded again."""
    torch.manual_seed(0)
    model = create_model("i3d_r18", num_classes=5, alpha=0.25, width=8, dropout=0.0)
    model = model.eval().to(memory_format=fmt)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings; torch.jit's deprecation
        example = torch.randn(1, 3, *size).contiguous(memory_format=fmt)
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), buffer)
        buffer.seek(0)
        return model, torch.jit.load(buffer)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("given", [(3, 32, 32), (4, 33, 33), (4, 40, 40), (4, 16, 16)])
def test_a_traced_octave_model_refuses_a_clip_of_another_size(fmt, given):
    """A trace fixes what the layers derive from the example's size (pooling an odd length,
    cropping an upsampled one, the channels-last path's frame views): at 3x32x32 a trace taken
    at 4x32x32 gave other logits, at 4x33x33 a tensor-size error in a later layer. Each octave
    layer records a check of its input's (T, H, W); the first, the stem, names the clip's."""
    _, traced = _traced_i3d(fmt, (4, 32, 32))
    clip = torch.randn(2, 3, *given).contiguous(memory_format=fmt)
    with pytest.raises(torch.jit.Error) as caught, torch.no_grad():
        traced(clip)
    got = "x".join(map(str, given))
    assert (
        f"ValueError: OctConv3d was traced at (T, H, W) 4x32x32 and takes that size only (any "
        f"batch), got {got}: a traced octave model keeps the sizes its example gave each layer "
        "(odd-size rounding, upsample crops); trace it again with a clip of the size it will "
        "take" in str(caught.value)
    )


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["contiguous", "channels_last"])
def test_a_traced_octave_model_gives_eager_logits_at_its_size_and_any_batch(fmt):
    model, traced = _traced_i3d(fmt, (3, 33, 33))
    clip = torch.randn(3, 3, 3, 33, 33).contiguous(memory_format=fmt)
    with torch.no_grad():
        torch.testing.assert_close(traced(clip), model(clip), rtol=1e-4, atol=1e-5)


def test_the_size_guard_is_the_input_itself_outside_a_trace():
    """Eager calls (and ``torch.compile``) pay one ``torch.jit.is_tracing`` per layer."""
    x = torch.randn(1, 2, 3, 5, 5)
    assert guard_traced_size(x, "OctConv3d") is x
