"""2½. A nonlinear autoencoder against PCA, the best linear one: reconstruction error per test image.

    PCA, k components:   x̂ = x̄ + (x − x̄) W_kᵀ W_k          (sklearn, fitted on the training digits)
    autoencoder:          x̂ = d(e(x)), one hidden layer of 256 units each side, k-D code, 30 epochs

Both are scored by ‖x − x̂‖² on the 1,000 test digits. PCA's error is drawn for k = 1 … 32; the
autoencoders are the lecture's 2-D one (section 3) and 16-D one (section 4).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from common import cli, default_out, mnist, report, save, trained
from pyro_vae.analysis.corruption import decode_codes
from pyro_vae.analysis.subspaces import pca_errors

KS = (2, 16)


def main(figures: Path = default_out("pca_vs_autoencoder")) -> dict:
    dataset = mnist()
    x = dataset.test
    curve = pca_errors(dataset.train, x, range(1, 33))
    autoencoder = {k: float((decode_codes(*trained("ae", k), x) - x).pow(2).sum(1).mean()) for k in KS}

    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(list(curve), list(curve.values()), ".-", color="tab:blue", label="PCA (best linear encoder/decoder)")
    ax.plot(list(autoencoder), list(autoencoder.values()), "s", color="tab:red", ms=8,
            label="autoencoder (one hidden layer of 256)")
    for k in KS:
        ax.annotate(f"{curve[k]:.1f}", (k, curve[k]), textcoords="offset points", xytext=(4, 4), fontsize=8,
                    color="tab:blue")
        ax.annotate(f"{autoencoder[k]:.1f}", (k, autoencoder[k]), textcoords="offset points", xytext=(4, -12),
                    fontsize=8, color="tab:red")
    ax.set_xlabel("code dimension k")
    ax.set_ylabel("squared error ‖x − x̂‖² per test image")
    ax.set_title("reconstruction error: PCA against a nonlinear autoencoder", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, figures / "pca_vs_autoencoder.png")
    return report("pca vs autoencoder", {"pca": {str(k): curve[k] for k in KS},
                                         "autoencoder": {str(k): autoencoder[k] for k in KS},
                                         "pca_curve": [curve[k] for k in curve],
                                         "pca_components_matching_16": _matching(curve, autoencoder[16])})


def _matching(curve: dict, error: float) -> int | None:
    """The fewest PCA components whose error is at most ``error`` (None beyond the curve)."""
    return next((k for k, e in curve.items() if e <= error), None)


if __name__ == "__main__":
    cli(main, "pca_vs_autoencoder")
