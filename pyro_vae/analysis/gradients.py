"""The reparameterization trick: pathwise against score-function gradients (§8)."""

from __future__ import annotations

from typing import Iterable

import torch

import pyro
from pyro.infer import Trace_ELBO



def gradient_draws(model, guide, x: torch.Tensor, params: Iterable[torch.Tensor], num_draws: int = 100,
                   objective=None, seed: int = 0) -> torch.Tensor:
    """(num_draws, P): the gradient of the −ELBO w.r.t. ``params``, one fresh draw of z each time."""
    objective = objective or Trace_ELBO()
    params = list(params)
    pyro.set_rng_seed(seed)
    draws = []
    for _ in range(num_draws):
        loss = objective.differentiable_loss(model, guide, x)
        draws.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    return torch.stack(draws)


def gradient_variance(draws: torch.Tensor) -> float:
    """The total variance of a gradient estimator: Σ_p Var[∂_p], the trace of its covariance."""
    return float(draws.double().var(0).sum())
