"""Generated images and their controls: prior draws, Gaussian-fitted draws, blends (judged by pyro_vae.quality)."""

from __future__ import annotations

import torch




def fit_gaussian(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of the codes: the maximum-likelihood Gaussian N(m, S) that an autoencoder's
    codes are given so that it can generate: m = mean of the rows, S = (1/(n−1)) Σ (zᵢ − m)(zᵢ − m)ᵀ."""
    codes = codes.detach()
    return codes.mean(0), torch.cov(codes.T).reshape(codes.shape[1], codes.shape[1])


def gaussian_draws(codes: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n draws z = m + L ε, ε ~ N(0, I), from the Gaussian N(m, S = LLᵀ) fitted to the codes
    (:func:`fit_gaussian`), on the codes' device: the autoencoder's stand-in for the VAE's prior."""
    mean, cov = fit_gaussian(codes)
    eye = torch.eye(len(mean), dtype=cov.dtype, device=cov.device)
    chol = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal().mean() * eye)
    return mean + standard_normal(n, len(mean), codes, seed) @ chol.T


@torch.no_grad()
def prior_draws(model, n: int, seed: int = 0) -> torch.Tensor:
    """E[x | z] for n draws z ~ p(z), made with a seeded generator on the model's device: p(z) = N(0, I), or
    the model's own learned prior when it has one (``prior_sample(n, seed)``, e.g. ``MixturePriorVAE``)."""
    own = getattr(model, "prior_sample", None)
    z = own(n, seed) if own is not None else standard_normal(n, model.latent_dim, next(model.parameters()), seed)
    return model.generate(z)


def standard_normal(n: int, dim: int, like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(n, dim) draws of N(0, I) from a generator seeded with ``seed``, on ``like``'s device and dtype."""
    generator = torch.Generator(device=like.device).manual_seed(seed)
    return torch.randn(n, dim, generator=generator, device=like.device, dtype=like.dtype)


def blended_digits(x: torch.Tensor, labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n images (xᵢ + xⱼ)/2 of two real digits of different classes: the "nonsense" control, images with
    the ink of a digit that are no digit, against which decoded images are judged."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    first = torch.randint(len(x), (4 * n,), generator=generator, device="cpu")
    second = torch.randint(len(x), (4 * n,), generator=generator, device="cpu")
    keep = (labels.cpu()[first] != labels.cpu()[second]).nonzero()[:n, 0]
    first, second = first[keep].to(x.device), second[keep].to(x.device)
    return (x[first] + x[second]) / 2
