"""The Pyro internals pyro_vae relies on are where it expects them.

pyproject.toml pins pyro-ppl to the range these were tested with (``PINNED``). A newer Pyro may move a
private name or change what it does; then this file fails with one line that names the internal, instead
of the trainer failing somewhere downstream (or, worse, silently losing its fast path).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch

import pyro
import pyro.distributions as dist
from pyro import poutine

PINNED = re.search(r'"(pyro-ppl[^"]*)"', (Path(__file__).parents[1] / "pyproject.toml").read_text()).group(1)

# (module, name, who relies on it)
NAMES = [
    ("pyro.infer.trace_elbo", "_compute_log_r", "pyro_vae.elbos: REINFORCE terms as Pyro's Trace_ELBO"),
    ("pyro.infer.elbo", "ELBOModule", "pyro_vae.objectives: Objective(model, guide) as a module"),
    ("pyro.poutine.subsample_messenger", "_Subsample", "pyro_vae.evaluate: skips plates' subsample sites"),
    ("pyro.poutine.trace_messenger", "TraceMessenger", "pyro_vae.handlers.lean_traces"),
    ("pyro.poutine.replay_messenger", "ReplayMessenger", "pyro_vae.handlers.lean_traces"),
    ("pyro.poutine.messenger", "Messenger", "pyro_vae.handlers, pyro_vae.elbos"),
    ("pyro.poutine.util", "site_is_subsample", "pyro_vae.elbos, pyro_vae.handlers"),
    ("pyro.poutine.util", "prune_subsample_sites", "pyro_vae.elbos"),
    ("pyro.distributions.util", "is_identically_zero", "pyro_vae.elbos"),
    ("pyro.distributions.util", "scale_and_mask", "pyro_vae.elbos, pyro_vae.objectives"),
    ("pyro.distributions.torch_distribution", "ExpandedDistribution", "pyro_vae.distributions"),
    ("pyro.distributions.torch_distribution", "MaskedDistribution", "pyro_vae.distributions"),
    ("pyro.infer.util", "is_validation_enabled", "pyro_vae.elbos"),
    ("pyro.infer.util", "get_dependent_plate_dims", "pyro_vae.objectives.IWAE"),
    ("pyro.infer.util", "torch_sum", "pyro_vae.objectives.IWAE"),
]

# ELBO methods and attributes that pyro_vae calls or overrides, by class
MEMBERS = [
    ("pyro.infer.elbo", "ELBO", "_get_traces", "pyro_vae.objectives._VectorizedELBO"),
    ("pyro.infer.elbo", "ELBO", "_guess_max_plate_nesting", "pyro_vae.elbos (vectorized particles)"),
    ("pyro.infer.elbo", "ELBO", "_vectorized_num_particles", "pyro_vae.elbos (vectorized particles)"),
    ("pyro.infer.trace_elbo", "Trace_ELBO", "_get_trace", "pyro_vae.elbos: Pyro's traces outside the lean path"),
    ("pyro.infer.trace_elbo", "Trace_ELBO", "_differentiable_loss_particle", "pyro_vae.elbos: inherited loss"),
    ("pyro.poutine.messenger", "Messenger", "_process_message", "pyro_vae.handlers.DataScale/SiteScale"),
]


def moved(what: str, why: str) -> None:
    pytest.fail(f"Pyro internal moved: {what} (used by {why}); pyro_vae is tested with {PINNED} "
                f"(installed: pyro-ppl {pyro.__version__})", pytrace=False)


@pytest.mark.parametrize("module, name, why", NAMES, ids=[f"{m}.{n}" for m, n, _ in NAMES])
def test_private_names_import(module, name, why):
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        moved(f"{module}.{name}", why)


@pytest.mark.parametrize("module, cls, member, why", MEMBERS, ids=[f"{c}.{m}" for _, c, m, _ in MEMBERS])
def test_elbo_members_exist(module, cls, member, why):
    if not callable(getattr(getattr(importlib.import_module(module), cls), member, None)):
        moved(f"{module}.{cls}.{member}", why)


def pair():
    def model():
        with pyro.plate("data", 4, subsample_size=2):
            z = pyro.sample("z", dist.Normal(torch.zeros(()), 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=torch.zeros(2))

    def guide():
        with pyro.plate("data", 4, subsample_size=2):
            pyro.sample("z", dist.Bernoulli(0.3 * torch.ones(())))  # not reparameterized: a REINFORCE site

    return model, guide


def test_what_the_internals_do():
    """The behaviour pyro_vae.elbos and pyro_vae.handlers rely on, not only the names."""
    from pyro.infer.trace_elbo import _compute_log_r
    from pyro.poutine.replay_messenger import ReplayMessenger
    from pyro.poutine.trace_messenger import TraceMessenger
    from pyro.poutine.util import prune_subsample_sites, site_is_subsample

    model, guide = pair()
    with TraceMessenger() as guide_tracer:  # lean_traces: the messengers as context managers
        guide()
    with TraceMessenger() as model_tracer, ReplayMessenger(trace=getattr(guide_tracer, "trace", None)):
        model()
    traces = [getattr(t, "trace", None) for t in (model_tracer, guide_tracer)]
    if not all(isinstance(t, poutine.Trace) for t in traces):
        moved("TraceMessenger().trace (the trace of a `with TraceMessenger() as t:` block)", "pyro_vae.handlers")
    model_trace, guide_trace = traces
    if model_trace.nodes["z"]["value"] is not guide_trace.nodes["z"]["value"]:
        moved("ReplayMessenger(trace=...) as a context manager", "pyro_vae.handlers.lean_traces")
    if not any(site_is_subsample(s) for s in guide_trace.nodes.values()):
        moved("site_is_subsample (a plate's subsample site)", "pyro_vae.elbos, pyro_vae.handlers")
    model_trace, guide_trace = prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)
    model_trace.compute_log_prob()
    guide_trace.compute_score_parts()
    if not all("log_prob_sum" in s for t in (model_trace, guide_trace) for s in t.nodes.values()
               if s["type"] == "sample") or "score_parts" not in guide_trace.nodes["z"]:
        moved("Trace.compute_log_prob / compute_score_parts site keys", "pyro_vae.elbos")
    if not hasattr(_compute_log_r(model_trace, guide_trace), "sum_to"):
        moved("_compute_log_r(model_trace, guide_trace).sum_to", "pyro_vae.elbos")


def test_default_score_parts_reuse_log_prob():
    """The lean path proves a guide site fully reparameterized by ``entropy_term is log_prob`` (no
    score-function term): if Pyro stopped returning the same tensor, every step would take the slow path."""
    parts = dist.Normal(torch.zeros(3), 1.0).to_event(1).score_parts(torch.ones(3))
    if not (parts.entropy_term is parts.log_prob and parts.score_function == 0):
        moved("TorchDistributionMixin.score_parts (entropy_term is log_prob when reparameterized)",
              "pyro_vae.elbos._reparameterized_elbo")
