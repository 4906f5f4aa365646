"""The latent space: gaps between an autoencoder's codes, how classes separate, moving along codes (§5, §9, §10)."""

from __future__ import annotations

import torch

import pyro



def latent_grid(codes: torch.Tensor, n: int = 20, quantile: float = 0.01) -> torch.Tensor:
    """An n×n regular grid over the box spanned by the codes' [quantile, 1 − quantile] range, rows first."""
    lo = torch.quantile(codes, quantile, dim=0)
    hi = torch.quantile(codes, 1 - quantile, dim=0)
    axes = [torch.linspace(float(lo[i]), float(hi[i]), n, dtype=codes.dtype) for i in range(2)]
    x, y = torch.meshgrid(axes[0], axes[1].flip(0), indexing="xy")
    return torch.stack([x, y], -1).reshape(-1, 2)


def empty_fraction(codes: torch.Tensor, grid: torch.Tensor, factor: float = 5.0) -> float:
    """The fraction of grid points with no code nearby: farther from every code than ``factor`` times the
    codes' median nearest-neighbour distance (a scale-free measure of the holes in a latent map)."""
    spacing = torch.cdist(codes, codes).topk(2, largest=False).values[:, 1].median()
    return float((torch.cdist(grid, codes).min(1).values > factor * spacing).double().mean())


@torch.no_grad()
def posterior_scale(guide, x: torch.Tensor, site: str = "z") -> torch.Tensor:
    """σ(x) of q(z|x) for every row (zeros for a Delta guide): how much room each code takes up."""
    return pyro.poutine.trace(guide).get_trace(x).nodes[site]["fn"].stddev


def digit_classifier(x: torch.Tensor, labels: torch.Tensor, seed: int = 0):
    """A judge of decoded images, trained apart from every autoencoder: logistic regression on the
    first 50 principal components of the training pixels (sklearn)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    classifier = make_pipeline(PCA(50, random_state=seed), LogisticRegression(max_iter=500))
    return classifier.fit(x.cpu().numpy(), labels.cpu().numpy())


def confident_fraction(classifier, images: torch.Tensor, threshold: float = 0.9) -> float:
    """The fraction of images the classifier assigns to one class with probability ≥ threshold."""
    probabilities = classifier.predict_proba(images.detach().cpu().clamp(0, 1).numpy())
    return float((probabilities.max(1) >= threshold).mean())


def cluster_separation(codes: torch.Tensor, labels: torch.Tensor) -> dict:
    """Structure of a latent map: how well the digit can be read off its code (accuracy of a 10-nearest-
    neighbour vote, 5-fold cross-validated; 0.1 is chance), the mean distance between class centroids,
    and the overall spread (the codes' RMS distance from their mean)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    codes, labels = codes.detach().cpu().double(), labels.cpu()
    centroids = torch.stack([codes[labels == k].mean(0) for k in labels.unique()])
    accuracy = cross_val_score(KNeighborsClassifier(10), codes.numpy(), labels.numpy(), cv=5).mean()
    return {"knn_accuracy": float(accuracy),
            "centroid_distance": float(torch.pdist(centroids).mean()),
            "spread": float((codes - codes.mean(0)).pow(2).sum(1).mean().sqrt())}


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 − t) a + t b for each t: the straight line from a to b."""
    t = t.reshape(-1, 1).to(a)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: along the great circle from a to b, with the norm interpolated linearly.

    Under N(0, I) in many dimensions codes lie near a sphere; the midpoint of a straight line is
    shorter than either end (an untypical code), the slerp path keeps a typical norm.
    """
    t = t.reshape(-1, 1).to(a)
    na, nb = a.norm(), b.norm()
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega) < 1e-6:
        return lerp(a, b, t)
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def attribute_vector(codes: torch.Tensor, has_attribute: torch.Tensor) -> torch.Tensor:
    """mean code of the rows with the attribute − mean code of the rows without it (the "smile vector")."""
    return codes[has_attribute].mean(0) - codes[~has_attribute].mean(0)
