"""The numbers behind the lecture's claims, as small functions the examples and tests share.

- :func:`pca_table`: PCA as the best linear encoder/decoder (sklearn's PCA);
- :func:`principal_angles`, :func:`basis_report`: same subspace, different basis (scipy);
- :func:`autoencoder`, :func:`vae`, :func:`train`: the lecture's models, built and fitted with ``fit``;
- :class:`Handled`: a model or guide under an effect handler (the ablation drops one ELBO term);
- :func:`denoising_mse`, :func:`latent_grid`, :func:`confident_fraction`, :func:`empty_fraction`,
  :func:`cluster_separation`, :func:`elbo_terms`;
- :func:`gradient_draws`, :func:`gradient_variance`: pathwise vs score-function gradients;
- :func:`lerp`, :func:`slerp`, :func:`attribute_vector`: moving in the latent space;
- :func:`linear_gaussian_terms`: log p(x) = ELBO + KL(q ‖ p(z|x)) in closed form;
- :func:`fit_gaussian`, :func:`gaussian_draws`, :func:`prior_draws`, :func:`blended_digits`: generated
  images and their controls (``pyro_vae.quality`` judges them);
- :func:`pca_errors`: PCA's reconstruction error, next to the autoencoder's.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

import pyro
from pyro.infer import Trace_ELBO

from pyro_vae import runs, settings
from pyro_vae.evaluate import elbo_parts, encode
from pyro_vae.guides.delta import DeltaGuide
from pyro_vae.guides.denoising import corrupt
from pyro_vae.models import likelihoods
from pyro_vae.models.autoencoder import Autoencoder
from pyro_vae.networks import mlp
from pyro_vae.train import fit


# ---- 1, 2. PCA, and the linear autoencoder's subspace -------------------------------------------

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


# ---- the lecture's models, built and trained through the package's machinery ----------------

def autoencoder(shape, latent_dim: int, c: float = settings.VAESettings.c, hidden: Sequence[int] = (256,),
                linear: bool = False) -> tuple[nn.Module, nn.Module]:
    """(model, guide) of the autoencoder: z = e(x) (Delta guide), p(x|z) = N(d(z), cI), no prior."""
    dim = math.prod(shape)
    if linear:
        encoder, decoder = nn.Linear(dim, latent_dim), nn.Linear(latent_dim, dim)
    else:
        encoder, decoder = mlp(dim, tuple(hidden), latent_dim), mlp(latent_dim, tuple(hidden)[::-1], dim)
    return Autoencoder(decoder, latent_dim, likelihoods.Gaussian(c)), DeltaGuide(encoder)


def vae(shape, latent_dim: int, c: float = settings.VAESettings.c, hidden: Sequence[int] = (256,)) -> tuple[nn.Module, nn.Module]:
    """(model, guide) of the lecture's VAE, from the same builder as ``pyro-vae train``."""
    return runs.build({"model": "vae", "shape": list(shape), "latent_dim": latent_dim, "c": c,
                       "likelihood": "gaussian", "hidden": list(hidden), "network": "mlp"})


def train(model: nn.Module, guide: nn.Module, x: torch.Tensor, **options) -> tuple[nn.Module, nn.Module]:
    """Fits by SVI with :func:`pyro_vae.train.fit` on the CPU, quietly; returns the pair in eval mode.
    ``options`` are fit's (``epochs``, ``lr``, ...), their defaults ``settings.TrainingSettings``'s."""
    fit(model, guide, x, device="cpu", evaluator=None, quiet=True, **options)
    return model.eval(), guide.eval()


def seeded(build, *args, seed: int = 0, **kwargs):
    """``build(*args, **kwargs)`` with Pyro's and torch's RNGs seeded first (network initialization)."""
    pyro.set_rng_seed(seed)
    return build(*args, **kwargs)


# ---- 6. the ablation: drop one term of the ELBO with an effect handler -----------------------

class Handled(nn.Module):
    """A model or guide run under an effect handler, still an ``nn.Module`` for ``fit``.

    ``Handled(model, objectives.scale_observations(0))`` drops log p(x|z): the KL term alone is left.
    """

    def __init__(self, program: nn.Module, handler):
        super().__init__()
        self.program, self.handler = program, handler

    def forward(self, *args):
        with self.handler:
            return self.program(*args)


# ---- 4, 5, 6. measures on trained models -------------------------------------------------------

@torch.no_grad()
def decode_codes(model, guide, x: torch.Tensor) -> torch.Tensor:
    """E[x | z = code of x]: the decoder applied to the guide's code (its mean) for the input x."""
    return model.generate(encode(guide, x))


@torch.no_grad()
def denoising_mse(model, guide, clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Mean over rows of ‖clean − d(e(noisy))‖²: how well a noisy input is mapped back to the clean one."""
    return float((decode_codes(model, guide, noisy) - clean).pow(2).sum(1).mean())


def noisy_copy(x: torch.Tensor, noise: float = 0.0, drop: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A reproducible corrupted copy of x (the same corruption the denoising guide trains on)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return corrupt(x, noise, drop, generator=generator)


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


def elbo_terms(model, guide, x: torch.Tensor, seed: int = 0) -> dict:
    """Per-example KL(q‖p(z)) and ELBO in nats (one draw of z), reconstruction error ‖x − f(μ(x))‖²,
    and the mean posterior width σ(x) over rows and latent dimensions."""
    pyro.set_rng_seed(seed)
    parts = elbo_parts(model, guide, x)
    mse = float((decode_codes(model, guide, x) - x).pow(2).sum(1).mean())
    return {"kl": parts["kl"], "mse": mse, "elbo": parts["elbo"], "sigma": float(posterior_scale(guide, x).mean())}


# ---- 8. gradient estimators -------------------------------------------------------------------

def gradient_draws(model, guide, x: torch.Tensor, params: Iterable[torch.Tensor], num_draws: int = 100,
                   objective=None, seed: int = 0) -> torch.Tensor:
    """(num_draws, P): the gradient of the −ELBO w.r.t. ``params``, one fresh draw of z each time."""
    objective = objective or Trace_ELBO()
    params = list(params)
    pyro.set_rng_seed(seed)
    draws = []
    for _ in range(num_draws):
        loss = objective.differentiable_loss(model, guide, x)
        draws.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    return torch.stack(draws)


def gradient_variance(draws: torch.Tensor) -> float:
    """The total variance of a gradient estimator: Σ_p Var[∂_p], the trace of its covariance."""
    return float(draws.double().var(0).sum())


# ---- 9, 10. moving in the latent space ---------------------------------------------------------

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


# ---- 11. Bayes and the ELBO, in closed form --------------------------------------------------

def linear_gaussian_terms(weight: torch.Tensor, bias: torch.Tensor, c: float, x: torch.Tensor,
                          q_loc: torch.Tensor, q_scale: torch.Tensor) -> dict:
    """log p(x), ELBO(q) and KL(q ‖ p(z|x)) for p(z) = N(0, I), p(x|z) = N(Wz + b, cI), q = N(m, diag s²).

    Each is computed from its own closed form, not from the others:
      log p(x)       = log N(x; b, WWᵀ + cI)
      ELBO           = E_q log p(x|z) − KL(q ‖ p(z))
                     = −(‖x − Wm − b‖² + tr(W diag(s²) Wᵀ)) / 2c − (D/2) log 2πc − KL(q ‖ N(0, I))
      p(z|x)         = N(Σ Wᵀ(x − b)/c, Σ),  Σ = (I + WᵀW/c)⁻¹
    so ``log_px − (elbo + kl_posterior)`` is zero only if the identity holds.
    """
    from torch.distributions import MultivariateNormal, Normal, kl_divergence

    dim, latent_dim = weight.shape
    eye = torch.eye(latent_dim, dtype=weight.dtype)
    log_px = MultivariateNormal(bias, weight @ weight.T + c * torch.eye(dim, dtype=weight.dtype)).log_prob(x)
    residual = x - weight @ q_loc - bias
    expected_log_lik = (-(residual @ residual + (weight.pow(2) * q_scale.pow(2)).sum()) / (2 * c)
                        - 0.5 * dim * math.log(2 * math.pi * c))
    kl_prior = kl_divergence(Normal(q_loc, q_scale), Normal(torch.zeros_like(q_loc), 1.0)).sum()
    post_cov = torch.linalg.inv(eye + weight.T @ weight / c)
    posterior = MultivariateNormal(post_cov @ weight.T @ (x - bias) / c, post_cov)
    kl_posterior = kl_divergence(MultivariateNormal(q_loc, torch.diag(q_scale.pow(2))), posterior)
    return {"log_px": float(log_px), "elbo": float(expected_log_lik - kl_prior),
            "reconstruction": float(expected_log_lik), "kl_prior": float(kl_prior),
            "kl_posterior": float(kl_posterior), "posterior_mean": posterior.loc,
            "posterior_cov": posterior.covariance_matrix}



# ---- generation: Gaussian-fitted draws, prior draws, controls (the judge: pyro_vae.quality) -------

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
    """E[x | z] for n draws z ~ p(z) = N(0, I), made with a seeded generator on the model's device."""
    return model.generate(standard_normal(n, model.latent_dim, next(model.parameters()), seed))


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


def pca_errors(train: torch.Tensor, test: torch.Tensor, ks: Iterable[int]) -> dict:
    """{k: mean over test rows of ‖x − x̂‖²}, with x̂ = x̄ + (x − x̄) W_kᵀ W_k the reconstruction by the
    top-k principal directions W_k of the training rows (sklearn's PCA): the best linear autoencoder."""
    from sklearn.decomposition import PCA

    train, test = train.detach().cpu().double().numpy(), test.detach().cpu().double().numpy()
    errors = {}
    for k in ks:
        pca = PCA(k, random_state=0).fit(train)
        errors[int(k)] = float(((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(1).mean())
    return errors
