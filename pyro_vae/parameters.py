"""The parameters of a Pyro program, however it was written, and their state in a checkpoint.

A model or guide may be an ``nn.Module`` (ours, or a ``PyroModule``, or an autoguide), a bound method of
one (Pyro's VAE example: ``vae.model``, ``vae.guide`` calling ``pyro.module``), or a plain function
calling ``pyro.param``. Its parameters are those of the module that owns it plus every ``pyro.param``
site it touches, some of which (an autoguide's) exist only after a first call. ``initialize`` makes
that call once, checks the pair, and returns them all in one fixed order, so an optimizer's state
from a checkpoint lines up with them again on resume. The call leaves the random state as it found it
when it made no parameter; when it made some, whose initial values may have drawn random numbers, the
stream goes on from there, so that the first step does not draw those same numbers again.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable

import torch
from torch import nn

import pyro
from pyro.poutine.util import prune_subsample_sites

from pyro_vae import sites
from pyro_vae.checkpoint import load_into, rng_state, set_rng_state
from pyro_vae.errors import UserError
from pyro_vae.handlers import lean_traces


def owner(program: Callable) -> nn.Module | None:
    """The ``nn.Module`` a program belongs to: itself, or the object of a bound method; None for a function."""
    if isinstance(program, nn.Module):
        return program
    bound = getattr(program, "__self__", None)
    return bound if isinstance(bound, nn.Module) else None


def owners(model: Callable, guide: Callable) -> list[nn.Module]:
    """The distinct modules of model and guide (one, when both are methods of the same module)."""
    found = []
    for module in (owner(model), owner(guide)):
        if module is not None and all(module is not m for m in found):
            found.append(module)
    return found


@torch.no_grad()
def initialize(model: Callable, guide: Callable, batch: tuple, device: torch.device, num_data: int,
               plate: str = "data") -> tuple[list[torch.Tensor], list[str], sites.Layout]:
    """Runs guide and model once on ``batch`` so that lazily made parameters exist, on ``device``.

    Returns (parameters, names of the ``pyro.param`` sites, the program's :class:`~pyro_vae.sites.Layout`):
    module parameters first, then the param store's, each once. Raises :class:`UserError` for a pair
    the trainer can't train: no parameters, a latent site of the model that the guide lacks.
    """
    modules = owners(model, guide)
    modes = [m.training for m in modules]
    for m in modules:
        m.to(device).eval()  # eval: the extra call must not move running statistics (batch norm)
    # a program that makes its initial values without a device (torch.zeros(3), as Pyro's tutorials do)
    # gets them on the data's device; on the CPU nothing changes (the meta-device test stays meaningful)
    default_device = torch.device(device) if device.type != "cpu" else contextlib.nullcontext()
    # The extra call leaves no trace when it made no parameter: training then draws what it would have
    # drawn without it (our models, modules built beforehand). When it made parameters (an autoguide, a
    # pyro.param), their initial values may have drawn random numbers: rewinding would hand those same
    # numbers to the first step's draws, correlated with the starting point, so the stream goes on instead.
    rng, existing = rng_state(), _tensors(modules)
    try:
        with default_device, pyro.validation_enabled():
            model_trace, guide_trace = lean_traces(model, guide, *batch)
            for trace in (model_trace, guide_trace):  # Pyro's shape and support checks, before any step
                prune_subsample_sites(trace).compute_log_prob()
    except UserError:
        raise
    except Exception as error:  # the program's own bug: one line for the CLI, the traceback chained for Python
        detail = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])[:300]  # Pyro's: site, reason
        raise UserError(f"the model and guide failed on a first batch of {batch[0].shape[0]} rows "
                        f"({type(error).__name__}: {detail}); run them on a batch by hand to debug") from error
    finally:
        made = bool(_tensors(modules) - existing)  # pyro.module registers tensors already made
        if not made:
            set_rng_state(rng)
        for m, mode in zip(modules, modes):
            m.to(device).train(mode)  # an autoguide's parameters appeared only now
    names = list(dict.fromkeys(s["name"] for t in (model_trace, guide_trace)
                               for s in t.nodes.values() if s["type"] == "param"))
    store = dict(pyro.get_param_store().named_parameters())
    params, seen = [], set()
    for p in [p for m in modules for p in m.parameters()] + [store[n] for n in names if n in store]:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            if p.device != device:
                p.data = p.data.to(device)  # in place: modules and the param store keep the same tensor
            params.append(p)
    if not params:
        raise UserError("the model and guide have no parameters to train: give them nn.Module parameters, "
                        "pyro.param or pyro.module calls, or use an autoguide such as AutoNormal(model)")
    _check_guide(model_trace, guide_trace)
    module_params = {id(p) for m in modules for p in m.parameters()}
    return params, names, sites.layout(model_trace, guide_trace, guide, plate, num_data, batch[0].shape[0],
                                       module_params)


def _tensors(modules: list[nn.Module]) -> set[int]:
    """The ids of every parameter tensor there is: the modules' and the param store's (unconstrained)."""
    return {id(p) for m in modules for p in m.parameters()} | \
        {id(p) for _, p in pyro.get_param_store().named_parameters()}


def _check_guide(model_trace, guide_trace) -> None:
    guide_trace = prune_subsample_sites(guide_trace)  # a plate's own index site is no part of p or q
    for name, site in prune_subsample_sites(model_trace).nodes.items():
        if site["type"] != "sample":
            continue
        if not site["is_observed"] and name not in guide_trace.nodes \
                and site["infer"].get("enumerate") is None and not site["infer"].get("is_auxiliary"):
            raise UserError(f"the guide has no site {name!r}, a latent site of the model: add "
                            f"pyro.sample({name!r}, ...) to the guide (or enumerate it with "
                            "infer={'enumerate': 'parallel'} and TraceEnum_ELBO)")


@torch.no_grad()
def to_device(model: Callable, guide: Callable, device: torch.device) -> tuple[Callable, Callable]:
    """Moves a program's modules and the param store's values to ``device`` in place; returns (model, guide)."""
    for module in owners(model, guide):
        module.to(device)
    for _, p in pyro.get_param_store().named_parameters():
        if p.device != device:
            p.data = p.data.to(device)
    return model, guide


def state(model: Callable, guide: Callable, names: list[str]) -> dict:
    """The program's parameters as states: its modules' ``state_dict`` s and its ``pyro.param`` values."""
    store = dict(pyro.get_param_store().named_parameters())  # unconstrained values, as optimized
    return {"model": _state_dict(owner(model)), "guide": _state_dict(owner(guide)),
            "param_store": {n: store[n].detach() for n in names if n in store}}


def _state_dict(module: nn.Module | None) -> dict | None:
    return None if module is None else module.state_dict()


@torch.no_grad()
def load_state(model: Callable, guide: Callable, saved: dict, path: str | os.PathLike) -> None:
    """Copies a checkpoint's states into the program's parameters, in place (an optimizer keeps its tensors)."""
    load_into({"model": owner(model), "guide": owner(guide)}, saved, path)
    store = dict(pyro.get_param_store().named_parameters())
    for name, value in (saved.get("param_store") or {}).items():
        if name not in store or store[name].shape != value.shape:
            raise UserError(f"checkpoint {str(path)!r} has pyro.param {name!r} "
                            f"{'that this program does not make' if name not in store else 'of another shape'}; "
                            "use the run's own program or start a new --out")
        store[name].copy_(value)
