"""10. Attribute vectors (the lecture's "smile vector"): stroke thickness in MNIST.

    v = mean{μ(x) : x thick} − mean{μ(x) : x thin}        then decode f(μ(x) + α v)

Thick and thin are the top and bottom quarter of each digit class by pixel mass Σᵢ xᵢ, so both
groups hold every class alike and v carries thickness, not identity. Adding α v to a code thickens
the decoded digit; the classifier checks that the digit stays the same digit.
"""

from pathlib import Path

import torch

import matplotlib.pyplot as plt

from common import classifier, cli, default_out, image_panel, mnist, report, save, trained
from pyro_vae.analysis.latent_space import attribute_vector
from pyro_vae.evaluate import encode

LATENT_DIM = 8
ALPHAS = torch.linspace(-1.5, 1.5, 7)


def thick_and_thin(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the rows in the top and the bottom quarter of their class by pixel mass."""
    mass = x.sum(1)
    thick, thin = torch.zeros_like(labels, dtype=torch.bool), torch.zeros_like(labels, dtype=torch.bool)
    for k in labels.unique():
        rows = labels == k
        lo, hi = torch.quantile(mass[rows], torch.tensor([0.25, 0.75]))
        thick |= rows & (mass >= hi)
        thin |= rows & (mass <= lo)
    return thick, thin


def main(figures: Path = default_out("attribute_vector")) -> dict:
    dataset = mnist()
    model, guide = trained("vae", LATENT_DIM)
    thick, thin = thick_and_thin(dataset.train, dataset.train_labels)
    codes = encode(guide, dataset.train)
    keep = thick | thin
    vector = attribute_vector(codes[keep], thick[keep])

    test_codes = encode(guide, dataset.test)
    with torch.no_grad():
        steps = [model.generate(test_codes + alpha * vector) for alpha in ALPHAS]
    rows = torch.stack([step[:6] for step in steps], 1).reshape(-1, dataset.dim)  # one digit per row
    fig, ax = plt.subplots(figsize=(5.6, 5.2), layout="constrained")
    image_panel(ax, rows, dataset.shape, len(ALPHAS), "f(μ(x) + α·v): six test digits, one per row",
                column_labels=[f"{alpha:+.1f}" for alpha in ALPHAS.tolist()])
    ax.set_xlabel("α (how much of the thickness vector v is added)")
    save(fig, figures / "attribute_vector.png")
    judge, base = classifier(), steps[len(ALPHAS) // 2]
    base_class = judge.predict(base.clamp(0, 1).numpy())
    return report("attribute vector", {
        "alpha": ALPHAS.tolist(),
        "mean_pixel_mass": [float(step.clamp(0, 1).sum(1).mean()) for step in steps],
        "same_class_as_alpha_0": [float((judge.predict(step.clamp(0, 1).numpy()) == base_class).mean())
                                  for step in steps]})


if __name__ == "__main__":
    cli(main, "attribute_vector")
