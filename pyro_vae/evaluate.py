"""Measures for any model/guide pair, computed from Pyro traces.

``poutine.trace(guide)`` gives z ~ q(z|x); ``poutine.replay(model)`` scores it under p(x, z):

    ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) = reconstruction − kl     (per example, in nats)

Observed sites make up the reconstruction term, latent sites the KL term, so nothing here knows
which model it measures. Results are accumulated on the data's device and read back once.
"""

from __future__ import annotations

from typing import Sequence

import torch

from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from pyro_vae.handlers import DataScale


def traces(model, guide, *batch):
    """(guide trace, model trace) with log-probabilities computed: one joint draw z ~ q, then p(x, z)."""
    guide_trace = poutine.trace(guide).get_trace(*batch)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*batch)
    # a plate's own subsample site is no part of p or q (Pyro's ELBOs drop it too); it also lives on the
    # default device, not the data's
    guide_trace, model_trace = prune_subsample_sites(guide_trace), prune_subsample_sites(model_trace)
    guide_trace.compute_log_prob()
    model_trace.compute_log_prob()
    return guide_trace, model_trace


def _sample_sites(trace):
    return [s for s in trace.nodes.values() if s["type"] == "sample" and "log_prob_sum" in s]


def _batches(data, batch_size):
    data = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    n = data[0].shape[0]
    for start in range(0, n, batch_size):
        yield tuple(t[start:start + batch_size] for t in data), n


@torch.no_grad()
def elbo_parts(model, guide, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = 1000) -> dict:
    """Per-example ``elbo``, ``reconstruction`` (E_q log p(x|z)) and ``kl`` (E_q log q/p), one draw of z.

    Global sites (outside the ``"data"`` plate) are counted once for the whole data set, as in the
    trainer: each batch's per-example terms are scaled by N/B, then the batch is weighted by B/N.
    """
    reconstruction = kl = None
    for batch, n in _batches(data, batch_size):
        weight = batch[0].shape[0] / n
        with DataScale(n):
            guide_trace, model_trace = traces(model, guide, *batch)
        rec_b = sum(s["log_prob_sum"] for s in _sample_sites(model_trace) if s["is_observed"])
        log_p = sum(s["log_prob_sum"] for s in _sample_sites(model_trace) if not s["is_observed"])
        log_q = sum(s["log_prob_sum"] for s in _sample_sites(guide_trace) if not s["is_observed"])
        rec_b, kl_b = rec_b * weight, (log_q - log_p) * weight
        reconstruction = rec_b if reconstruction is None else reconstruction + rec_b
        kl = kl_b if kl is None else kl + kl_b
    device = batch[0].device
    values = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device)
                          for v in (reconstruction, kl)]).cpu() / n
    rec, kl = float(values[0]), float(values[1])  # one host sync for the whole pass
    return {"elbo": rec - kl, "reconstruction": rec, "kl": kl}


@torch.no_grad()
def encode(guide, x: torch.Tensor, site: str = "z") -> torch.Tensor:
    """The mean of q(z|x) at ``site`` (for a Delta guide: the code itself)."""
    return poutine.trace(guide).get_trace(x).nodes[site]["fn"].mean


@torch.no_grad()
def reconstruct(model, guide, x: torch.Tensor, latent: str = "z", observed: str = "x") -> torch.Tensor:
    """E[x | z = mean of q(z|x)]: the model's reconstruction of x from its most likely code."""
    code = encode(guide, x, latent)
    trace = poutine.trace(poutine.condition(model, data={latent: code})).get_trace(x)
    return trace.nodes[observed]["fn"].mean


@torch.no_grad()
def reconstruction_mse(model, guide, data: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean squared error per example, ‖x − E[x | μ(x)]‖², summed over dimensions."""
    total = None
    for (x,), n in _batches(data, batch_size):
        err = (reconstruct(model, guide, x) - x).pow(2).sum()
        total = err if total is None else total + err
    return float(total) / n
