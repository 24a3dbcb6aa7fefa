"""One forward of a network on the meta device: shapes only, no memory, no arithmetic.

The checks that a network takes a clip before any work is done (``octvideo train``'s
``check_clip``, the ``Predictor``'s ``misfit``) and the fusion step's look at which layers a
forward runs alone (``fuse_for_inference``) all run the network this way, and all tell the same
two things apart: the network's own forward refusing the input or being unable to run there
(``FORWARD_ERRORS``), and this machinery being unable to start it (``CannotRunOnMeta``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.parameter import is_lazy

# what a forward raises where the network cannot take the input (its own checks, shape errors:
# a list of pathways where it takes one tensor) or cannot run on the meta device at all
# (``.item()``, data-dependent shapes)
FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AttributeError)


class CannotRunOnMeta(Exception):
    """``meta_forward`` could not start the network's forward, for reasons of its own and not
    the network's; ``__cause__`` is the error where one was raised."""


def has_lazy(model: nn.Module) -> bool:
    """Whether ``model`` holds lazy parameters or buffers (``nn.Lazy*`` before their first
    forward, which sets their shapes)."""
    return any(is_lazy(t) for t in (*model.parameters(), *model.buffers()))


def meta_forward(model: nn.Module, example: Tensor | list[Tensor]) -> object:
    """What one forward of ``example`` (meta tensors) through ``model`` returns, without
    autograd, in the modes ``model``'s modules are in. Its parameters and buffers are swapped
    for meta tensors of their shapes for the call, so the model's own are left as they are; a
    model built on the meta device runs as it is (its lazy modules get their shapes there).

    Raises:
        CannotRunOnMeta: the forward did not start: lazy parameters or buffers (whose shapes
            only a first real forward sets), or state or a call this function cannot make.
        RuntimeError, ValueError, TypeError, IndexError, AttributeError: what the network's
            forward raised (``FORWARD_ERRORS``): it refuses ``example``, or it cannot run on the
            meta device.
    """
    name = type(model).__name__
    state = None  # None: the model is on the meta device already and runs itself
    started = []  # the forward started: what is raised from here on is the network's
    try:
        named = [*model.named_parameters(), *model.named_buffers()]
        if not all(t.is_meta for _, t in named):
            if any(is_lazy(t) for _, t in named):
                raise CannotRunOnMeta(f"{name} has lazy parameters or buffers")
            state = {n: torch.empty_like(t, device="meta") for n, t in named}
        hook = model.register_forward_pre_hook(lambda *_: started.append(True))
    except FORWARD_ERRORS as err:
        raise CannotRunOnMeta(f"{name}'s state cannot be made on the meta device: {err}") from err
    try:
        with torch.no_grad():
            return model(example) if state is None else functional_call(model, state, (example,))
    except FORWARD_ERRORS as err:
        if started:
            raise
        raise CannotRunOnMeta(f"{name} cannot be called on the meta device: {err}") from err
    finally:
        hook.remove()
