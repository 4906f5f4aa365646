"""PCA is the best linear encoder/decoder; a linear autoencoder finds PCA's subspace, in another basis (§1, §2)."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch




def pca_table(points: np.ndarray, n_components: int = 1):
    """(codes, decoded, components) of PCA: codes = (x − mean) Wᵀ, decoded = mean + codes W.

    Each component's sign is fixed so that its largest entry is positive (the lecture's convention).
    """
    from sklearn.decomposition import PCA

    pca = PCA(n_components).fit(points)
    flip = np.sign(pca.components_[np.arange(n_components), np.abs(pca.components_).argmax(1)])
    pca.components_ = pca.components_ * flip[:, None]
    codes = pca.transform(points)
    return codes, pca.inverse_transform(codes), pca.components_


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees, largest first, between the column spaces of a (D×k) and b (D×m)."""
    from scipy.linalg import subspace_angles

    return np.degrees(subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def basis_report(basis: np.ndarray, reference: np.ndarray) -> dict:
    """How far the columns of ``basis`` are from an orthonormal basis and from ``reference``'s columns.

    ``orthonormality_error`` is ‖BᵀB − I‖_F; ``alignment`` is the mean |cos| between column i of
    each (1 when the bases agree up to sign); ``max_angle`` the largest principal angle (degrees).
    """
    basis, reference = np.asarray(basis, np.float64), np.asarray(reference, np.float64)
    unit = lambda m: m / np.linalg.norm(m, axis=0, keepdims=True)  # noqa: E731
    cos = np.abs(np.sum(unit(basis) * unit(reference), axis=0))
    gram = basis.T @ basis
    return {"max_angle": float(principal_angles(basis, reference).max()),
            "orthonormality_error": float(np.linalg.norm(gram - np.eye(len(gram)))),
            "alignment": float(cos.mean())}


def pca_errors(train: torch.Tensor, test: torch.Tensor, ks: Iterable[int]) -> dict:
    """{k: mean over test rows of ‖x − x̂‖²}, with x̂ = x̄ + (x − x̄) W_kᵀ W_k the reconstruction by the
    top-k principal directions W_k of the training rows: the best linear autoencoder.

    W_k is the first k right singular vectors of the centred training rows (sklearn's PCA with its exact
    solver): one SVD serves every k, where a PCA fitted per k cost a minute for k = 1..32 on MNIST-5k."""
    train, test = train.detach().cpu().double().numpy(), test.detach().cpu().double().numpy()
    mean = train.mean(0)
    directions = np.linalg.svd(train - mean, full_matrices=False)[2]
    centred = test - mean
    errors = {}
    for k in ks:
        if not 1 <= k <= len(directions):
            raise ValueError(f"k = {k}: PCA of {train.shape[0]} rows of {train.shape[1]} values has 1 to "
                             f"{len(directions)} components")
        w = directions[:k]
        errors[int(k)] = float(((centred - centred @ w.T @ w) ** 2).sum(1).mean())
    return errors
