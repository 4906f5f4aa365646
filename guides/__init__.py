"""Amortized Pyro guides q(z|x): each is an ``nn.Module`` whose ``forward(x)`` is the guide."""

from pyro_vae.guides.encoder import Encoder, EncoderGuide

__all__ = ["Encoder", "EncoderGuide"]
