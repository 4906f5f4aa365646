"""Building a run's programs and data from its config: the lecture's VAE and autoencoder, their objective,
a user's program file, the data set as it was split for training.

``runs.py`` reopens run folders; ``pyro-vae train`` and ``runs`` build with these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from pyro_vae import program as programs
from pyro_vae import settings
from pyro_vae.errors import UserError
from pyro_vae.guides import DeltaGuide, Encoder, EncoderGuide
from pyro_vae.models import VAE, Autoencoder
from pyro_vae.models import likelihoods
from pyro_vae.networks import conv_decoder, conv_trunk, data_dim, mlp
from pyro_vae.objectives import Objective

if TYPE_CHECKING:
    from pyro_vae.data import Dataset


def build_vae(config: dict) -> tuple[nn.Module, nn.Module]:
    """The lecture's VAE: decoder f for p(x|z), encoder (μ, σ) for q_x(z), MLP or CNN networks.

    ``config`` holds ``shape`` (of one example) and fields of :class:`pyro_vae.settings.VAESettings`; absent
    fields take their defaults, defined there once.
    """
    shape, vae = _shape(config), settings.VAESettings.from_dict(config)
    latent, hidden = vae.latent_dim, vae.hidden
    if vae.network == "conv":
        trunk, decoder = conv_trunk(shape, hidden[0]), conv_decoder(latent, shape, hidden[0])
    else:
        trunk, decoder = mlp(data_dim(shape), hidden), mlp(latent, hidden[::-1], data_dim(shape))
    encoder = Encoder(trunk, trunk[-2].out_features, latent)  # the trunk ends in Linear, ReLU
    return VAE(decoder, latent, _likelihood(config)), EncoderGuide(encoder)


def build_autoencoder(config: dict) -> tuple[nn.Module, nn.Module]:
    """The lecture's autoencoder: z = e(x) (a Delta guide), x ~ likelihood(d(z)), the prior masked out, so
    −ELBO = ‖x − d(e(x))‖² / 2c + const for the Gaussian likelihood; MLPs of widths ``hidden``."""
    shape, vae = _shape(config), settings.VAESettings.from_dict(config)
    latent, hidden = vae.latent_dim, vae.hidden
    encoder, decoder = mlp(data_dim(shape), hidden, latent), mlp(latent, hidden[::-1], data_dim(shape))
    return Autoencoder(decoder, latent, _likelihood(config)), DeltaGuide(encoder)


def _shape(config: dict) -> tuple[int, ...]:
    if "shape" not in config:
        raise UserError("the config needs the shape of one example, e.g. {'shape': [1, 28, 28]}")
    return tuple(config["shape"])


def _likelihood(config: dict) -> nn.Module:
    # "gaussian": N(f, c I); "gaussian-learned": N(f, σ² I), σ a parameter in the checkpoint, c its start;
    # "bernoulli", "continuous-bernoulli": on logits f
    vae = settings.VAESettings.from_dict(config)
    return likelihoods.make(vae.likelihood, c=vae.c)


def objective(config: dict) -> Objective:
    """The run's training objective from the config's :class:`pyro_vae.settings.ObjectiveSettings` fields
    (absent keys: their defaults, the plain ELBO, as in runs made before they existed)."""
    o = settings.ObjectiveSettings.from_dict(config)
    return Objective(o.elbo, particles=o.particles, beta=o.beta, kl_warmup=o.kl_warmup, free_bits=o.free_bits,
                     max_plate_nesting=config.get("max_plate_nesting", float("inf")))


def load_data(config: dict) -> Dataset:
    """The data set a run was trained on, split as in training (``test_fraction``; ``arrays`` of a .npz; ``stream``)."""
    from pyro_vae import data

    return data.load(config["dataset"], config.get("data_dir"), test_size=config.get("test_fraction", 0.2), seed=0,
                     arrays=config.get("arrays"), stream=config.get("stream", "auto"),
                     keep_shape=config.get("keep_shape", False))


def program_spec(spec: str) -> str:
    """``FILE.py:NAME`` with FILE made absolute, so the run folder finds it from anywhere."""
    file, name = programs.resolve(spec)
    return f"{file}:{name}"


def row_index(x: torch.Tensor) -> torch.Tensor:
    """Each row's position in the training set, for ``pyro.plate("data", N, subsample=index)``."""
    return torch.arange(x.shape[0], device=x.device)
