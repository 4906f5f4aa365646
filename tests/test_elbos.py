"""The sync-free ELBOs give Pyro's loss and Pyro's gradients, and never read a tensor back to the host.

Each check runs Pyro's own ``Trace_ELBO`` / ``TraceMeanField_ELBO`` and ours on the same random draws
(same seed) in float64, so a difference above 1e-9 (relative) is a real one, not rounding.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from torch import nn

import pyro
import pyro.distributions as dist
import pyro.infer
import pyro.optim
from pyro import poutine
from pyro.distributions.testing import fakes
from pyro.distributions.testing.rejection_gamma import RejectionGamma
from torch.distributions import constraints

from pyro_vae import elbos, runs
from pyro_vae.handlers import DataScale, SiteScale, lean_traces
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


# ---- Every entry point, both validation modes: Pyro's values, gradients and errors ----
# The ground of Pyro's own tests/infer/test_gradient.py and test_valid_models.py, compared to Pyro's classes
# rather than to closed forms: reparameterized, has_rsample_(False), non-reparameterized and partially
# reparameterized guide sites; global sites beside a plate; subsampled plates; poutine.scale by a number and
# per row; masks; vectorized and sequential particles; a plate in the guide only; auxiliary guide sites; a
# GuideMessenger guide. benchmarks/pyro_conformance.py runs Pyro's tests themselves (not in CI: needs a checkout).

F64 = torch.float64
DATA = torch.tensor([-0.5, 2.0, 0.3], dtype=F64)


def t(value):
    return torch.tensor(value, dtype=F64)


def program(normal=dist.Normal, has_rsample=None, subsample_size=None, scale=None, mask=False,
            rate_guide=dist.Gamma, guide_only_plate=False, auxiliary=False):
    """A model/guide pair as Pyro's tests write them: plain functions, ``pyro.param``, a global rate outside
    the ``"data"`` plate, a latent z per row, x observed. ``scale``: a number or ``"rows"`` (a tensor per row)."""

    def handlers(ind):
        stack = contextlib.ExitStack()
        if scale is not None:
            stack.enter_context(poutine.scale(scale=t([1.0, 2.0, 3.0])[ind] if scale == "rows" else scale))
        if mask:
            stack.enter_context(poutine.mask(mask=DATA[ind] > 0))
        return stack

    def model(subsample=None):
        rate = pyro.sample("rate", dist.Gamma(t(3.0), t(2.0)))
        with pyro.plate("data", len(DATA), subsample_size, subsample=subsample) as ind, handlers(ind):
            z = pyro.sample("z", normal(t(0.0), t(1.0)))
            pyro.sample("x", normal(z, rate), obs=DATA[ind])

    def guide(subsample=None):
        a = pyro.param("a", lambda: t(4.0), constraint=constraints.positive)
        pyro.sample("rate", rate_guide(a, t(2.5)))
        if auxiliary:
            pyro.sample("u", dist.Normal(a, t(1.0)), infer={"is_auxiliary": True})
        if guide_only_plate:
            for _ in pyro.plate("guide_only", 4, subsample_size=2):
                pass
        loc = pyro.param("loc", lambda: t([0.1, -0.2, 0.3]))
        sd = pyro.param("sd", lambda: t(0.8), constraint=constraints.positive)
        with pyro.plate("data", len(DATA), subsample_size, subsample=subsample) as ind, handlers(ind):
            q = normal(loc[ind], sd)
            if has_rsample is not None:
                q.has_rsample_(has_rsample)
            pyro.sample("z", q)

    return model, guide


CASES = {
    "reparam": (program(), {}, {}),
    "has_rsample_false": (program(has_rsample=False), {}, {}),
    "nonreparam": (program(fakes.NonreparameterizedNormal), {}, {}),
    "partial_reparam": (program(rate_guide=RejectionGamma), {}, {}),  # has_rsample, and a score-function term
    "subsample": (program(subsample_size=1), {}, {"subsample": torch.tensor([1])}),
    "scaled": (program(scale=2.0), {}, {}),
    "scaled_per_row": (program(scale="rows"), {}, {}),
    "masked": (program(mask=True), {}, {}),
    "vectorized_particles": (program(), {"num_particles": 3, "vectorize_particles": True}, {}),
    "vectorized_nonreparam": (program(fakes.NonreparameterizedNormal),
                              {"num_particles": 3, "vectorize_particles": True, "max_plate_nesting": 1}, {}),
    "sequential_particles": (program(), {"num_particles": 3}, {}),
    "plate_in_guide_only": (program(guide_only_plate=True), {}, {}),  # an error with validation, fine without
    "auxiliary_guide_site": (program(auxiliary=True), {}, {}),
}


def outcome(entry, elbo, model, guide, kwargs):
    """(loss value, {param: gradient, or value after one SVI step}) of one entry point from a fresh param
    store and seed, or the type of the error it raised."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    try:
        if entry == "loss":
            return float(elbo.loss(model, guide, **kwargs)), {}
        if entry == "svi":
            value = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.1}), elbo).step(**kwargs)
            return value, {k: v.detach().clone() for k, v in pyro.get_param_store().named_parameters()}
        if entry == "loss_and_grads":
            value = elbo.loss_and_grads(model, guide, **kwargs)
        else:
            loss = (elbo.differentiable_loss(model, guide, **kwargs) if entry == "differentiable_loss"
                    else elbo(model, guide)(**kwargs))  # the ELBOModule
            if torch.is_tensor(loss) and loss.requires_grad:
                loss.backward()
            value = float(loss)
        return value, {k: v.grad for k, v in pyro.get_param_store().named_parameters()}
    except Exception as error:  # noqa: BLE001 (the same error as Pyro's is the expected outcome)
        return type(error)


ENTRIES = ("loss", "loss_and_grads", "differentiable_loss", "module", "svi")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("pyros, ours", PAIRS, ids=["Trace_ELBO", "TraceMeanField_ELBO"])
def test_every_entry_point_equals_pyros(pyros, ours, validate, case):
    (model, guide), options, kwargs = CASES[case]
    with pyro.validation_enabled(validate), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pyro's own warnings (e.g. MeanField's order check) are Pyro's business
        for entry in ENTRIES:
            expected = outcome(entry, pyros(**options), model, guide, kwargs)
            actual = outcome(entry, ours(**options), model, guide, kwargs)
            if isinstance(expected, type):
                assert actual is expected, f"{entry}: Pyro raises {expected.__name__}, ours gives {actual}"
                continue
            assert not isinstance(actual, type), f"{entry}: ours raises {actual.__name__}, Pyro's does not"
            (value_a, params_a), (value_b, params_b) = expected, actual
            assert value_b == pytest.approx(value_a, rel=1e-9, abs=1e-12), entry
            assert params_a.keys() == params_b.keys(), entry
            for name in params_a:
                a, b = params_a[name], params_b[name]
                assert (a is None) == (b is None), (entry, name)
                assert a is None or torch.allclose(a, b, rtol=1e-9, atol=1e-12), (entry, name, a, b)


@pytest.mark.parametrize("case", ["reparam", "nonreparam", "partial_reparam", "masked", "subsample",
                                  "vectorized_particles", "plate_in_guide_only"])
@pytest.mark.parametrize("pyros, ours", PAIRS, ids=["Trace_ELBO", "TraceMeanField_ELBO"])
def test_the_lean_path_is_the_one_compared(pyros, ours, case, monkeypatch):
    """With validation off, ``differentiable_loss`` goes through our own ``_particle_loss`` (so the
    comparison above tests our code, not Pyro's), and never through Pyro's ``_get_trace``."""
    (model, guide), options, kwargs = CASES[case]
    calls = []
    particle_loss = ours._particle_loss
    monkeypatch.setattr(ours, "_particle_loss", lambda self, *traces: calls.append(1) or particle_loss(self, *traces))
    monkeypatch.setattr(ours, "_get_trace", lambda *_: pytest.fail("Pyro's _get_trace on the lean path"))
    with pyro.validation_enabled(False):
        ours(**options).differentiable_loss(model, guide, **kwargs)
    assert len(calls) == (1 if options.get("vectorize_particles") else options.get("num_particles", 1))


def test_a_partially_reparameterized_guide_site_gets_its_score_function_term():
    """RejectionGamma has an rsample and a score-function term: the lean sum of log p − log q alone
    would give a different gradient (the bug this guards against)."""
    (model, guide), _, _ = CASES["partial_reparam"]
    with pyro.validation_enabled(False):
        pyro.set_rng_seed(0)
        loss = elbos.Trace_ELBO().differentiable_loss(model, guide)
        pyro.set_rng_seed(0)  # the same draws, scored as if every guide site were reparameterized
        model_trace, guide_trace = lean_traces(model, guide)
    log_p, log_q = ([s["fn"].log_prob(s["value"]).sum() for s in trace.nodes.values() if s["type"] == "sample"]
                    for trace in (model_trace, guide_trace))
    naive = sum(log_q) - sum(log_p)
    a = dict(pyro.get_param_store().named_parameters())["a"]
    (grad,), (naive_grad,) = torch.autograd.grad(loss, [a]), torch.autograd.grad(naive, [a])
    assert torch.allclose(loss, naive)  # same value
    assert not torch.allclose(grad, naive_grad)  # different gradient: the score-function term counts


@pytest.mark.parametrize("pyros, ours", PAIRS, ids=["Trace_ELBO", "TraceMeanField_ELBO"])
@pytest.mark.parametrize("validate", [True, False])
def test_a_guide_messenger_gets_pyros_own_path(pyros, ours, validate):
    """AutoNormalMessenger makes its own traces: ``differentiable_loss`` is Pyro's, in both modes."""
    from pyro.infer.autoguide import AutoNormalMessenger

    model, _ = program()
    results = []
    for cls in (pyros, ours):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        guide = AutoNormalMessenger(model)
        with pyro.validation_enabled(validate):
            loss = cls().differentiable_loss(model, guide)
            loss.backward()
        results.append((loss.detach(), {k: v.grad for k, v in pyro.get_param_store().named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, rtol=1e-9) and grads_a.keys() == grads_b.keys() and grads_a
    assert all(torch.allclose(grads_a[k], grads_b[k], rtol=1e-9, atol=1e-12) for k in grads_a)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_the_default_vae_takes_the_lean_sum(likelihood):
    """The default VAE's step is the one-sum-per-plate path (the reason these classes exist), not the fallback."""
    model, guide = vae(likelihood)
    with pyro.validation_enabled(False), DataScale(100):
        model_trace, guide_trace = lean_traces(model, guide, rows())
    assert elbos._reparameterized_elbo(model_trace, guide_trace) is not None
