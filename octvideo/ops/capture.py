"""Graph capture: whether ``torch.jit.trace``, ``torch.jit.script`` or ``torch.compile`` is
recording the ops being run, and the check of its input's (T, H, W) that an octave layer records in
a trace (``guard_traced_size``).

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049). An octave layer derives
sizes from its input (the low group's ``ceil(high_size / octave)``, the crop of an upsampled odd
size), and a trace fixes them to its example's.

Three predicates, narrowest first:

- ``tracing()``: ``torch.jit.trace`` alone; the layers' input checks step aside.
- ``scripting_or_tracing()``: TorchScript either way; what it records must not depend on the grad
  mode, and holds no Python autograd Function.
- ``capturing()``: either, or ``torch.compile``; eager-only shortcuts step aside.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def scripting_or_tracing() -> bool:
    """Whether ``torch.jit.trace`` or ``torch.jit.script`` is recording the ops being run: they
    cannot hold a Python autograd Function, and a trace's check reruns it under ``no_grad``, so
    what they record must not depend on the grad mode."""
    return torch.jit.is_tracing() or torch.jit.is_scripting()


def tracing() -> bool:
    """Whether ``torch.jit.trace`` is recording: the layers' input checks step aside. A traced
    shape is tensors, so each comparison in a check would be one more TracerWarning, and a trace
    records no Python branch, so a check would guard the example input alone; eager calls run
    them all. What a trace keeps of the example's size is guarded by ``guard_traced_size``."""
    return torch.jit.is_tracing()


def capturing() -> bool:
    """Whether tracing, scripting or ``torch.compile`` is recording the ops being run: eager-only
    shortcuts step aside so that the captured graph holds the plain layers."""
    return scripting_or_tracing() or torch.compiler.is_compiling()


def _size_check(x: Tensor, name: str, traced: list[int], advice: str) -> Tensor:
    """Refuses ``x`` unless its (T, H, W) is ``traced``; TorchScript, scripted by
    ``_scripted_size_check``, so that a trace records the comparison and the raise."""
    got = x.shape[-3:]
    if got != traced:
        size = "x".join([str(n) for n in traced])
        raise ValueError(
            f"{name} was traced at (T, H, W) {size} and takes that size only (any batch), got "
            f"{'x'.join([str(n) for n in got])}: {advice}"
        )
    return x


def script_quietly(fn: Callable[..., Any]) -> torch.jit.ScriptFunction:
    """``torch.jit.script(fn)`` without torch 2.14's "`torch.jit.script` is deprecated" warning:
    octvideo scripts only the small checks a trace records, which stay supported as traced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
        return torch.jit.script(fn)


@functools.cache
def _scripted_size_check() -> torch.jit.ScriptFunction:
    """``_size_check`` scripted, on the first trace: importing ops scripts nothing."""
    return script_quietly(_size_check)


_TRACE_AGAIN = (
    "a traced octave model keeps the sizes its example gave each layer (odd-size rounding, "
    "upsample crops); trace it again with a clip of the size it will take"
)


def guard_traced_size(x: Tensor, name: str, advice: str = _TRACE_AGAIN) -> Tensor:
    """Under ``torch.jit.trace``, records in the trace a check that ``x`` keeps the (T, H, W) it
    has now, and returns ``x`` through it; elsewhere returns ``x`` as it is, at no cost.

    A trace fixes every branch the layers take on sizes (pooling an axis shorter than its
    factor, cropping an upsampled odd size, the channels-last path's one-frame views), so a
    traced model fed another size would stop in some later layer with a message about tensor
    sizes, or give other logits. The check runs when the traced model runs, batch free; the
    message names ``name``, the traced size, the given one and ``advice``. ``torch.onnx.export``
    records none (its exporter cannot convert the raise): an ONNX graph's inputs have fixed
    sizes, which ONNX Runtime checks itself.

    Raises:
        ValueError (as ``torch.jit.Error`` from the traced model): another (T, H, W).
    """
    if not tracing() or torch.onnx.is_in_onnx_export():
        return x
    return _scripted_size_check()(x, name, list(x.shape[-3:]), advice)
