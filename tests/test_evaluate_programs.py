"""Evaluation of any Pyro program: no assumption about site names (issue 19).

Small versions of the programs Pyro's examples and tutorials are written in, each keeping its idiom and
site names: Pyro's VAE example (``latent``/``obs``, methods of an ``nn.Module`` calling ``pyro.module``),
the coin (``latent_fairness``, ``obs_{i}`` in a Python loop, no plate), Bayesian regression with
``AutoNormal``, a Gaussian mixture with ``config_enumerate`` and an ``AutoDelta`` guide on a blocked model,
ProdLDA (``logtheta`` in ``pyro.plate("documents")``), local parameters under ``--index`` and pPCA (exact
marginal). Each measure is checked against an independent number: closed forms (Beta/Bernoulli digamma
formulas), a hand computation with scipy at the guide's own draw, Pyro's own ``Trace_ELBO``/``TraceEnum_ELBO``
losses at the same seed, the exact pPCA marginal N(x; 0, WWᵀ + cI). The command line evaluates, samples and
plots every one of them with exit code 0, or says in one line why an action does not apply (each such
message is a row of docs/bad-input.md, checked here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import special, stats

import pyro
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from pyro_vae import cli, program, runs
from pyro_vae.data import Dataset
from pyro_vae.errors import UserError
from pyro_vae.evaluate import elbo_parts, encode, generate, kl_per_dimension, log_likelihood, program_sites

HEADER = """import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import config_enumerate
from pyro.infer.autoguide import AutoDelta, AutoNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn
from torch.distributions import constraints
"""

PROGRAMS = {
    # Pyro's examples/vae/vae.py: methods of an nn.Module, sites latent/obs, Bernoulli on binarized rows
    "vae_example": """
class VAE(nn.Module):
    def __init__(self, x_dim, z_dim=2, hidden=8):
        super().__init__()
        self.z_dim = z_dim
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.Softplus(), nn.Linear(hidden, x_dim), nn.Sigmoid())
        self.encoder = nn.Sequential(nn.Linear(x_dim, hidden), nn.Softplus(), nn.Linear(hidden, 2 * z_dim))

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = x.new_zeros(x.shape[0], self.z_dim), x.new_ones(x.shape[0], self.z_dim)
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            pyro.sample("obs", dist.Bernoulli(self.decoder(z), validate_args=False).to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_log_scale = self.encoder(x).chunk(2, dim=-1)
            pyro.sample("latent", dist.Normal(z_loc, z_log_scale.exp()).to_event(1))


def build(dataset):
    return VAE(dataset.dim)
""",
    # the coin (SVI part I): a site per flip in a Python loop, no plate
    "coin": """
def model(data):
    f = pyro.sample("latent_fairness", dist.Beta(data.new_tensor(10.0), data.new_tensor(10.0)))
    for i in range(len(data)):
        pyro.sample(f"obs_{i}", dist.Bernoulli(f), obs=data[i, 0])


def guide(data):
    alpha_q = pyro.param("alpha_q", torch.tensor(12.0), constraint=constraints.positive)
    beta_q = pyro.param("beta_q", torch.tensor(8.0), constraint=constraints.positive)
    pyro.sample("latent_fairness", dist.Beta(alpha_q, beta_q))


pair = (model, guide)
""",
    # Bayesian regression (PyroModule, PyroSample priors, an autoguide); the last column is the target
    "regression": """
class BayesianRegression(PyroModule):
    def __init__(self, in_features):
        super().__init__()
        self.linear = PyroModule[nn.Linear](in_features, 1)
        self.linear.weight = PyroSample(dist.Normal(0.0, 1.0).expand([1, in_features]).to_event(2))
        self.linear.bias = PyroSample(dist.Normal(0.0, 10.0).expand([1]).to_event(1))

    def forward(self, rows):
        features, y = rows[:, :-1], rows[:, -1]
        sigma = pyro.sample("sigma", dist.LogNormal(0.0, 1.0))
        mean = self.linear(features).squeeze(-1)
        with pyro.plate("data", rows.shape[0]):
            pyro.sample("obs", dist.Normal(mean, sigma), obs=y)


def build(dataset):
    model = BayesianRegression(dataset.dim - 1)
    return model, AutoNormal(model)


def build_map(dataset):
    model = BayesianRegression(dataset.dim - 1)
    return model, AutoDelta(model)
""",
    # the GMM tutorial: enumerated assignments, a MAP guide on the globals of a blocked model
    "mixture": """
@config_enumerate
def model(rows):
    x = rows[:, 0]
    weights = pyro.sample("weights", dist.Dirichlet(x.new_ones(2)))
    scale = pyro.sample("scale", dist.LogNormal(x.new_zeros(()), 2.0))
    with pyro.plate("components", 2):
        locs = pyro.sample("locs", dist.Normal(x.new_zeros(()), 10.0))
    with pyro.plate("data", x.shape[0]):
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=x)


def build(dataset):
    return model, AutoDelta(poutine.block(model, expose=["weights", "locs", "scale"]))
""",
    # ProdLDA: logtheta per document in pyro.plate("documents"), word counts
    "prodlda": """
class ProdLDA(nn.Module):
    def __init__(self, vocab, topics=3, hidden=8):
        super().__init__()
        self.topics = topics
        self.encoder = nn.Sequential(nn.Linear(vocab, hidden), nn.Softplus(), nn.Linear(hidden, 2 * topics))
        self.decoder = nn.Linear(topics, vocab, bias=False)

    def model(self, docs):
        pyro.module("decoder", self.decoder)
        with pyro.plate("documents", docs.shape[0]):
            logtheta = pyro.sample("logtheta", dist.Normal(docs.new_zeros(self.topics), 1.0).to_event(1))
            logits = self.decoder(F.softmax(logtheta, -1))
            total = int(docs.sum(-1).max())
            pyro.sample("obs", dist.Multinomial(total, logits=logits, validate_args=False), obs=docs)

    def guide(self, docs):
        pyro.module("encoder", self.encoder)
        with pyro.plate("documents", docs.shape[0]):
            loc, log_scale = self.encoder(docs).chunk(2, -1)
            pyro.sample("logtheta", dist.Normal(loc, log_scale.exp()).to_event(1))


def build(dataset):
    return ProdLDA(dataset.dim)
""",
    # local parameters: one z_i per row with its own variational parameters, under --index
    "local": """
def build(dataset):
    n, d = dataset.train.shape

    def model(x, index):
        mu = pyro.sample("mu", dist.Normal(x.new_zeros(d), 10.0).to_event(1))
        with pyro.plate("data", n, subsample=index):
            z = pyro.sample("z", dist.Normal(mu, 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=x)

    def guide(x, index):
        mu_loc = pyro.param("mu_loc", torch.zeros(d))
        pyro.sample("mu", dist.Normal(mu_loc, 0.1).to_event(1))
        z_loc = pyro.param("z_loc", torch.zeros(n, d))
        z_scale = pyro.param("z_scale", torch.ones(n, d), constraint=constraints.positive)
        with pyro.plate("data", n, subsample=index):
            pyro.sample("z", dist.Normal(z_loc[index], z_scale[index]).to_event(1))

    return model, guide
""",
    # pPCA with an exact marginal N(x; 0, WWᵀ + cI), and a guide near (not at) the exact posterior
    "ppca": """
C = 0.25


def build(dataset):
    d = dataset.dim
    W = torch.linspace(-1.0, 1.0, 2 * d).reshape(d, 2)

    def model(x):
        weight = pyro.param("W", W.clone())
        with pyro.plate("data", x.shape[0]):
            code = pyro.sample("code", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            pyro.sample("pixels", dist.Normal(code @ weight.T, C ** 0.5).to_event(1), obs=x)

    def guide(x):
        weight = pyro.param("W", W.clone()).detach()
        precision = weight.T @ weight + C * torch.eye(2)
        loc = torch.linalg.solve(precision, weight.T @ x.T).T + 0.2  # the exact posterior mean, shifted
        scale = (C * torch.linalg.inv(precision).diagonal()).sqrt() * 1.3  # its marginal sd, widened
        with pyro.plate("data", x.shape[0]):
            pyro.sample("code", dist.Normal(loc, scale).to_event(1))

    return model, guide
""",
    # sparse_gamma_def's idiom: a guide with a parameter per training row, a plate of the training set's size
    "per_row": """
def build(dataset):
    n, d = dataset.train.shape

    def model(x):
        with pyro.plate("data", n):
            z = pyro.sample("z", dist.Normal(x.new_zeros(d), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("loc", torch.zeros(n, d))
        with pyro.plate("data", n):
            pyro.sample("z", dist.Normal(loc, 0.5).to_event(1))

    return model, guide
""",
    # the same with a plate of the batch's size: on as many test rows as training rows it would run, wrongly
    "per_row_batch_plate": """
def build(dataset):
    n, d = dataset.train.shape

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(d), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("loc", torch.zeros(n, d))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, 0.5).to_event(1))

    return model, guide
""",
    # a program of two arrays, model(x, y) (an .npz with --arrays x,y): a code per row explains both
    "labelled": """
def build(dataset):
    d = dataset.dim

    def model(x, y):
        weight = pyro.param("weight", torch.ones(d, 2))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ weight.T, 1.0).to_event(1), obs=x)
            pyro.sample("y", dist.Bernoulli(logits=z[:, 0]), obs=y.to(x.dtype))

    def guide(x, y):
        encoder = pyro.param("encoder", torch.zeros(d, 2))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x @ encoder + y[:, None].to(x.dtype), 1.0).to_event(1))

    return model, guide
""",
    # two per-example latent sites: encode/decode don't apply
    "two_latents": """
def build(dataset):
    d = dataset.dim

    def model(x):
        pyro.param("unused", torch.zeros(1))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
            y = pyro.sample("y", dist.Normal(x.new_zeros(1), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z.sum(-1, keepdim=True) + y, 1.0).expand([x.shape[0], d]).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("loc", torch.zeros(3))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc[:2].expand(x.shape[0], 2), 1.0).to_event(1))
            pyro.sample("y", dist.Normal(loc[2:].expand(x.shape[0], 1), 1.0).to_event(1))

    return model, guide
""",
    # one latent per row, but only the first column observed: nothing to reconstruct the rows with
    "first_column": """
def model(x):
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(()), 1.0))
        pyro.sample("x0", dist.Normal(z, 1.0), obs=x[:, 0])


def guide(x):
    loc = pyro.param("loc", torch.zeros(()))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(loc.expand(x.shape[0]), 1.0))


pair = (model, guide)
""",
    # a model latent without a guide site
    "unguided": """
def model(x):
    mu = pyro.sample("mu", dist.Normal(x.new_zeros(x.shape[1]), 1.0).to_event(1))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)


def guide(x):
    pyro.param("unused", torch.zeros(1))


pair = (model, guide)
""",
}

SPECS = {"vae_example": "build", "coin": "pair", "regression": "build", "mixture": "build", "prodlda": "build",
         "local": "build", "ppca": "build", "per_row": "build", "per_row_batch_plate": "build", "labelled": "build", "two_latents": "build", "first_column": "pair", "unguided": "pair"}


def data(name: str) -> np.ndarray:
    g = np.random.default_rng(0)
    if name == "vae_example":  # binarized rows
        return (g.uniform(size=(60, 12)) < np.linspace(0.1, 0.9, 12)).astype(np.float32)
    if name == "coin":  # 7 heads in 10 flips, four times over
        return np.tile(np.array([1, 1, 0, 1, 1, 0, 1, 1, 0, 1], np.float32), 4)[:, None]
    if name == "regression":  # y = X (1, -2, 0.5) + 0.3 + N(0, 0.5²)
        features = g.normal(size=(100, 3))
        return np.c_[features, features @ [1.0, -2.0, 0.5] + 0.3 + 0.5 * g.normal(size=100)].astype(np.float32)
    if name == "mixture":
        return np.r_[g.normal(-3, 1, 50), g.normal(3, 1, 50)][:, None].astype(np.float32)
    if name == "prodlda":  # word counts
        return g.poisson(np.linspace(0.5, 4.0, 10), size=(50, 10)).astype(np.float32)
    return g.normal(2.0, 1.1, size=(50, 3)).astype(np.float32)  # local, ppca, per_row..., two_latents, ...


def dataset(name: str) -> Dataset:
    x = torch.from_numpy(data(name))
    return Dataset(name, x, x, None, None, tuple(x.shape[1:]))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("programs")
    for name, body in PROGRAMS.items():
        (folder / f"{name}.py").write_text(HEADER + body)
        np.save(folder / f"{name}.npy", data(name))
    np.savez(folder / "labelled.npz", x=data("labelled"), y=(data("labelled")[:, 0] > 2).astype(np.int64))
    return folder


def load(folder: Path, name: str, attribute: str | None = None):
    """(model, guide, rows) of a program, on its whole data set, with a fresh param store."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model, guide = program.load(f"{folder / name}.py:{attribute or SPECS[name]}", dataset(name))
    x = dataset(name).train
    guide(*((x, torch.arange(len(x))) if name == "local" else (x,)))  # lazily made parameters
    return model, guide, x


def consistent(parts: dict) -> None:
    """elbo = reconstruction − kl, and kl = Σ of the per-site terms."""
    assert parts["elbo"] == pytest.approx(parts["reconstruction"] - parts["kl"], abs=1e-9)
    per_site = [v for k, v in parts.items() if k.startswith("kl/")]
    assert per_site and sum(per_site) == pytest.approx(parts["kl"], rel=1e-9, abs=1e-9)


# --- numbers against independent ones ----------------------------------------------------------------

def test_the_coins_elbo_is_the_beta_bernoulli_closed_form(folder):
    model, guide, x = load(folder, "coin")
    flips, heads = len(x), float(x.sum())
    a, b = 12.0, 8.0
    # at one draw θ of the guide: log p(x|θ) + log p(θ) − log q(θ), by hand with scipy
    pyro.set_rng_seed(1)
    parts = elbo_parts(model, guide, x, batch_size=7)  # per-observation sites: evaluated in one batch anyway
    pyro.set_rng_seed(1)
    guide(x[:7])  # the draw elbo_parts made on its first batch, before it found the per-observation sites
    theta = float(poutine.trace(guide).get_trace(x).nodes["latent_fairness"]["value"].detach())
    log_lik = heads * np.log(theta) + (flips - heads) * np.log1p(-theta)
    kl = stats.beta.logpdf(theta, a, b) - stats.beta.logpdf(theta, 10, 10)
    assert parts["reconstruction"] == pytest.approx(log_lik / flips, rel=1e-5)
    assert parts["kl/latent_fairness"] == pytest.approx(kl / flips, rel=1e-4, abs=1e-6)
    consistent(parts)
    # the mean over draws against E_q[log p(x|θ)] − KL(q ‖ p) with digamma formulas
    draws = np.array([elbo_parts(model, guide, x)["elbo"] for _ in range(150)])
    e_log_lik = heads * (special.digamma(a) - special.digamma(a + b)) + \
        (flips - heads) * (special.digamma(b) - special.digamma(a + b))
    exact_kl = (special.betaln(10, 10) - special.betaln(a, b) + (a - 10) * special.digamma(a)
                + (b - 10) * special.digamma(b) + (20 - a - b) * special.digamma(a + b))
    stderr = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - (e_log_lik - exact_kl) / flips) < 4 * stderr


def test_the_regressions_elbo_is_the_hand_computed_one_at_the_autoguides_draw(folder):
    model, guide, rows = load(folder, "regression")
    x, y = rows[:, :-1].double().numpy(), rows[:, -1].double().numpy()
    pyro.set_rng_seed(2)
    parts = elbo_parts(model, guide, rows)
    pyro.set_rng_seed(2)
    drawn = {k: s["value"].detach().double().numpy() for k, s in poutine.trace(guide).get_trace(rows).nodes.items()
             if s["type"] == "sample"}
    w, b, sigma = drawn["linear.weight"].ravel(), drawn["linear.bias"].ravel(), float(drawn["sigma"])
    loc = lambda name: getattr(guide.locs, name) if "." not in name else guide.locs.linear.weight if "weight" in name \
        else guide.locs.linear.bias  # noqa: E731
    scale = lambda name: getattr(guide.scales, name) if "." not in name else guide.scales.linear.weight \
        if "weight" in name else guide.scales.linear.bias  # noqa: E731
    q = lambda value, name: stats.norm.logpdf(value, loc(name).detach().double().numpy().ravel(),  # noqa: E731
                                              scale(name).detach().double().numpy().ravel()).sum()
    log_lik = stats.norm.logpdf(y, x @ w + b, sigma).sum()
    # AutoNormal draws log σ from a Normal: log q(σ) = log N(log σ) − log σ, the Jacobian that p's LogNormal has too
    kl = {"linear.weight": q(w, "linear.weight") - stats.norm.logpdf(w, 0, 1).sum(),
          "linear.bias": q(b, "linear.bias") - stats.norm.logpdf(b, 0, 10).sum(),
          "sigma": q(np.log(sigma), "sigma") - stats.norm.logpdf(np.log(sigma), 0, 1)}
    n = len(y)
    assert parts["reconstruction"] == pytest.approx(log_lik / n, rel=1e-5)
    for name, value in kl.items():
        assert parts[f"kl/{name}"] == pytest.approx(value / n, rel=1e-4, abs=1e-6), name
    consistent(parts)


def test_global_latents_count_once_whatever_the_batch_size(folder):
    """A MAP guide (AutoDelta) makes the ELBO deterministic: log p(y|w) + log p(w) at the point w, the same in
    one batch or four, as each batch is scaled by N/rows and weighted by rows/N."""
    model, guide, rows = load(folder, "regression", "build_map")
    whole, quarters = elbo_parts(model, guide, rows, batch_size=100), elbo_parts(model, guide, rows, batch_size=25)
    for key in whole:
        assert quarters[key] == pytest.approx(whole[key], rel=1e-5, abs=1e-6), key
    point = {k: s["value"].detach().double().numpy() for k, s in poutine.trace(guide).get_trace(rows).nodes.items()
             if s["type"] == "sample"}
    w, b, sigma = point["linear.weight"].ravel(), point["linear.bias"].ravel(), float(point["sigma"])
    x, y = rows[:, :-1].double().numpy(), rows[:, -1].double().numpy()
    log_p = (stats.norm.logpdf(y, x @ w + b, sigma).sum() + stats.norm.logpdf(w, 0, 1).sum()
             + stats.norm.logpdf(b, 0, 10).sum() + stats.lognorm.logpdf(sigma, 1.0))
    assert whole["elbo"] == pytest.approx(log_p / len(y), rel=1e-5)


def test_an_enumerated_mixture_gets_pyros_enumerated_elbo(folder):
    model, guide, x = load(folder, "mixture")
    direct = -TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, x) / len(x)
    whole, batches = elbo_parts(model, guide, x), elbo_parts(model, guide, x, batch_size=30)
    assert set(whole) == {"elbo"}  # no reconstruction/kl split: the assignment has no guide site
    assert whole["elbo"] == pytest.approx(direct, rel=1e-5)
    assert batches["elbo"] == pytest.approx(direct, rel=1e-5)  # deterministic: the globals are counted once
    assert program_sites(model, guide, x).enumerated == ("assignment",)


@pytest.mark.parametrize("name,plate", [("vae_example", "data"), ("prodlda", "documents"), ("local", "data")])
def test_the_elbo_is_pyros_trace_elbo_at_the_same_draw(folder, name, plate):
    model, guide, x = load(folder, name)
    rows = (x, torch.arange(len(x))) if name == "local" else (x,)
    pyro.set_rng_seed(3)
    direct = -Trace_ELBO().loss(model, guide, *rows) / len(x)
    pyro.set_rng_seed(3)
    parts = elbo_parts(model, guide, rows, batch_size=len(x), plate=plate)
    assert parts["elbo"] == pytest.approx(direct, rel=1e-5)
    consistent(parts)
    batched = elbo_parts(model, guide, rows, batch_size=16, plate=plate)  # another draw: only finite and split
    assert np.isfinite(batched["elbo"]) and set(batched) == set(parts)


def test_the_is_log_likelihood_of_ppca_is_the_exact_marginal(folder):
    """log N(x; 0, WWᵀ + cI) per example against the importance-sampled estimate with K = 2000 draws from a
    guide near the posterior: within 0.01 nats (measured: −18.754 against −18.750 at this seed; K = 1 gives −20.9,
    K = 100 −18.74); the one-draw ELBO lies below it, by the KL of the deliberately shifted guide (−20.7)."""
    model, guide, x = load(folder, "ppca")
    weight = pyro.param("W").detach().double()
    cov = weight @ weight.T + 0.25 * torch.eye(x.shape[1], dtype=torch.float64)
    exact = float(torch.distributions.MultivariateNormal(torch.zeros(x.shape[1], dtype=torch.float64), cov)
                  .log_prob(x.double()).mean())
    pyro.set_rng_seed(4)
    estimate = log_likelihood(model, guide, x, num_samples=2000)
    assert estimate["log_likelihood"] == pytest.approx(exact, abs=0.01)
    assert elbo_parts(model, guide, x)["elbo"] < exact - 0.05


def test_a_program_with_parameters_per_training_row_is_evaluated_on_its_training_rows(folder):
    """The test rows have no parameters of their own, and the plate has the training set's size: evaluate falls
    back to all training rows in one batch, and says so by its keys (``train_``)."""
    run = program_run(folder, "per_row")
    report = run.evaluate(batch_size=16)
    assert report["train_examples"] == 40 and not any(k.startswith("test_") for k in report)
    assert "train_reconstruction_mse" not in report  # reconstructing needs new rows
    x = run.dataset().train
    pyro.set_rng_seed(5)
    direct = -Trace_ELBO().loss(run.model, run.guide, x) / len(x)
    pyro.set_rng_seed(5)
    assert elbo_parts(run.model, run.guide, x)["elbo"] == pytest.approx(direct, rel=1e-5)
    assert np.isfinite(elbo_parts(run.model, run.guide, x, batch_size=16)["elbo"])  # one batch of all rows
    with pytest.raises(UserError, match="^the model and guide failed on 16 rows"):  # batches of 16: one line
        log_likelihood(run.model, run.guide, x, num_samples=2, batch_size=16)
    # as many test rows as training rows: they would run, each meeting a training row's parameters
    run = program_run(folder, "per_row_batch_plate", test_fraction=0.5)
    assert set(run.evaluate()) == {"train_examples", "train_elbo", "train_reconstruction", "train_kl", "train_kl/z"}


# --- the run folder and the command line ----------------------------------------------------------------

TRAIN = {"vae_example": ["--batch-size", "16"], "coin": ["--batch-size", "40", "--test-fraction", "0"], "regression": ["--batch-size", "80"],
         "mixture": ["--batch-size", "80", "--elbo", "enum"], "prodlda": ["--batch-size", "20", "--plate", "documents"],
         "local": ["--batch-size", "20", "--index"], "labelled": ["--batch-size", "20", "--arrays", "x,y"]}
DATA = {"labelled": "labelled.npz"}


FIGURES = {"vae_example": {"elbo.png", "reconstructions.png", "samples.png"}, "coin": {"elbo.png"}}


@pytest.fixture(scope="module")
def trained(folder) -> dict[str, Path]:
    """A one-epoch run folder of each program, trained by the command line."""
    out = {}
    for name, flags in TRAIN.items():
        out[name] = folder / "runs" / name
        argv = ["train", "--program", f"{folder / name}.py:{SPECS[name]}", "--dataset",
                str(folder / DATA.get(name, f"{name}.npy")), "--epochs", "1", "--lr", "1e-3", "--device", "cpu", "--quiet", *flags, "--out", str(out[name])]
        argv += [] if name in FIGURES else ["--no-figures"]
        assert cli.main(argv) == 0, name
    return out


@pytest.mark.parametrize("name", list(FIGURES))
def test_train_draws_the_figures_that_apply(name, trained):
    assert {p.name for p in (trained[name] / "figures").iterdir()} == FIGURES[name]


def run_cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# what each program's evaluate reports beyond the ELBO, and its per-site KL terms
APPLIES = {"vae_example": ({"test_reconstruction_mse", "test_kl_per_dim"}, {"test_kl/latent"}),
           "coin": (set(), {"train_kl/latent_fairness"}),
           "regression": (set(), {"test_kl/sigma", "test_kl/linear.weight", "test_kl/linear.bias"}),
           "mixture": (set(), set()),
           "prodlda": ({"test_reconstruction_mse", "test_kl_per_dim"}, {"test_kl/logtheta"}),
           "local": (set(), {"train_kl/mu", "train_kl/z"}), "labelled": (set(), {"test_kl/z"})}


@pytest.mark.parametrize("name", list(TRAIN))
def test_evaluate_prints_what_applies_to_every_program(name, trained, capsys):
    code, out, err = run_cli(["evaluate", str(trained[name]), "--device", "cpu"], capsys)
    assert code == 0 and err == "", err
    report = json.loads(out)
    split = "train" if name in ("local", "coin") else "test"  # --index; --test-fraction 0, as in the tutorial
    extra, per_site = APPLIES[name]
    assert np.isfinite(report[f"{split}_elbo"]) and report[f"{split}_examples"] > 0
    assert extra | per_site <= set(report) and not {"test_reconstruction_mse", "train_reconstruction_mse"} - extra \
        & set(report)
    if name == "mixture":
        assert f"{split}_kl" not in report and f"{split}_reconstruction" not in report
    else:
        assert report[f"{split}_elbo"] == pytest.approx(report[f"{split}_reconstruction"] - report[f"{split}_kl"])
        assert sum(report[k] for k in per_site) == pytest.approx(report[f"{split}_kl"], rel=1e-6, abs=1e-6)


def test_pyros_vae_example_encodes_decodes_samples_and_plots(trained, tmp_path, capsys):
    run = runs.load(trained["vae_example"])
    x = run.dataset().test[:5]
    codes = run.encode(x)
    assert torch.equal(codes, run.model.__self__.encoder(x).chunk(2, -1)[0])  # the mean of q(latent|x)
    assert torch.allclose(run.decode(codes), run.reconstruct(x)) and run.reconstruct(x).shape == x.shape
    code, out, err = run_cli(["sample", str(trained["vae_example"]), "-n", "6", "--out", str(tmp_path / "s.npy")],
                             capsys)
    assert code == 0 and np.load(tmp_path / "s.npy").shape == (6, 12)
    code, out, err = run_cli(["plot", str(trained["vae_example"])], capsys)
    assert code == 0 and {Path(p).name for p in json.loads(out)["figures"]} == \
        {"elbo.png", "reconstructions.png", "samples.png"}
    code, out, err = run_cli(["evaluate", str(trained["vae_example"]), "--device", "cpu", "--is-samples", "50"],
                             capsys)
    report = json.loads(out)
    assert code == 0 and report["test_log_likelihood"] > report["test_elbo"] - 0.5  # a bound that tightens with K


def test_a_program_of_several_arrays_gets_every_one_of_them(trained):
    """model(x, y) with --arrays x,y: evaluate passes each row's x and y, as Pyro's Trace_ELBO does."""
    run = runs.load(trained["labelled"])
    dataset = run.dataset()
    assert len(dataset.test_rows) == 2
    pyro.set_rng_seed(6)
    direct = -Trace_ELBO().loss(run.model, run.guide, *dataset.test_rows) / dataset.test.shape[0]
    pyro.set_rng_seed(6)
    assert elbo_parts(run.model, run.guide, dataset.test_rows)["elbo"] == pytest.approx(direct, rel=1e-5)


@pytest.mark.parametrize("name", ["coin", "regression", "mixture", "local", "labelled"])
def test_plot_draws_what_applies(name, trained, capsys):
    code, out, err = run_cli(["plot", str(trained[name])], capsys)
    assert code == 0 and err == "" and [Path(p).name for p in json.loads(out)["figures"]] == ["elbo.png"]


# --- what does not apply: one line, as docs/bad-input.md shows it ---------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
HERE = "tests/test_evaluate_programs.py"


def documented() -> dict[str, str]:
    """Row name → message, from the catalogue's rows whose Test column names this file."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 4 and HERE in cells[3]:
            rows[cells[0].replace("\\|", "|")] = cells[2].strip("`")
    return rows


def matches(doc: str, message: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in doc.split("…"))
    return re.fullmatch(pattern, message) is not None


CLI_CASES = {
    "sample on a program run without a per-example latent site (the coin)":
        lambda d, runs_: ["sample", str(runs_["coin"]), "--out", f"{d}/s.png"],
    "sample on a program run trained with --index":
        lambda d, runs_: ["sample", str(runs_["local"]), "--out", f"{d}/s.png"],
    "sample on a program run that takes further arrays (--arrays)":
        lambda d, runs_: ["sample", str(runs_["labelled"]), "--out", f"{d}/s.png"],
    "evaluate --is-samples on a program with a global latent":
        lambda d, runs_: ["evaluate", str(runs_["regression"]), "--is-samples", "10", "--device", "cpu"],
    "evaluate --is-samples on a program with enumerated sites":
        lambda d, runs_: ["evaluate", str(runs_["mixture"]), "--is-samples", "10", "--device", "cpu"],
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_an_action_that_does_not_apply_is_one_line_exit_2(name, trained, tmp_path, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli(CLI_CASES[name](tmp_path, trained), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial file
    message = err.strip().replace(str(trained["coin"].parents[1]), "DIR")
    doc = documented().get(name)
    assert doc is not None, f"add a row for {name!r} to docs/bad-input.md: | {name} | … | `{message}` | `{HERE}` |"
    assert matches(doc, message), f"docs/bad-input.md says\n  {doc}\nbut the message is\n  {message}"


def program_run(folder: Path, name: str, **config) -> runs.ProgramRun:
    """A ProgramRun of ``name`` rebuilt from a config, as ``pyro_vae.load`` rebuilds one (fresh parameters)."""
    config = {"model": "program", "program": f"{folder / name}.py:{SPECS[name]}", "dataset": str(folder / f"{name}.npy"),
              "index": False, "shape": list(data(name).shape[1:]), **config}
    return runs.ProgramRun(folder, config, *runs.ProgramRun.rebuild(config))


API_CASES = {
    "encode, decode, reconstruct or sample a program with several per-example latents":
        lambda folder: program_run(folder, "two_latents").encode(torch.zeros(2, 3)),
    "decode, reconstruct or sample a program whose observed site is not the data rows":
        lambda folder: program_run(folder, "first_column").decode(torch.zeros(2)),
    "encode with a guide that has no single latent site in pyro.plate('data')":
        lambda folder: encode(load(folder, "two_latents")[1], torch.zeros(2, 3)),
    "generate from a model without an observed site holding the rows":
        lambda folder: generate(load(folder, "first_column")[0], torch.zeros(2, 3)),
    "kl_per_dimension of a program with several per-example latents":
        lambda folder: kl_per_dimension(*load(folder, "two_latents")),
    "sample from a program with parameters per training row":
        lambda folder: program_run(folder, "per_row").sample(4),
    "evaluate rows on which the program fails":
        lambda folder: elbo_parts(*load(folder, "per_row")[:2], torch.zeros(4, 2)),
    "log_likelihood of a program whose guide lacks a latent site of the model":
        lambda folder: log_likelihood(*load(folder, "unguided"), num_samples=2),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_the_python_api_says_in_one_line_what_does_not_apply(name, folder):
    with pytest.raises(UserError) as error:
        API_CASES[name](folder)
    message = f"UserError: {error.value}"
    assert "\n" not in message
    doc = documented().get(name)
    assert doc is not None, f"add a row for {name!r} to docs/bad-input.md: | {name} | … | `{message}` | `{HERE}` |"
    assert matches(doc, message), f"docs/bad-input.md says\n  {doc}\nbut the message is\n  {message}"


def test_every_row_of_this_file_in_the_catalogue_has_a_test():
    assert set(documented()) == set(CLI_CASES) | set(API_CASES)
