"""5. An autoencoder's latent space has gaps; a VAE's is meant to be continuous and complete.

Same data, same networks, 2-D codes: the autoencoder (z = e(x)) and the VAE (z ~ N(μ(x), σ(x)²), with
the KL pulling q towards N(0, I)). Figure: test codes coloured by digit (the VAE's with ellipses of
half-widths σ(x)), and the images decoded from a regular 15×15 grid over each map.
Numbers, on a 20×20 grid over the box holding 98% of each model's training codes:
  - the fraction of grid points whose decoded image a held-out classifier is ≥ 90% sure about;
  - the fraction of grid points with no training code nearby (farther than 5× the median
    nearest-neighbour spacing): the holes.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from common import FIGURES, classifier, draw_codes, mnist, report, trained
from pyro_vae.analysis import confident_fraction, empty_fraction, latent_grid, posterior_scale
from pyro_vae.evaluate import encode
from pyro_vae.plots import image_grid, save_figure


def main(figures: Path = FIGURES) -> dict:
    dataset = mnist()
    judge = classifier()
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    numbers = {"classifier_test_accuracy": float(judge.score(dataset.test.numpy(), dataset.test_labels.numpy())),
               "confident_on_real_test_digits": confident_fraction(judge, dataset.test)}
    for column, (kind, title) in enumerate([("ae", "autoencoder: z = e(x)"), ("vae", "VAE: μ(x) and σ(x)")]):
        model, guide = trained(kind, 2)
        codes, test_codes = encode(guide, dataset.train), encode(guide, dataset.test)
        draw_codes(axes[0, column], test_codes, posterior_scale(guide, dataset.test), dataset.test_labels, title)
        with torch.no_grad():
            axes[1, column].imshow(image_grid(model.generate(latent_grid(codes, 15)), dataset.shape, 15),
                                   cmap="gray", vmin=0, vmax=1)
            grid = latent_grid(codes, 20)
            numbers[kind] = {"confident_grid_fraction": confident_fraction(judge, model.generate(grid)),
                             "empty_grid_fraction": empty_fraction(codes, grid)}
        axes[1, column].set_title("decoded from a regular grid over the same box")
        axes[1, column].axis("off")
    save_figure(fig, figures / "latent_gaps.png")
    return report("latent gaps", numbers)


if __name__ == "__main__":
    main()
