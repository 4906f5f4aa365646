"""Importance-sampled log-likelihood: throughput in (image, sample) pairs per second against a per-datum loop
and the compute bound.

    .venv/bin/python benchmarks/loglik_throughput.py [--threads N] [--repeats 3]

The lecture's default VAE (Gaussian likelihood, c = 0.1) with the 784-400-50 network, on Fashion-MNIST
test images (else MNIST-5k), K samples z ~ q(z|x) per image:

- ``evaluate.log_likelihood`` with its default ``max_pairs``, and with the earlier 65,536;
- a per-datum loop, the way other libraries do it: one image at a time, its K samples in one batch
  through the decoder, log p(x|z) + log p(z) − log q(z|x), a log-sum-exp;
- the compute bound: pairs × the decoder's forward FLOPs ÷ the matmul rate measured here, now, on
  the decoder's own matrix shapes.

K = 1000 uses the first 100 of the 1,000 test images (100,000 pairs per run, as for K = 100) to keep
``make bench`` short; pairs per second do not depend on the number of images once a pass is full.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from _common import BIG, Timer, build, interleaved, log, parse_args, table, training_images, write_json
from pyro_vae.evaluate import log_likelihood

C = 0.1


@torch.no_grad()
def per_datum(model, guide, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    prior = torch.distributions.Normal(x.new_zeros(()), x.new_ones(()))
    out = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        mu, sigma = guide.encoder(xi)
        q = torch.distributions.Normal(mu, sigma)
        z = q.sample((num_samples,)).squeeze(1)
        log_w = model.likelihood(model.decoder(z)).log_prob(xi) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        out.append(torch.logsumexp(log_w, 0) - math.log(num_samples))
    return torch.stack(out)


def decoder_flops(decoder: nn.Module) -> int:
    return sum(2 * m.in_features * m.out_features for m in decoder.modules() if isinstance(m, nn.Linear))


def matmul_rate(decoder: nn.Module, rows: int = 2048, repeats: int = 20) -> float:
    """FLOP/s of the decoder's matrix products (rows × in @ in × out for every Linear), this process, now."""
    layers = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    inputs = [torch.randn(rows, m.in_features) for m in layers]
    weights = [m.weight.detach().t().contiguous() for m in layers]
    for a, w in zip(inputs, weights):
        a @ w
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            for a, w in zip(inputs, weights):
                a @ w
        best = min(best, time.perf_counter() - started)
    return rows * repeats * decoder_flops(decoder) / best


def main():
    args = parse_args(__doc__.splitlines()[0])
    _, test, source = training_images()
    images = test[:1000]
    model, guide = build("gaussian", BIG, C)
    model.eval(), guide.eval()
    flops = decoder_flops(model.decoder)
    rows, bounds, results = [], [], {}
    for num_samples, n in [(10, 1000), (100, 1000), (1000, 100)]:
        x = images[:n]
        variants = {
            "log_likelihood (default)": lambda: log_likelihood(model, guide, x, num_samples)["log_likelihood"],
            "log_likelihood, max_pairs=65536 (before)": lambda: log_likelihood(
                model, guide, x, num_samples, max_pairs=65536)["log_likelihood"],
            "per-datum loop": lambda: float(per_datum(model, guide, x, num_samples).mean()),
        }
        log(f"loglik_throughput: K={num_samples}, {n} images")
        log_likelihood(model, guide, x[:4], num_samples), per_datum(model, guide, x[:2], num_samples)  # warm-up
        timer = interleaved(variants, args.repeats, Timer(), log)
        rate = matmul_rate(model.decoder)
        bound = rate / flops  # pairs per second if the decoder's matmuls were all the work
        bounds.append(rate)
        pairs = n * num_samples
        for name in variants:
            wall = timer.median(name)
            results.setdefault(str(num_samples), {})[name] = {
                "pairs_per_s": pairs / wall, "vs_bound": wall / (pairs / bound),
                "vs_per_datum": wall / timer.median("per-datum loop")}
            rows.append([num_samples, n, name, f"{pairs / wall / 1e3:.1f}", f"{wall:.2f}",
                         f"**{wall / (pairs / bound):.2f}×**", f"{wall / timer.median('per-datum loop'):.2f}×"])
        rows.append([num_samples, n, "compute bound (decoder FLOPs ÷ matmul rate)", f"{bound / 1e3:.1f}",
                     f"{pairs / bound:.2f}", "1.00×", ""])
    print(f"Data: {source}, test images; Gaussian likelihood (c = {C}), 784-400-50; decoder forward "
          f"{flops / 1e3:.0f} kFLOP per pair; torch threads: {args.threads}; median of {args.repeats} runs, "
          f"interleaved, after a warm-up. Matmul rate measured per K: "
          + ", ".join(f"{r / 1e9:.0f}" for r in bounds) + " GFLOP/s.\n")
    print(table(["K", "images", "estimator", "k pairs/s", "wall s", "time ÷ bound's time",
                 "time vs per-datum"], rows))
    write_json(args, results)


if __name__ == "__main__":
    main()
