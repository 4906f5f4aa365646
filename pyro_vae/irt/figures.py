"""Figures of an IRT run: each function returns a matplotlib ``Figure`` and saves it only when given a path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from pyro_vae.guides.irt import IRTGuide
from pyro_vae.models.irt import IRT
from pyro_vae.plots import finish


def item_curves(model: IRT, guide: IRTGuide, items: list[str], ability_means: np.ndarray,
                path: str | Path | None = None) -> Figure:
    """P(right | ability) = σ(η(ability, item)) for every item at its estimate (posterior mean), above a
    histogram of the students' ability means."""
    center = float(model.mu.detach()) if model.kind == "lecture" else 0.0  # the prior mean ability, ± 4 prior sds
    grid = torch.linspace(min(center - 4, float(ability_means.min()) - 0.5),
                          max(center + 4, float(ability_means.max()) + 0.5), 200)
    estimates = {name: guide.items.posterior(name).mean.detach() for name in model.item_sites}
    with torch.no_grad():
        curves = torch.sigmoid(model.logits(grid[:, None], estimates)).numpy()
    fig = Figure(figsize=(6, 4.5))
    ax, rug = fig.subplots(2, 1, sharex=True, height_ratios=(4, 1))
    for t, item in enumerate(items[:20]):  # more than 20 curves are not readable
        ax.plot(grid.numpy(), curves[:, t], label=item)
    ax.set_ylabel("P(right | ability)")
    ax.set_title(f"item characteristic curves ({model.kind})")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2)
    rug.hist(ability_means, bins=40, color="grey")
    rug.set_xlabel("ability; below: histogram of the students' posterior means")
    rug.set_ylabel("students")
    return finish(fig, path)
