"""The lecture's small models, built and trained through the package's machinery (every step's experiments)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

import pyro

from pyro_vae import runs, settings
from pyro_vae.guides.delta import DeltaGuide
from pyro_vae.models import likelihoods
from pyro_vae.models.autoencoder import Autoencoder
from pyro_vae.networks import mlp
from pyro_vae.train import fit


def autoencoder(shape, latent_dim: int, c: float = settings.VAESettings.c, hidden: Sequence[int] = (256,),
                linear: bool = False) -> tuple[nn.Module, nn.Module]:
    """(model, guide) of the autoencoder: z = e(x) (Delta guide), p(x|z) = N(d(z), cI), no prior."""
    dim = math.prod(shape)
    if linear:
        encoder, decoder = nn.Linear(dim, latent_dim), nn.Linear(latent_dim, dim)
    else:
        encoder, decoder = mlp(dim, tuple(hidden), latent_dim), mlp(latent_dim, tuple(hidden)[::-1], dim)
    return Autoencoder(decoder, latent_dim, likelihoods.Gaussian(c)), DeltaGuide(encoder)


def vae(shape, latent_dim: int, c: float = settings.VAESettings.c, hidden: Sequence[int] = (256,)) -> tuple[nn.Module, nn.Module]:
    """(model, guide) of the lecture's VAE, from the same builder as ``pyro-vae train``."""
    return runs.build({"model": "vae", "shape": list(shape), "latent_dim": latent_dim, "c": c,
                       "likelihood": "gaussian", "hidden": list(hidden), "network": "mlp"})


def train(model: nn.Module, guide: nn.Module, x: torch.Tensor, **options) -> tuple[nn.Module, nn.Module]:
    """Fits by SVI with :func:`pyro_vae.train.fit` on the CPU, quietly; returns the pair in eval mode.
    ``options`` are fit's (``epochs``, ``lr``, ...), their defaults ``settings.TrainingSettings``'s."""
    fit(model, guide, x, device="cpu", evaluator=None, quiet=True, **options)
    return model.eval(), guide.eval()


def seeded(build, *args, seed: int = 0, **kwargs):
    """``build(*args, **kwargs)`` with Pyro's and torch's RNGs seeded first (network initialization)."""
    pyro.set_rng_seed(seed)
    return build(*args, **kwargs)
