"""Measured cost of models side by side: saved-activation memory of a training step, and
inference and training-step times taken interleaved, as ratios against a baseline model.

Reference: Chen et al., "Drop an Octave", ICCV 2019 (arXiv 1904.05049): Table 8 and its figure
set accuracy against the cost of each alpha; this module measures what the analytic counts
(``octvideo.models.cost``, ``octvideo.ops.cost``) predict.

Times are only comparable within one run: on a shared machine a median can move by 10% between
runs. ``time_interleaved`` therefore runs the models' calls back to back in rounds (alternating
the order), and ``ratio_stats`` takes each round's ratio against the baseline, so a slow spell of
the machine slows both sides of a ratio. The clock is a parameter, so tests inject their own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from octvideo.ops import fuse_for_inference, to_memory_format


def saved_activation_bytes(step: Callable[[], torch.Tensor], model: nn.Module) -> int:
    """Bytes of the unique storages autograd saves for backward in ``step``'s forward (which
    returns the loss), leaving out ``model``'s parameters and buffers: the activations a
    training step holds until its backward. The backward runs, so the graph is freed."""
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
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


class StepTimer:
    """One model with a fixed inference clip and training batch, for timed calls.

    Args:
        model: the network (moved to ``device`` and ``memory_format``).
        infer_clip: input of one inference call.
        train_clip: input of one training step.
        memory_format: ``torch.channels_last_3d`` is the layout OctConv3d's fast path takes.
        device: where the model and clips run; a call on CUDA waits for its kernels to finish.
    """

    def __init__(
        self,
        model: nn.Module,
        infer_clip: torch.Tensor | list[torch.Tensor],
        train_clip: torch.Tensor | list[torch.Tensor],
        *,
        memory_format: torch.memory_format = torch.contiguous_format,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(device=self.device, memory_format=memory_format)
        self.infer_clip = to_memory_format(_to(infer_clip, self.device), memory_format)
        self.train_clip = to_memory_format(_to(train_clip, self.device), memory_format)
        batch = (train_clip[0] if isinstance(train_clip, list) else train_clip).shape[0]
        self.labels = torch.zeros(batch, dtype=torch.long, device=self.device)
        # a tiny learning rate: the step does all its work, the weights barely move
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-6, momentum=0.9)
        self._fused: nn.Module | None = None

    def loss(self) -> torch.Tensor:
        self.model.train()
        logits = self.model(self.train_clip)
        return nn.functional.cross_entropy(logits.float(), self.labels)

    def infer(self) -> None:
        """One inference call as the commands run it: on the model fused for inference
        (``fuse_for_inference``), fused again after a training step changed the weights."""
        if self._fused is None:
            self._fused = fuse_for_inference(self.model)
        with torch.inference_mode():
            self._fused(self.infer_clip)
        self._sync()

    def train_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.loss().backward()
        self.optimizer.step()
        self._fused = None
        self._sync()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def saved_bytes(self) -> int:
        """Saved-activation bytes of one training step on ``train_clip``."""
        return saved_activation_bytes(self.loss, self.model)


def _to(
    clip: torch.Tensor | list[torch.Tensor], device: torch.device
) -> torch.Tensor | list[torch.Tensor]:
    return [c.to(device) for c in clip] if isinstance(clip, list) else clip.to(device)


def time_interleaved(
    calls: Sequence[Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    timer: Callable[[], float] = time.perf_counter,
) -> list[list[float]]:
    """Seconds of each call in each of ``repeats`` rounds: ``result[k][r]`` is call k in round r.

    Every call runs ``warmup`` times first (weight packing, allocator). Within a round the calls
    run back to back, in order on even rounds and in reverse on odd ones, so that neither side
    of a ratio always runs first.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be 1 or more, got {repeats}")
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    for r in range(repeats):
        for k in order if r % 2 == 0 else order[::-1]:
            start = timer()
            calls[k]()
            times[k].append(timer() - start)
    return times


@dataclass(frozen=True)
class RatioStats:
    """A model's time against the baseline's, over the interleaved rounds.

    Attributes:
        median_s: median seconds of one call.
        ratio: median of the per-round ratios (this model / the baseline, same round).
        ratio_min: smallest per-round ratio.
        ratio_max: largest per-round ratio.
    """

    median_s: float
    ratio: float
    ratio_min: float
    ratio_max: float


def ratio_stats(times: Sequence[Sequence[float]], baseline: int = 0) -> list[RatioStats]:
    """Per call of ``time_interleaved``'s result: its median time and its per-round ratios
    against call ``baseline`` (median, min, max)."""
    base = times[baseline]
    out = []
    for t in times:
        ratios = [a / b for a, b in zip(t, base, strict=True)]
        out.append(
            RatioStats(statistics.median(t), statistics.median(ratios), min(ratios), max(ratios))
        )
    return out
