"""The lecture's generative model as a Pyro program.

    p(z)   = N(0, I)            (the prior)
    p(x|z) = N(f(z), c I)       (the likelihood, f the decoder network)
"""

import torch
from torch import nn

import pyro
import pyro.distributions as dist

from pyro_vae.distributions import IsotropicNormal


class VAE(nn.Module):
    """model(x): z ~ p(z) = N(0, I), then x ~ p(x | z) = likelihood(decoder(z)) for every row of x."""

    def __init__(self, decoder: nn.Module, latent_dim: int, likelihood: nn.Module):
        super().__init__()
        self.decoder, self.latent_dim, self.likelihood = decoder, latent_dim, likelihood

    def prior(self, x: torch.Tensor) -> dist.Distribution:
        """p(z) = N(0, I) of ``latent_dim`` dimensions, made on x's device."""
        return IsotropicNormal(x.new_zeros(self.latent_dim), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ p(z) at site "z", then x ~ p(x | z) at site "x" (observed), per row in the "data" plate."""
        with pyro.plate("data", x.shape[0], device=x.device):
            z = pyro.sample("z", self.prior(x))
            return pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z]: the decoded image of a code, for samples, grids and interpolations."""
        return self.likelihood.mean(self.decoder(z))
