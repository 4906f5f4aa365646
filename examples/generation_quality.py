"""9½. Generation, measured: are decoded prior draws digits, and of every class?

    VAE:          z ~ p(z) = N(0, I),         x = f(z)
    autoencoder:  z ~ N(m, S) fitted to its training codes e(x) (mean and covariance), x = d(z)

The judge is a small CNN trained on MNIST-5k's 4,000 training digits with an extra "no digit" class
(``quality.train_digit_judge``); its accuracy on the 1,000 test digits is reported. For 1,000 draws of
each generator (8-D codes, the networks of section 9, 30 epochs, seeds 0, 1, 2):
  - the digit rate: the fraction the judge assigns to one digit with probability ≥ 0.9;
  - the coverage: the effective number of classes among those, exp(entropy), 10 if all are alike.
The same two numbers for real test digits and for blends (x_a + x_b)/2 of two digits of different classes
say where a generator sits between "real digit" and "ink that is no digit".
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common import cli, default_out, image_panel, judge, mnist, report, save, trained
from pyro_vae.analysis.sampling import blended_digits, gaussian_draws, prior_draws
from pyro_vae.quality import digit_rate
from pyro_vae.evaluate import encode

LATENT_DIM, N, SEEDS = 8, 1000, (0, 1, 2)
GENERATORS = {"vae_c0.1": "VAE, c = 0.1: f(z), z ~ N(0, I)", "vae_c1": "VAE, c = 1: f(z), z ~ N(0, I)",
              "ae_fitted_gaussian": "autoencoder: d(z), z ~ N(m, S) fitted to its codes"}


def draws(name: str, seed: int) -> torch.Tensor:
    """N decoded draws of one generator, trained with ``seed``."""
    if name == "ae_fitted_gaussian":
        model, guide = trained("ae", LATENT_DIM, seed=seed)
        with torch.no_grad():
            return model.generate(gaussian_draws(encode(guide, mnist().train), N, seed=100 + seed))
    model, _ = trained("vae", LATENT_DIM, 0.1 if name == "vae_c0.1" else 1.0, seed=seed)
    return prior_draws(model, N, seed=100 + seed)


def main(figures: Path = default_out("generation_quality")) -> dict:
    dataset = mnist()
    judged = judge()
    real, blends = dataset.test[:N], blended_digits(dataset.test, dataset.test_labels, N, seed=0)
    numbers = {"judge_test_accuracy": judged.score(dataset.test, dataset.test_labels.numpy()),
               "real": digit_rate(judged, real), "blended": digit_rate(judged, blends)}
    images = {}
    for name in GENERATORS:
        per_seed = []
        for seed in SEEDS:
            generated = draws(name, seed)
            per_seed.append(digit_rate(judged, generated))
            images.setdefault(name, generated[:36])
        rates, coverage = [r["digit_rate"] for r in per_seed], [r["coverage"] for r in per_seed]
        numbers[name] = {"digit_rate": float(np.mean(rates)), "digit_rate_min": min(rates),
                         "digit_rate_max": max(rates), "coverage": float(np.mean(coverage)),
                         "coverage_min": min(coverage), "coverage_max": max(coverage), "per_seed": per_seed}

    # a 2 × 3 grid, not a strip: real digits and the three generators, the blends, and the rates
    fig, grid = plt.subplots(2, 3, figsize=(13, 9), layout="constrained")
    axes = [grid[0, 0], grid[0, 1], grid[0, 2], grid[1, 0], grid[1, 2]]
    image_panel(axes[0], real[:36], dataset.shape, 6, f"real test digits\ndigit rate {numbers['real']['digit_rate']:.0%}")
    for ax, (name, title) in zip(axes[1:4], GENERATORS.items()):
        image_panel(ax, images[name], dataset.shape, 6,
                    f"{title}\ndigit rate {numbers[name]['digit_rate']:.0%}, {numbers[name]['coverage']:.1f} classes")
    image_panel(grid[1, 1], blends[:36], dataset.shape, 6,
                f"control: blends (x_a + x_b)/2 of two digits\ndigit rate {numbers['blended']['digit_rate']:.0%}")
    labels = ["real", "VAE\nc = 0.1", "VAE\nc = 1", "AE +\nfitted N", "blends of\n2 digits"]
    keys = ["real", *GENERATORS, "blended"]
    means = [numbers[k]["digit_rate"] for k in keys]
    low = [numbers[k].get("digit_rate_min", numbers[k]["digit_rate"]) for k in keys]
    high = [numbers[k].get("digit_rate_max", numbers[k]["digit_rate"]) for k in keys]
    axes[4].bar(range(5), means, color=["grey", "tab:blue", "tab:orange", "tab:red", "lightgrey"],
                yerr=[np.subtract(means, low), np.subtract(high, means)], capsize=4)
    axes[4].set_xticks(range(5), labels)
    axes[4].set_ylim(0, 1)
    axes[4].set_ylabel("judged digits (p ≥ 0.9), fraction of draws")
    axes[4].set_xlabel("source of the images (bars: seeds 0–2, min–max)")
    axes[4].set_title(f"judge: CNN, {numbers['judge_test_accuracy']:.1%} test accuracy")
    save(fig, figures / "generation_quality.png")
    return report("generation quality", numbers)


if __name__ == "__main__":
    cli(main, "generation_quality")
