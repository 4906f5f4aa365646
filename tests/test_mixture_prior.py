"""models/mixture_prior.py: a VAE with a learned mixture-of-Gaussians prior. Its ELBO against an independent
computation (log-sum-exp over the components by hand), its prior draws against the mixture's moments, and
the project's trainer training it unchanged: the prior moves to the codes."""

from __future__ import annotations

import math

import pytest
import torch

import pyro
from pyro import poutine

from pyro_vae import elbos, runs
from pyro_vae.analysis import experiment, sampling
from pyro_vae.evaluate import encode
from pyro_vae.models.mixture_prior import MixturePriorVAE
from pyro_vae.train import fit


def pair(latent_dim: int = 3, components: int = 4, seed: int = 0):
    """(model, guide): the Bernoulli MLP VAE of 8×8 images with its prior replaced by a learned mixture."""
    def build():
        model, guide = runs.build({"model": "vae", "shape": [1, 8, 8], "likelihood": "bernoulli", "hidden": [16],
                                   "latent_dim": latent_dim})
        return MixturePriorVAE(model.decoder, latent_dim, model.likelihood, components), guide
    return experiment.seeded(build, seed=seed)


def log_mixture(z, logits, means, log_scales):
    """log Σ_k π_k N(z; m_k, diag s_k²), written out: log-sum-exp of log π_k + Σ_d log N(z_d; m_kd, s_kd²)."""
    scales = log_scales.exp()
    per_component = (-0.5 * ((z[:, None, :] - means) / scales) ** 2 - log_scales - 0.5 * math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(logits.log_softmax(0) + per_component, dim=1)


def test_the_elbo_is_the_hand_computed_one_with_a_log_sum_exp_prior():
    model, guide = pair()
    with torch.no_grad():  # components apart and unequal, so a wrong weight or scale shows
        model.logits.copy_(torch.tensor([0.5, -1.0, 0.0, 1.5]))
        model.log_scales.copy_(torch.linspace(-0.5, 0.4, 12).reshape(4, 3))
    x = torch.rand(32, 64, generator=torch.Generator().manual_seed(1))
    pyro.set_rng_seed(5)
    loss = elbos.Trace_ELBO().differentiable_loss(model, guide, x)
    pyro.set_rng_seed(5)  # the same draw z ~ q(z|x)
    z = poutine.trace(guide).get_trace(x).nodes["z"]["value"]
    loc, scale = guide.encoder(x)
    log_q = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
    logits = model.decoder(z)
    log_likelihood = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)  # Bernoulli on logits
    elbo = log_likelihood + log_mixture(z, model.logits, model.means, model.log_scales) - log_q
    assert float(loss.detach()) == pytest.approx(-float(elbo.detach().sum()), rel=1e-5)


def test_prior_draws_come_from_the_learned_mixture():
    model, _ = pair(latent_dim=2, components=3)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
        model.means.copy_(torch.tensor([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]]))
        model.log_scales.fill_(math.log(0.5))
    z = model.prior_sample(20_000, seed=0)
    weights = torch.tensor([0.0, 1.0, 2.0]).softmax(0)
    assert torch.allclose(z.mean(0), weights @ model.means.detach(), atol=0.05)
    nearest = torch.cdist(z, model.means.detach()).argmin(1)
    assert torch.allclose(torch.bincount(nearest, minlength=3) / 20_000, weights, atol=0.01)
    assert torch.equal(z, model.prior_sample(20_000, seed=0)) and not torch.equal(z, model.prior_sample(20_000, seed=1))
    # sampling.prior_draws decodes the model's own prior, not N(0, I)
    assert torch.equal(sampling.prior_draws(model, 10, seed=0), model.generate(model.prior_sample(10, seed=0)))


def test_the_trainer_fits_the_prior_to_the_codes(digits):
    """fit trains the mixture's parameters with the networks (no change to the trainer): the ELBO rises, and
    the learned prior gives the training codes a higher density than N(0, I) does."""
    model, guide = pair(latent_dim=2, components=5)
    start = [p.detach().clone() for p in (model.logits, model.means, model.log_scales)]
    history = fit(model, guide, digits.train, epochs=15, lr=3e-3, batch_size=128, seed=0, device="cpu",
                  evaluator=None, quiet=True)
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]
    for before, after in zip(start, (model.logits, model.means, model.log_scales)):
        assert not torch.equal(before, after.detach())
    codes = encode(guide.eval(), digits.train)
    with torch.no_grad():
        learned = log_mixture(codes, model.logits, model.means, model.log_scales).mean()
        standard = torch.distributions.Normal(0.0, 1.0).log_prob(codes).sum(-1).mean()
    assert float(learned) > float(standard) + 0.1
