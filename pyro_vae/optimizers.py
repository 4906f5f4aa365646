"""The optimizer of a fit: a torch optimizer over all parameters, or a ``pyro.optim`` one as ``pyro.infer.SVI`` takes it.

Pyro's optimizers (``pyro.optim.Adam``, ``ClippedAdam``, ``AdagradRMSProp``, the schedulers such as
``pyro.optim.ExponentialLR``) make one torch optimizer per parameter, lazily, keyed by the tensor.
:class:`PyroOptimizer` gives ``fit`` the one interface it needs (``zero_grad``, ``step``,
``param_groups``, ``state_dict``/``load_state_dict``), with the per-parameter states in the trainer's fixed
parameter order, so a checkpoint lines up on resume also for module parameters that have no name in
Pyro's param store.
"""

from __future__ import annotations

from typing import Callable

import torch

import pyro.optim
from pyro.optim.optim import _get_state_dict, _load_state_dict, is_scheduler

from pyro_vae.errors import UserError

NAMES = ("adam", "clipped-adam", "adagrad-rmsprop", "sgd")


def adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam; its fused kernel where torch has one (CPU, CUDA): the same update in one pass over each
    parameter instead of about ten elementwise operations (docs/benchmarks.md: the hand-written loop
    with and without it)."""
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def named(name: str, lr: float, clip_norm: float | None = None) -> Callable:
    """``params -> optimizer`` for ``--optimizer NAME``; ClippedAdam takes ``clip_norm`` per parameter (Pyro's 10 by default)."""
    if name == "adam":
        return lambda params: adam(params, lr)
    if name == "sgd":
        return lambda params: torch.optim.SGD(params, lr=lr)
    if name == "clipped-adam":
        return pyro.optim.ClippedAdam({"lr": lr, "clip_norm": clip_norm or 10.0})
    if name == "adagrad-rmsprop":
        return pyro.optim.AdagradRMSProp({"eta": lr})
    raise UserError(f"unknown --optimizer {name!r}: choose one of {', '.join(NAMES)}")


def make(optimizer: pyro.optim.PyroOptim | Callable, params: list[torch.Tensor]) -> torch.optim.Optimizer | "PyroOptimizer":
    """The optimizer over ``params`` from what ``fit`` was given: a ``pyro.optim`` optimizer or scheduler, or a
    function ``params -> torch.optim.Optimizer``."""
    if isinstance(optimizer, pyro.optim.PyroOptim):
        return PyroOptimizer(optimizer, params)
    if isinstance(optimizer, torch.optim.Optimizer):
        raise UserError("fit(optimizer=...) takes a function params -> torch optimizer (e.g. lambda p: "
                        "torch.optim.Adam(p, lr=1e-3)) or a pyro.optim optimizer, not an optimizer already made")
    if not callable(optimizer):
        raise UserError(f"fit(optimizer=...) takes a pyro.optim optimizer or a function params -> torch optimizer, "
                        f"got {type(optimizer).__name__}")
    return optimizer(params)


def set_lr(optimizer: torch.optim.Optimizer | PyroOptimizer, lr: float) -> None:
    """Every parameter group's step size to ``lr`` (``eta`` for AdagradRMSProp, ``lr`` for the others)."""
    for group in optimizer.param_groups:
        group["eta" if "eta" in group and "lr" not in group else "lr"] = lr


def learning_rate(optimizer: torch.optim.Optimizer | PyroOptimizer) -> float | None:
    """The first parameter group's step size, for the metrics (None if the optimizer names it otherwise)."""
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    return group.get("lr", group.get("eta"))


class PyroOptimizer:
    """A ``pyro.optim`` optimizer or scheduler over a fixed list of parameters, shaped like a torch optimizer.

    ``step()`` is ``optim(params)``, exactly what ``pyro.infer.SVI.step`` does after the gradients: each
    parameter's own optimizer steps, after the ``clip_args`` clipping Pyro applies per parameter.
    ``step_schedules()`` steps a scheduler's per-parameter learning-rate schedules (``fit`` calls it once
    per epoch, where Pyro's examples call ``scheduler.step()``).
    """

    def __init__(self, optim: pyro.optim.PyroOptim, params: list[torch.Tensor]):
        self.optim, self.params = optim, list(params)
        with torch.no_grad():
            optim(self.params)  # makes each parameter's optimizer; no gradient yet, so nothing moves

    def _of(self, p):
        return self.optim.optim_objs[p]

    def _torch(self, p) -> torch.optim.Optimizer:
        made = self._of(p)
        return made.optimizer if is_scheduler(made) else made

    @property
    def param_groups(self) -> list[dict]:
        """Every parameter's optimizer's groups, in the parameters' order (``lr``/``eta`` read and set here)."""
        return [group for p in self.params for group in self._torch(p).param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops every parameter's gradient (as ``pyro.infer.SVI`` does after its step)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One step of every parameter's optimizer, after Pyro's per-parameter clipping."""
        self.optim(self.params)

    def step_schedules(self, loss: float | None = None) -> None:
        """Steps every per-parameter schedule (``ReduceLROnPlateau`` is given the epoch's loss)."""
        for p in self.params:
            made = self._of(p)
            if isinstance(made, torch.optim.lr_scheduler.ReduceLROnPlateau):
                made.step(loss)
            elif is_scheduler(made):
                made.step()

    def state_dict(self) -> dict:
        """Each parameter's optimizer (and scheduler) state, in the parameters' order."""
        return {"pyro_optim": type(self.optim).__name__, "per_parameter": [_get_state_dict(self._of(p)) for p in self.params]}

    def load_state_dict(self, state: dict) -> None:
        """Loads :meth:`state_dict`'s states; another optimizer or number of parameters is a ValueError."""
        if state.get("pyro_optim") != type(self.optim).__name__ or len(state["per_parameter"]) != len(self.params):
            raise ValueError(f"the checkpoint holds the state of {state.get('pyro_optim') or 'a torch optimizer'} "
                             f"over {len(state.get('per_parameter', []))} parameters, not {type(self.optim).__name__} "
                             f"over {len(self.params)}")
        for p, saved in zip(self.params, state["per_parameter"]):
            _load_state_dict(self._of(p), saved)
