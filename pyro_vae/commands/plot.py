"""pyro-vae plot RUN: redraw a run's figures from its checkpoint."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Adds ``plot`` to the subparsers."""
    p = sub.add_parser("plot", help="redraw a run's figures from its checkpoint",
                       description="VAE runs: reconstructions, prior samples, ELBO curves, latent codes and (2-D "
                                   "latent) the decoded manifold. Topic runs: topic words and document topics. IRT "
                                   "runs: item characteristic curves. Into RUN/figures/.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train, topics or irt")
    p.set_defaults(run=run)


def run(args) -> None:
    """Redraws the run's figures and prints their paths as JSON."""
    import json

    from pyro_vae import runs

    paths = runs.load(args.run_dir).figures()
    print(json.dumps({"figures": [str(p) for p in paths]}))
