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

import torch
from torch.distributions import kl_divergence

import pyro.infer
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.trace_elbo import _compute_log_r
from pyro.infer.util import check_fully_reparametrized, is_validation_enabled


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


class Trace_ELBO(pyro.infer.Trace_ELBO):
    """``pyro.infer.Trace_ELBO`` whose ``differentiable_loss`` never leaves the device."""

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = 0.0
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            loss = loss + self._particle_loss(model_trace, guide_trace)
        return loss / self.num_particles if self.num_particles > 1 else loss

    def _particle_loss(self, model_trace, guide_trace) -> torch.Tensor:
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
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
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
