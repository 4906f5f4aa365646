"""9. Generation: decode draws from the prior; interpolate between two digits in latent space.

    z ~ p(z) = N(0, I),   x = f(z)
    lerp(a, b, t)  = (1 − t) a + t b
    slerp(a, b, t) = along the great circle from a to b, norm interpolated linearly

In d dimensions, N(0, I) puts its codes near the sphere of radius √d; a straight line between two
codes passes closer to the origin than either end, the spherical path does not.
"""

from pathlib import Path

import torch

from common import cli, default_out, mnist, report, trained
from pyro_vae import plots
from pyro_vae.analysis import lerp, slerp
from pyro_vae.evaluate import encode

LATENT_DIM, STEPS = 8, 10


def main(figures: Path = default_out("generation")) -> dict:
    dataset = mnist()
    model, guide = trained("vae", LATENT_DIM)
    plots.samples(model, dataset.shape, figures / "generation_samples.png", n=64, seed=0)

    labels = dataset.test_labels
    first, second = int((labels == 1).nonzero()[0]), int((labels == 8).nonzero()[0])
    codes = encode(guide, dataset.test[[first, second]])
    t = torch.linspace(0, 1, STEPS)
    paths = {"lerp": lerp(codes[0], codes[1], t), "slerp": slerp(codes[0], codes[1], t)}
    with torch.no_grad():
        rows = torch.cat([model.generate(path) for path in paths.values()])
    plots.show_grid(plots.image_grid(rows, dataset.shape, rows=2),
                    "from a 1 to an 8: linear (top) and spherical (bottom)", figures / "interpolation.png", 1.0)
    return report("generation", {name: {"code_norms": path.norm(dim=1).round(decimals=3).tolist()}
                                 for name, path in paths.items()})


if __name__ == "__main__":
    cli(main, "generation")
