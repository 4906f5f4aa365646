"""9. Generation: decode draws from the prior; interpolate between two digits in latent space.

    z ~ p(z) = N(0, I),   x = f(z)
    lerp(a, b, t)  = (1 − t) a + t b
    slerp(a, b, t) = along the great circle from a to b, norm interpolated linearly

In d dimensions, N(0, I) puts its codes near the sphere of radius √d; a straight line between two
codes passes closer to the origin than either end, the spherical path does not. The two ends are the
code of a test "1" and, among the test digits of other classes, the code that points most nearly the
opposite way (the smallest cosine), so the straight line passes close to the origin. Figure: both paths
decoded, and the code norm along each against the norms the prior gives (5% to 95% of ‖z‖, z ~ N(0, I)).

The setting whose prior draws are digits (examples/generation_table.py's ``mixture_prior_8``: Bernoulli
likelihood, MLP 512-256, 8-D, a learned prior p(z) = Σ_k π_k N(m_k, diag s_k²)) gets its own page of 64
draws z ~ p(z), next to the lecture's: generation_samples_learned_prior.png (also the README's figure).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from common import cli, default_out, generator, image_panel, mnist, report, save, trained
from pyro_vae.analysis.latent_space import lerp, slerp
from pyro_vae.analysis.sampling import prior_draws
from pyro_vae.evaluate import encode

LATENT_DIM, STEPS = 8, 10


def main(figures: Path = default_out("generation")) -> dict:
    dataset = mnist()
    model, guide = trained("vae", LATENT_DIM)
    fig, ax = plt.subplots(figsize=(6, 6.4), layout="constrained")
    image_panel(ax, prior_draws(model, 64, seed=0), dataset.shape, 8, "64 decoded draws z ~ N(0, I), x = f(z)")
    save(fig, figures / "generation_samples.png")
    learned, _ = generator("mixture_prior_8", 0)
    fig, ax = plt.subplots(figsize=(6, 6.4), layout="constrained")
    image_panel(ax, prior_draws(learned, 64, seed=0), dataset.shape, 8,
                "64 decoded draws z ~ p(z), a learned mixture prior\n(Bernoulli VAE, 8-D, x = E[x | z])")
    save(fig, figures / "generation_samples_learned_prior.png")

    labels, codes = dataset.test_labels, encode(guide, dataset.test)
    first = int((labels == 1).nonzero()[0])
    cosine = torch.nn.functional.cosine_similarity(codes, codes[first][None])
    cosine[labels == 1] = 2.0  # the other end: another class
    second = int(cosine.argmin())
    t = torch.linspace(0, 1, STEPS)
    paths = {"lerp": lerp(codes[first], codes[second], t), "slerp": slerp(codes[first], codes[second], t)}
    with torch.no_grad():
        rows = torch.cat([model.generate(path) for path in paths.values()])
        typical = torch.quantile(torch.randn(100_000, LATENT_DIM, generator=torch.Generator().manual_seed(0))
                                 .norm(dim=1), torch.tensor([0.05, 0.95]))

    fig, axes = plt.subplots(2, 1, figsize=(8, 6.2), height_ratios=[1.05, 1], layout="constrained")
    image_panel(axes[0], rows, dataset.shape, STEPS,
                f"from a 1 to a {int(labels[second])}: linear (top row) and spherical (bottom row)")
    axes[0].set_xlabel("t = 0 … 1 along the path")
    for (name, path), style in zip(paths.items(), ("o-", "s-")):
        axes[1].plot(t, path.norm(dim=1), style, label=name)
    axes[1].axhspan(float(typical[0]), float(typical[1]), color="grey", alpha=0.2,
                    label=f"5%–95% of ‖z‖ under N(0, I), d = {LATENT_DIM}")
    axes[1].set_xlabel("t (position along the path)")
    axes[1].set_ylabel("code norm ‖z‖")
    axes[1].set_ylim(0, None)
    axes[1].legend()
    save(fig, figures / "interpolation.png")
    return report("generation", {
        **{name: {"code_norms": path.norm(dim=1).round(decimals=3).tolist(),
                  "min_norm": float(path.norm(dim=1).min())} for name, path in paths.items()},
        "ends": {"classes": [1, int(labels[second])], "cosine": float(cosine[second])},
        "prior_norm_5_95": typical.tolist()})


if __name__ == "__main__":
    cli(main, "generation")
