"""Pyro's ``Trace_ELBO`` and ``TraceMeanField_ELBO`` without a host sync per step: same loss, same gradients.

    −ELBO = −E_q[log p(x, z) − log q(z|x)]     (Trace_ELBO: one draw z ~ q)
          = −E_q[log p(x|z)] + KL(q(z|x) ‖ p(z))   (TraceMeanField_ELBO: the KL in closed form)

Pyro's ``differentiable_loss`` reads the ELBO back to the host twice (``torch_item``) and checks it
for NaN (``warn_if_nan``): on a GPU each read stalls the host until every queued kernel has run, and
on a CPU it is Python work per step. Here, with Pyro's validation off (the trainer's steps after the
first), ``differentiable_loss`` keeps the loss a tensor on the data's device and reads nothing back;
the trainer checks the loss for NaN/inf itself a few times per epoch.

Only that one method differs, and only on that path. Everything else is Pyro's own code: the traces
(``_get_trace``), ``loss``, ``loss_and_grads`` (so ``pyro.infer.SVI``), and ``differentiable_loss`` itself
with validation on or with a ``GuideMessenger`` guide. Pyro's ELBO tests pass with these classes in place
of Pyro's in both validation modes (``benchmarks/pyro_conformance.py``).
"""

from __future__ import annotations

from numbers import Number

import torch
from torch.distributions import kl_divergence

import pyro.infer
from pyro import poutine
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.trace_elbo import _compute_log_r
from pyro.infer.util import is_validation_enabled
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites, site_is_subsample

from pyro_vae.handlers import lean_traces


def _total(terms):
    """Σ terms without a leading ``0 +`` (one op fewer per step on the device)."""
    total = None
    for term in terms:
        total = term if total is None else total + term
    return 0.0 if total is None else total


def _loss(elbo: torch.Tensor, surrogate: torch.Tensor | None) -> torch.Tensor:
    """−ELBO whose gradient is the surrogate's: value and gradient of Pyro's loss, on the device."""
    if surrogate is None:  # every term reparameterized: the ELBO is its own surrogate
        return -elbo
    return -(elbo.detach() + (surrogate - surrogate.detach()))


def _reparameterized_elbo(model_trace, guide_trace) -> torch.Tensor | None:
    """Σ_sites scale · (log p − log q) when every guide site is reparameterized and nothing is masked;
    None otherwise (then Pyro's per-site bookkeeping, with its score-function terms, is needed).

    "Reparameterized" is Pyro's own test: the site's ``score_parts`` has no score-function term and its
    entropy term is log q itself (a partially reparameterized distribution, e.g. a ``Rejector``, is not).
    Terms of the same shape and scale (e.g. log p(x|z), log p(z), log q(z) of one data plate) are added
    before they are summed and scaled: one sum and one product per plate instead of one per site.
    """
    groups: dict = {}
    for trace, sign in ((model_trace, 1), (guide_trace, -1)):
        for site in trace.nodes.values():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            if site["mask"] is not None:
                return None
            if sign > 0:
                log_p = site["fn"].log_prob(site["value"], *site["args"], **site["kwargs"])
            else:
                log_p, score_function, entropy = site["fn"].score_parts(site["value"], *site["args"],
                                                                        **site["kwargs"])
                if not is_identically_zero(score_function) or entropy is not log_p:
                    return None
            scale = site["scale"]
            key = (scale if isinstance(scale, Number) else id(scale), log_p.shape)
            if key in groups:
                total, _ = groups[key]
                groups[key] = (total + log_p if sign > 0 else total - log_p), scale
            else:
                groups[key] = (log_p if sign > 0 else -log_p), scale
    return _total(_scaled_sum(total, scale) for total, scale in groups.values())


def _scaled_sum(log_p: torch.Tensor, scale) -> torch.Tensor:
    """Σ scale·log_p: a number scales the sum; a tensor scale (per element) before it."""
    if isinstance(scale, Number):
        return log_p.sum() if scale == 1 else log_p.sum() * scale
    return (log_p * scale).sum()


def _lean(guide) -> bool:
    """Whether ``differentiable_loss`` takes the sync-free path: validation off (Pyro's checks and NaN
    warnings are what validation asks for) and a callable guide (a ``GuideMessenger`` makes its own traces)."""
    return not is_validation_enabled() and not isinstance(poutine.unwrap(guide), Messenger)


class _Lean:
    """The lean ``differentiable_loss`` of both ELBOs: mean over particles of ``_particle_loss``."""

    def differentiable_loss(self, model, guide, *args, **kwargs):
        """−(1/K) Σ_k ELBO_k over K particles, with the surrogate's gradient; Pyro's own method (with its
        host reads and NaN warning) when validation is on or the guide is a ``GuideMessenger``."""
        if not _lean(guide):
            return super().differentiable_loss(model, guide, *args, **kwargs)
        loss = 0.0
        for model_trace, guide_trace in self._lean_traces(model, guide, args, kwargs):
            loss = loss + self._particle_loss(model_trace, guide_trace)
        return loss / self.num_particles if self.num_particles > 1 else loss

    def _lean_traces(self, model, guide, args, kwargs):
        """Pyro's ``ELBO._get_traces`` (particles in a loop, or vectorized in one outer plate) with
        :func:`~pyro_vae.handlers.lean_traces` for ``_get_trace``: nothing scored, nothing copied."""
        if self.vectorize_particles:
            if self.max_plate_nesting == float("inf"):
                self._guess_max_plate_nesting(model, guide, args, kwargs)
            yield lean_traces(self._vectorized_num_particles(model), self._vectorized_num_particles(guide),
                              *args, **kwargs)
        else:
            for _ in range(self.num_particles):
                yield lean_traces(model, guide, *args, **kwargs)


class Trace_ELBO(_Lean, pyro.infer.Trace_ELBO):
    """``pyro.infer.Trace_ELBO`` whose ``differentiable_loss`` never leaves the device (validation off).

    A model/guide pair whose guide sites are all reparameterized and unmasked is scored directly,
    Σ scale·(log p − log q), without Pyro's trace copies and per-site ``ScoreParts``; anything else
    (REINFORCE sites, masks) gets Pyro's bookkeeping, without its host reads.
    """

    def _particle_loss(self, model_trace, guide_trace) -> torch.Tensor:
        elbo = _reparameterized_elbo(model_trace, guide_trace)
        if elbo is not None:
            return -elbo
        model_trace, guide_trace = prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)
        model_trace.compute_log_prob()
        guide_trace.compute_score_parts()
        elbo = _total(s["log_prob_sum"] for s in model_trace.nodes.values() if s["type"] == "sample")
        surrogate = log_r = None  # the surrogate is the ELBO itself until a site needs REINFORCE
        for site in guide_trace.nodes.values():
            if site["type"] != "sample":
                continue
            _, score_function, entropy = site["score_parts"]
            if not is_identically_zero(score_function) or (surrogate is None and entropy is not site["log_prob"]):
                surrogate = elbo if surrogate is None else surrogate
            if surrogate is not None:
                if not is_identically_zero(entropy):
                    surrogate = surrogate - entropy.sum()
                if not is_identically_zero(score_function):
                    # REINFORCE: (downstream log p/q, a constant) × ∇ log q, summed within the site's plates
                    log_r = _compute_log_r(model_trace, guide_trace) if log_r is None else log_r
                    surrogate = surrogate + (log_r.sum_to(site["cond_indep_stack"]) * score_function).sum()
            elbo = elbo - site["log_prob_sum"]
        return _loss(elbo, surrogate)


class TraceMeanField_ELBO(_Lean, pyro.infer.TraceMeanField_ELBO):
    """``pyro.infer.TraceMeanField_ELBO`` (closed-form KL where torch has one) without host syncs
    (validation off): latent sites with a closed-form KL skip log p(z) and log q(z), the KL replaces them.
    """

    def _particle_loss(self, model_trace, guide_trace) -> torch.Tensor:
        model_trace, guide_trace = prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)
        model_trace.compute_log_prob(lambda name, site: site["is_observed"])
        elbo = _total(s["log_prob_sum"] for s in model_trace.nodes.values()
                      if s["type"] == "sample" and s["is_observed"])
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            q = guide_trace.nodes[name]
            try:
                kl = scale_and_mask(kl_divergence(q["fn"], site["fn"]), q["scale"], q["mask"])
            except NotImplementedError:  # no closed form: the one-draw estimate log p − (log q's entropy term)
                model_trace.compute_log_prob(lambda n, _: n == name)
                guide_trace.compute_score_parts()
                elbo = elbo + site["log_prob_sum"] - q["score_parts"].entropy_term.sum()
                continue
            elbo = elbo - (kl.sum() if torch.is_tensor(kl) else kl * q["fn"].batch_shape.numel())
        for name, q in guide_trace.nodes.items():  # auxiliary guide sites have no model partner
            if q["type"] == "sample" and name not in model_trace.nodes:
                assert q["infer"].get("is_auxiliary"), f"guide site {name!r} is not in the model"  # as Pyro's
                guide_trace.compute_score_parts()
                elbo = elbo - q["score_parts"].entropy_term.sum()
        return _loss(elbo, None)
