"""Pyro model programs p(z) p(x|z): each is an ``nn.Module`` whose ``forward(x)`` is the model."""

from pyro_vae.models.vae import VAE

__all__ = ["VAE"]
