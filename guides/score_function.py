"""The VAE's guide without the reparameterization trick, to compare gradient estimators.

    q_x(z) = N(μ(x), diag σ(x)²)    the same distribution as guides/encoder.py

Drawn with ``rsample``, z = μ(x) + σ(x)·ε is a differentiable function of the encoder, and Pyro's
Trace_ELBO differentiates through it (the pathwise gradient). Here the Normal says it cannot be
reparameterized, so z is a plain draw and Pyro uses the score-function (REINFORCE) estimator
∇ E_q[f(z)] = E_q[f(z) ∇ log q(z)]: unbiased too, but with a much larger variance.
"""

import torch

import pyro
import pyro.distributions as dist

from pyro_vae.guides.encoder import EncoderGuide


class NonReparameterizedNormal(dist.Normal):
    """A Normal whose draws carry no gradient: Pyro's ELBOs then use the score function."""

    has_rsample = False


class ScoreFunctionGuide(EncoderGuide):
    """guide(x): z ~ N(μ(x), diag σ(x)²), sampled without reparameterization."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ N(μ(x), diag σ(x)²) at site "z", without rsample: gradients by the score function."""
        mu, sigma = self.encoder(x)
        with pyro.plate("data", x.shape[0], device=x.device):
            return pyro.sample("z", NonReparameterizedNormal(mu, sigma).to_event(1))
