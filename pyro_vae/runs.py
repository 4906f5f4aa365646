"""A run folder is the unit a user shares: ``config.json`` rebuilds the model, ``checkpoint.pt`` fills it.

    runs/NAME/config.json     everything needed to rebuild model and guide, and the data's name
    runs/NAME/metrics.jsonl   one line per epoch
    runs/NAME/checkpoint.pt   states only: model, guide, optimizer, RNGs, epoch
    runs/NAME/figures/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from pyro_vae import checkpoint as ckpt
from pyro_vae.errors import UserError
from pyro_vae.guides import Encoder, EncoderGuide
from pyro_vae.models import VAE
from pyro_vae.models import likelihoods
from pyro_vae.networks import conv_decoder, conv_trunk, data_dim, mlp
from pyro_vae.objectives import Objective


def build_vae(config: dict) -> tuple[nn.Module, nn.Module]:
    """The lecture's VAE: decoder f for p(x|z), encoder (μ, σ) for q_x(z), MLP or CNN networks."""
    shape, latent, hidden = tuple(config["shape"]), config["latent_dim"], tuple(config["hidden"])
    if config.get("network", "mlp") == "conv":
        trunk, decoder = conv_trunk(shape, hidden[0]), conv_decoder(latent, shape, hidden[0])
    else:
        trunk, decoder = mlp(data_dim(shape), hidden), mlp(latent, hidden[::-1], data_dim(shape))
    # "gaussian": N(f, c I); "gaussian-learned": N(f, σ² I), σ a parameter in the checkpoint, c its start;
    # "bernoulli", "continuous-bernoulli": on logits f
    likelihood = likelihoods.make(config["likelihood"], c=config.get("c", 1.0))
    encoder = Encoder(trunk, trunk[-2].out_features, latent)  # the trunk ends in Linear, ReLU
    return VAE(decoder, latent, likelihood), EncoderGuide(encoder)


BUILDERS = {"vae": build_vae}


def objective(config: dict) -> Objective:
    """The run's training objective from its config keys ``elbo``, ``particles``, ``beta``, ``kl_warmup``,
    ``free_bits`` (absent keys: the plain ELBO, as in runs made before they existed)."""
    return Objective(config.get("elbo", "trace"), particles=config.get("particles", 1),
                     beta=config.get("beta", 1.0), kl_warmup=config.get("kl_warmup", 0),
                     free_bits=config.get("free_bits", 0.0))


def build(config: dict) -> tuple[nn.Module, nn.Module]:
    kind = config.get("model", "vae")
    if kind not in BUILDERS:
        raise UserError(f"unknown model {kind!r} in config: choose one of {', '.join(BUILDERS)}")
    return BUILDERS[kind](config)


@dataclass
class Run:
    path: Path
    config: dict
    model: nn.Module
    guide: nn.Module
    metrics: list[dict]


def load(path: str | Path) -> Run:
    """Rebuilds a trained run's model and guide on the CPU from its folder."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{str(path)!r} is not a run folder (no config.json): give the --out of a training run")
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{str(path / 'config.json')!r} is not valid JSON ({error.msg})") from None
    model, guide = build(config)
    state = ckpt.load(path / "checkpoint.pt")
    ckpt.load_into({"model": model, "guide": guide}, state, path / "checkpoint.pt")
    model.eval(), guide.eval()
    metrics_file = path / "metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()] \
        if metrics_file.exists() else []
    return Run(path, config, model, guide, metrics)
