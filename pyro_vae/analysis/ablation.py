"""Drop one term of the ELBO with an effect handler, and read the terms of a trained model (§6)."""

from __future__ import annotations

import torch
from torch import nn

import pyro

from pyro_vae.analysis.corruption import decode_codes
from pyro_vae.analysis.latent_space import posterior_scale
from pyro_vae.evaluate import elbo_parts


class Handled(nn.Module):
    """A model or guide run under an effect handler, still an ``nn.Module`` for ``fit``.

    ``Handled(model, objectives.scale_observations(0))`` drops log p(x|z): the KL term alone is left.
    """

    def __init__(self, program: nn.Module, handler):
        super().__init__()
        self.program, self.handler = program, handler

    def forward(self, *args):
        with self.handler:
            return self.program(*args)


def elbo_terms(model, guide, x: torch.Tensor, seed: int = 0) -> dict:
    """Per-example KL(q‖p(z)) and ELBO in nats (one draw of z), reconstruction error ‖x − f(μ(x))‖²,
    and the mean posterior width σ(x) over rows and latent dimensions."""
    pyro.set_rng_seed(seed)
    parts = elbo_parts(model, guide, x)
    mse = float((decode_codes(model, guide, x) - x).pow(2).sum(1).mean())
    return {"kl": parts["kl"], "mse": mse, "elbo": parts["elbo"], "sigma": float(posterior_scale(guide, x).mean())}
