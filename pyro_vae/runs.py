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

import torch
from torch import nn

import pyro

from pyro_vae import checkpoint as ckpt
from pyro_vae import parameters, settings
from pyro_vae import program as programs
from pyro_vae.errors import UserError
from pyro_vae.guides import Encoder, EncoderGuide
from pyro_vae.models import VAE
from pyro_vae.models import likelihoods
from pyro_vae.networks import conv_decoder, conv_trunk, data_dim, mlp
from pyro_vae.objectives import Objective


def build_vae(config: dict, dataset=None) -> tuple[nn.Module, nn.Module]:
    """The lecture's VAE: decoder f for p(x|z), encoder (μ, σ) for q_x(z), MLP or CNN networks.

    ``config`` holds ``shape`` (of one example) and any fields of :class:`pyro_vae.settings.VAE`;
    the others take their defaults.
    """
    if "shape" not in config and dataset is None:
        raise UserError("the VAE's config needs the shape of one example, e.g. {'shape': [1, 28, 28]}")
    shape = tuple(config["shape"]) if "shape" in config else tuple(dataset.shape)
    vae = settings.VAE.from_dict(config)
    latent, hidden = vae.latent_dim, vae.hidden
    if vae.network == "conv":
        trunk, decoder = conv_trunk(shape, hidden[0]), conv_decoder(latent, shape, hidden[0])
    else:
        trunk, decoder = mlp(data_dim(shape), hidden), mlp(latent, hidden[::-1], data_dim(shape))
    # "gaussian": N(f, c I); "gaussian-learned": N(f, σ² I), σ a parameter in the checkpoint, c its start;
    # "bernoulli", "continuous-bernoulli": on logits f
    likelihood = likelihoods.make(vae.likelihood, c=vae.c)
    encoder = Encoder(trunk, trunk[-2].out_features, latent)  # the trunk ends in Linear, ReLU
    return VAE(decoder, latent, likelihood), EncoderGuide(encoder)


def build_program(config: dict, dataset=None):
    """A user's own model and guide, from the file that ``config["program"]`` names (``FILE.py:NAME``)."""
    if dataset is None:
        from pyro_vae import data

        dataset = data.load(config["dataset"], config.get("data_dir"))
    return programs.load(config["program"], dataset)


def program_spec(spec: str) -> str:
    """``FILE.py:NAME`` with FILE made absolute, so the run folder finds it from anywhere."""
    file, name = programs.resolve(spec)
    return f"{file}:{name}"


def row_index(x: torch.Tensor) -> torch.Tensor:
    """Each row's position in the training set, for ``pyro.plate("data", N, subsample=index)``."""
    return torch.arange(x.shape[0], device=x.device)


BUILDERS = {"vae": build_vae, "program": build_program}


def objective(config: dict) -> Objective:
    """The run's training objective from the config's :class:`pyro_vae.settings.Objective` fields
    (absent keys: their defaults, the plain ELBO, as in runs made before they existed)."""
    o = settings.Objective.from_dict(config)
    return Objective(o.elbo, particles=o.particles, beta=o.beta, kl_warmup=o.kl_warmup, free_bits=o.free_bits)


def build(config: dict, dataset=None):
    """(model, guide) from a run's config; ``dataset`` gives a builder the data's shape when the config lacks it."""
    kind = config.get("model", "vae")
    if kind is None:
        raise UserError("this run was trained from Python with fit(..., out=...) but no config=, so config.json "
                        "can't rebuild its model: pass config= (e.g. runs.build's config) or train with --program")
    if kind not in BUILDERS:
        raise UserError(f"unknown model {kind!r} in config: choose one of {', '.join(BUILDERS)}")
    return BUILDERS[kind](config, dataset) if dataset is not None else BUILDERS[kind](config)


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
    state = ckpt.load(path / "checkpoint.pt")
    if config.get("model") == "program":
        from pyro_vae import data

        dataset = data.load(config["dataset"], config.get("data_dir"))
        pyro.clear_param_store()  # the run's pyro.param values come from its checkpoint, none from earlier programs
        model, guide = build(config, dataset)
        rows = dataset.test[:2] if not config.get("index") else dataset.train[:2]
        batch = (rows, row_index(rows)) if config.get("index") else (rows,)
        parameters.initialize(model, guide, batch, torch.device("cpu"), dataset.train.shape[0],
                              config.get("plate", "data"))  # an autoguide's parameters appear on a first call
    else:
        model, guide = build(config)
    parameters.load_state(model, guide, state, path / "checkpoint.pt")
    for module in parameters.owners(model, guide):
        module.eval()
    metrics_file = path / "metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()] \
        if metrics_file.exists() else []
    return Run(path, config, model, guide, metrics)
