"""Pyro's ``Trace_ELBO`` and ``TraceMeanField_ELBO`` without a host sync per step: same loss, same gradients.

    −ELBO = −E_q[log p(x, z) − log q(z|x)]     (Trace_ELBO: one draw z ~ q)
          = −E_q[log p(x|z)] + KL(q(z|x) ‖ p(z))   (TraceMeanField_ELBO: the KL in closed form)

Pyro's ``differentiable_loss`` reads the ELBO back to the host twice (``torch_item``) and checks it
for NaN (``warn_if_nan``, plus a hook that checks the gradient in the backward pass): on a GPU each
read stalls the host until every queued kernel has run, and on a CPU it is Python work per step.
Here the loss stays a tensor on the data's device and nothing is read back; the trainer checks
the loss for NaN/inf itself a few times per epoch. Traces, plates, replay, score-function terms
(Rao-Blackwellized by the plates, as in Pyro) and validation (``pyro.validation_enabled``) are
Pyro's own; only the bookkeeping after the traces differs.
"""

from __future__ import annotations

from numbers import Number

import torch
from torch.distributions import kl_divergence

import pyro.infer
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.subsample_messenger import _Subsample
from pyro.poutine.util import prune_subsample_sites
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.trace_elbo import _compute_log_r
from pyro.infer.util import check_fully_reparametrized, is_validation_enabled

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

    Terms of the same shape and scale (e.g. log p(x|z), log p(z), log q(z) of one data plate) are added
    before they are summed and scaled: one sum and one product per plate instead of one per site.
    """
    groups: dict = {}
    for trace, sign in ((model_trace, 1), (guide_trace, -1)):
        for site in trace.nodes.values():
            if site["type"] != "sample" or isinstance(site["fn"], _Subsample):
                continue
            if site["mask"] is not None or (sign < 0 and not site["fn"].has_rsample):
                return None
            log_p = site["fn"].log_prob(site["value"], *site["args"], **site["kwargs"])
            scale = site["scale"]
            key = (scale if isinstance(scale, Number) else id(scale), log_p.shape)
            if key in groups:
                total, _ = groups[key]
                groups[key] = (total + log_p if sign > 0 else total - log_p), scale
            else:
                groups[key] = (log_p if sign > 0 else -log_p), scale
    return _total(total.sum() if _is_one(scale) else total.sum() * scale for total, scale in groups.values())


def _is_one(scale) -> bool:
    return isinstance(scale, Number) and scale == 1


class Trace_ELBO(pyro.infer.Trace_ELBO):
    """``pyro.infer.Trace_ELBO`` whose ``differentiable_loss`` never leaves the device.

    After the first (validated) step, a model/guide pair whose guide sites are all reparameterized
    takes a lean path: the two traces are scored directly, Σ scale·(log p − log q), without Pyro's
    trace copies and per-site ``ScoreParts``; anything else (REINFORCE sites, masks) gets Pyro's bookkeeping.
    """

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            loss = loss + self._particle_loss(model_trace, guide_trace)
        return loss / self.num_particles if self.num_particles > 1 else loss

    def _get_trace(self, model, guide, args, kwargs):
        if is_validation_enabled() or isinstance(poutine.unwrap(guide), Messenger):
            return super()._get_trace(model, guide, args, kwargs)
        return lean_traces(model, guide, *args, **kwargs)

    def _particle_loss(self, model_trace, guide_trace) -> torch.Tensor:
        if not any("log_prob" in site for site in guide_trace.nodes.values()):  # a lean trace pair
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
            if not is_identically_zero(score_function):
                surrogate = elbo if surrogate is None else surrogate
                if not is_identically_zero(entropy):
                    surrogate = surrogate - entropy.sum()
                # REINFORCE: (downstream log p/q, a constant) × ∇ log q, summed within the site's plates
                log_r = _compute_log_r(model_trace, guide_trace) if log_r is None else log_r
                surrogate = surrogate + (log_r.sum_to(site["cond_indep_stack"]) * score_function).sum()
            elif surrogate is not None:  # reparameterized: entropy_term is log q (Pyro's ScoreParts)
                surrogate = surrogate - site["log_prob_sum"]
            elbo = elbo - site["log_prob_sum"]
        return _loss(elbo, surrogate)


class TraceMeanField_ELBO(pyro.infer.TraceMeanField_ELBO):
    """``pyro.infer.TraceMeanField_ELBO`` (closed-form KL where torch has one) without host syncs.

    After the first step (which runs with Pyro's validation: every log-density and check), latent
    sites with a closed-form KL skip log p(z) and log q(z): the KL replaces them.
    """

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            loss = loss + self._particle_loss(model_trace, guide_trace)
        return loss / self.num_particles if self.num_particles > 1 else loss

    def _get_trace(self, model, guide, args, kwargs):
        if is_validation_enabled() or isinstance(poutine.unwrap(guide), Messenger):
            return super()._get_trace(model, guide, args, kwargs)
        model_trace, guide_trace = lean_traces(model, guide, *args, **kwargs)
        return prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)

    def _particle_loss(self, model_trace, guide_trace) -> torch.Tensor:
        model_trace.compute_log_prob(lambda name, site: site["is_observed"])  # no-op if Pyro did it
        elbo = _total(s["log_prob_sum"] for s in model_trace.nodes.values()
                      if s["type"] == "sample" and s["is_observed"])
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            q = guide_trace.nodes[name]
            if is_validation_enabled():
                check_fully_reparametrized(q)
            try:
                kl = scale_and_mask(kl_divergence(q["fn"], site["fn"]), q["scale"], q["mask"])
            except NotImplementedError:  # no closed form: the one-draw estimate log q − log p
                model_trace.compute_log_prob(lambda n, _: n == name)
                guide_trace.compute_score_parts()
                elbo = elbo + site["log_prob_sum"] - q["score_parts"].entropy_term.sum()
                continue
            elbo = elbo - (kl.sum() if torch.is_tensor(kl) else kl * q["fn"].batch_shape.numel())
        for name, q in guide_trace.nodes.items():  # auxiliary guide sites have no model partner
            if q["type"] == "sample" and name not in model_trace.nodes:
                if is_validation_enabled():
                    check_fully_reparametrized(q)
                guide_trace.compute_score_parts()
                elbo = elbo - q["score_parts"].entropy_term.sum()
        return _loss(elbo, None)
