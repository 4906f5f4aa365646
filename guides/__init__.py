"""Amortized Pyro guides q(z|x): each is an ``nn.Module`` whose ``forward(x)`` is the guide."""

from pyro_vae.guides.encoder import Encoder, EncoderGuide
from pyro_vae.guides.delta import DeltaGuide
from pyro_vae.guides.denoising import DenoisingGuide
from pyro_vae.guides.score_function import ScoreFunctionGuide

__all__ = ["Encoder", "EncoderGuide", "DeltaGuide", "DenoisingGuide", "ScoreFunctionGuide"]
