"""pyro-vae evaluate RUN: test-set measures of a trained run, as JSON."""

from __future__ import annotations

import json

import torch

from pyro_vae import data as datasets
from pyro_vae import runs
from pyro_vae.commands.options import add_device, positive_int
from pyro_vae.evaluate import elbo_parts, reconstruction_mse
from pyro_vae.train import resolve_device


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="test ELBO and reconstruction error of a run, as JSON",
                       description="Test-set ELBO per example = E_q[log p(x|z)] − KL(q_x(z) ‖ p(z)) in nats, "
                                   "its two parts, and the reconstruction error ‖x − E[x|μ(x)]‖².")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="examples per evaluation batch")
    p.add_argument("--seed", type=int, default=0, help="seed for the Monte Carlo draw of z")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> None:
    result = runs.load(args.run_dir)
    device = resolve_device(args.device)
    dataset = datasets.load(result.config["dataset"], result.config.get("data_dir")).to(device)
    model, guide = result.model.to(device), result.guide.to(device)
    torch.manual_seed(args.seed)
    parts = elbo_parts(model, guide, dataset.test, args.batch_size)
    report = {"run": str(args.run_dir), "test_examples": dataset.test.shape[0],
              **{f"test_{k}": v for k, v in parts.items()},
              "test_reconstruction_mse": reconstruction_mse(model, guide, dataset.test, args.batch_size)}
    print(json.dumps(report, indent=2))
