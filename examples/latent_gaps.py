"""5. An autoencoder's latent space has gaps; a VAE's is meant to be continuous and complete.

Same data, same networks, 2-D codes: the autoencoder (z = e(x)) and the VAE (z ~ N(μ(x), σ(x)²), the
KL pulling q towards N(0, I)), the VAE with c = 0.1 (as `pyro-vae train`) and with c = 1 (a 10× stronger
KL). Figure: test codes coloured by digit (the VAE's with ellipses of half-widths σ(x)), and the images
decoded from a regular 15×15 grid over each map. Numbers, on a 20×20 grid over the box holding 98%
of each model's training codes:
  - the fraction of grid points whose decoded image a held-out classifier is ≥ 90% sure about;
  - the fraction of grid points with no training code nearby (farther than 5× the codes' median
    nearest-neighbour spacing): the holes;
  - the mean σ(x) against the codes' spread: how much of the map each code's region covers.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from common import cli, default_out, compact_png, classifier, draw_codes, mnist, report, trained
from pyro_vae.analysis import confident_fraction, empty_fraction, latent_grid, posterior_scale
from pyro_vae.evaluate import encode
from pyro_vae.plots import image_grid, save_figure

MODELS = {"ae": ("ae", 0.1, "autoencoder: z = e(x)"), "vae_c0.1": ("vae", 0.1, "VAE, c = 0.1: μ(x), σ(x)"),
          "vae_c1": ("vae", 1.0, "VAE, c = 1: μ(x), σ(x)")}


def main(figures: Path = default_out("latent_gaps")) -> dict:
    dataset = mnist()
    judge = classifier()
    fig, axes = plt.subplots(2, len(MODELS), figsize=(3.6 * len(MODELS), 7.2))
    numbers = {"classifier_test_accuracy": float(judge.score(dataset.test.numpy(), dataset.test_labels.numpy())),
               "confident_on_real_test_digits": confident_fraction(judge, dataset.test)}
    for column, (name, (kind, c, title)) in enumerate(MODELS.items()):
        model, guide = trained(kind, 2, c)
        codes, sigma = encode(guide, dataset.train), posterior_scale(guide, dataset.train)
        draw_codes(axes[0, column], encode(guide, dataset.test), posterior_scale(guide, dataset.test),
                   dataset.test_labels, title)
        with torch.no_grad():
            axes[1, column].imshow(image_grid(model.generate(latent_grid(codes, 15)), dataset.shape, 15),
                                   cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            grid = latent_grid(codes, 20)
            numbers[name] = {"confident_grid_fraction": confident_fraction(judge, model.generate(grid)),
                             "empty_grid_fraction": empty_fraction(codes, grid),
                             "mean_sigma": float(sigma.mean()),
                             "spread": float((codes - codes.mean(0)).pow(2).sum(1).mean().sqrt())}
        axes[1, column].set_title("decoded from a regular grid over the codes", fontsize=9)
        axes[1, column].axis("off")
    compact_png(save_figure(fig, figures / "latent_gaps.png"))
    return report("latent gaps", numbers)


if __name__ == "__main__":
    cli(main, "latent_gaps")
