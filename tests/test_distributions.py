"""IsotropicNormal(loc, σ) is Normal(loc, σ).to_event(1): same log-density, gradients, samples and shapes."""

from __future__ import annotations

import math

import pytest
import torch

import pyro
import pyro.distributions as dist
from pyro import poutine

from pyro_vae.distributions import IsotropicNormal


def loc_and_x():
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(5, 7, generator=g, dtype=torch.float64).requires_grad_()
    return loc, torch.randn(5, 7, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("learned", [False, True])
def test_log_prob_and_gradients_equal_normal_to_event(learned):
    loc, x = loc_and_x()
    scale = torch.tensor(0.7, dtype=torch.float64, requires_grad=True) if learned else 0.7
    ours, reference = IsotropicNormal(loc, scale), dist.Normal(loc, scale).to_event(1)
    assert (ours.batch_shape, ours.event_shape) == (reference.batch_shape, reference.event_shape)
    assert torch.allclose(ours.log_prob(x), reference.log_prob(x), rtol=1e-12)
    assert torch.allclose(ours.entropy(), reference.entropy(), rtol=1e-12)
    inputs = [loc, scale] if learned else [loc]
    grads = torch.autograd.grad(ours.log_prob(x).sum(), inputs)
    expected = torch.autograd.grad(reference.log_prob(x).sum(), inputs)
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(grads, expected))


def test_broadcasting_either_way_and_the_gradient_in_the_value_equal_normal_to_event():
    """K decoded means against one x (the IS estimator), one loc against K values (samples), and ∂/∂x."""
    g = torch.Generator().manual_seed(1)
    many_locs = torch.randn(3, 5, 7, generator=g, dtype=torch.float64).requires_grad_()
    x = torch.randn(5, 7, generator=g, dtype=torch.float64).requires_grad_()
    for loc, value in ((many_locs, x), (x, many_locs)):
        ours, reference = IsotropicNormal(loc, 0.7), dist.Normal(loc, 0.7).to_event(1)
        assert ours.log_prob(value).shape == reference.log_prob(value).shape == (3, 5)
        assert torch.allclose(ours.log_prob(value), reference.log_prob(value), rtol=1e-12)
        grads = torch.autograd.grad(ours.log_prob(value).sum(), [many_locs, x])
        expected = torch.autograd.grad(reference.log_prob(value).sum(), [many_locs, x])
        assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(grads, expected))


def test_the_formula_written_out():
    loc, x = loc_and_x()
    d, sigma = x.shape[-1], 0.3
    expected = -((x - loc) ** 2).sum(-1) / (2 * sigma ** 2) - d * math.log(sigma) - d / 2 * math.log(2 * math.pi)
    assert torch.allclose(IsotropicNormal(loc, sigma).log_prob(x), expected, rtol=1e-12)


def test_samples_have_the_stated_mean_and_variance_and_are_reparameterized():
    loc = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    torch.manual_seed(0)
    z = IsotropicNormal(loc, 0.5).rsample((40_000,))
    assert z.shape == (40_000, 2)
    # standard errors: 0.5/200 = 0.0025 for the mean, about 0.25·√2/200 ≈ 0.0018 for the variance
    assert torch.allclose(z.mean(0), loc, atol=0.0125) and torch.allclose(z.var(0), z.new_tensor(0.25), atol=0.01)
    (grad,) = torch.autograd.grad(z.sum(), loc)
    assert torch.equal(grad, torch.full_like(grad, 40_000.0))


def test_expand_and_plates_broadcast_like_normal():
    loc = torch.zeros(7)
    expanded = IsotropicNormal(loc, 2.0).expand((3, 4))
    assert (expanded.batch_shape, expanded.event_shape) == ((3, 4), (7,))
    assert expanded.log_prob(torch.ones(3, 4, 7)).shape == (3, 4)

    def model(x):
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("x", IsotropicNormal(x.new_zeros(x.shape[-1]), 1.0), obs=x)

    x = torch.randn(6, 7)
    trace = poutine.trace(model).get_trace(x)
    trace.compute_log_prob()
    assert torch.allclose(trace.nodes["x"]["log_prob"], dist.Normal(0.0, 1.0).log_prob(x).sum(-1))


def test_a_bad_scale_is_rejected_when_validating():
    with pytest.raises(ValueError, match="positive"):
        IsotropicNormal(torch.zeros(3), -1.0, validate_args=True)
    with pytest.raises(ValueError, match="0-dim"):
        IsotropicNormal(torch.zeros(3), torch.ones(3))


# DiagonalNormal(loc, scale) is Normal(loc, scale).to_event(1) too, and the KLs between the two kinds are Normal's.

from torch.distributions import kl_divergence  # noqa: E402

from pyro_vae.distributions import DiagonalNormal  # noqa: E402


def loc_scale_and_z():
    g = torch.Generator().manual_seed(2)
    loc = torch.randn(5, 7, generator=g, dtype=torch.float64).requires_grad_()
    scale = (torch.rand(5, 7, generator=g, dtype=torch.float64) + 0.2).requires_grad_()
    return loc, scale, torch.randn(5, 7, generator=g, dtype=torch.float64)


def test_diagonal_normal_equals_normal_to_event():
    loc, scale, z = loc_scale_and_z()
    ours, reference = DiagonalNormal(loc, scale), dist.Normal(loc, scale).to_event(1)
    assert (ours.batch_shape, ours.event_shape) == (reference.batch_shape, reference.event_shape)
    assert torch.allclose(ours.log_prob(z), reference.log_prob(z), rtol=1e-12)
    assert torch.allclose(ours.entropy(), reference.entropy(), rtol=1e-12)
    grads = torch.autograd.grad(ours.log_prob(z).sum(), [loc, scale])
    expected = torch.autograd.grad(reference.log_prob(z).sum(), [loc, scale])
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(grads, expected))
    assert torch.equal(ours.mean, loc) and torch.equal(ours.stddev, scale)


def test_diagonal_normal_samples_are_reparameterized_with_the_stated_moments():
    loc = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64)
    torch.manual_seed(0)
    z = DiagonalNormal(loc, scale).rsample((40_000,))
    # standard errors of the means 0.0025 and 0.01; of the variances about 0.0018 and 0.028
    assert torch.allclose(z.mean(0), loc, atol=0.05) and torch.allclose(z.var(0), scale ** 2, rtol=0.05)
    (grad,) = torch.autograd.grad(z.sum(), loc)
    assert torch.equal(grad, torch.full_like(grad, 40_000.0))


def test_expanding_to_the_same_shape_returns_the_distribution_itself():
    loc, scale, z = loc_scale_and_z()
    for d in (DiagonalNormal(loc, scale), IsotropicNormal(loc, 0.5)):
        assert d.expand((5,)) is d
        wider = d.expand((3, 5))
        assert wider is not d and wider.batch_shape == (3, 5) and wider.log_prob(z).shape == (3, 5)
        assert torch.allclose(wider.log_prob(z)[2], d.log_prob(z), rtol=1e-12)


@pytest.mark.parametrize("q_kind", ["diagonal", "isotropic"])
@pytest.mark.parametrize("p_kind", ["diagonal", "isotropic"])
def test_kl_between_the_two_equals_normals(q_kind, p_kind):
    loc, scale, _ = loc_scale_and_z()

    def make(kind, shift):
        if kind == "diagonal":
            return DiagonalNormal(loc + shift, scale), dist.Normal(loc + shift, scale).to_event(1)
        return IsotropicNormal(loc + shift, 0.7), dist.Normal(loc + shift, 0.7).to_event(1)

    (q, q_ref), (p, p_ref) = make(q_kind, 0.0), make(p_kind, 0.3)
    assert torch.allclose(kl_divergence(q, p), kl_divergence(q_ref, p_ref), rtol=1e-12)


def test_the_vae_prior_and_encoder_use_them_and_keep_the_lecture_kl():
    from pyro_vae import runs

    torch.manual_seed(0)
    model, guide = runs.build({"model": "vae", "shape": [1, 4, 4], "latent_dim": 3, "hidden": [8],
                               "likelihood": "gaussian", "c": 0.5})
    x = torch.rand(6, 16)
    q = poutine.trace(guide).get_trace(x).nodes["z"]["fn"]
    p = poutine.trace(model).get_trace(x).nodes["z"]["fn"]
    assert isinstance(q, DiagonalNormal) and isinstance(p, IsotropicNormal)
    mu, sigma = guide.encoder(x)
    lecture = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * sigma.log()).sum(-1)  # KL(N(μ, σ²) ‖ N(0, I))
    assert torch.allclose(kl_divergence(q, p), lecture, rtol=1e-5)


# IndependentBernoulli(logits) is Bernoulli(logits=f).to_event(1), soft targets included.

from pyro_vae.distributions import IndependentBernoulli  # noqa: E402


def test_independent_bernoulli_equals_bernoulli_to_event_with_soft_targets():
    g = torch.Generator().manual_seed(3)
    logits = (3 * torch.randn(5, 7, generator=g, dtype=torch.float64)).requires_grad_()
    x = torch.rand(5, 7, generator=g, dtype=torch.float64)  # grey levels: soft targets
    x[0] = (x[0] > 0.5).double()
    ours, reference = IndependentBernoulli(logits), dist.Bernoulli(logits=logits, validate_args=False).to_event(1)
    assert (ours.batch_shape, ours.event_shape) == (reference.batch_shape, reference.event_shape)
    p = torch.sigmoid(logits)
    by_hand = (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)
    assert torch.allclose(ours.log_prob(x), reference.log_prob(x), rtol=1e-12)
    assert torch.allclose(ours.log_prob(x), by_hand, rtol=1e-10)
    (grad,) = torch.autograd.grad(ours.log_prob(x).sum(), logits)
    (expected,) = torch.autograd.grad(reference.log_prob(x).sum(), logits)
    assert torch.allclose(grad, expected, rtol=1e-12)
    assert torch.allclose(ours.mean, p) and torch.allclose(ours.variance, p * (1 - p))
    # K samples of logits against one x broadcast like torch's
    many = logits.detach().expand(3, 5, 7)
    assert torch.allclose(IndependentBernoulli(many).log_prob(x), reference.log_prob(x).detach().expand(3, 5))
    torch.manual_seed(0)
    draws = IndependentBernoulli(torch.zeros(20_000, 2)).sample()
    assert set(draws.unique().tolist()) == {0.0, 1.0} and abs(float(draws.mean()) - 0.5) < 0.02  # s.e. 0.0025


def test_independent_bernoulli_rejects_values_outside_0_1_when_validating():
    with pytest.raises(ValueError, match="support"):
        IndependentBernoulli(torch.zeros(2, 3), validate_args=True).log_prob(torch.full((2, 3), 1.5))


def test_diagonal_normal_expanded_over_samples_scores_like_normal():
    """K expanded copies (importance samples) score as torch's Normal does, log σ computed once."""
    loc, scale, _ = loc_scale_and_z()
    ours = DiagonalNormal(loc, scale).expand((4, 5))
    reference = dist.Normal(loc, scale).to_event(1).expand((4, 5))
    z = reference.sample()
    assert torch.allclose(ours.log_prob(z), reference.log_prob(z), rtol=1e-12)
    assert ours.entropy().shape == (4, 5) and torch.allclose(ours.entropy(), reference.entropy(), rtol=1e-12)
    grads = torch.autograd.grad(ours.log_prob(z).sum(), [loc, scale])
    expected = torch.autograd.grad(reference.log_prob(z).sum(), [loc, scale])
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(grads, expected))
