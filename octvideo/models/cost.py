"""Parameter and multiply-add counts of the models, measured with fvcore.

Reference: Chen et al., "Drop an Octave", ICCV 2019, Table 8 reports GFLOPs as multiply-adds of
one 8 x 224 x 224 view. fvcore counts one multiply-add per MAC for convolutions, linear layers and
matrix products; the paper's figures match the convolution + classifier count (the Non-local
figures only fit without the attention products), so the attention products are reported apart.
fvcore is imported inside the function: ``import octvideo.models`` needs only torch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar

import torch
from torch import Tensor, nn

from octvideo.models.checks import check_whole
from octvideo.ops.meta import CannotRunOnMeta, meta_forward

_CONV_FC_OPS = ("aten::_convolution", "aten::linear", "aten::addmm", "aten::mm")
_ATTENTION_OPS = ("aten::matmul", "aten::bmm", "aten::einsum")
T = TypeVar("T")


def fvcore_nn() -> ModuleType:
    """``fvcore.nn``, imported without the FutureWarning its focal-loss module prints on import
    (it calls ``torch.jit.script``, which this torch deprecates) on every command that uses it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning
        )
        import fvcore.nn
    return fvcore.nn


@dataclass(frozen=True)
class ModelCost:
    """Cost of one view.

    Attributes:
        params: parameters.
        gflops: multiply-adds of convolutions and the classifier, in 1e9 (the paper's count).
        attention_gflops: multiply-adds of the Non-local attention products, in 1e9.
    """

    params: int
    gflops: float
    attention_gflops: float


def example_input(
    model: nn.Module,
    slow_frames: int,
    size: int,
    batch: int = 1,
    fill: Callable[..., torch.Tensor] = torch.zeros,
) -> torch.Tensor | list[torch.Tensor]:
    """A clip of ``batch`` x 3 x ``slow_frames`` x ``size`` x ``size`` for ``model``, made by
    ``fill`` (``torch.randn`` for timings) on the default device: a tensor, or the [slow, fast]
    list of a SlowFast model.

    ``slow_frames`` is the Slow pathway's length for SlowFast (the "8" of "8x8", a data section's
    ``slow_frames``); the Fast pathway gets ``slowfast_alpha`` times as many frames.
    """
    speed = getattr(model, "slowfast_alpha", None)
    slow = fill(batch, 3, slow_frames, size, size)
    return slow if speed is None else [slow, fill(batch, 3, slow_frames * speed, size, size)]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure_cost(model: nn.Module, slow_frames: int = 8, size: int = 224) -> ModelCost:
    """Counts one view of ``slow_frames`` x ``size`` x ``size`` (``example_input``).

    Args:
        model: the network, counted in eval mode.
        slow_frames: clip length; the Slow pathway's for SlowFast, whose Fast pathway gets
            ``slowfast_alpha`` times as many frames.
        size: spatial crop.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``slow_frames`` or ``size`` is not a whole number of 1 or more, or the
            model refuses the clip (``clip_cost``).
    """
    _check_model(model, "measure_cost")
    slow_frames, size = check_whole("slow_frames", slow_frames), check_whole("size", size)
    return clip_cost(model, example_input(model, slow_frames, size))


def clip_cost(model: nn.Module, clip: torch.Tensor | list[torch.Tensor]) -> ModelCost:
    """``measure_cost`` of one forward of ``clip`` (a tensor, or a SlowFast [slow, fast] list).

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``clip`` not a tensor or a list of them.
        ValueError, TypeError: what the model's own forward raises for ``clip`` (a clip of too
            few frames, of another channel count), in its one line (``_check_takes``).
    """
    _check_model(model, "clip_cost")
    by_op = _analysis(model, clip, lambda a: a.by_operator())
    logging.getLogger(__name__).debug("fvcore counts by operator: %s", by_op)
    conv_fc = sum(v for k, v in by_op.items() if _op_key(k) in _CONV_FC_OPS)
    attention = sum(v for k, v in by_op.items() if _op_key(k) in _ATTENTION_OPS)
    return ModelCost(count_params(model), conv_fc / 1e9, attention / 1e9)


def module_gflops(
    model: nn.Module, names: Sequence[str], slow_frames: int = 8, size: int = 224
) -> dict[str, float]:
    """Convolution and classifier multiply-adds (1e9, as ``measure_cost`` counts them) of one
    view (``example_input``) inside each named submodule (``"res2"``, ``"head"``, ...); 0 for one
    that runs none.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``names`` is one string.
        ValueError: as ``measure_cost``.
    """
    _check_model(model, "module_gflops")
    if isinstance(names, str):  # would count each of its letters
        raise TypeError(f"module_gflops takes a list of submodule names, got one string {names!r}")
    slow_frames, size = check_whole("slow_frames", slow_frames), check_whole("size", size)
    clip = example_input(model, slow_frames, size)
    by_module = _analysis(model, clip, lambda a: a.by_module_and_operator())
    return {
        n: sum(v for k, v in by_module.get(n, {}).items() if _op_key(k) in _CONV_FC_OPS) / 1e9
        for n in names
    }


def _analysis(
    model: nn.Module, clip: torch.Tensor | list[torch.Tensor], read: Callable[[object], T]
) -> T:
    """``read`` of fvcore's count of one forward of ``clip`` through ``model`` in eval mode.

    Autograd is off: a channels-last octave layer that records gradients runs as one autograd
    node, which the trace shows as an opaque Python op whose convolutions fvcore cannot count.
    The clip takes the model's parameter dtype and device (a bfloat16 model after a bf16-true
    run, a model on a GPU).
    """
    FlopCountAnalysis = fvcore_nn().FlopCountAnalysis  # noqa: N806 (a class)

    _check_clip(clip)
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is not None:
        to = {"device": param.device, "dtype": param.dtype}
        clip = [c.to(**to) for c in clip] if isinstance(clip, (list, tuple)) else clip.to(**to)
    was_training = model.training
    model.eval()
    try:
        _check_takes(model, clip)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches
            analysis = FlopCountAnalysis(model, (clip,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return read(analysis)
    finally:
        model.train(was_training)


def _check_model(model: object, who: str) -> None:
    """Refuses anything but an ``nn.Module`` (a model's name, a state dict) in one line."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{who} takes a network (nn.Module), got {type(model).__name__}; "
            f"octvideo.models.create_model(name) builds one"
        )


def _check_clip(clip: object) -> None:
    """Refuses a clip that is neither a tensor nor a list or tuple of them, in one line."""
    if isinstance(clip, Tensor):
        return
    if isinstance(clip, (list, tuple)) and clip and all(isinstance(c, Tensor) for c in clip):
        return
    raise TypeError(
        f"the clip to count must be a (B, C, T, H, W) tensor, or a SlowFast [slow, fast] list of "
        f"them (example_input makes one), got {type(clip).__name__}"
    )


def _check_takes(model: nn.Module, clip: Tensor | list[Tensor]) -> None:
    """Runs ``clip``'s shapes through ``model`` (in the mode it counts in) on the meta device
    (``meta_forward``: no memory, no arithmetic) before fvcore traces it: under
    ``torch.jit.trace`` the models skip their clip checks (a trace records no Python branch), so
    a clip one cannot take (too few frames for C2D's temporal pool) would stop inside the trace
    with torch's error and a long traceback. Here it is the model's own ValueError or TypeError,
    the line an eager forward gives. Anything else (a network the meta device cannot run:
    ``.item()``) is left to the trace, which runs it for real and raises what it raises."""
    meta = [c.to("meta") for c in clip] if isinstance(clip, (list, tuple)) else clip.to("meta")
    try:
        meta_forward(model, meta)  # a ValueError or TypeError is the model's: it goes up
    except (CannotRunOnMeta, RuntimeError, IndexError, AttributeError) as err:
        logging.getLogger(__name__).debug(
            "%s not checked on the meta device before counting: %s", type(model).__name__, err
        )


def _op_key(name: str) -> str:
    # fvcore reports operators by short name ("conv", "linear", "matmul") or by aten name.
    short = {
        "conv": "aten::_convolution",
        "linear": "aten::linear",
        "addmm": "aten::addmm",
        "mm": "aten::mm",
        "matmul": "aten::matmul",
        "bmm": "aten::bmm",
        "einsum": "aten::einsum",
    }
    return short.get(name, name)


def cost_table(
    names: Sequence[str],
    *,
    frames: int = 8,
    size: int = 224,
    alpha: float | Sequence[float] = 0.0,
    octave: Sequence[int] = (1, 2, 2),
) -> list[dict[str, object]]:
    """One row per model name: params, GFLOPs (conv + fc) and attention GFLOPs per view of
    ``frames`` (the Slow pathway's for SlowFast, as ``measure_cost`` counts them)."""
    from octvideo.models._registry import create_model

    if isinstance(names, str):  # would build a model per letter
        raise TypeError(f"cost_table takes a list of model names, got one string {names!r}")
    frames, size = check_whole("frames", frames), check_whole("size", size)
    rows = []
    for name in names:
        model = create_model(name, alpha=alpha, octave=octave)
        cost = measure_cost(model, frames, size)
        rows.append(
            {
                "model": name,
                "alpha": alpha,
                "octave": tuple(octave),
                "params_m": cost.params / 1e6,
                "gflops": cost.gflops,
                "attention_gflops": cost.attention_gflops,
            }
        )
    return rows
