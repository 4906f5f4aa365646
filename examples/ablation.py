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
"""

from pathlib import Path

import matplotlib.pyplot as plt

from common import cli, default_out, compact_png, draw_codes, mnist, report, trained
from pyro_vae.analysis import cluster_separation, elbo_terms, posterior_scale
from pyro_vae.evaluate import encode
from pyro_vae.plots import save_figure

VARIANTS = {"recon-only": "reconstruction only", "kl-only": "KL only", "vae": "reconstruction + KL"}
C = 1.0  # p(x|z) = N(f(z), cI) with c = 1: a KL strong enough to shape the map (see examples/role_of_c.py)


def main(figures: Path = default_out("ablation")) -> dict:
    dataset = mnist()
    x, labels = dataset.test, dataset.test_labels
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
    numbers, limit = {}, 3.0  # one scale for the three maps, at least ±3 (where N(0, I) lives)
    for ax, (kind, title) in zip(axes, VARIANTS.items()):
        model, guide = trained(kind, 2, C)
        codes = encode(guide, x)
        draw_codes(ax, codes, posterior_scale(guide, x), labels, title)
        numbers[kind] = {**elbo_terms(model, guide, x), **cluster_separation(codes, labels)}
        numbers[kind]["spread_over_sigma"] = numbers[kind]["spread"] / numbers[kind]["sigma"]
        limit = max(limit, 1.05 * float(codes.abs().max()))
    for ax in axes:
        ax.set_xlim(-limit, limit), ax.set_ylim(-limit, limit), ax.set_aspect("equal")
    compact_png(save_figure(fig, figures / "ablation.png"))
    return report("ablation", numbers)


if __name__ == "__main__":
    cli(main, "ablation")
