"""2. A linear autoencoder finds PCA's subspace, but not PCA's basis.

    e(x) = A x + a,   d(z) = W z + b,   loss ‖x − d(e(x))‖²

The loss depends on W only through its column space (W R and R⁻¹ A give the same map), so SVI
lands on the top-k principal subspace with some basis W that is neither orthonormal nor aligned
with the principal directions. Figure: the k PCA directions above the k columns of W.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common import cli, default_out, mnist, report, save, trained
from pyro_vae.analysis.subspaces import basis_report, pca_table, principal_angles


LATENT_DIM = 6  # the eigenvalue gap λ6/λ7 of MNIST-5k is large (1.31), so the subspace is well defined


def main(figures: Path = default_out("linear_autoencoder")) -> dict:
    dataset = mnist()
    model, guide = trained("linear-ae", LATENT_DIM, n_epochs=40)
    x = dataset.train.numpy()
    codes, decoded, components = pca_table(x, LATENT_DIM)
    basis = model.decoder.weight.detach().numpy()  # D × k: the columns span the decoder's image
    reconstruction = model.generate(guide.encoder(dataset.train)).detach().numpy()

    fig, axes = plt.subplots(2, LATENT_DIM, figsize=(1.4 * LATENT_DIM, 3.2))
    for row, (vectors, name) in enumerate([(components.T, "PCA"), (basis, "linear AE")]):
        for k in range(LATENT_DIM):
            image = vectors[:, k].reshape(28, 28)
            limit = np.abs(image).max()
            axes[row, k].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[row, k].set_xticks([]), axes[row, k].set_yticks([])
            axes[row, k].set_title(f"{name} {k + 1}", fontsize=8)
    fig.suptitle("same subspace, different basis", fontsize=10)
    save(fig, figures / "linear_autoencoder.png")

    numbers = basis_report(basis, components.T)
    numbers["principal_angles"] = principal_angles(basis, components.T).round(2).tolist()
    numbers["pca_mse"] = float(((x - decoded) ** 2).sum(1).mean())
    numbers["linear_ae_mse"] = float(((x - reconstruction) ** 2).sum(1).mean())
    # for scale: what a random 6-D subspace looks like, and why k = 6 (the eigenvalue gap after the 6th)
    random_basis = np.random.default_rng(0).standard_normal((x.shape[1], LATENT_DIM))
    numbers["random_subspace_angles"] = [float(a) for a in principal_angles(random_basis, components.T)[[-1, 0]]]
    eigenvalues = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    numbers["eigenvalue_gap"] = float(eigenvalues[LATENT_DIM - 1] / eigenvalues[LATENT_DIM])
    return report("linear autoencoder", numbers)


if __name__ == "__main__":
    cli(main, "linear_autoencoder")
