"""1. PCA is the best linear encoder/decoder: the lecture's five 2-D points, encoded to 1-D.

    e(x) = wᵀ(x − x̄)        d(z) = x̄ + w z        w: the top eigenvector of the covariance

Prints the lecture's table and draws the points, the principal line and each point's projection.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common import cli, default_out, report, save
from pyro_vae.analysis.subspaces import pca_table

POINTS = {"A": (-0.5, -0.4), "B": (-0.4, -0.1), "C": (0.1, 0.0), "D": (0.3, 0.3), "E": (0.5, 0.2)}


def table(codes: np.ndarray, decoded: np.ndarray) -> str:
    lines = ["Point  Initial        Encoded  Decoded"]
    for (name, (a, b)), z, (u, v) in zip(POINTS.items(), codes[:, 0], decoded):
        lines.append(f"{name:<6} ({a:5.2f},{b:5.2f})  {z:5.2f}    ({u:5.2f},{v:5.2f})")
    return "\n".join(lines)


def main(figures: Path = default_out("pca")) -> dict:
    points = np.array(list(POINTS.values()))
    codes, decoded, components = pca_table(points, 1)
    print(table(codes, decoded))

    fig, ax = plt.subplots(figsize=(4.5, 4))
    line = np.linspace(-0.8, 0.8, 2)[:, None] * components[0] + points.mean(0)
    ax.plot(*line.T, color="tab:blue", lw=1, label="principal direction w")
    for name, x, y in zip(POINTS, points, decoded):
        ax.plot(*np.c_[x, y], color="grey", lw=0.8, ls="--")
        away = (x - y) / max(float(np.linalg.norm(x - y)), 1e-9)  # the label sits beyond x, away from the line
        ax.annotate(name, x, textcoords="offset points", xytext=tuple(11 * away), ha="center", va="center",
                    fontweight="bold")
    ax.scatter(*points.T, color="black", zorder=3, label="x")
    ax.scatter(*decoded.T, color="tab:red", zorder=3, label="d(e(x))")
    ax.margins(0.12)  # room for the labels beyond the outermost points
    ax.set_aspect("equal")
    ax.set_xlabel("x₁"), ax.set_ylabel("x₂")
    ax.legend(loc="upper left")
    ax.set_title("PCA: encode to 1-D, decode back")
    save(fig, figures / "pca.png")
    error = float(((points - decoded) ** 2).sum(1).mean())
    return report("pca", {"direction": components[0].round(4).tolist(), "mean_squared_error": round(error, 4)})


if __name__ == "__main__":
    cli(main, "pca")
