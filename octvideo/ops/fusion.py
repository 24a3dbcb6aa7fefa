"""Inference fusion: ``fuse_for_inference(model)``, one explicit deploy step, in the spirit of
timm's ``reparameterize_model``.

Each ``OctConv3d`` whose output alone an ``OctNorm`` (of ``nn.BatchNorm3d`` groups) normalises
becomes a ``FusedOctConv3d`` with the batch norm folded into its weights and biases, and the norm a
``FoldedNorm``: only pairs whose order a module states and that no other code can run apart or
hook. The rule is stated in full once, in ``fuse_for_inference`` (the order, in ``fusable_pairs``).

In inference (autograd off) a fused layer:

- runs the fast path's merged low convolution and 2D views (``octvideo.ops.fast``) in any memory
  layout;
- on a float32 CPU input, convolves on weights reordered once into oneDNN's layout (``F.conv*``
  reorders the weight on every call, 15-40% of a call on the small maps of res4/res5), kept per
  input shape; these and the merged weights are used only while the weights they were made from
  are unchanged (``_Made``): an in-place edit or ``torch.func.functional_call`` takes effect;
- adds the residual and applies the ReLU of ``conv_norm_act`` on its fresh output: the residual
  inside oneDNN's convolution where it can, the ReLU in place after it. Neither oneDNN's fused
  ReLU (NaN becomes 0) nor ATen's one-pass add-ReLU (+inf becomes the largest float) is used:
  a NaN or an infinity stays where the unfused model leaves it, so a broken network never
  looks finite, for an extra pass over each ReLU's output (1-3% of an I3D-R50 forward);
- on a CPU channels-last input, pools after where that is exact and measured faster: a
  channel-reducing layer (the bottlenecks' first) with a small low share runs H->L at full
  resolution inside H->H's convolution and pools its output, two convolutions instead of three
  and no pooled or concatenated input (``FusedOctConv3d._forward_pooled_after``).

Under autograd, ``torch.func`` (``vmap``, ``jvp``), tracing, scripting or ``torch.compile`` a fused
layer runs plain public operators on its folded weights, so an exported graph holds standard
convolutions (batch norm folded) and no oneDNN calls.

This is the one module that calls private PyTorch API (``torch.ops.mkldnn``, ``torch._C``,
underscored ATen operators, the modules' hook tables): a PyTorch upgrade that changes them
touches this file only.

Reference: Ioffe and Szegedy, "Batch Normalization", ICML 2015 (the inference-time affine map that
folds into the preceding convolution).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.parameter import UninitializedBuffer
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from octvideo.ops import fast
from octvideo.ops.capture import capturing
from octvideo.ops.layers import FoldedNorm, OctNorm
from octvideo.ops.meta import FORWARD_ERRORS, CannotRunOnMeta, meta_forward
from octvideo.ops.octconv import OctConv3d, conv_output_size
from octvideo.ops.pair import (
    OctPair,
    as_pair,
    is_channels_last,
    is_contiguous_as,
    unpair,
)

logger = logging.getLogger(__name__)

_MAX_PACKED = 32  # packed weights kept per layer (paths x input shapes) before starting over


def fuse_for_inference(
    model: nn.Module, example: Example | None = None, *, inplace: bool = False
) -> nn.Module:
    """``model`` in eval mode with every (OctConv3d, batch norm) pair folded into one layer.

    Call it once, after the weights are loaded and before inference; a fused model is for
    inference: train the unfused one and fuse again. Its output equals the unfused model's in
    eval mode up to float rounding (float64: 1e-10).

    The candidates are the pairs ``fusable_pairs`` finds in each of ``model``'s modules, with
    an ``OctConv3d`` (not a subclass) as the convolution and as the norm an ``OctNorm`` of
    ``nn.BatchNorm3d`` groups with running statistics that fit its output. Left unfused are a
    convolution or norm that sits in more than one place of ``model``, a pair with a hook on
    its layers, and every pair while a hook is registered for every module (folding would drop
    the hook). A forward further up may still call a pair's convolution or norm apart
    (``self.body(x) + self.body[0](x)``), which folding would change. A pair whose every
    enclosing module's forward is known is folded: the model is octvideo's own, an
    ``nn.Sequential`` or a container without a forward (``nn.ModuleList``) down to the pair's
    module (every pair of a built-in model). For the other pairs only a forward shows it:

    - with ``example``, one forward of it on the meta device (shapes only: no memory, no
      arithmetic) keeps the pairs whose convolution runs once, whose norm runs once on exactly
      that output, and whose output nothing else reads or holds after the forward (a module
      attribute such as ``self.feat = y``, a returned object of any class, a global); the rest
      are left unfused (logged at DEBUG). Holders are found by the garbage collector, so one it
      does not track (a numpy object array) goes unseen. The modules' attributes are bound
      again as before the forward. A network that cannot run there (``.item()``) is decided
      as without ``example``;
    - without it, they are left unfused: inside a network of your own class pass ``example``
      for its pairs to be folded.

    Args:
        model: any module.
        example: an input of ``model`` (a tensor, or a list of them, SlowFast's pathways) or its
            shape (a tuple of ints, or a list of them); only its shapes and dtype are used.
        inplace: change ``model`` itself; by default a copy is fused and ``model`` is left as
            it is. Lazy modules (``nn.Lazy*``) that have not run yet are left unfused, and in a
            copy are as lazy as in ``model``: their shapes and weights are set at the copy's
            first forward, apart from ``model``'s (run one clip through ``model`` first for a
            copy of its weights).

    Returns:
        The fused model, in eval mode.

    Raises:
        TypeError: ``model`` is no ``nn.Module`` (a model's name, a state dict) or
            ``inplace`` no bool.
        ValueError: a module's ``fusable_pairs`` attribute does not name pairs of its children,
            or ``example`` is neither tensors nor shapes.
    """
    _check_network(model, "fuse_for_inference")
    if not isinstance(inplace, bool):
        raise TypeError(f"fuse_for_inference: inplace must be True or False, got {inplace!r:.80}")
    meta_example = None if example is None else _meta_example(example, model)
    if not inplace:
        model = _copy(model)
    model.eval()
    pairs = _candidates(model)
    if pairs and _global_hooks():
        logger.debug("fusion: a hook registered for every module; nothing is folded")
        pairs = []
    kept = _known_callers(model, pairs)
    rest = [pair for pair in pairs if pair not in kept]
    if rest and meta_example is not None:  # no forward to run for a built-in model
        kept += _run_alone(model, rest, meta_example) or []
    for parent, conv_name, norm_name in kept:
        conv, norm = getattr(parent, conv_name), getattr(parent, norm_name)
        setattr(parent, conv_name, FusedOctConv3d.fold(conv, norm))
        setattr(parent, norm_name, FoldedNorm())
    return model


Example = Tensor | Sequence[Tensor] | Sequence[int] | Sequence[Sequence[int]]


def _check_network(model: object, who: str) -> None:
    """Refuses anything but an ``nn.Module`` (a model's name, a state dict) in one line, as
    ``octvideo.models.measure_cost`` does."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{who} takes a network (nn.Module), got {type(model).__name__}; "
            f"octvideo.models.create_model(name) builds one"
        )


class _Pair(NamedTuple):
    """A (convolution, norm) candidate: the module holding them and their child names."""

    parent: nn.Module
    conv: str
    norm: str


def _candidates(model: nn.Module) -> list[_Pair]:
    """The pairs of ``fusable_pairs`` in ``model`` that folding can replace on their own: an
    ``OctConv3d`` (not a subclass) and a norm ``_foldable`` into it, neither of which sits in
    another place of ``model`` (folding would reach that one too) nor has a hook."""
    places = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    pairs = []
    for parent in list(model.modules()):
        for conv_name, norm_name in fusable_pairs(parent):
            conv, norm = getattr(parent, conv_name), getattr(parent, norm_name)
            shared = places[id(conv)] > 1 or places[id(norm)] > 1
            if (
                type(conv) is OctConv3d
                and not shared
                and not hooked(conv, norm)
                and _foldable(conv, norm)
            ):
                pairs.append(_Pair(parent, conv_name, norm_name))
    return pairs


def _meta_example(example: Example, model: nn.Module) -> Tensor | list[Tensor]:
    """``example`` as meta tensors of its shapes: a tensor's dtype, else the model's."""
    if isinstance(example, Tensor):
        return torch.empty_like(example, device="meta")
    if _is_shape(example):
        floats = (t.dtype for t in model.parameters() if t.is_floating_point())
        dtype = next(floats, torch.get_default_dtype())
        return torch.empty(tuple(example), dtype=dtype, device="meta")
    many = isinstance(example, list | tuple) and len(example) > 0  # one per pathway (SlowFast)
    if many and (all(isinstance(e, Tensor) for e in example) or all(map(_is_shape, example))):
        return [_meta_example(e, model) for e in example]
    raise ValueError(
        "example must be an input of the model (a tensor or a list of tensors) or its shape "
        f"(a tuple of ints or a list of them), got {example!r:.80}"
    )


def _is_shape(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
    )


def _known_callers(model: nn.Module, pairs: list[_Pair]) -> list[_Pair]:
    """The ``pairs`` whose every enclosing module, from ``model`` down to the one holding the
    pair, runs a known forward (``_known_forward``): none of another class can call the pair's
    layers apart."""
    reached, todo = {id(model)}, [model]  # modules whose every enclosing module is known
    while todo:
        module = todo.pop()
        if _known_forward(module):
            for child in module.children():
                if id(child) not in reached:
                    reached.add(id(child))
                    todo.append(child)
    return [p for p in pairs if id(p.parent) in reached]


def _known_forward(module: nn.Module) -> bool:
    """Whether ``module``'s forward is octvideo's own, ``nn.Sequential``'s, or none at all (a
    container such as ``nn.ModuleList``, which only its owner's forward reaches into)."""
    forward = type(module).forward
    return (
        forward in (nn.Sequential.forward, nn.Module.forward)
        or type(module).__module__.partition(".")[0] == "octvideo"
    )


def _run_alone(
    model: nn.Module, pairs: list[_Pair], example: Tensor | list[Tensor]
) -> list[_Pair] | None:
    """The ``pairs`` whose layers one forward of ``example`` on the meta device
    (``meta_forward``) runs as ``norm(conv(x))`` alone: the convolution once, the norm once on
    exactly its output, and that output read by nothing else (no other operator) nor held after
    it (returned, kept in an attribute); None where ``model`` cannot run there (lazy modules,
    ``.item()``, data-dependent shapes). Each module's attributes are bound again as before the
    forward, so no meta tensor (``self.feat = y``, a cache) stays on ``model``."""
    if not pairs:
        return pairs
    watch = _Watch(len(pairs))
    hooks = []
    for i, (parent, conv_name, norm_name) in enumerate(pairs):
        hooks += [
            getattr(parent, conv_name).register_forward_hook(partial(watch.conv_ran, i)),
            getattr(parent, norm_name).register_forward_pre_hook(partial(watch.norm_starts, i)),
            getattr(parent, norm_name).register_forward_hook(partial(watch.norm_ran, i)),
        ]
    attributes = [(m, dict(vars(m))) for m in model.modules()]  # containers changed in place stay
    try:
        try:
            with watch:
                out = meta_forward(model, example)
        except (CannotRunOnMeta, *FORWARD_ERRORS) as err:
            logger.debug("fusion: %s not run on the meta device: %s", type(model).__name__, err)
            return None
        finally:
            for hook in hooks:
                hook.remove()
        watch.read(None, tree_leaves(out))  # a convolution's output returned as it is
        watch.find_holders()
    finally:
        for module, before in attributes:
            vars(module).clear()
            vars(module).update(before)
    names = {id(m): name for name, m in model.named_modules()}
    kept = []
    for i, pair in enumerate(pairs):
        why = watch.fault(i)
        if why is None:
            kept.append(pair)
        else:
            where = names[id(pair.parent)] or type(model).__name__
            logger.debug("fusion: %s.%s and .%s left unfused: %s", where, *pair[1:], why)
    return kept


def _tensors(x: object) -> list[Tensor]:
    """The tensors of a layer's input or output: a tensor, or those of a pair or sequence."""
    if isinstance(x, Tensor):
        return [x]
    return [t for t in x if isinstance(t, Tensor)] if isinstance(x, list | tuple) else []


_METADATA = {"__get__", "size", "dim", "ndimension", "stride", "numel", "__len__", "is_contiguous"}


class _Watch(TorchFunctionMode):
    """Records, for each candidate pair, how often its convolution and norm run, whether the
    norm's input is exactly the convolution's output, and whether any other operator reads it
    (``_run_alone``)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.convs, self.norms = [0] * n, [0] * n
        self.fed = [True] * n  # each norm call took exactly its convolution's output
        self.outputs: list[list[Tensor]] = [[] for _ in range(n)]
        self.owner: dict[int, int] = {}  # id of a convolution output tensor -> its pair
        self.read_elsewhere = [False] * n
        self.held = [False] * n  # something keeps the convolution's output after the forward
        self.inside: list[int] = []  # the pairs whose norm is running

    def conv_ran(self, i: int, module, args, out) -> None:
        self.convs[i] += 1
        self.outputs[i] = _tensors(out)
        self.owner.update((id(t), i) for t in self.outputs[i])

    def norm_starts(self, i: int, module, args) -> None:
        self.norms[i] += 1
        got, mine = _tensors(args[0]) if len(args) == 1 else [], self.outputs[i]
        same = len(got) == len(mine) > 0 and all(a is b for a, b in zip(got, mine, strict=True))
        self.fed[i] &= same
        self.inside.append(i)

    def norm_ran(self, i: int, module, args, out) -> None:
        self.inside.pop()

    def read(self, func, leaves) -> None:
        if func is not None and getattr(func, "__name__", "") in _METADATA:
            return
        for t in leaves:
            i = self.owner.get(id(t)) if isinstance(t, Tensor) else None
            if i is not None and i not in self.inside:
                self.read_elsewhere[i] = True

    def find_holders(self) -> None:
        """Marks the pairs whose convolution output an object still refers to after the
        forward: a module's attribute, a returned object of any class (a dataclass, which no
        pytree walk sees into), a list or closure cell, whatever reaches it, as found by the
        garbage collector, which sees every container it tracks; the forward's own frames are
        gone by now, and running ones are not reported."""
        gc.collect()  # a dropped reference cycle holds nothing
        outputs = [t for ts in self.outputs for t in ts]
        ours = {id(outputs), *map(id, self.outputs)}
        for holder in gc.get_referrers(*outputs):
            if id(holder) not in ours:
                reached = {id(t) for t in gc.get_referents(holder)}
                for i, ts in enumerate(self.outputs):
                    self.held[i] |= any(id(t) in reached for t in ts)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.read(func, tree_leaves((args, kwargs)))
        return func(*args, **kwargs)

    def fault(self, i: int) -> str | None:
        if self.convs[i] != 1 or self.norms[i] != 1:
            return f"the convolution runs {self.convs[i]} and the norm {self.norms[i]} times"
        if not self.fed[i]:
            return "the norm's input is not the convolution's output"
        if self.read_elsewhere[i]:
            return "the convolution's output is read apart from the norm"
        if self.held[i]:
            return "the convolution's output is kept after the forward (attribute, returned)"
        return None


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``. Lazy buffers that have not run yet (``nn.LazyBatchNorm3d``'s),
    which torch refuses to copy, get new uninitialised ones, as its lazy parameters do."""
    memo = {
        id(b): type(b)(b.requires_grad, b.device, b.dtype, getattr(b, "persistent", True))
        for b in model.buffers()
        if isinstance(b, UninitializedBuffer)
    }
    return copy.deepcopy(model, memo)


def fusable_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """The (convolution, norm) child names of ``module`` whose forward applies the norm to that
    convolution's output alone, as far as the module states it: the candidates of
    ``fuse_for_inference``, which says which of them it folds.

    - A module with a ``fusable_pairs`` attribute (a sequence of ``(conv name, norm name)``):
      those pairs. Its forward must compute ``norm(conv(x))`` and use neither elsewhere.
    - An ``nn.Sequential`` that runs its children in order: each two consecutive children.
    - A module of a class defined in octvideo (blocks, stems, laterals): each two consecutive
      children; octvideo registers every norm right after its convolution and applies it there
      (``conv_norm_act``), as the float64 test of every model family checks.
    - Any other module: none, as its forward may normalise something else.

    Raises:
        ValueError: ``fusable_pairs`` is not a sequence of pairs of child names.
    """
    children = dict(module.named_children())
    declared = getattr(module, "fusable_pairs", None)
    if declared is not None:
        if not _child_pairs(declared, children):
            raise ValueError(
                f"{type(module).__name__}.fusable_pairs must be (conv name, norm name) pairs of "
                f"its children {sorted(children)}, got {declared!r}"
            )
        return [(conv, norm) for conv, norm in declared]
    ordered = isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward
    if ordered or type(module).__module__.partition(".")[0] == "octvideo":
        names = list(children)
        return list(zip(names, names[1:], strict=False))
    return []


def _child_pairs(declared: object, children: dict[str, nn.Module]) -> bool:
    """Whether ``declared`` is a list or tuple of (name, name) pairs of ``children``."""
    return isinstance(declared, list | tuple) and all(
        isinstance(p, list | tuple)
        and len(p) == 2
        and all(isinstance(n, str) and n in children for n in p)
        for p in declared
    )


def hooked(*modules: nn.Module) -> bool:
    """Whether a hook sits on ``modules`` or a module inside them: a forward hook or pre-hook (a
    Grad-CAM feature, an output changed) or a backward one. Folding would drop it, or change what
    it sees; ``conv_norm_act`` also calls a hooked activation itself rather than fold its ReLU."""
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for module in modules
        for m in module.modules()
    )


def _global_hooks() -> bool:
    """Whether a hook is registered for every module (``nn.modules.module.
    register_module_forward_hook`` and its kin): it may act on the norms folding removes."""
    from torch.nn.modules import module

    return bool(
        module._global_forward_hooks
        or module._global_forward_pre_hooks
        or module._global_backward_hooks
        or module._global_backward_pre_hooks
    )


def _foldable(conv: OctConv3d, norm: nn.Module) -> bool:
    """Whether ``norm`` is an OctNorm of plain batch norms with running statistics that fits
    ``conv``'s output groups."""
    if not isinstance(norm, OctNorm):
        return False
    groups = [(norm.high, conv.out_high), (norm.low, conv.out_low)]
    return all(
        (bn is None and n == 0)
        or (
            type(bn) is nn.BatchNorm3d
            and bn.running_mean is not None
            and bn.running_var is not None
            and bn.num_features == n
        )
        for bn, n in groups
    )


def _scale_shift(bn: nn.BatchNorm3d) -> tuple[Tensor, Tensor]:
    """The eval-mode batch norm as ``x * scale + shift``."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    return scale, shift if bn.bias is None else shift + bn.bias


class FusedOctConv3d(OctConv3d):
    """An OctConv3d with the batch norm after it folded into its weights and biases, made by
    ``fuse_for_inference``; ``forward`` also takes the residual and ReLU of ``conv_norm_act``.

    Without autograd and outside ``torch.func``, tracing or compilation it runs the inference
    path described in this module's docstring; otherwise ``OctConv3d.forward`` on the folded
    weights, then the residual and ReLU as plain operators.
    """

    @classmethod
    def fold(cls, conv: OctConv3d, norm: OctNorm) -> FusedOctConv3d:
        """A layer computing ``norm(conv(x))`` with ``norm`` in eval mode, in one convolution."""
        with torch.device("meta"):  # no initialisation: every weight is written below
            fused = cls(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                dilation=conv.dilation,
                groups=conv.groups,
                bias=True,
                alpha_in=conv.alpha_in,
                alpha_out=conv.alpha_out,
                octave=conv.octave,
                channel_multiple=conv.channel_multiple,
            )
        w = fast.path_weights(conv)
        # the weights keep their memory format (channels-last models stay channels-last)
        fmt = torch.channels_last_3d if is_channels_last(w.hh) else torch.contiguous_format
        fused = fused.to_empty(device=w.hh.device).to(dtype=w.hh.dtype, memory_format=fmt)
        s_h, b_h = _scale_shift(norm.high)
        s_l, b_l = (None, None) if norm.low is None else _scale_shift(norm.low)
        into = fast.path_weights(fused)
        with torch.no_grad():
            for src, dst, s in zip(w[:4], into[:4], (s_h, s_l, s_h, s_l), strict=True):
                if src is not None:
                    dst.copy_(src * s.view(-1, 1, 1, 1, 1))  # each output channel scaled
            into.bias_h.copy_(b_h if w.bias_h is None else b_h + w.bias_h * s_h)
            if into.bias_l is not None:
                into.bias_l.copy_(b_l if w.bias_l is None else b_l + w.bias_l * s_l)
        fused.pool_after_eligible = _layer_can_pool_after(conv)
        return fused

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._packed = _Made(_MAX_PACKED)  # weights reordered into oneDNN's layout, per input shape
        self._merged = _Made()  # weights made from the four paths' own (``fast.low_weight``)
        self.pool_after_eligible = False  # set by ``fold``: see ``_layer_can_pool_after``

    def _apply(self, fn, recurse=True):  # .to(), .float(), .cuda(): free the made weights now
        self._forget_made_weights()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # new weights: free the made ones
        self._forget_made_weights()
        super()._load_from_state_dict(*args, **kwargs)

    def _forget_made_weights(self) -> None:
        self._packed.clear()
        self._merged.clear()

    def forward(  # type: ignore[override]
        self,
        x: Tensor | OctPair,
        residual: Tensor | OctPair | None = None,
        relu: bool = False,
    ) -> Tensor | OctPair:
        if residual is not None and (self.out_low == 0) != (as_pair(residual).low is None):
            raise ValueError("cannot add a pair with a low group to one without")
        if torch.is_grad_enabled() or capturing() or torch._C._are_functorch_transforms_active():
            # oneDNN's calls have no vmap or forward-AD rule: torch.func gets the public operators
            y = as_pair(super().forward(x))
            r_h, r_l = as_pair(residual) if residual is not None else (None, None)
            return unpair(
                OctPair(_plain_epilogue(y.high, r_h, relu), _plain_epilogue(y.low, r_l, relu))
            )
        x_h, x_l = self._prepare(x)
        r_h, r_l = (None, None) if residual is None else as_pair(residual)
        return unpair(self._infer(x_h, x_l, r_h, r_l, relu))

    def _infer(
        self, x_h: Tensor, x_l: Tensor | None, r_h: Tensor | None, r_l: Tensor | None, relu: bool
    ) -> OctPair:
        no_residual = r_h is None and r_l is None
        if self.pool_after_eligible and no_residual and _input_fits_pool_after(x_h, x_l, self):
            return self._forward_pooled_after(x_h, x_l, relu)
        w = fast.path_weights(self)
        octave = self.octave
        if w.lh is None:  # Y_H is one convolution: the epilogue can be fused into it
            y_h = self._conv(x_h, w.hh, w.bias_h, r_h, relu)
        else:
            y_h = self._conv(x_h, w.hh, w.bias_h)
            if r_h is not None:  # its own pass: as a oneDNN binary post-op, 2-4% slower overall
                y_h.add_(r_h)
            add_ = _add_relu_ if relu else _add_
            y_h = fast.add_upsampled(y_h, self._conv(x_l, w.lh, None), octave, add_)
        y_l: Tensor | None = None
        if w.hl is not None and (w.ll is None or self.groups == 1):
            x_in = fast.low_input(x_h, None if w.ll is None else x_l, octave)
            y_l = self._conv(x_in, self._low_weight(w), w.bias_l, r_l, relu)
        elif w.hl is not None:  # grouped with both low paths: two convolutions
            y_l = self._conv(x_l, w.ll, w.bias_l)
            y_l.add_(self._conv(fast.low_input(x_h, None, octave), w.hl, None))
            y_l = _epilogue(y_l, r_l, relu)
        elif w.ll is not None:
            y_l = self._conv(x_l, w.ll, w.bias_l, r_l, relu)
        return OctPair(y_h, y_l)

    def _forward_pooled_after(self, x_h: Tensor, x_l: Tensor, relu: bool) -> OctPair:
        """The layer's output with H->L pooled after its convolution, in two convolutions (a
        layer ``_layer_can_pool_after`` allows, an input ``_input_fits_pool_after`` takes)::

            A = conv(X_H, [W_HH; W_HL]) + [b_H; b_L]    every output channel, high resolution
            Z = conv(X_L, [W_LH; W_LL])                 every output channel, low resolution
            Y_H = A[:C_H] + upsample(Z[:C_H])
            Y_L = pool(A[C_H:]) + Z[C_H:]               (each then through the ReLU if asked)
        """
        w = fast.path_weights(self)
        made = self._merged.get("pooled after", w)
        if made is None:
            with _made_tensors():
                made = (
                    torch.cat([w.hh, w.hl]),  # [W_HH; W_HL]
                    torch.cat([w.lh, w.ll]),  # [W_LH; W_LL]
                    torch.cat([w.bias_h, w.bias_l]),  # [b_H; b_L]
                )
            self._merged.put("pooled after", w, made)
        from_high, from_low, bias = made
        a = self._conv(x_h, from_high, bias)
        z = self._conv(x_l, from_low, None)
        n, (ot, oh, ow) = self.out_high, self.octave
        b, c, t, h, w = a.shape
        a8 = a.view(b, c, t // ot, ot, h // oh, oh, w // ow, ow)  # each octave cell apart
        up = z[:, :n, :, None, :, None, :, None]  # the upsample as a view, never written out
        y_h = _add_relu(a8[:, :n], up) if relu else a8[:, :n] + up
        cells = [
            a8[:, n:, :, i, :, j, :, k] for i in range(ot) for j in range(oh) for k in range(ow)
        ]
        y_l = torch.add(*cells[:2])
        for cell in cells[2:]:
            y_l.add_(cell)
        y_l = (_add_relu_ if relu else _add_)(y_l.mul_(1.0 / len(cells)), z[:, n:])
        fmt = torch.channels_last_3d  # both are already: no copy
        y_h = y_h.reshape(b, n, t, h, w).contiguous(memory_format=fmt)
        return OctPair(y_h, y_l.contiguous(memory_format=fmt))

    def _low_weight(self, w: fast.PathWeights) -> Tensor:
        """The merged H->L / L->L weight, made once per set of weights."""
        if w.ll is None:
            return w.hl
        sources = (w.hl, w.ll)
        merged = self._merged.get("low", sources)
        if merged is None:
            with _made_tensors():
                merged = fast.low_weight(w.hl, w.ll)
            self._merged.put("low", sources, merged)
        return merged

    def _conv(
        self,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        residual: Tensor | None = None,
        relu: bool = False,
    ) -> Tensor:
        """``relu(conv(x) + residual)`` (``fast.conv``'s geometry): on a float32 CPU input, on a
        weight reordered once into oneDNN's layout with the residual fused into its output
        pass; else ``fast.conv``; the rest of the epilogue in place."""
        if not _packable(x, weight):
            return _epilogue(fast.conv(self, x, weight, bias), residual, relu)
        g = fast.geometry(self)
        x2, w2 = fast.to_2d(x, g.view), fast.weight_2d(weight, g.view)
        r2 = None if residual is None else fast.to_2d(residual, g.view)
        if r2 is not None and not _residual_fits_post_op(r2, x2, w2, g):  # added afterwards
            y = self._packed_conv(weight, x2, w2, bias, g, None, False)
            return _epilogue(fast.from_2d(y, g.view, x), residual, relu)
        return fast.from_2d(self._packed_conv(weight, x2, w2, bias, g, r2, relu), g.view, x)

    def _packed_conv(
        self,
        weight: Tensor,
        x: Tensor,
        w2: Tensor,
        bias: Tensor | None,
        g: fast.Geometry,
        residual: Tensor | None,
        relu: bool,
    ) -> Tensor:
        """oneDNN's convolution of ``x`` (the 4D or 5D view ``fast.conv`` runs) with the
        residual add as a post-op and the ReLU after it, on ``w2`` (the matching view of
        ``weight``) reordered once into oneDNN's layout and kept per input shape."""
        args = (list(g.padding), list(g.stride), list(g.dilation), x.shape[1] // w2.shape[1])
        key, sources = (id(weight), tuple(x.shape)), (weight,)
        packed = self._packed.get(key, sources)
        if packed is None:
            reorder = (
                torch._C._nn.mkldnn_reorder_conv2d_weight
                if x.dim() == 4
                else torch._C._nn.mkldnn_reorder_conv3d_weight
            )
            packed = reorder(w2.to_mkldnn(), *args, list(x.shape))
            self._packed.put(key, sources, packed)
        if residual is None:
            y = torch.ops.mkldnn._convolution_pointwise(x, packed, bias, *args, "none", [], "")
        else:
            y = torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, packed, bias, *args, "add", 1.0, None, [], ""
            )
        return y.relu_() if relu else y  # not oneDNN's "relu" post-op: it turns NaN into 0


_Stamp = tuple[tuple[Tensor, int | None, int], ...]


class _Made:
    """Tensors a fused layer makes from its weights (merged, reordered into oneDNN's layout),
    each used only while the tensors it was made from are unchanged: the same objects (held,
    so no new tensor is given their id while the entry lives; a weak reference would stop
    ``torch.utils.swap_tensors``), at the same version (an in-place edit: ``p.mul_``,
    ``p.copy_``, ``load_state_dict``) and address (``p.data = other``,
    ``vector_to_parameters``, ``swap_tensors``). So edited weights and
    ``torch.func.functional_call``'s tensors are made again at the next forward; the check
    costs under a microsecond per convolution (0.1 ms of a 0.14 s fused I3D-R50 forward).

    An edit that passes PyTorch's version counter by is not seen: through ``p.data``
    (``p.data.mul_``), a fused optimizer step (``Adam(fused=True)``), a numpy view or the
    storage, and any in-place edit of an inference tensor (a model built under
    ``torch.inference_mode``), which has no version counter and is checked by object and
    address only. After one, call ``forget_made_weights(model)``.

    Copies and pickles are empty (oneDNN's opaque tensors have no storage to copy): a copied,
    saved or loaded model makes its own at its first forward.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._entries: dict[Hashable, tuple[object, _Stamp]] = {}

    def get(self, key: Hashable, sources: Sequence[Tensor]):
        """What ``put`` kept under ``key``, if ``sources`` are those it was made from,
        unchanged; else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        made, stamp = entry
        for kept, t in zip(stamp, sources, strict=True):
            if not _unchanged(*kept, t):
                return None
        return made

    def put(self, key: Hashable, sources: Sequence[Tensor], made: object) -> None:
        """Keeps ``made`` under ``key`` as made from ``sources``, dropping what was made from
        tensors edited since, and everything when ``limit`` entries are kept."""
        live = {k: e for k, e in self._entries.items() if all(_unchanged(*kept) for kept in e[1])}
        if self._limit is not None and len(live) >= self._limit and key not in live:
            live.clear()
        self._entries = live
        self._entries[key] = (made, tuple((t, _version(t), t.data_ptr()) for t in sources))

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __reduce__(self):  # copy.deepcopy, pickle, torch.save: an empty one
        return type(self), (self._limit,)


def _version(t: Tensor) -> int | None:
    """``t``'s version counter; None for an inference tensor, which has none."""
    return None if t.is_inference() else t._version


def _unchanged(kept: Tensor, version: int | None, ptr: int, t: Tensor | None = None) -> bool:
    """Whether ``t`` (``kept`` itself if not given) is ``kept``, at the same version and
    address as when it was kept."""
    t = kept if t is None else t
    return t is kept and _version(t) == version and t.data_ptr() == ptr


def forget_made_weights(model: nn.Module) -> None:
    """Drops the merged and oneDNN-packed weights the fused layers of ``model`` made from
    their weights; the next inference call makes them again from the weights as they are.

    Call it after an edit that PyTorch's version counter does not see: through ``p.data``, a
    fused optimizer step (``torch.optim.Adam(..., fused=True)``), a numpy view
    (``p.detach().numpy()``) or ``untyped_storage()``, or any in-place edit of a model built
    under ``torch.inference_mode``. A fused model is meant for inference: edits in place and
    ``torch.func.functional_call`` are followed otherwise.

    Raises:
        TypeError: ``model`` is no ``nn.Module``.
    """
    _check_network(model, "forget_made_weights")
    for module in model.modules():
        if isinstance(module, FusedOctConv3d):
            module._forget_made_weights()


@contextlib.contextmanager
def _made_tensors() -> Iterator[None]:
    """Where a merged weight is made: without autograd, and outside ``torch.inference_mode``,
    whose tensors have no version counter, so that the weight packed from it can be kept."""
    with torch.inference_mode(False), torch.no_grad():
        yield


def _layer_can_pool_after(conv: OctConv3d) -> bool:
    """Whether ``conv`` may run pooled after in fused inference: the rule that sets a fused
    layer's ``pool_after_eligible`` flag (the kernel is ``FusedOctConv3d._forward_pooled_after``).

    That is exact where the kernel is 1, with stride 1 and no padding, along every octave axis
    (average pooling then commutes with the convolution), with all four paths ungrouped. It is
    chosen where it measured faster: channel-reducing layers (C_in >= 2 C_out) with a low
    output share of at most 0.2, whose H->L outputs ride in the padding a CPU convolution gives
    a high group such as 58 of 64 channels anyway; 4x the H->L multiply-adds cost more elsewhere.
    """
    c = conv.conv_hh
    axes = [i for i, o in enumerate(conv.octave) if o > 1]
    return (
        None not in (conv.conv_hl, conv.conv_lh, conv.conv_ll)
        and conv.groups == 1
        and all(c.kernel_size[i] == 1 and c.stride[i] == 1 and c.padding[i] == 0 for i in axes)
        and conv.in_channels >= 2 * conv.out_channels
        and conv.out_low <= 0.2 * conv.out_channels
    )


def _input_fits_pool_after(x_h: Tensor, x_l: Tensor | None, conv: OctConv3d) -> bool:
    """Whether this input takes ``FusedOctConv3d._forward_pooled_after`` in a layer whose
    ``pool_after_eligible`` is set: on the CPU in channels-last memory, where it was measured,
    with sizes that divide by the octave."""
    if x_l is None or x_h.device.type != "cpu" or not is_channels_last(x_h):
        return False
    if not is_contiguous_as(x_l, torch.channels_last_3d):
        return False
    size = x_h.shape[2:]
    divides = all(s % o == 0 for s, o in zip(size, conv.octave, strict=True))
    return divides and tuple(x_l.shape[2:]) == tuple(
        s // o for s, o in zip(size, conv.octave, strict=True)
    )


def _residual_fits_post_op(residual: Tensor, x: Tensor, w2: Tensor, g: fast.Geometry) -> bool:
    """Whether ``residual`` has the shape and memory layout of the convolution's output, so
    that oneDNN can add it as a post-op."""
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    out_fmt = fmt if is_contiguous_as(x, fmt) else torch.contiguous_format
    size = conv_output_size(x.shape[2:], w2.shape[2:], g.stride, g.padding, g.dilation)
    return residual.shape == (x.shape[0], w2.shape[0], *size) and is_contiguous_as(
        residual, out_fmt
    )


def _packable(x: Tensor, weight: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")  # the packed call would bypass its casts
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )


def _plain_epilogue(y: Tensor | None, residual: Tensor | None, relu: bool) -> Tensor | None:
    """``relu(y + residual)`` out of place (autograd may need ``y``)."""
    if y is None:
        return None
    if residual is not None:
        y = y + residual
    return torch.relu(y) if relu else y


def _epilogue(y: Tensor, residual: Tensor | None, relu: bool) -> Tensor:
    """``relu(y + residual)`` in place on ``y``, a fresh output."""
    if residual is not None:
        return (_add_relu_ if relu else _add_)(y, residual)
    return y.relu_() if relu else y


def _add_(y: Tensor, other: Tensor) -> Tensor:
    return y.add_(other)


def _add_relu(y: Tensor, other: Tensor) -> Tensor:
    """``relu(y + other)`` (broadcast) into a new tensor, NaN and +inf kept (ATen's one-pass
    ``_add_relu`` clamps +inf to the largest float)."""
    return (y + other).relu_()


def _add_relu_(y: Tensor, other: Tensor) -> Tensor:
    """``relu(y + other)`` (broadcast) in place, NaN and +inf kept, as ``_add_relu``."""
    return y.add_(other).relu_()
