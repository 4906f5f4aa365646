"""Pyro model programs p(z) p(x|z): each is an ``nn.Module`` whose ``forward(x)`` is the model."""

from pyro_vae.models.vae import VAE
from pyro_vae.models.autoencoder import Autoencoder

__all__ = ["VAE", "Autoencoder"]
