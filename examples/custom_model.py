"""Write your own model: a conditional VAE, trained, evaluated and plotted with pyro_vae's public API.

    p(z) = N(0, I),   p(x | z, y) = Bernoulli(decoder([z, onehot y])),   q(z | x, y) = N(μ([x, onehot y]), σ²)

The label y feeds encoder and decoder, so y carries the digit and z is free to carry the style: one z
decoded with y = 0, ..., 9 writes ten digits in one hand. Nothing in pyro_vae/ knows this model: ``fit``
passes ``data = (x, y)`` as ``model(x, y)``, ``guide(x, y)``; any objective, ``log_likelihood`` and the
plots work from the Pyro traces.

    python examples/custom_model.py                       # mnist-5k, 10 epochs: 80 s of CPU time
    python examples/custom_model.py --elbo iwae --particles 5 --is-samples 1000 --out runs/cvae
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn.functional import one_hot, softplus

import pyro
import pyro.distributions as dist

from pyro_vae import data, plots
from pyro_vae.evaluate import elbo_parts, log_likelihood
from pyro_vae.models.likelihoods import make as likelihood
from pyro_vae.networks import mlp
from pyro_vae.objectives import ELBOS, Objective
from pyro_vae.train import fit

CLASSES = 10


def label(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """onehot(y), broadcast to the batch shape of ``like`` (z has a leading sample dim under IWAE/IS)."""
    return one_hot(y, CLASSES).to(like.dtype).expand(*like.shape[:-1], CLASSES)


class ConditionalVAE(nn.Module):
    """model(x, y): z ~ N(0, I), then x ~ Bernoulli(logits = decoder([z, onehot y]))."""

    def __init__(self, data_dim: int, latent_dim: int = 2, hidden: tuple = (256,)):
        super().__init__()
        self.latent_dim, self.likelihood = latent_dim, likelihood("bernoulli")
        self.decoder = mlp(latent_dim + CLASSES, hidden, data_dim)

    def forward(self, x, y):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))
            pyro.sample("x", self.likelihood(self.decoder(torch.cat([z, label(y, z)], -1))), obs=x)

    def generate(self, z, y):
        return self.likelihood.mean(self.decoder(torch.cat([z, label(y, z)], -1)))


class ConditionalGuide(nn.Module):
    """guide(x, y): z ~ q(z | x, y) = N(μ([x, onehot y]), diag σ([x, onehot y])²)."""

    def __init__(self, data_dim: int, latent_dim: int = 2, hidden: tuple = (256,)):
        super().__init__()
        self.trunk = mlp(data_dim + CLASSES, hidden)
        self.mu, self.sigma = nn.Linear(hidden[-1], latent_dim), nn.Linear(hidden[-1], latent_dim)

    def forward(self, x, y):
        h = self.trunk(torch.cat([x, label(y, x)], -1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(self.mu(h), softplus(self.sigma(h)) + 1e-5).to_event(1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k", help="a labelled data set (default mnist-5k)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--elbo", choices=ELBOS, default="trace")
    parser.add_argument("--particles", type=int, default=1)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--is-samples", type=int, default=500, help="K of the IS log-likelihood (default 500)")
    parser.add_argument("--out", default="runs/cvae", help="folder for the figures (default runs/cvae)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    dataset = data.load(args.dataset)
    if dataset.train_labels is None:
        parser.error(f"{args.dataset} has no labels; a conditional VAE needs them")
    pyro.set_rng_seed(0)
    model, guide = ConditionalVAE(dataset.dim), ConditionalGuide(dataset.dim)
    train, test = (dataset.train, dataset.train_labels), (dataset.test, dataset.test_labels)
    objective = Objective(args.elbo, particles=args.particles, beta=args.beta)
    history = fit(model, guide, train, test_data=test, objective=objective, epochs=args.epochs, device=args.device,
                  quiet=True)

    device = next(model.parameters()).device
    test = tuple(t.to(device) for t in test)
    estimate = log_likelihood(model, guide, test, num_samples=args.is_samples)
    report = {"test_elbo": elbo_parts(model, guide, test)["elbo"], "test_log_likelihood": estimate["log_likelihood"],
              "test_log_likelihood_stderr": estimate["log_likelihood_stderr"],
              "test_bits_per_dim": estimate["bits_per_dim"], "is_samples": args.is_samples}

    out = Path(args.out)
    with torch.no_grad():  # rows: one style z ~ N(0, I); columns: the digit y = 0..9
        z = torch.randn(8, 1, model.latent_dim, device=device).expand(8, CLASSES, model.latent_dim)
        y = torch.arange(CLASSES, device=device).expand(8, CLASSES)
        images = model.generate(z.reshape(-1, model.latent_dim), y.reshape(-1))
    plots.show_grid(plots.image_grid(images, dataset.shape, rows=8), "one z per row, y = 0..9 across",
                    out / "styles.png", 1.0)
    plots.elbo_curves(history, out / "elbo.png")  # figure functions return the Figure; the files are these
    figures = [out / "styles.png", out / "elbo.png"]
    print(json.dumps({**report, "figures": [str(f) for f in figures]}, indent=2))


if __name__ == "__main__":
    main()
