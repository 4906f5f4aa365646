"""A VAE whose prior is learned: a mixture of Gaussians, trained jointly with the ELBO.

    p(z)   = Σ_k π_k N(z; m_k, diag s_k²),   π = softmax(a)   (K components; a, m, log s learned)
    p(x|z) = likelihood(f(z))                                    (as in the lecture's VAE)

With q(z|x) = N(μ(x), σ(x)²) the ELBO is E_q[log p(x|z) + log p(z) − log q(z|x)]; log p(z) is a
log-sum-exp over the components, so the KL term has no closed form and Trace_ELBO estimates it by the
draw z ~ q(z|x), as it does for the lecture's VAE. Maximizing it over the prior's parameters moves p(z)
towards the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n): the gap that N(0, I) leaves, where prior
draws decode to no digit, closes. "Prior draws" of this model are draws of its learned p(z).
"""

import torch
from torch import nn

import pyro.distributions as dist

from pyro_vae.models.vae import VAE


class MixturePriorVAE(VAE):
    """model(x): z ~ p(z) = Σ_k π_k N(m_k, diag s_k²) (learned), then x ~ likelihood(decoder(z)) per row."""

    def __init__(self, decoder: nn.Module, latent_dim: int, likelihood: nn.Module, components: int = 10):
        super().__init__(decoder, latent_dim, likelihood)
        self.logits = nn.Parameter(torch.zeros(components))                    # a: π = softmax(a)
        self.means = nn.Parameter(torch.randn(components, latent_dim))         # m_k: spread like N(0, I)'s draws
        self.log_scales = nn.Parameter(torch.zeros(components, latent_dim))    # log s_k: unit scales at first

    def prior(self, x: torch.Tensor) -> dist.Distribution:
        """p(z) = Σ_k π_k N(m_k, diag s_k²), on the parameters' device (x is not needed)."""
        components = dist.Normal(self.means, self.log_scales.exp()).to_event(1)
        return dist.MixtureSameFamily(dist.Categorical(logits=self.logits), components)

    @torch.no_grad()
    def prior_sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """(n, latent_dim) draws of the learned p(z): a component k ~ π, then z ~ N(m_k, diag s_k²), seeded."""
        generator = torch.Generator(device=self.means.device).manual_seed(seed)
        k = torch.multinomial(self.logits.softmax(0), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.latent_dim, generator=generator, device=self.means.device)
        return self.means[k] + self.log_scales[k].exp() * noise
