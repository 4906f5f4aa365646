"""pyro-vae evaluate RUN: test-set measures of a trained run, as JSON."""

from __future__ import annotations

import json

import torch

from pyro import poutine

from pyro_vae import data as datasets
from pyro_vae import parameters, runs
from pyro_vae.commands.options import add_device, positive_int
from pyro_vae.data import binarized_test
from pyro_vae.evaluate import elbo_parts, kl_per_dimension, log_likelihood, reconstruction_mse
from pyro_vae.train import resolve_device


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="test ELBO, IS log-likelihood and reconstruction error of a run, as JSON",
                       description="Test-set ELBO per example = E_q[log p(x|z)] − KL(q_x(z) ‖ p(z)) in nats, "
                                   "its two parts, the KL per latent dimension (≈ 0: a collapsed dimension), the "
                                   "reconstruction error ‖x − E[x|μ(x)]‖², and with --is-samples K the "
                                   "importance-sampled log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x) and bits/dim.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder written by pyro-vae train")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="examples per evaluation batch")
    p.add_argument("--seed", type=int, default=0, help="seed for the Monte Carlo draw of z")
    p.add_argument("--is-samples", type=positive_int, metavar="K",
                   help="also estimate log p(x) by importance sampling with K draws from the guide per example "
                        "(K = 5000 is the usual protocol; memory does not grow with K)")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> None:
    result = runs.load(args.run_dir)
    device = resolve_device(args.device)
    dataset = datasets.load(result.config["dataset"], result.config.get("data_dir")).to(device)
    test = binarized_test(dataset.test) if result.config.get("binarize") else dataset.test
    model, guide = parameters.to_device(result.model, result.guide, device)
    torch.manual_seed(args.seed)
    parts = elbo_parts(model, guide, test, args.batch_size)
    report = {"run": str(args.run_dir), "test_examples": test.shape[0],
              **{f"test_{k}": v for k, v in parts.items()},
              "test_reconstruction_mse": reconstruction_mse(model, guide, test, args.batch_size)}
    if "z" in poutine.trace(guide).get_trace(test[:1]).nodes:  # models with a latent site "z"
        report["test_kl_per_dim"] = kl_per_dimension(model, guide, test, args.batch_size)
    sigma = getattr(getattr(model, "likelihood", None), "sigma", None)
    if isinstance(sigma, torch.Tensor):  # gaussian-learned: the σ², i.e. the c, that training chose
        report["learned_c"] = float(sigma.detach()) ** 2
    if args.is_samples:
        estimate = log_likelihood(model, guide, test, num_samples=args.is_samples)
        report.update(is_samples=args.is_samples, test_log_likelihood=estimate["log_likelihood"],
                      test_log_likelihood_stderr=estimate["log_likelihood_stderr"],
                      test_bits_per_dim=estimate["bits_per_dim"])
    print(json.dumps(report, indent=2))
