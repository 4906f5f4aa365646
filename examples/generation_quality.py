"""9½. Generation, measured: are decoded prior draws digits, of every class, and spread like the data?

    lecture's VAE:   z ~ p(z) = N(0, I),                     x = f(z)      (Gaussian likelihood, c = 0.1 or 1)
    learned prior:   z ~ p(z) = Σ_k π_k N(m_k, diag s_k²),   x = E[x | z]  (Bernoulli likelihood, p(z) learned)
    autoencoder:     z ~ N(m, S) fitted to its training codes e(x) (mean and covariance), x = d(z)

The judge is MNIST-5k's cached CNN (``quality.judge``: trained on the 4,000 training digits with an extra
"no digit" class); its accuracy on the 1,000 test digits is reported. For 1,000 draws of each generator
(seeds 0, 1, 2), ``quality.sample_quality`` against the 1,000 test digits:
  - the digit rate: the fraction the judge assigns to one digit with probability ≥ 0.9;
  - the coverage: the effective number of classes among those, exp(entropy), 10 if all are alike;
  - the Fréchet distance, precision and recall in the judge's 128-D feature space (docs/generation.md).
The lecture's models have 8-D codes and the networks of section 9 (30 epochs); the learned-prior VAE is
examples/generation_table.py's ``mixture_prior_8`` (MLP 512-256, 8-D, 300 epochs). The same measures for
1,000 real training digits and for blends (x_a + x_b)/2 of two training digits of different classes say
where a generator sits between "real digit" and "ink that is no digit".
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common import cli, default_out, epochs, generator, image_panel, mnist, report, save, trained
from pyro_vae import quality
from pyro_vae.analysis.sampling import blended_digits, gaussian_draws, prior_draws
from pyro_vae.evaluate import encode

LATENT_DIM, N, SEEDS = 8, 1000, (0, 1, 2)
LEARNED_PRIOR = "mixture_prior_8"  # the setting of examples/generation_table.py whose prior draws are digits
GENERATORS = {"vae_c0.1": "VAE, c = 0.1: f(z), z ~ N(0, I)", "vae_c1": "VAE, c = 1: f(z), z ~ N(0, I)",
              "ae_fitted_gaussian": "autoencoder: d(z), z ~ N(m, S) fitted to its codes",
              "vae_learned_prior": "VAE, Bernoulli, learned mixture prior: z ~ p(z)"}
MEASURES = ("digit_rate", "coverage", "frechet_distance", "precision", "recall")


def draws(name: str, seed: int) -> torch.Tensor:
    """N decoded draws of one generator, trained with ``seed``."""
    if name == "ae_fitted_gaussian":
        model, guide = trained("ae", LATENT_DIM, seed=seed)
        with torch.no_grad():
            return model.generate(gaussian_draws(encode(guide, mnist().train), N, seed=100 + seed))
    if name == "vae_learned_prior":
        model, _ = generator(LEARNED_PRIOR, seed)
        return prior_draws(model, N, seed=100 + seed)
    model, _ = trained("vae", LATENT_DIM, 0.1 if name == "vae_c0.1" else 1.0, seed=seed)
    return prior_draws(model, N, seed=100 + seed)


def spread(per_seed: list[dict]) -> dict:
    """Each measure's mean over the seeds, with its min and max (``digit_rate_min``, ...), and the seeds' own."""
    out = {}
    for measure in MEASURES:
        values = [row[measure] for row in per_seed]
        out.update({measure: float(np.mean(values)), f"{measure}_min": min(values), f"{measure}_max": max(values)})
    return {**out, "per_seed": per_seed}


def main(figures: Path = default_out("generation_quality")) -> dict:
    dataset = mnist()
    judged = quality.judge(dataset)
    measured = lambda images: {k: v for k, v in quality.sample_quality(judged, images, dataset.test).items()  # noqa: E731
                               if k in MEASURES}
    real = dataset.train[:N]
    blends = blended_digits(dataset.train, dataset.train_labels, N, seed=0)
    numbers = {"judge_test_accuracy": judged.test_accuracy, "epochs_learned_prior": epochs(300),
               "real": measured(real), "blended": measured(blends)}
    images = {}
    for name in GENERATORS:
        per_seed = []
        for seed in SEEDS:
            generated = draws(name, seed)
            per_seed.append(measured(generated))
            images.setdefault(name, generated[:36])
        numbers[name] = spread(per_seed)

    # a 2 × 3 grid: real digits and the four generators, and the rates
    fig, grid = plt.subplots(2, 3, figsize=(13, 9), layout="constrained")
    image_panel(grid[0, 0], real[:36], dataset.shape, 6,
                f"real training digits\ndigit rate {numbers['real']['digit_rate']:.0%}")
    for ax, (name, title) in zip([grid[0, 1], grid[0, 2], grid[1, 0], grid[1, 1]], GENERATORS.items()):
        row = numbers[name]
        image_panel(ax, images[name], dataset.shape, 6,
                    f"{title}\ndigit rate {row['digit_rate']:.0%}, {row['coverage']:.1f} classes, "
                    f"FD {row['frechet_distance']:.0f}")
    labels = ["real", "VAE\nc = 0.1", "VAE\nc = 1", "AE +\nfitted N", "VAE,\nlearned\nprior", "blends of\n2 digits"]
    keys = ["real", *GENERATORS, "blended"]
    means = [numbers[k]["digit_rate"] for k in keys]
    low = [numbers[k].get("digit_rate_min", numbers[k]["digit_rate"]) for k in keys]
    high = [numbers[k].get("digit_rate_max", numbers[k]["digit_rate"]) for k in keys]
    grid[1, 2].bar(range(len(keys)), means, color=["grey", "tab:blue", "tab:orange", "tab:red", "tab:green",
                                                   "lightgrey"],
                   yerr=[np.subtract(means, low), np.subtract(high, means)], capsize=4)
    grid[1, 2].set_xticks(range(len(keys)), labels, fontsize=8)
    grid[1, 2].set_ylim(0, 1)
    grid[1, 2].set_ylabel("judged digits (p ≥ 0.9), fraction of draws")
    grid[1, 2].set_xlabel("source of the images (bars: seeds 0–2, min–max)")
    grid[1, 2].set_title(f"judge: CNN, {numbers['judge_test_accuracy']:.1%} test accuracy")
    save(fig, figures / "generation_quality.png")
    return report("generation quality", numbers)


if __name__ == "__main__":
    cli(main, "generation_quality")
