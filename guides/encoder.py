"""The lecture's amortized encoder as a Pyro guide.

    q_x(z) = N(μ(x), diag σ(x)²)    one network, shared by every x
"""

import torch
from torch import nn
from torch.nn.functional import softplus

import pyro

from pyro_vae.distributions import DiagonalNormal


class Encoder(nn.Module):
    """x ↦ (μ(x), σ(x)): a shared trunk, then a μ head and a σ head (softplus keeps σ > 0)."""

    def __init__(self, trunk: nn.Module, trunk_dim: int, latent_dim: int):
        super().__init__()
        self.trunk = trunk
        self.mu = nn.Linear(trunk_dim, latent_dim)
        self.sigma = nn.Linear(trunk_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(x), σ(x)), each (N, latent_dim), σ > 0."""
        h = self.trunk(x)
        return self.mu(h), softplus(self.sigma(h)) + 1e-5  # floor avoids σ = 0 and log q = ∞


class EncoderGuide(nn.Module):
    """guide(x): z ~ q_x(z) = N(μ(x), diag σ(x)²) for every row of x."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ N(μ(x), diag σ(x)²) at site "z" in the "data" plate; returns z."""
        mu, sigma = self.encoder(x)
        with pyro.plate("data", x.shape[0], device=x.device):
            return pyro.sample("z", DiagonalNormal(mu, sigma))
