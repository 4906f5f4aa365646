"""Objectives, likelihoods and the IS log-likelihood, each checked against a formula written out here.

    −ELBO_β = −log p(x|z) + β·KL(q(z|x) ‖ p(z))                     (meanfield: analytic KL)
    −IWAE_K = −Σ_i log (1/K) Σ_k exp[log p(x_i|z_ik) + β(log p(z_ik) − log q(z_ik|x_i))]
    free bits: β·KL → β·Σ_j max(λ·N, Σ_i KL_ij)
    warm-up:   β_e = β·min(1, (e − 1)/N)

Model and guide run in float64, so a mismatch of 1e-6 is a real difference, not rounding.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import pyro
import pyro.distributions as dist
from pyro import poutine
from pyro.infer import RenyiELBO, Trace_ELBO, TraceMeanField_ELBO

from pyro_vae import cli, runs
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts, kl_per_dimension, log_likelihood
from pyro_vae.handlers import DataScale
from pyro_vae.models import likelihoods
from pyro_vae.objectives import Objective, scale_latents, scale_observations, warmup_beta
from pyro_vae.train import fit

D, LATENT, BATCH, C = 64, 3, 8, 0.5


def build(likelihood="gaussian", hidden=(16,), dtype=torch.float64, c=C):
    torch.manual_seed(0)
    model, guide = runs.build({"model": "vae", "shape": [1, 8, 8], "latent_dim": LATENT, "hidden": list(hidden),
                               "likelihood": likelihood, "c": c, "network": "mlp"})
    return model.to(dtype), guide.to(dtype)


@pytest.fixture
def x():
    return torch.rand(BATCH, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def loss_and_guide_trace(objective, model, guide, x, seed=0):
    """The objective's loss and the guide trace it drew z from (the same samples, for the hand formulas)."""
    pyro.set_rng_seed(seed)
    traced = poutine.trace(guide)
    loss = objective.differentiable_loss(model, traced, x)
    return loss.detach(), traced.trace


@torch.no_grad()
def by_hand(model, guide_trace, x):
    """Per (particle,) example: log p(x|z), log p(z), log q(z|x) and the analytic KL per latent dimension."""
    site = guide_trace.nodes["z"]
    z, q = site["value"], site["fn"]
    f = model.decoder(z)
    log_px = (-(x - f) ** 2 / (2 * C) - 0.5 * math.log(2 * math.pi * C)).sum(-1)
    log_pz = (-z ** 2 / 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-(z - q.loc) ** 2 / (2 * q.scale ** 2) - q.scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    kl = 0.5 * (q.loc ** 2 + q.scale ** 2 - 1 - 2 * q.scale.log())
    return log_px, log_pz, log_qz, kl


# β, scale handlers, warm-up ---------------------------------------------------------------------------------

@pytest.mark.parametrize("elbo", ["trace", "meanfield"])
def test_beta_zero_leaves_only_the_reconstruction_term(elbo, x):
    model, guide = build()
    loss, trace = loss_and_guide_trace(Objective(elbo, beta=0.0), model, guide, x)
    log_px, *_ = by_hand(model, trace, x)
    assert float(loss) == pytest.approx(-float(log_px.sum()), rel=1e-10)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_beta_weights_the_kl_term(beta, x):
    model, guide = build()
    loss, trace = loss_and_guide_trace(Objective("meanfield", beta=beta), model, guide, x)
    log_px, _, _, kl = by_hand(model, trace, x)
    assert float(loss) == pytest.approx(-float(log_px.sum()) + beta * float(kl.sum()), rel=1e-10)
    # the same handler around Pyro's Monte Carlo ELBO: −log p(x|z) + β(log q − log p(z)) on the same z
    pyro.set_rng_seed(0)
    traced = poutine.trace(guide)
    with scale_latents(beta):
        mc = Trace_ELBO().differentiable_loss(model, traced, x)
    log_px, log_pz, log_qz, _ = by_hand(model, traced.trace, x)
    assert float(mc.detach()) == pytest.approx(float((-log_px + beta * (log_qz - log_pz)).sum()), rel=1e-10)


def test_beta_and_warmup_wrap_any_pyro_elbo_instance(x):
    model, guide = build()
    objective = Objective(TraceMeanField_ELBO(), beta=3.0, kl_warmup=2)
    objective.set_epoch(2)  # β = 3 · 1/2
    loss, trace = loss_and_guide_trace(objective, model, guide, x)
    log_px, _, _, kl = by_hand(model, trace, x)
    assert float(loss) == pytest.approx(-float(log_px.sum()) + 1.5 * float(kl.sum()), rel=1e-10)


def test_scale_observations_zero_leaves_only_the_kl(x):
    model, guide = build()
    pyro.set_rng_seed(0)
    traced = poutine.trace(guide)
    with scale_observations(0.0):
        loss = TraceMeanField_ELBO().differentiable_loss(model, traced, x)
    *_, kl = by_hand(model, traced.trace, x)
    assert float(loss.detach()) == pytest.approx(float(kl.sum()), rel=1e-10)


def test_kl_warmup_schedule_is_linear_from_zero_over_n_epochs(x):
    assert [warmup_beta(2.0, e, 4) for e in range(1, 8)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert warmup_beta(2.0, 5, 0) == 2.0  # no warm-up
    model, guide = build()
    objective = Objective("meanfield", beta=2.0, kl_warmup=4)
    assert objective.beta_now == 2.0  # before fit sets an epoch
    for epoch, beta in [(1, 0.0), (2, 0.5), (4, 1.5), (9, 2.0)]:
        objective.set_epoch(epoch)
        loss, trace = loss_and_guide_trace(objective, model, guide, x)
        log_px, _, _, kl = by_hand(model, trace, x)
        assert float(loss) == pytest.approx(-float(log_px.sum()) + beta * float(kl.sum()), rel=1e-10)


def test_fit_sets_the_epoch_so_warmup_follows_the_schedule(digits):
    seen = []

    class Recording(Objective):
        def differentiable_loss(self, model, guide, *args, **kwargs):
            seen.append((self.epoch, self.beta_now))
            return super().differentiable_loss(model, guide, *args, **kwargs)

    model, guide = build(dtype=torch.float32)
    fit(model, guide, digits.train[:128], objective=Recording(beta=1.0, kl_warmup=2), epochs=4, batch_size=64,
        device="cpu", evaluator=None, quiet=True)
    assert sorted(set(seen)) == [(1, 0.0), (2, 0.5), (3, 1.0), (4, 1.0)]


# free bits ---------------------------------------------------------------------------------------------------

def test_free_bits_zero_is_the_plain_elbo(x):
    model, guide = build()
    for name, pyro_elbo in [("trace", Trace_ELBO()), ("meanfield", TraceMeanField_ELBO())]:
        free, _ = loss_and_guide_trace(Objective(name, free_bits=1e-300), model, guide, x)
        pyro.set_rng_seed(0)
        plain = pyro_elbo.differentiable_loss(model, guide, x)
        assert float(free) == pytest.approx(float(plain.detach()), rel=1e-10)


@pytest.mark.parametrize("num_data", [BATCH, 1000])
def test_free_bits_clamp_the_minibatch_kl_of_each_dimension(num_data, x):
    model, guide = build()
    free_bits, beta, rho = 0.1, 0.5, num_data / BATCH
    with DataScale(num_data):
        loss, trace = loss_and_guide_trace(Objective("meanfield", beta=beta, free_bits=free_bits), model, guide, x)
    log_px, _, _, kl = by_hand(model, trace, x)
    kl_j = rho * kl.sum(0)  # the data set's KL per dimension, estimated from the minibatch
    assert (kl_j < free_bits * num_data).any() and (kl_j > free_bits * num_data).any()  # both sides of the clamp
    expected = -rho * log_px.sum() + beta * torch.clamp(kl_j, min=free_bits * num_data).sum()
    assert float(loss) == pytest.approx(float(expected), rel=1e-10)


def test_free_bits_above_every_kl_leave_the_reconstruction_gradient_only(x):
    def grads(objective):
        model, guide = build()
        pyro.set_rng_seed(0)
        objective.differentiable_loss(model, guide, x).backward()
        return [p.grad for p in guide.parameters()]

    for clamped, reconstruction in zip(grads(Objective("meanfield", free_bits=100.0)),
                                       grads(Objective("meanfield", beta=0.0))):
        assert torch.allclose(clamped, reconstruction, rtol=1e-10, atol=1e-12)


# IWAE ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("particles", [2, 5, 20])
def test_iwae_equals_renyi_alpha0_on_the_same_samples(particles, x):
    model, guide = build()
    pyro.set_rng_seed(3)
    iwae = Objective("iwae", particles=particles).differentiable_loss(model, guide, x)
    pyro.set_rng_seed(3)
    renyi = RenyiELBO(alpha=0, num_particles=particles, vectorize_particles=True).loss(model, guide, x)
    assert float(iwae.detach()) == pytest.approx(renyi, rel=1e-10)
    iwae.backward()  # unlike RenyiELBO, a differentiable loss: reparameterized gradients reach both networks
    for net in (model, guide):
        grads = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        assert torch.isfinite(grads).all() and grads.abs().sum() > 0


def test_iwae_with_one_particle_is_the_elbo(x):
    model, guide = build()
    pyro.set_rng_seed(3)
    iwae = Objective("iwae").differentiable_loss(model, guide, x)
    pyro.set_rng_seed(3)
    elbo = Trace_ELBO().differentiable_loss(model, guide, x)
    assert float(iwae.detach()) == pytest.approx(float(elbo.detach()), rel=1e-10)


def test_iwae_is_a_log_mean_exp_per_example_with_beta_inside_and_data_scale_outside(x):
    model, guide = build()
    particles, beta, num_data = 6, 0.5, 1000
    with DataScale(num_data):
        loss, trace = loss_and_guide_trace(Objective("iwae", particles=particles, beta=beta), model, guide, x)
    log_px, log_pz, log_qz, _ = by_hand(model, trace, x)
    assert log_px.shape == (particles, BATCH)
    log_w = log_px + beta * (log_pz - log_qz)
    expected = -(num_data / BATCH) * (torch.logsumexp(log_w, 0) - math.log(particles)).sum()
    assert float(loss) == pytest.approx(float(expected), rel=1e-10)


@pytest.fixture(scope="module")
def trained_vae():
    """A 2-D VAE trained briefly on 8x8 digits: its ELBO is far from tight, so the bounds differ."""
    from pyro_vae import data as datasets

    digits = datasets.load("digits")
    pyro.set_rng_seed(0)
    model, guide = build(dtype=torch.float32, c=0.05)
    fit(model, guide, digits.train, epochs=5, batch_size=64, lr=3e-3, device="cpu", evaluator=None, quiet=True)
    return model, guide, digits.test


def test_iwae_bound_is_non_decreasing_in_k_and_k1_is_the_elbo(trained_vae):
    model, guide, test = trained_vae
    pyro.set_rng_seed(0)
    bounds = {k: log_likelihood(model, guide, test, num_samples=k) for k in (1, 8, 64, 512)}
    values = [b["log_likelihood"] for b in bounds.values()]
    assert values == sorted(values), values
    assert values[-1] - values[0] > 1.0  # a real gap to close, so the ordering is not noise (s.e. ≈ 0.05)
    elbo = sum(elbo_parts(model, guide, test)["elbo"] for _ in range(20)) / 20
    assert bounds[1]["log_likelihood"] == pytest.approx(elbo, abs=3 * bounds[1]["log_likelihood_stderr"])
    # the training objective and the evaluator are two implementations of the same estimator
    iwae = -Objective("iwae", particles=8).loss(model, guide, test) / len(test)
    assert iwae == pytest.approx(bounds[8]["log_likelihood"], abs=0.1)


# evaluation helpers -------------------------------------------------------------------------------------------

def test_kl_per_dimension_is_the_analytic_kl_of_each_latent(x):
    model, guide = build()
    mu, sigma = guide.encoder(x)
    expected = (0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * sigma.log())).mean(0)
    assert torch.allclose(torch.tensor(kl_per_dimension(model, guide, x), dtype=torch.float64), expected)


def test_log_likelihood_needs_per_example_latents(x):
    def model(x):
        scale = pyro.sample("scale", dist.LogNormal(x.new_zeros(()), 1.0))  # a global latent
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(0.0, scale).expand([x.shape[1]]).to_event(1), obs=x)

    def guide(x):
        pyro.sample("scale", dist.LogNormal(x.new_zeros(()), 0.1))

    with pytest.raises(UserError, match="inside pyro.plate"):
        log_likelihood(model, guide, x, num_samples=4)


# likelihoods --------------------------------------------------------------------------------------------------

def test_continuous_bernoulli_is_a_density_on_the_unit_interval_with_its_own_mean():
    logits = torch.tensor([[-3.0, -0.2, 0.0, 0.7, 4.0]], dtype=torch.float64)
    cb = likelihoods.make("continuous-bernoulli")
    grid = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None].expand(-1, logits.shape[1])
    density = cb(logits).base_dist.log_prob(grid).exp()
    assert torch.allclose(torch.trapezoid(density, grid, dim=0), torch.ones(5, dtype=torch.float64), atol=1e-6)
    mean = torch.trapezoid(density * grid, grid, dim=0)
    assert torch.allclose(cb.mean(logits)[0], mean, atol=1e-6)
    assert not torch.allclose(cb.mean(logits), torch.sigmoid(logits), atol=0.01)  # the mean is not sigmoid(f)


def test_gaussian_learned_is_a_normal_with_a_trainable_shared_sigma():
    likelihood = likelihoods.make("gaussian-learned", c=0.25)
    assert float(likelihood.sigma.detach()) == pytest.approx(0.5)
    f, x = torch.zeros(3, 4), torch.ones(3, 4)
    log_p = likelihood(f).log_prob(x)
    assert torch.allclose(log_p, dist.Normal(0.0, 0.5).log_prob(x).sum(-1))
    (-log_p.sum()).backward()
    assert float(likelihood.log_sigma.grad) < 0  # residuals of 1 > σ = 0.5: the likelihood asks for a larger σ
    with pytest.raises(UserError, match="unknown likelihood"):
        likelihoods.make("laplace")


# device cleanliness and validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{"elbo": "trace", "particles": 3, "beta": 0.5},
                                     {"elbo": "meanfield", "free_bits": 0.1, "kl_warmup": 2},
                                     {"elbo": "iwae", "particles": 4, "beta": 2.0}])
@pytest.mark.parametrize("likelihood", ["gaussian-learned", "continuous-bernoulli"])
def test_objectives_and_likelihoods_create_no_tensor_off_the_data_device(options, likelihood):
    model, guide = build(likelihood, dtype=torch.float32)
    x = torch.rand(BATCH, D)
    objective = Objective(**options)
    objective.set_epoch(2)
    with torch.device("meta"):
        loss = objective(model, guide)(x)
        loss.backward()
        estimate = log_likelihood(model, guide, x, num_samples=3)
        kl = kl_per_dimension(model, guide, x)
    assert loss.device.type == "cpu" and math.isfinite(float(loss.detach()))
    assert math.isfinite(estimate["log_likelihood"]) and len(kl) == LATENT


@pytest.mark.parametrize("options, message", [
    ({"elbo": "iwa"}, "unknown --elbo"), ({"particles": 0}, "--particles"), ({"beta": -1.0}, "--beta"),
    ({"kl_warmup": 1.5}, "--kl-warmup"), ({"free_bits": float("nan")}, "--free-bits"),
    ({"elbo": "iwae", "free_bits": 0.5}, "IWAE bound does not have"),
    ({"elbo": Trace_ELBO(), "particles": 2}, "brings its own num_particles")])
def test_bad_objective_settings_are_one_line_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        Objective(**options)


# CLI ----------------------------------------------------------------------------------------------------------

TINY = ["--dataset", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "2", "--batch-size", "64",
        "--device", "cpu", "--quiet", "--no-figures"]


def test_train_records_the_objective_and_evaluate_reports_the_is_log_likelihood(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--elbo", "iwae", "--particles", "3", "--beta", "0.5", "--kl-warmup", "1",
             "--likelihood", "gaussian-learned"]
    assert cli.main(["train", *TINY, *flags, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in ("elbo", "particles", "beta", "kl_warmup", "free_bits", "likelihood")} == \
        {"elbo": "iwae", "particles": 3, "beta": 0.5, "kl_warmup": 1, "free_bits": 0.0,
         "likelihood": "gaussian-learned"}
    model, _ = runs.build(config)
    assert "likelihood.log_sigma" in dict(model.named_parameters())
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--is-samples", "50", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["test_kl_per_dim"]) == 2
    assert sum(report["test_kl_per_dim"]) == pytest.approx(report["test_kl"], rel=0.2)  # analytic vs one draw
    assert report["test_log_likelihood"] > report["test_elbo"]
    assert report["test_bits_per_dim"] == pytest.approx(-report["test_log_likelihood"] / (D * math.log(2)))
    assert report["test_log_likelihood_stderr"] > 0

    # the objective is part of the run: resuming with another β is refused
    assert cli.main(["train", *TINY, "--beta", "1", "--out", str(out), "--resume", "--epochs", "3"]) == 2
    assert "beta=0.5" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--elbo", "iwae", "--free-bits", "0.5"], "IWAE bound does not have"),
    (["--binarize", "dynamic"], "for --likelihood bernoulli"),
    (["--beta", "-1"], "--beta"),
    (["--likelihood", "poisson"], "invalid choice")])
def test_bad_objective_flags_exit_2_and_leave_no_run_folder(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    try:
        code = cli.main(["train", *TINY, *flags, "--out", str(out)])
    except SystemExit as stop:  # argparse's own checks (types, choices) exit from the parser
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_dynamic_binarization_draws_fresh_binary_pixels_each_batch():
    from pyro_vae.data import binarize_batch, binarized_test

    x = torch.full((500, 4), 0.3)
    first, second = binarize_batch((x,))[0], binarize_batch((x,))[0]
    assert set(first.unique().tolist()) <= {0.0, 1.0} and not torch.equal(first, second)
    assert float(first.mean()) == pytest.approx(0.3, abs=0.05)
    assert torch.equal(binarized_test(x), binarized_test(x))  # the test set: one fixed draw


# ==============================================================================================================
# IS estimator passes: unvalidated, scored before the sample plate's broadcast (pyro_vae.evaluate.log_likelihood)
# ==============================================================================================================

class _DiagonalPosterior(torch.nn.Module):
    """q(z|x) = p(z|x) for x = W z + b + ε, ε ~ N(0, s² I), W with orthogonal columns: then
    p(z|x) = N(M⁻¹ Wᵀ(x − b), s² M⁻¹) with M = WᵀW + s² I diagonal, a DiagonalNormal."""

    def __init__(self, w, b, noise):
        super().__init__()
        m = (w * w).sum(0) + noise ** 2
        self.w, self.b, self.m, self.scale = w, b, m, noise / m.sqrt()

    def forward(self, x):
        from pyro_vae.distributions import DiagonalNormal

        with pyro.plate("data", x.shape[0], device=x.device):
            return pyro.sample("z", DiagonalNormal((x - self.b) @ self.w / self.m, self.scale.expand(x.shape[0], -1)))


@pytest.mark.parametrize("num_samples", [1, 5])
def test_is_estimate_is_exact_with_a_diagonal_true_posterior_across_chunks(num_samples):
    from pyro_vae.models.vae import VAE

    noise = 0.3
    w = torch.linalg.qr(torch.randn(D, LATENT, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))[0]
    w = w * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)  # orthogonal columns of different lengths
    b = torch.linspace(-1, 1, D, dtype=torch.float64)
    decoder = torch.nn.Linear(LATENT, D).double()
    with torch.no_grad():
        decoder.weight.copy_(w), decoder.bias.copy_(b)
    model, guide = VAE(decoder, LATENT, likelihoods.make("gaussian", c=noise ** 2)), _DiagonalPosterior(w, b, noise)
    x = (torch.randn(9, LATENT, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) @ w.T + b
         + noise * torch.randn(9, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    with pyro.validation_enabled(True):
        estimate = log_likelihood(model, guide, x, num_samples=num_samples, max_pairs=4)  # 2 rows, 2 draws a pass
    exact = dist.MultivariateNormal(b, w @ w.T + noise ** 2 * torch.eye(D, dtype=torch.float64)).log_prob(x)
    assert torch.allclose(estimate["per_example"], exact, atol=1e-8, rtol=0)


def test_is_estimate_checks_every_batch_of_data_against_a_validating_likelihood_only():
    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
            logits = z.unsqueeze(-1).expand(*z.shape, x.shape[-1])
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0]), 1.0))

    x = torch.rand(7, 4, generator=torch.Generator().manual_seed(5)).round()
    x[5, 0] = 0.5  # a grey pixel in the third batch of 2: the first rows, traced in full, are binary
    with pyro.validation_enabled(True):
        with pytest.raises(UserError, match=r"outside the support of the model's observed site\(s\) \['x'\]"):
            log_likelihood(model, guide, x, num_samples=3, batch_size=2)
        assert pyro.poutine.util.is_validation_enabled()  # the passes' setting is undone
        assert math.isfinite(log_likelihood(model, guide, x[:5], num_samples=3, batch_size=2)["log_likelihood"])
        project_model, project_guide = build("bernoulli")  # validate_args=False: grey levels are soft targets
        grey = torch.full((3, D), 0.5, dtype=torch.float64)
        assert math.isfinite(log_likelihood(project_model, project_guide, grey, num_samples=2)["log_likelihood"])
    with pyro.validation_enabled(False):
        assert math.isfinite(log_likelihood(model, guide, x, num_samples=3, batch_size=2)["log_likelihood"])


def test_an_objective_drives_pyros_own_svi_loop():
    """``Objective`` is usable where Pyro expects an ELBO: ``SVI(model, guide, pyro.optim.Adam, loss=...)``."""
    import pyro.optim
    from pyro.infer import SVI
    from torch.distributions import constraints

    x = torch.tensor([1.0, -2.0]) + torch.randn(200, 2, generator=torch.Generator().manual_seed(0))

    def model(x):
        mu = pyro.sample("mu", dist.Normal(x.new_zeros(2), 10.0).to_event(1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("loc", x.new_zeros(2))
        scale = pyro.param("scale", 0.1 * x.new_ones(2), constraint=constraints.positive)
        pyro.sample("mu", dist.Normal(loc, scale).to_event(1))

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), loss=Objective("meanfield", beta=0.5))
    losses = [svi.step(x) for _ in range(300)]
    assert losses[-1] < losses[0]
    # β = 0.5 halves the KL's pull toward the prior: the mean is still ≈ Σx / (N + 0.01/β), far from the prior's 0
    torch.testing.assert_close(pyro.param("loc").detach(), x.sum(0) / (200 + 0.02), atol=0.05, rtol=0)
