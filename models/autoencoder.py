"""The autoencoder as a Pyro program: the VAE's model with the prior dropped.

    p(x|z) = N(d(z), c I)       the likelihood, d the decoder
    p(z)                        sampled, but masked out: it adds nothing to the ELBO

With the Delta guide z = e(x) (guides/delta.py) the negative ELBO is

    −log p(x | e(x)) = ‖x − d(e(x))‖² / 2c + (D/2) log 2πc,

the autoencoder's squared error up to a constant. AE → VAE is two lines: unmask the prior here,
and sample z ~ N(μ(x), σ(x)²) instead of z = e(x) in the guide.
"""

import torch

import pyro
from pyro import poutine

from pyro_vae.models.vae import VAE


class Autoencoder(VAE):
    """model(x): z's prior term is masked out of the ELBO, then x ~ p(x | z) = likelihood(decoder(z))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """z ~ p(z) with its log-density masked out (no KL term), then x ~ p(x | z); returns x."""
        with pyro.plate("data", x.shape[0], device=x.device):
            with poutine.mask(mask=False):  # no pull of the codes towards N(0, I): gaps are allowed
                z = pyro.sample("z", self.prior(x))
            return pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)
