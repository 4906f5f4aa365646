"""6. Ablation: reconstruction only, KL only, both.

    reconstruction only:  E_q log p(x|z)                     (log p(z) − log q(z|x) masked out)
    KL only:              −KL(q(z|x) ‖ p(z))                 (log p(x|z) masked out)
    both:                 E_q log p(x|z) − KL(q(z|x) ‖ p(z)) (the ELBO)

with p(x|z) = N(f(z), I), i.e. c = 1.

The terms are dropped by effect handlers around the same VAE model and guide: β = 0 in
``objectives.Objective`` scales the latent sites to 0, ``objectives.scale_observations(0)`` the observed
one. Every variant is then measured with the full ELBO: KL, reconstruction error, the posterior width
σ(x) (drawn as ellipses), and how the classes sit in the 2-D latent map (how well a 10-nearest-neighbour
vote reads the digit off its code; mean distance between class centroids; overall spread).

Figure, top row: the three maps of μ(x) on one scale, with ellipses of half-widths σ(x). Bottom row, each
on its own scale: 40 draws z ~ q(z|x) for each of 6 test digits of different classes, so one sees what a
code is under each objective: a point (reconstruction only), the whole prior (KL only), or a small region
(both).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import pyro
import torch

from common import cli, default_out, compact_png, draw_codes, mnist, plt_colours, report, save, trained
from pyro_vae.analysis.ablation import elbo_terms
from pyro_vae.analysis.latent_space import cluster_separation, posterior_scale
from pyro_vae.evaluate import encode

VARIANTS = {"recon-only": "reconstruction only", "kl-only": "KL only", "vae": "reconstruction + KL"}
C = 1.0  # p(x|z) = N(f(z), cI) with c = 1: a KL strong enough to shape the map (see examples/role_of_c.py)


def main(figures: Path = default_out("ablation")) -> dict:
    dataset = mnist()
    x, labels = dataset.test, dataset.test_labels
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.6), layout="constrained")
    numbers, limit = {}, 3.0  # one scale for the three maps, at least ±3 (where N(0, I) lives)
    examples = torch.stack([(labels == k).nonzero()[0, 0] for k in (0, 1, 3, 4, 7, 8)])  # 6 digits, 6 classes
    for column, (kind, title) in enumerate(VARIANTS.items()):
        model, guide = trained(kind, 2, C)
        codes = encode(guide, x)
        numbers[kind] = {**elbo_terms(model, guide, x), **cluster_separation(codes, labels)}
        numbers[kind]["spread_over_sigma"] = numbers[kind]["spread"] / numbers[kind]["sigma"]
        draw_codes(axes[0, column], codes, posterior_scale(guide, x), labels,
                   f"{title}\nmean σ(x) = {numbers[kind]['sigma']:.3f}, spread / σ = "
                   f"{numbers[kind]['spread_over_sigma']:.3g}")
        limit = max(limit, 1.05 * float(codes.abs().max()))
        pyro.set_rng_seed(0)
        with torch.no_grad():  # 40 draws z ~ q(z|x) of each of the 6 digits
            draws = torch.stack([pyro.poutine.trace(guide).get_trace(x[examples]).nodes["z"]["value"]
                                 for _ in range(40)])
        ax = axes[1, column]
        for i, row in enumerate(examples):
            ax.scatter(*draws[:, i].T, s=6, color=plt_colours(labels[row][None])[0], alpha=0.6,
                       label=f"digit {int(labels[row])}")
        ax.set_title(f"{title}: 40 draws z ~ q(z|x) of 6 digits (own scale)", fontsize=9)
        ax.set_xlabel("z₁"), ax.set_ylabel("z₂")
        ax.legend(markerscale=2)
    for ax in axes[0]:
        ax.set_xlim(-limit, limit), ax.set_ylim(-limit, limit), ax.set_aspect("equal")
    compact_png(save(fig, figures / "ablation.png"))
    return report("ablation", numbers)


if __name__ == "__main__":
    cli(main, "ablation")
