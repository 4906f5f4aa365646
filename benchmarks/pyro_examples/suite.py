"""What the acceptance suite's programs share: Pyro's own SVI loop (the reference answer) and a small MLP.

Each program in this folder is the project's own version of one of Pyro's examples or tutorials. Its
``reference(rows, steps, seed)`` trains it as Pyro's examples do, through :func:`svi_loop`:
``pyro.clear_param_store()``, ``pyro.set_rng_seed(seed)``, a fresh program, then
``pyro.infer.SVI(model, guide, optim, loss).step(*batch)`` ``steps`` times. The seed is set once more
after the program is built, where ``fit`` and ``pyro-vae train`` set it, so that the first random
draws (an autoguide's starting point, a lazily made ``pyro.param``) are the same in both. With a batch size the rows
are shuffled every epoch (Pyro's examples use a ``DataLoader(shuffle=True)``) and each step's loss is
the batch's own, unscaled, as ``pyro.plate("data", x.shape[0])`` gives it.

:func:`concat` broadcasts its inputs before joining them (Pyro's ``examples/vae/utils/custom_mlp.py``
does the same), so a network can take an enumerated label beside a batch of images.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

import pyro
from pyro.infer import SVI


def svi_loop(make: Callable, rows: tuple, optim, loss, steps: int, seed: int = 0, batch_size: int | None = None,
             after_step: Callable | None = None):
    """Pyro's loop: ``steps`` calls of ``SVI.step``; returns (model, guide, losses per example of each step).

    ``make()`` builds the (model, guide) pair after the param store is cleared and the seed set, so
    networks and lazily made ``pyro.param`` values start where ``fit`` would start them. ``after_step``
    runs after each step (sparse_gamma_def's ``clip_params``).
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)  # the networks' initial weights
    model, guide = make()
    pyro.set_rng_seed(seed)  # the first step's draws: parameters made on the first call start where fit's start
    svi = SVI(model, guide, optim, loss)
    n = rows[0].shape[0]
    losses: list[float] = []
    while len(losses) < steps:
        order = torch.randperm(n) if batch_size else torch.arange(n)
        for idx in order.split(batch_size or n):
            losses.append(svi.step(*(t[idx] for t in rows)) / idx.shape[0])
            if after_step is not None:
                after_step()
            if len(losses) == steps:
                break
    return model, guide, losses


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Softplus) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([activation()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


def concat(*tensors: torch.Tensor) -> torch.Tensor:
    """``torch.cat`` along the last dim after broadcasting every other dim (an enumerated y: (K, 1, K))."""
    shape = torch.broadcast_shapes(*(t.shape[:-1] for t in tensors))
    return torch.cat([t.expand(*shape, t.shape[-1]) for t in tensors], dim=-1)
