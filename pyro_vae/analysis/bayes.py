"""Bayes and the ELBO in closed form: log p(x) = ELBO + KL(q ‖ p(z|x)) for a linear Gaussian model (§11)."""

from __future__ import annotations

import math

import torch




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
