"""Measured cost of models side by side: saved-activation memory of a training step, and
inference and training-step calls to time interleaved (``octvideo.measure.timing``), as the
commands run them. The study (``octvideo sweep``) and ``tools/bench.py`` both time through here.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): Table 8 and its figure
set accuracy against the cost of each alpha; this module measures what the analytic counts
(``octvideo.models.cost``, ``octvideo.ops.cost``) predict.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from octvideo.measure.timing import RatioStats, ratio_stats, sync, time_interleaved
from octvideo.ops import fuse_for_inference, to_memory_format

__all__ = [
    "COMPILE_MODES",
    "DTYPES",
    "RatioStats",
    "StepTimer",
    "ratio_stats",
    "saved_activation_bytes",
    "time_interleaved",
]

COMPILE_MODES = ("none", "default", "max-autotune", "reduce-overhead")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def saved_activation_bytes(step: Callable[[], torch.Tensor], model: nn.Module | None = None) -> int:
    """Bytes of the unique storages autograd saves for backward in ``step``'s forward (which
    returns the loss), leaving out ``model``'s parameters and buffers: the activations a
    training step holds until its backward. The backward runs, so the graph is freed, and
    ``model``'s gradients are dropped."""
    weights: set[int] = set()
    if model is not None:
        weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    loss.backward()
    if model is not None:
        model.zero_grad(set_to_none=True)
    return sum(seen.values())


class StepTimer:
    """One model with a fixed inference clip and training batch, for timed calls.

    Each call returns once its work is done (on CUDA it waits for its kernels), so a clock read
    around it (``time_interleaved``) measures the call.

    Args:
        model: the network (moved to ``device``, ``dtype`` and ``memory_format``).
        infer_clip: input of one inference call.
        train_clip: input of one training step.
        memory_format: ``torch.channels_last_3d`` is the layout OctConv3d's fast path takes.
        device: where the model and clips run.
        dtype: the model's and the clips' floating-point type; None keeps the model's.
        compile: ``torch.compile`` mode (``COMPILE_MODES``); "none" runs eager.
    """

    def __init__(
        self,
        model: nn.Module,
        infer_clip: torch.Tensor | list[torch.Tensor],
        train_clip: torch.Tensor | list[torch.Tensor],
        *,
        memory_format: torch.memory_format = torch.contiguous_format,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        compile: str = "none",
    ) -> None:
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile {compile!r} is not one of {', '.join(COMPILE_MODES)}")
        self.device = torch.device(device)
        self.model = model.to(device=self.device, dtype=dtype, memory_format=memory_format)
        self.infer_clip = to_memory_format(_to(infer_clip, self.device, dtype), memory_format)
        self.train_clip = to_memory_format(_to(train_clip, self.device, dtype), memory_format)
        batch = (train_clip[0] if isinstance(train_clip, list) else train_clip).shape[0]
        self.labels = torch.zeros(batch, dtype=torch.long, device=self.device)
        # a tiny learning rate: the step does all its work, the weights barely move
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-6, momentum=0.9)
        self.compiled = compile != "none"
        self.forward: nn.Module = self.model
        if self.compiled:
            # static shapes: the training and inference batches differ, and a dynamic-shape
            # recompile of these networks fails in inductor (torch 2.14: "cannot determine truth
            # value of Relational")
            self.forward = torch.compile(  # type: ignore[assignment]
                self.model, mode=None if compile == "default" else compile, dynamic=False
            )
        self._fused: nn.Module | None = None

    def inference_model(self) -> nn.Module:
        """The model as the commands run inference: fused for inference
        (``fuse_for_inference``) from the current weights, fused again after a training step
        changed them; a compiled model runs as it is, in eval mode."""
        if self.compiled:
            self.model.eval()
            return self.forward
        if self._fused is None:
            self._fused = fuse_for_inference(self.model)
        return self._fused

    def loss(self) -> torch.Tensor:
        self.model.train()
        logits = self.forward(self.train_clip)
        return nn.functional.cross_entropy(logits.float(), self.labels)

    def infer(self) -> None:
        """One inference call on ``inference_model()``."""
        model = self.inference_model()
        with torch.inference_mode():
            model(self.infer_clip)
        sync(self.device)

    def train_step(self) -> None:
        """One training step: forward, loss, backward, SGD step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.loss().backward()
        self.optimizer.step()
        self._fused = None  # new weights
        sync(self.device)

    def saved_bytes(self) -> int:
        """Saved-activation bytes of one training step on ``train_clip``."""
        return saved_activation_bytes(self.loss, self.model)


def _to(
    clip: torch.Tensor | list[torch.Tensor], device: torch.device, dtype: torch.dtype | None
) -> torch.Tensor | list[torch.Tensor]:
    if isinstance(clip, list):
        return [c.to(device=device, dtype=dtype) for c in clip]
    return clip.to(device=device, dtype=dtype)
