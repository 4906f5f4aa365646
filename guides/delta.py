"""The autoencoder's encoder as a Pyro guide: all of q's mass on one code.

    q_x(z) = δ(z − e(x))        the code z = e(x), with no uncertainty

The VAE's guide (guides/encoder.py) differs in one line: it samples z ~ N(μ(x), diag σ(x)²)
instead. A point mass has log q = 0, so with models/autoencoder.py (the prior dropped) the
negative ELBO is −log p(x | z = e(x)) = ‖x − d(e(x))‖² / 2c + const: the autoencoder's loss.
"""

import torch
from torch import nn

import pyro
import pyro.distributions as dist


class DeltaGuide(nn.Module):
    """guide(x): z = e(x) for every row of x, recorded as a Delta site named ``"z"``."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder  # e: x ↦ z, any network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z = e(x) as a Delta site "z" in the "data" plate; returns z."""
        with pyro.plate("data", x.shape[0], device=x.device):
            return pyro.sample("z", dist.Delta(self.encoder(x)).to_event(1))
