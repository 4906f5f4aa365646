"""pyro-vae plot RUN: redraw a run's figures from its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from pyro_vae import data as datasets
from pyro_vae import plots, runs


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="redraw a run's figures from its checkpoint",
                       description="Reconstructions, prior samples, ELBO curves, latent codes and (2-D latent) "
                                   "the decoded manifold, into RUN/figures/.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train")
    p.set_defaults(run=run)


def run(args) -> None:
    result = runs.load(args.run_dir)
    dataset = datasets.load(result.config["dataset"], result.config.get("data_dir"))
    paths = plots.all_figures(result.model, result.guide, dataset, result.metrics, Path(args.run_dir) / "figures")
    print(json.dumps({"figures": [str(p) for p in paths]}))
