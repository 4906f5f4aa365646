"""Likelihoods p(x|z) given the decoder output f(z): the seam where new observation models plug in.

Each is an ``nn.Module`` mapping f(z) to a Pyro distribution over one row of x (``to_event(1)``),
with ``mean(f)``, the expected x, for reconstructions and samples.
"""

from __future__ import annotations

import torch
from torch import nn

import pyro.distributions as dist


class Gaussian(nn.Module):
    """p(x|z) = N(f(z), c I), the lecture's choice, with a fixed observation variance c.

    -log p(x|z) = ‖x − f(z)‖² / 2c + (D/2) log 2πc, so a larger c weights the KL regularizer
    more against reconstruction (smoother, blurrier codes); a small c favours sharp reconstructions.
    """

    def __init__(self, c: float = 1.0):
        super().__init__()
        self.c = float(c)

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        return dist.Normal(f, self.c ** 0.5).to_event(1)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        return f


class Bernoulli(nn.Module):
    """p(x|z) = Bernoulli(sigmoid(f(z))) on logits, for pixels in [0, 1] (the cross-entropy loss)."""

    def forward(self, f: torch.Tensor) -> dist.Distribution:
        # grey levels in [0, 1] are allowed as soft targets, so the {0, 1} support check is off
        return dist.Bernoulli(logits=f, validate_args=False).to_event(1)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(f)


LIKELIHOODS = {"gaussian": Gaussian, "bernoulli": Bernoulli}


def make(name: str, c: float = 1.0) -> nn.Module:
    """A likelihood by its CLI name."""
    return Gaussian(c) if name == "gaussian" else LIKELIHOODS[name]()
