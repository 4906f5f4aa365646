"""Fit time of the amortized ability encoder against the mean-field guide, 2PL, 5,000 students × 50 items.

20% of the answers are missing at random. Each guide is fitted for the same epochs and batch size;
the table gives wall and CPU seconds, the correlation of the estimates with the true parameters, and
the mean distance of q's ability means and sds from the exact posterior at the fitted items (quadrature).
With --reference, each fit's items are also compared with the exact MML estimates and standard errors.

    .venv/bin/python benchmarks/irt_fit.py [--epochs 50 200] [--device cpu] [--reference]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import numpy as np
import torch

from pyro_vae.irt import exams
from pyro_vae.irt import reference
from pyro_vae.irt import fitting, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--students", type=int, default=5000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--missing", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference", action="store_true",
                        help="also fit the exact MML (slow: about a minute) and compare items and their sds with it")
    args = parser.parse_args()

    data = exams.synthetic("2pl", args.students, args.items, args.missing, seed=0)
    truth = {k: v.numpy() for k, v in data.truth.items()}
    print(f"2PL, {args.students} students × {args.items} items, {args.missing:.0%} missing, batch {args.batch_size}, "
          f"device {args.device}, torch threads {1 if args.device == 'cpu' else torch.get_num_threads()}")
    header = (f"{'guide':<10} {'epochs':>6} {'steps':>6} {'wall s':>7} {'cpu s':>7} {'corr b':>7} {'corr a':>7} "
              f"{'corr θ':>7} {'|μ−E[θ|x]|':>11} {'|σ−sd[θ|x]|':>12}")
    print(header)
    print("-" * len(header))
    mml = reference.fit_mml("2pl", data.answers.numpy(), data.mask.numpy()) if args.reference else None
    for epochs in args.epochs:
        for guide_name in ("amortized", "meanfield"):
            wall, cpu = time.perf_counter(), time.process_time()
            with fitting.one_thread() if args.device == "cpu" else nullcontext():
                model, guide, _ = fitting.train(data, "2pl", guide_name, "latent", epochs=epochs,
                                            batch_size=args.batch_size, device=args.device, quiet=True)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            estimates = report.item_estimates(model, guide)
            means, sds = report.abilities(guide, data)
            items = {k: estimates[k] for k in ("difficulty", "discrimination")}
            exact, exact_sd = reference.posterior_ability("2pl", items, data.answers.numpy(), data.mask.numpy())
            corr = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
            steps = epochs * -(-args.students // args.batch_size)
            print(f"{guide_name:<10} {epochs:>6} {steps:>6} {wall:>7.1f} {cpu:>7.1f} "
                  f"{corr(estimates['difficulty'], truth['difficulty']):>7.4f} "
                  f"{corr(estimates['discrimination'], truth['discrimination']):>7.4f} "
                  f"{corr(means, truth['ability']):>7.4f} {np.abs(means - exact).mean():>11.4f} "
                  f"{np.abs(sds - exact_sd).mean():>12.4f}")
            if mml is not None:
                print("           vs MML: " + ", ".join(
                    f"max |Δ{k}| {np.abs(estimates[k] - mml[k]).max():.3f}, median sd/se "
                    f"{np.median(estimates[k + '_sd'] / mml['standard_errors'][k]):.2f}" for k in items))
    best, _ = reference.posterior_ability("2pl", {k: truth[k] for k in ("difficulty", "discrimination")},
                                          data.answers.numpy(), data.mask.numpy())
    best = np.corrcoef(best, truth["ability"])[0, 1]
    print(f"(the exact posterior mean at the true items reaches corr θ {best:.4f})")


if __name__ == "__main__":
    main()
