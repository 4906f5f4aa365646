"""5. An autoencoder's latent space has gaps; a VAE's is meant to be continuous and complete.

Same data, same deeper networks (two hidden layers of 512 and 256 units each side), 2-D codes, trained to
convergence (50 epochs at learning rate 3·10⁻³: the test ELBO moves by less than its seed-to-seed spread
over the last 10), three seeds each:
  - the autoencoder, z = e(x);
  - the VAE with c = 0.1 (as `pyro-vae train`) and with c = 1 (a 10× stronger KL), z ~ N(μ(x), σ(x)²).

Each decoded image is judged by the CNN of ``common.judge`` (a "digit" if it is ≥ 90% sure of one class):
  - grid: a 20×20 grid over the box holding 98% of each model's training codes, and the fraction of its
    points with no training code nearby (farther than 5× the codes' median nearest-neighbour spacing);
  - prior draws: 1,000 codes from N(0, I) for the VAEs, from the Gaussian fitted to the codes for the
    autoencoder;
  - controls: real test digits, and blends (x_a + x_b)/2 of two test digits of different classes.
Figures, one per panel row so that each reads on a slide: latent_gaps_codes.png (seed 0: codes with σ(x)
ellipses), latent_gaps_grid.png (seed 0: the decoded grid), latent_gaps_draws.png (seed 0: decoded prior
draws, and the blends), latent_gaps_rates.png (the rates with their min–max over seeds); each also as .svg.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common import cli, compact_png, default_out, draw_codes, epochs, image_panel, judge, mnist, report, save
from pyro_vae.analysis import experiment
from pyro_vae.analysis.latent_space import empty_fraction, latent_grid, posterior_scale
from pyro_vae.analysis.sampling import blended_digits, gaussian_draws, prior_draws
from pyro_vae.evaluate import encode
from pyro_vae.quality import digit_rate
from pyro_vae.train import fit

HIDDEN, EPOCHS, LR, SEEDS, N = (512, 256), 50, 3e-3, (0, 1, 2), 1000
MODELS = {"ae": ("ae", 0.1, "autoencoder: z = e(x)"), "vae_c0.1": ("vae", 0.1, "VAE, c = 0.1: μ(x), σ(x)"),
          "vae_c1": ("vae", 1.0, "VAE, c = 1: μ(x), σ(x)")}
MEASURES = ("grid_digit_rate", "prior_digit_rate", "prior_coverage", "empty_grid_fraction", "mean_sigma", "spread",
            "test_elbo", "test_elbo_change_last_10_epochs")


@functools.lru_cache(maxsize=None)
def deep(kind: str, c: float, seed: int):
    """(model, guide, per-epoch metrics) of one of the section's models, trained with ``seed``."""
    dataset = mnist()
    build = experiment.autoencoder if kind == "ae" else experiment.vae
    model, guide = experiment.seeded(build, dataset.shape, 2, c, HIDDEN, seed=seed)
    history = fit(model, guide, dataset.train, test_data=dataset.test, epochs=epochs(EPOCHS), lr=LR, seed=seed,
                  device="cpu", quiet=True)
    return model.eval(), guide.eval(), history


def measure(kind: str, c: float, seed: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """(numbers, decoded 15×15 grid, decoded prior draws) of one model and seed."""
    dataset, judged = mnist(), judge()
    model, guide, history = deep(kind, c, seed)  # trained first: no_grad below
    with torch.no_grad():
        return _measure(kind, seed, model, guide, history, dataset, judged)


def _measure(kind, seed, model, guide, history, dataset, judged):
    codes = encode(guide, dataset.train)
    grid = latent_grid(codes, 20)
    z = gaussian_draws(codes, N, seed=100 + seed) if kind == "ae" else None
    prior = model.generate(z) if kind == "ae" else prior_draws(model, N, seed=100 + seed)
    prior_rate = digit_rate(judged, prior)
    last = history[-11:] if len(history) > 10 else history
    numbers = {"grid_digit_rate": digit_rate(judged, model.generate(grid))["digit_rate"],
               "prior_digit_rate": prior_rate["digit_rate"], "prior_coverage": prior_rate["coverage"],
               "empty_grid_fraction": empty_fraction(codes, grid),
               "mean_sigma": float(posterior_scale(guide, dataset.train).mean()),
               "spread": float((codes - codes.mean(0)).pow(2).sum(1).mean().sqrt()),
               "test_elbo": history[-1]["test_elbo"],
               "test_elbo_change_last_10_epochs": last[-1]["test_elbo"] - last[0]["test_elbo"]}
    return numbers, model.generate(latent_grid(codes, 15)), prior[:64]


def spread(rows: list[dict]) -> dict:
    """Mean, min and max over seeds of every measure, and the per-seed values."""
    out = {}
    for key in MEASURES:
        values = [row[key] for row in rows]
        out[key] = {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values)),
                    "per_seed": values}
    return out


def main(figures: Path = default_out("latent_gaps")) -> dict:
    dataset = mnist()
    judged = judge()
    blends = blended_digits(dataset.test, dataset.test_labels, N, seed=0)
    numbers = {"judge_test_accuracy": judged.score(dataset.test, dataset.test_labels.numpy()),
               "real_digit_rate": digit_rate(judged, dataset.test)["digit_rate"],
               "blended_digit_rate": digit_rate(judged, blends)["digit_rate"],
               "hidden": list(HIDDEN), "epochs": EPOCHS, "seeds": list(SEEDS)}
    codes_fig, codes_axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    grid_fig, grid_axes = plt.subplots(1, 3, figsize=(15, 5.6), layout="constrained")
    draws_fig, draws_axes = plt.subplots(1, 4, figsize=(16, 4.8), layout="constrained")
    for column, (name, (kind, c, title)) in enumerate(MODELS.items()):
        rows = []
        for seed in SEEDS:
            row, grid_images, prior_images = measure(kind, c, seed)
            rows.append(row)
            if seed == SEEDS[0]:
                _, guide, _ = deep(kind, c, seed)
                draw_codes(codes_axes[column], encode(guide, dataset.test), posterior_scale(guide, dataset.test),
                           dataset.test_labels, f"{title} (seed {seed})")
                image_panel(grid_axes[column], grid_images, dataset.shape, 15,
                            f"{title}: decoded from a 15×15 grid over the codes\n"
                            f"(20×20 grid: {row['grid_digit_rate']:.0%} judged digits)")
                prior_name = "N(m, S) fitted to the codes" if kind == "ae" else "the prior N(0, I)"
                image_panel(draws_axes[column], prior_images, dataset.shape, 8,
                            f"{title.split(':')[0]}: decoded draws from\n{prior_name} "
                            f"({row['prior_digit_rate']:.0%} judged digits)")
        numbers[name] = spread(rows)
    image_panel(draws_axes[3], blends[:64], dataset.shape, 8,
                f"control: blends (x_a + x_b)/2\n({numbers['blended_digit_rate']:.0%} judged digits)")
    compact_png(save(codes_fig, figures / "latent_gaps_codes.png"))
    save(grid_fig, figures / "latent_gaps_grid.png")
    save(draws_fig, figures / "latent_gaps_draws.png")

    names = list(MODELS)
    rates_fig, rates_axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for ax, key, what in ((rates_axes[0], "grid_digit_rate", "decoded grid points"),
                          (rates_axes[1], "prior_digit_rate", "decoded prior draws")):
        means = [numbers[n][key]["mean"] for n in names]
        low = [numbers[n][key]["min"] for n in names]
        high = [numbers[n][key]["max"] for n in names]
        ax.bar(range(3), means, yerr=[np.subtract(means, low), np.subtract(high, means)], capsize=4,
               color=["tab:red", "tab:blue", "tab:orange"])
        ax.axhline(numbers["real_digit_rate"], color="black", ls="--", lw=1, label="real test digits")
        ax.axhline(numbers["blended_digit_rate"], color="grey", ls=":", lw=1.5, label="blends of two digits")
        ax.set_xticks(range(3), ["autoencoder", "VAE, c = 0.1", "VAE, c = 1"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction judged digits (p ≥ 0.9)")
        ax.set_title(f"{what}: mean and min–max of 3 seeds")
        ax.legend(loc="upper right")
    save(rates_fig, figures / "latent_gaps_rates.png")
    return report("latent gaps", numbers)


if __name__ == "__main__":
    cli(main, "latent_gaps")
