"""Checks against closed forms: probabilistic PCA (Tipping & Bishop 1999) and the exact posterior.

A linear decoder with Gaussian noise, p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I), has the marginal
p(x) = N(b, WWᵀ + σ²I) and the Gaussian posterior p(z|x) = N(M⁻¹Wᵀ(x − b), σ²M⁻¹), M = WᵀW + σ²I.
Its maximum-likelihood fit is pPCA: W spans the top principal subspace of the sample covariance S,
σ²_ML is the mean of the discarded eigenvalues, and the maximum of (1/N) log p(X) is

    −(D/2)(log 2π + 1) − ½ (Σ_{j≤q} log λ_j + (D − q) log σ²_ML).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from torch import nn

import pyro
import pyro.distributions as dist

from pyro_vae.evaluate import log_likelihood
from pyro_vae.guides import Encoder, EncoderGuide
from pyro_vae.models import VAE
from pyro_vae.models.likelihoods import Gaussian, GaussianLearned
from pyro_vae.objectives import Objective
from pyro_vae.train import fit

D, LATENT, N, NOISE = 6, 2, 500, 0.3


def linear_gaussian_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, LATENT, generator=g) * torch.tensor([2.0, 1.0])
    b = torch.randn(D, generator=g)
    x = torch.randn(N, LATENT, generator=g) @ w.T + b + NOISE * torch.randn(N, D, generator=g)
    return x, w, b


def ppca_max_log_likelihood(x: np.ndarray, q: int):
    """(max per-example log-likelihood, top-q principal directions, σ_ML), Tipping & Bishop's closed form."""
    eigenvalues, vectors = np.linalg.eigh(np.cov(x.T, bias=True))
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    sigma2 = eigenvalues[q:].mean()
    d = x.shape[1]
    ml = -0.5 * d * (math.log(2 * math.pi) + 1) - 0.5 * (np.log(eigenvalues[:q]).sum() + (d - q) * math.log(sigma2))
    return ml, vectors[:, :q].copy(), math.sqrt(sigma2)


@pytest.fixture(scope="module")
def trained_linear_vae():
    """A linear Gaussian VAE with one learned σ, trained by SVI (full batch, analytic KL) on pPCA data."""
    x, _, _ = linear_gaussian_data()
    pyro.set_rng_seed(0)
    model = VAE(nn.Linear(LATENT, D), LATENT, GaussianLearned(c=1.0))
    guide = EncoderGuide(Encoder(nn.Identity(), D, LATENT))  # μ(x), σ(x) linear in x, as the posterior's
    epochs = 300
    fit(model, guide, x, objective=Objective("meanfield"), epochs=epochs, batch_size=N, lr=0.05, device="cpu",
        scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs), evaluator=None,
        quiet=True)
    return model, guide, x


def test_linear_vae_recovers_ppca_subspace_and_maximum_likelihood(trained_linear_vae):
    model, guide, x = trained_linear_vae
    ml, principal, _ = ppca_max_log_likelihood(x.numpy().astype(np.float64), LATENT)
    angles = np.degrees(subspace_angles(model.decoder.weight.detach().numpy(), principal))
    assert angles.max() < 2.0

    pyro.set_rng_seed(1)
    elbo = -Objective("meanfield", particles=200).loss(model, guide, x) / N  # MC noise ≈ 0.002 nats
    estimate = log_likelihood(model, guide, x, num_samples=1000)
    is_ll = estimate["log_likelihood"]
    assert ml - 0.5 < elbo <= ml
    assert ml - 0.5 < is_ll <= ml + 3 * estimate["log_likelihood_stderr"]
    assert is_ll >= elbo

    # the IS estimate against the exact marginal of the learned parameters, p(x) = N(b, WWᵀ + σ²I)
    w, b = model.decoder.weight.detach().double(), model.decoder.bias.detach().double()
    sigma = model.likelihood.sigma.detach().double()
    exact = dist.MultivariateNormal(b, w @ w.T + sigma ** 2 * torch.eye(D, dtype=torch.float64))
    assert is_ll == pytest.approx(float(exact.log_prob(x.double()).mean()), abs=0.01)


def test_learned_sigma_converges_to_the_noise_scale(trained_linear_vae):
    model, _, x = trained_linear_vae
    _, _, sigma_ml = ppca_max_log_likelihood(x.numpy().astype(np.float64), LATENT)
    sigma = float(model.likelihood.sigma.detach())
    assert sigma == pytest.approx(sigma_ml, rel=0.03)  # the maximum-likelihood σ of this sample
    assert sigma == pytest.approx(NOISE, rel=0.05)  # the true σ = 0.3


class ExactPosterior(nn.Module):
    """guide(x): z ~ p(z|x) = N(M⁻¹Wᵀ(x − b), σ²M⁻¹), M = WᵀW + σ²I; records the largest pass it sees."""

    def __init__(self, w, b, sigma):
        super().__init__()
        m = w.T @ w + sigma ** 2 * torch.eye(w.shape[1], dtype=w.dtype)
        self.w, self.b = w, b
        self.gain, self.cov = torch.linalg.solve(m, w.T), sigma ** 2 * torch.linalg.inv(m)
        self.largest_pass = 0

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.MultivariateNormal((x - self.b) @ self.gain.T, self.cov))
        self.largest_pass = max(self.largest_pass, z.shape[:-1].numel())
        return z


@pytest.mark.parametrize("num_samples", [1, 7, 300])
def test_importance_sampling_is_exact_with_the_true_posterior(num_samples):
    x, w, b = linear_gaussian_data(seed=1)
    x, w, b = x[:50].double(), w.double(), b.double()
    decoder = nn.Linear(LATENT, D).double()
    with torch.no_grad():
        decoder.weight.copy_(w), decoder.bias.copy_(b)
    model = VAE(decoder, LATENT, Gaussian(c=NOISE ** 2))
    guide = ExactPosterior(w, b, NOISE)
    max_pairs = 64  # forces several data batches and sample chunks per batch
    estimate = log_likelihood(model, guide, x, num_samples=num_samples, max_pairs=max_pairs)

    exact = dist.MultivariateNormal(b, w @ w.T + NOISE ** 2 * torch.eye(D, dtype=torch.float64)).log_prob(x)
    assert torch.allclose(estimate["per_example"], exact, atol=1e-4, rtol=0)
    assert estimate["log_likelihood"] == pytest.approx(float(exact.mean()), abs=1e-4)
    assert estimate["bits_per_dim"] == pytest.approx(-float(exact.mean()) / (D * math.log(2)), abs=1e-4)
    assert 0 < guide.largest_pass <= max_pairs
