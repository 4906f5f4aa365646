"""Likelihoods p(x|z) given the decoder output f(z): the seam where new observation models plug in.

Each is an ``nn.Module`` mapping f(z) to a Pyro distribution over one row of x (``to_event(1)``),
with ``mean(f)``, the expected x, for reconstructions and samples.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import pyro.distributions as dist

from pyro_vae.distributions import IndependentBernoulli, IsotropicNormal
from pyro_vae.errors import UserError


class Gaussian(nn.Module):
    """p(x|z) = N(f(z), c I), the lecture's choice, with a fixed observation variance c.

    -log p(x|z) = ‖x − f(z)‖² / 2c + (D/2) log 2πc, so a larger c weights the KL regularizer
    more against reconstruction (smoother, blurrier codes); a small c favours sharp reconstructions.
    """

    def __init__(self, c: float):
        super().__init__()
        self.c = float(c)

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        """p(x | z) = N(f, c I) over each row."""
        return IsotropicNormal(f, self.c ** 0.5)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """E[x | z] = f."""
        return f


class Bernoulli(nn.Module):
    """p(x|z) = Bernoulli(sigmoid(f(z))) on logits, for pixels in [0, 1] (the cross-entropy loss)."""

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        """p(x | z) = Bernoulli(logits=f) over each row."""
        return IndependentBernoulli(f)  # grey levels in [0, 1] are allowed as soft targets

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """E[x | z] = sigmoid(f)."""
        return torch.sigmoid(f)


class GaussianLearned(nn.Module):
    """p(x|z) = N(f(z), σ² I) with one learned σ shared by all pixels (σ-VAE, Rybkin et al. 2021).

    Maximizing the ELBO over σ sets σ² to the mean squared reconstruction error, so the balance of
    reconstruction against KL that a hand-set c fixes is learned instead. ``c`` is the starting σ².
    """

    # log σ = SPEED · log_sigma: Adam moves a parameter by about lr per step whatever its gradient, so
    # unscaled, log σ would need ~1,500 steps at lr 1e-3 to go from c = 1 to c ≈ 0.05
    SPEED = 10.0

    def __init__(self, c: float):
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(0.5 * math.log(c) / self.SPEED))

    @property
    def sigma(self) -> torch.Tensor:
        """σ, the learned observation sd (log σ is learned, scaled for speed)."""
        return (self.SPEED * self.log_sigma).exp()

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        """p(x | z) = N(f, σ² I) over each row."""
        return IsotropicNormal(f, self.sigma.to(f.dtype))

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """E[x | z] = f."""
        return f


class ContinuousBernoulli(nn.Module):
    """p(x|z) = CB(x; λ = sigmoid(f(z))) ∝ λ^x (1 − λ)^(1−x), a proper density on [0, 1]
    (Loaiza-Ganem & Cunningham 2019): the Bernoulli cross-entropy plus its missing normalizer."""

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        """p(x | z) = CB(logits=f) over each row."""
        return dist.ContinuousBernoulli(logits=f).to_event(1)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """E[x | z] of the continuous Bernoulli."""
        return dist.ContinuousBernoulli(logits=f).mean  # not sigmoid(f): the CB mean is pulled toward 1/2


LIKELIHOODS = {"gaussian": Gaussian, "gaussian-learned": GaussianLearned, "bernoulli": Bernoulli,
               "continuous-bernoulli": ContinuousBernoulli}


def make(name: str, c: float | None = None) -> nn.Module:
    """A likelihood by its CLI name; ``c`` is the Gaussian variance (for gaussian-learned, its start)."""
    if name not in LIKELIHOODS:
        raise UserError(f"unknown likelihood {name!r}: choose one of {', '.join(LIKELIHOODS)}")
    if name.startswith("gaussian"):
        if c is None:
            raise UserError(f"the {name} likelihood needs its variance c (the default is pyro_vae.settings.VAESettings.c)")
        return LIKELIHOODS[name](c)
    return LIKELIHOODS[name]()
