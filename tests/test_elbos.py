"""The sync-free ELBOs give Pyro's loss and Pyro's gradients, and never read a tensor back to the host.

Each check runs Pyro's own ``Trace_ELBO`` / ``TraceMeanField_ELBO`` and ours on the same random draws
(same seed) in float64, so a difference above 1e-9 (relative) is a real one, not rounding.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import pyro
import pyro.distributions as dist
import pyro.infer
from pyro import poutine

from pyro_vae import elbos, runs
from pyro_vae.handlers import DataScale, SiteScale
from pyro_vae.train import fit

PAIRS = [(pyro.infer.Trace_ELBO, elbos.Trace_ELBO), (pyro.infer.TraceMeanField_ELBO, elbos.TraceMeanField_ELBO)]


def vae(likelihood):
    torch.manual_seed(0)
    model, guide = runs.build({"model": "vae", "shape": [1, 4, 4], "latent_dim": 3, "hidden": [8],
                               "likelihood": likelihood, "c": 0.5})
    return model.double(), guide.double()


def rows(n=10, dim=16):
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def loss_and_grads(elbo, model, guide, *args, num_data=100, seed=3):
    """The loss and the gradients of every parameter, under DataScale like the trainer."""
    params = list(model.parameters()) + list(guide.parameters())
    pyro.set_rng_seed(seed)
    with DataScale(num_data):
        loss = elbo.differentiable_loss(model, guide, *args)
    return loss.detach(), torch.autograd.grad(loss, params)


def assert_same(expected, actual):
    (loss_a, grads_a), (loss_b, grads_b) = expected, actual
    assert torch.allclose(loss_a, loss_b, rtol=1e-9, atol=0)
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize("pyros, ours", PAIRS)
def test_vae_loss_and_gradients_equal_pyros(pyros, ours, likelihood, validate):
    model, guide = vae(likelihood)
    x = rows()
    with pyro.validation_enabled(validate):
        assert_same(loss_and_grads(pyros(), model, guide, x), loss_and_grads(ours(), model, guide, x))


@pytest.mark.parametrize("validate", [False, True])  # False: the lean path of the steps after the first
@pytest.mark.parametrize("pyros, ours", PAIRS)
def test_vectorized_particles_equal_pyros(pyros, ours, validate):
    model, guide = vae("bernoulli")
    x = rows()
    options = dict(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    with pyro.validation_enabled(validate):
        assert_same(loss_and_grads(pyros(**options), model, guide, x), loss_and_grads(ours(**options), model, guide, x))


class Mixed(nn.Module):
    """A global Gamma rate outside the plate and a discrete latent per row, for the paths a VAE does not take."""

    def __init__(self, guide: bool):
        super().__init__()
        self.guide = guide
        self.a = nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.1, dtype=torch.float64))

    def forward(self, x):
        if self.guide:  # LogNormal vs the model's Gamma: torch has no closed-form KL, so MeanField estimates it
            rate = pyro.sample("rate", dist.LogNormal(self.b, 0.5))
        else:
            rate = pyro.sample("rate", dist.Gamma(2.0 + self.b.exp(), 2.0))
        with pyro.plate("data", x.shape[0], device=x.device):
            logits = self.a[0] + self.a[1] * x if self.guide else self.a[0] * x
            c = pyro.sample("c", dist.Bernoulli(logits=logits))  # not reparameterized: REINFORCE
            if not self.guide:
                pyro.sample("x", dist.Normal(c + rate, 1.0), obs=x)


@pytest.mark.parametrize("validate", [False, True])
def test_score_function_terms_and_global_sites_equal_pyros(validate):
    """REINFORCE with Pyro's plate-wise Rao-Blackwellization, a global site scaled once, value and gradient."""
    model, guide, x = Mixed(False), Mixed(True), torch.linspace(-1, 1, 6, dtype=torch.float64)
    with pyro.validation_enabled(validate):
        expected = loss_and_grads(pyro.infer.Trace_ELBO(), model, guide, x)
        assert_same(expected, loss_and_grads(elbos.Trace_ELBO(), model, guide, x))
    assert expected[1][0].abs().sum() > 0  # the discrete site's parameters get a gradient at all


class GlobalAndMasked(nn.Module):
    """A reparameterized global latent outside the plate and a per-row latent, optionally masked."""

    def __init__(self, guide: bool, mask: bool):
        super().__init__()
        self.guide, self.mask = guide, mask
        if guide:  # the model has no parameters
            self.w = nn.Parameter(torch.tensor([0.4, -0.3, 0.2], dtype=torch.float64))

    def forward(self, x):
        if self.guide:
            shift = pyro.sample("shift", dist.Normal(self.w[0], 0.7))
        else:
            shift = pyro.sample("shift", dist.Normal(0.0, 2.0))
        with pyro.plate("data", x.shape[0], device=x.device):
            keep = (x > -0.5) if self.mask else None
            with poutine.mask(mask=keep) if self.mask else contextlib.nullcontext():
                if self.guide:
                    pyro.sample("z", dist.Normal(self.w[1] * x + self.w[2], 0.5))
                else:
                    z = pyro.sample("z", dist.Normal(shift, 1.0))
                    pyro.sample("x", dist.Normal(z, 0.3), obs=x)


@pytest.mark.parametrize("mask", [False, True])  # True: the lean path hands over to Pyro's bookkeeping
def test_lean_path_global_sites_and_masks_equal_pyros(mask):
    model, guide = GlobalAndMasked(False, mask), GlobalAndMasked(True, mask)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64)
    with pyro.validation_enabled(False):
        expected = loss_and_grads(pyro.infer.Trace_ELBO(), model, guide, x)
        assert_same(expected, loss_and_grads(elbos.Trace_ELBO(), model, guide, x))
    assert all(g.abs().sum() > 0 for g in expected[1])


def test_meanfield_without_a_closed_form_kl_equals_pyros():
    model, guide, x = Mixed(False), Mixed(True), torch.linspace(-1, 1, 6, dtype=torch.float64)
    # the discrete site is not reparameterized, which MeanField rejects when validating; compare unvalidated
    with pyro.validation_enabled(False):
        assert_same(loss_and_grads(pyro.infer.TraceMeanField_ELBO(), model, guide, x),
                    loss_and_grads(elbos.TraceMeanField_ELBO(), model, guide, x))


@pytest.fixture
def no_host_reads(monkeypatch):
    """Reading a tensor's value on the host (a GPU sync) raises inside this fixture's tests."""
    def refuse(*_, **__):
        raise AssertionError("a tensor was read back to the host")
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize("pyros, ours", PAIRS)
def test_ours_never_read_a_tensor_back_and_pyros_do(pyros, ours, no_host_reads):
    model, guide = vae("bernoulli")
    x = rows()
    with pyro.validation_enabled(False):
        loss = ours()(model, guide)(x)
        loss.backward()
        with pytest.raises(AssertionError, match="read back"):  # the guard works: Pyro's ELBOs read the loss
            pyros()(model, guide)(x)


def test_fit_uses_the_sync_free_elbo_by_default(monkeypatch):
    calls = []
    particle_loss = elbos.Trace_ELBO._particle_loss
    monkeypatch.setattr(elbos.Trace_ELBO, "_particle_loss", lambda self, *traces: calls.append(1) or
                        particle_loss(self, *traces))
    model, guide = vae("bernoulli")
    fit(model.float(), guide.float(), rows(40).float(), epochs=1, batch_size=10, evaluator=None, device="cpu",
        quiet=True)
    assert len(calls) == 3  # one per step after the first (validated: Pyro's own differentiable_loss)


def test_lean_path_keeps_sites_of_one_shape_but_different_scales_apart():
    """β-VAE: log p(z) and log q(z) scaled by β, log p(x|z) not; all three have the batch's shape."""
    model, guide = vae("gaussian")
    x = rows()
    with pyro.validation_enabled(False), SiteScale(0.3):
        expected = loss_and_grads(pyro.infer.Trace_ELBO(), model, guide, x)
        assert_same(expected, loss_and_grads(elbos.Trace_ELBO(), model, guide, x))
    with pyro.validation_enabled(False):
        unscaled = loss_and_grads(pyro.infer.Trace_ELBO(), model, guide, x)
    assert not torch.allclose(expected[0], unscaled[0])  # β did act
