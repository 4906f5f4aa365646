"""The lecture's model and guide, checked against the formulas written out by hand in torch.

    p(z) = N(0, I),  p(x|z) = N(f(z), c I),  q_x(z) = N(μ(x), diag σ(x)²)
    ELBO(x) = −‖x − f(z)‖² / 2c − (D/2) log 2πc − KL(q_x(z) ‖ p(z)),   z ~ q_x(z)

Everything runs in float64, so a mismatch of 1e-4 is a real difference, not rounding.
"""

from __future__ import annotations

import math

import pytest
import torch

from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_vae import runs
from pyro_vae.errors import UserError
from pyro_vae.models import VAE
from pyro_vae.models.likelihoods import Bernoulli, Gaussian

D, LATENT, BATCH = 64, 3, 8


def build(likelihood="gaussian", c=1.0, network="mlp", shape=(1, 8, 8), hidden=(16,)):
    torch.manual_seed(0)
    model, guide = runs.build({"model": "vae", "shape": list(shape), "latent_dim": LATENT, "hidden": list(hidden),
                               "likelihood": likelihood, "c": c, "network": network})
    # the hand formulas need no gradients; frozen parameters keep float() free of autograd warnings
    return model.double().requires_grad_(False), guide.double().requires_grad_(False)


@pytest.fixture
def x():
    return torch.rand(BATCH, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("c", [0.1, 1.0, 2.5])
def test_log_joint_is_normal_prior_plus_normal_likelihood_with_variance_c(x, c):
    model, _ = build(c=c)
    z = torch.randn(BATCH, LATENT, dtype=torch.float64)
    trace = poutine.trace(poutine.condition(model, data={"z": z})).get_trace(x)
    f = model.decoder(z)
    log_prior = -0.5 * (z ** 2).sum() - 0.5 * BATCH * LATENT * math.log(2 * math.pi)
    log_likelihood = -((x - f) ** 2).sum() / (2 * c) - 0.5 * BATCH * D * math.log(2 * math.pi * c)
    assert float(trace.log_prob_sum()) == pytest.approx(float(log_prior + log_likelihood), rel=1e-10)
    # the two lecture sites, one row each per example, in the "data" plate the trainer scales
    assert trace.nodes["z"]["fn"].batch_shape == (BATCH,) and trace.nodes["z"]["fn"].event_shape == (LATENT,)
    assert trace.nodes["x"]["is_observed"] and torch.equal(trace.nodes["x"]["value"], x)
    assert [f.name for f in trace.nodes["x"]["cond_indep_stack"]] == ["data"]


def test_bernoulli_likelihood_is_cross_entropy_on_logits(x):
    model, _ = build("bernoulli")
    z = torch.randn(BATCH, LATENT, dtype=torch.float64)
    trace = poutine.trace(poutine.condition(model, data={"z": z})).get_trace(x)
    p = torch.sigmoid(model.decoder(z))
    expected = (x * p.log() + (1 - x) * (1 - p).log()).sum()  # grey levels are soft targets
    trace.compute_log_prob()
    assert float(trace.nodes["x"]["log_prob_sum"]) == pytest.approx(float(expected), rel=1e-10)
    assert torch.allclose(model.generate(z), p)


def test_guide_is_the_amortized_normal_of_the_lecture(x):
    _, guide = build()
    trace = poutine.trace(guide).get_trace(x)
    q = trace.nodes["z"]["fn"]
    mu, sigma = guide.encoder(x)
    assert torch.equal(q.loc, mu) and torch.equal(q.scale, sigma)
    assert (sigma > 0).all() and mu.shape == (BATCH, LATENT)
    assert not torch.allclose(mu[0], mu[1])  # one network, but a different q for every x


def test_pyro_elbo_matches_the_lectures_closed_form_at_a_fixed_z(x):
    """Fixed: z, one draw recorded in a guide trace; the guide is replayed at that z.

    TraceMeanField_ELBO then gives log p(x|z) − KL(q‖p) with the KL in closed form, and
    Trace_ELBO (the trainer's default) gives log p(x|z) + log p(z) − log q(z) at the same z.
    """
    c = 0.3
    model, guide = build(c=c)
    guide_trace = poutine.trace(guide).get_trace(x)
    z = guide_trace.nodes["z"]["value"]
    fixed_guide = poutine.replay(guide, trace=guide_trace)
    mu, sigma = guide.encoder(x)
    f = model.decoder(z)

    log_likelihood = -((x - f) ** 2).sum() / (2 * c) - 0.5 * BATCH * D * math.log(2 * math.pi * c)
    kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * sigma.log()).sum()
    elbo = -TraceMeanField_ELBO().differentiable_loss(model, fixed_guide, x)
    assert abs(float(elbo - (log_likelihood - kl))) < 1e-4

    log_prior = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum()
    log_q = (-0.5 * ((z - mu) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)).sum()
    elbo = -Trace_ELBO().differentiable_loss(model, fixed_guide, x)
    assert abs(float(elbo - (log_likelihood + log_prior - log_q))) < 1e-4


def test_larger_c_weights_the_kl_more_against_reconstruction(x):
    """Only the likelihood depends on c: its ‖x − f(z)‖² term shrinks as 1/c, the KL does not change."""
    model_small, guide = build(c=0.1)
    model_large, _ = build(c=1.0)
    trace = poutine.trace(guide).get_trace(x)
    parts = {}
    for name, model in (("small", model_small), ("large", model_large)):
        model_trace = poutine.trace(poutine.replay(model, trace=trace)).get_trace(x)
        model_trace.compute_log_prob()
        parts[name] = (model_trace.nodes["x"]["log_prob_sum"], model_trace.nodes["z"]["log_prob_sum"])
    squared_error = ((x - model_small.decoder(trace.nodes["z"]["value"])) ** 2).sum()
    constant = lambda c: -0.5 * BATCH * D * math.log(2 * math.pi * c)  # noqa: E731
    assert float(parts["small"][0] - constant(0.1)) == pytest.approx(float(-squared_error / 0.2), rel=1e-10)
    assert float(parts["large"][0] - constant(1.0)) == pytest.approx(float(-squared_error / 2.0), rel=1e-10)
    assert torch.equal(parts["small"][1], parts["large"][1])


def test_likelihood_seam_gaussian_and_bernoulli_means():
    f = torch.linspace(-3, 3, 7)
    assert torch.equal(Gaussian(c=0.5).mean(f), f) and Gaussian(c=0.5)(f).variance[0] == pytest.approx(0.5)
    assert torch.allclose(Bernoulli().mean(f), torch.sigmoid(f))
    assert isinstance(VAE(torch.nn.Identity(), 7, Gaussian(1.0)).prior(f[None]).loc, torch.Tensor)


def test_conv_networks_for_28x28_images():
    model, guide = build(network="conv", shape=(1, 28, 28), hidden=(32,))
    x = torch.rand(4, 784, dtype=torch.float64)
    trace = poutine.trace(guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model, trace=trace)).get_trace(x)
    assert trace.nodes["z"]["value"].shape == (4, LATENT)
    assert model_trace.nodes["x"]["fn"].mean.shape == (4, 784)
    assert torch.isfinite(model_trace.log_prob_sum())
    with pytest.raises(UserError, match="divide by 4"):
        build(network="conv", shape=(1, 8, 6))
