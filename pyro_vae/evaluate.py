"""Measures for any model/guide pair, computed from Pyro traces.

``poutine.trace(guide)`` gives z ~ q(z|x); ``poutine.replay(model)`` scores it under p(x, z):

    ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) = reconstruction − kl     (per example, in nats)

Observed sites make up the reconstruction term, latent sites the KL term, so nothing here knows
which model it measures. Results are accumulated on the data's device and read back once.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch.distributions import constraints

import pyro
from pyro import poutine
from pyro.distributions.torch_distribution import ExpandedDistribution, MaskedDistribution
from pyro.distributions.util import scale_and_mask
from pyro.poutine.subsample_messenger import _Subsample
from pyro.poutine.util import prune_subsample_sites

from pyro_vae.errors import UserError
from pyro_vae.handlers import DataScale, lean_traces
from pyro_vae.objectives import kl_per_dim
from pyro_vae.settings import Training

# a Pyro model or guide: an nn.Module (forward is the program) or a plain function of the batch
Program = Callable[..., Any]

_WRAPPERS = (torch.distributions.Independent, ExpandedDistribution, MaskedDistribution)


def _sample_traces(model, guide, *batch):
    """(guide trace, model trace): one joint draw z ~ q, then the model replayed at it."""
    model_trace, guide_trace = lean_traces(model, guide, *batch)
    # a plate's own subsample site is no part of p or q (Pyro's ELBOs drop it too); it also lives on the
    # default device, not the data's
    return prune_subsample_sites(guide_trace), prune_subsample_sites(model_trace)


def traces(model: Program, guide: Program, *batch: torch.Tensor) -> tuple[poutine.Trace, poutine.Trace]:
    """(guide trace, model trace) with log-probabilities computed: one joint draw z ~ q, then p(x, z)."""
    guide_trace, model_trace = _sample_traces(model, guide, *batch)
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
def elbo_parts(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = Training.eval_batch_size) -> dict:
    """Per-example ``elbo``, ``reconstruction`` (E_q log p(x|z)) and ``kl`` (E_q log q/p), one draw of z.

    Global sites (outside the ``"data"`` plate) are counted once for the whole data set, as in the
    trainer: each batch's per-example terms are scaled by N/B, then the batch is weighted by B/N.
    """
    reconstruction = kl = None
    for batch, n in _batches(data, batch_size):
        weight = batch[0].shape[0] / n
        with DataScale(n, batch[0].shape[0]):
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
def encode(guide: Program, x: torch.Tensor, site: str = "z") -> torch.Tensor:
    """The mean of q(z|x) at ``site`` (for a Delta guide: the code itself)."""
    return poutine.trace(guide).get_trace(x).nodes[site]["fn"].mean


@torch.no_grad()
def reconstruct(model: Program, guide: Program, x: torch.Tensor, latent: str = "z", observed: str = "x") -> torch.Tensor:
    """E[x | z = mean of q(z|x)]: the model's reconstruction of x from its most likely code."""
    code = encode(guide, x, latent)
    trace = poutine.trace(poutine.condition(model, data={latent: code})).get_trace(x)
    return trace.nodes[observed]["fn"].mean


@torch.no_grad()
def generate(model: Program, x_like: torch.Tensor, observed: str = "x") -> torch.Tensor:
    """E[x | z] for z ~ p(z), for any model: run without a guide, a model draws its latents from the prior.

    ``x_like`` (n rows shaped like the data) gives the data plate its size; its values are not used
    by the draw of z, only as the observed site's value, which the mean of p(x|z) ignores.
    """
    return poutine.trace(model).get_trace(x_like).nodes[observed]["fn"].mean


@torch.no_grad()
def reconstruction_mse(model: Program, guide: Program, data: torch.Tensor, batch_size: int = Training.eval_batch_size) -> float:
    """Mean squared error per example, ‖x − E[x | μ(x)]‖², summed over dimensions."""
    total = None
    for (x,), n in _batches(data, batch_size):
        err = (reconstruct(model, guide, x) - x).pow(2).sum()
        total = err if total is None else total + err
    return float(total) / n


@torch.no_grad()
def log_likelihood(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], num_samples: int = 1000,
                   batch_size: int | None = None, max_pairs: int | None = None, plate: str = "data") -> dict:
    """Importance-sampled log p(x) per example, the guide as proposal (Burda et al. 2016, appendix):

        log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),   K = num_samples

    A lower bound in expectation that tightens to log p(x) as K grows, and is exact for every K when
    q is the true posterior. The K draws are a plate outside the ``plate`` ("data") plate, so model and
    guide run vectorized over examples and samples, ``max_pairs`` (sample, example) pairs per pass
    (memory is bounded by that, not by K or the data size); a running log-sum-exp joins the passes.
    Every latent site must be per example (inside ``plate``).

    With Pyro's validation on (``pyro.enable_validation``), the distributions' parameters are checked
    on one trace of the first rows, and the data against each observed site's support in every batch;
    the passes themselves run unvalidated, because checking the networks' outputs for every sample
    (``loc == loc`` over every pixel) took a large share of the time. A NaN there still shows as a NaN.

    Returns ``log_likelihood`` (mean over examples, nats), its standard error over examples
    ``log_likelihood_stderr``, ``bits_per_dim`` = −mean / (D ln 2) with D the size of one row of
    the first data tensor, ``num_samples``, and ``per_example`` (a CPU tensor).
    """
    data = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    n, dims = data[0].shape[0], data[0][0].numel()
    batch_size, chunk = pass_shape(n, dims, num_samples, max_pairs, batch_size)
    nesting, data_dim, checked = _plate_layout(model, guide, tuple(t[:2] for t in data), plate)
    # one buffer for the results and one for the support flags, not a small tensor per batch kept to the end:
    # those pin the heap between the passes' large blocks, and glibc's heap then grows with every pass
    values = outside = None
    plates = {}
    with pyro.validation_enabled(False):
        for i, (batch, _) in enumerate(_batches(data, batch_size)):
            start_row = i * batch_size
            total = None
            for start in range(0, num_samples, chunk):
                size = min(chunk, num_samples - start)
                if size not in plates:  # a plate can be entered again: built once per size, not per pass
                    plates[size] = pyro.plate("num_samples", size, dim=-(nesting + 1))
                with plates[size]:
                    model_trace, guide_trace = lean_traces(model, guide, *batch)
                if start == 0 and checked:  # the data, once per batch, on the device: no host sync
                    flags = torch.stack([~model_trace.nodes[name]["fn"].support.check(
                        model_trace.nodes[name]["value"]).all() for name in checked])
                    outside = flags if outside is None else outside.logical_or_(flags)
                log_w = _per_example(model_trace, nesting, data_dim) - _per_example(guide_trace, nesting, data_dim)
                # the next pass then allocates into the memory this one frees, still in cache
                del guide_trace, model_trace
                log_w = torch.logsumexp(log_w, dim=0)
                total = log_w if total is None else torch.logaddexp(total, log_w)
            if values is None:
                values = total.new_empty(n, dtype=torch.float64)
            values[start_row:start_row + batch_size] = total - math.log(num_samples)
    flags = values.new_empty(0) if outside is None else outside.double()
    values, flags = torch.cat([values, flags]).cpu().split([n, flags.numel()])  # the one host sync
    bad = [name for name, flag in zip(checked, flags.tolist()) if flag]
    if bad:
        raise UserError(f"the data lie outside the support of the model's observed site(s) {bad}: "
                        f"check the data against the likelihood (e.g. binary pixels for a Bernoulli)")
    mean = float(values.mean())
    stderr = float(values.std() / math.sqrt(n)) if n > 1 else 0.0
    return {"log_likelihood": mean, "log_likelihood_stderr": stderr, "bits_per_dim": -mean / (dims * math.log(2)),
            "num_samples": num_samples, "per_example": values}


def pass_shape(n: int, dims: int, num_samples: int, max_pairs: int | None = None,
               batch_size: int | None = None) -> tuple[int, int]:
    """(examples, samples) per pass of :func:`log_likelihood` for ``n`` examples of ``dims`` numbers each.

    ``max_pairs`` defaults to 2²¹ / dims, about 8 MB of float32 per (sample, example) tensor: larger passes
    run at memory speed, much smaller ones spread Pyro's fixed cost per pass over too few pairs
    (benchmarks/loglik_throughput.py). Batches and chunks are split into equal parts, so no last pass pays
    the fixed cost for a few pairs.
    """
    max_pairs = max_pairs or max(1, 2 ** 21 // dims)
    if num_samples < 1 or max_pairs < 1:
        raise UserError(f"num_samples and max_pairs must be >= 1, got {num_samples} and {max_pairs}")
    if batch_size is None:
        batch_size = _even(n, max(1, min(n, max_pairs // num_samples)))
    return batch_size, _even(num_samples, max(1, min(num_samples, max_pairs // batch_size)))


def _even(total: int, most: int) -> int:
    """The smallest size of equal parts of ``total`` with parts of at most ``most``: ceil(total / #parts)."""
    return -(-total // -(-total // most))


def _plate_layout(model, guide, batch, plate: str) -> tuple[int, int, list[str]]:
    """(max plate nesting, dim of ``plate``, observed sites whose distribution validates its values), from
    one trace run under the caller's validation setting; every sample site must be in ``plate``."""
    dims, data_dims, checked = [], set(), []
    guide_trace, model_trace = _sample_traces(model, guide, *batch)
    for trace in (guide_trace, model_trace):
        for site in trace.nodes.values():
            if site["type"] != "sample":
                continue
            frames = [f for f in site["cond_indep_stack"] if f.vectorized]
            dims += [f.dim for f in frames]
            data_dims |= {f.dim for f in frames if f.name == plate}
            if not any(f.name == plate for f in frames):
                raise UserError(f"log_likelihood needs every sample site inside pyro.plate({plate!r}, ...), but "
                                f"site {site['name']!r} is not: condition global latents first (poutine.condition)")
            if trace is model_trace and site["is_observed"] and _validates_values(site["fn"]):
                checked.append(site["name"])
    if len(data_dims) != 1:
        raise UserError(f"the {plate!r} plate has different dims in model and guide: {sorted(data_dims)}")
    return -min(dims), data_dims.pop(), checked


def _validates_values(fn) -> bool:
    """Whether scoring a value under ``fn`` checks it against a support (Pyro's validation on, not
    turned off for this distribution): the innermost distribution's setting counts, because Independent,
    expanded and masked ones hand ``log_prob`` to their base unchecked."""
    while isinstance(fn, _WRAPPERS):
        fn = fn.base_dist
    if not getattr(fn, "_validate_args", False):
        return False
    try:
        return not constraints.is_dependent(fn.support)
    except NotImplementedError:
        return False


def _per_example(trace, nesting: int, data_dim: int) -> torch.Tensor:
    """Σ over sites and over every dim but (sample, example) of the unscaled, masked log-densities."""
    total = None
    keep = (0, nesting + 1 + data_dim)
    other = [d for d in range(nesting + 1) if d not in keep]
    for site in trace.nodes.values():
        if site["type"] != "sample" or isinstance(site["fn"], _Subsample):
            continue
        log_p = scale_and_mask(site["fn"].log_prob(site["value"]), mask=site["mask"])
        log_p = log_p.reshape((1,) * (nesting + 1 - log_p.dim()) + log_p.shape)
        log_p = log_p.sum(other) if other else log_p
        total = log_p if total is None else total + log_p
    return 0.0 if total is None else total


@torch.no_grad()
def kl_per_dimension(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = Training.eval_batch_size,
                     latent: str = "z") -> list[float]:
    """KL_j = mean over x of KL(q(z_j|x) ‖ p(z_j)) for each dimension j of site ``latent``, in nats.

    Analytic where torch knows it, else one draw of log q − log p. KL_j ≈ 0 marks a collapsed
    dimension: the code ignores x there. Σ_j KL_j is the ELBO's KL term.
    """
    total = None
    for batch, n in _batches(data, batch_size):
        guide_trace, model_trace = traces(model, guide, *batch)
        if latent not in guide_trace.nodes:
            raise UserError(f"the guide has no sample site {latent!r}: pass latent= one of "
                            f"{[k for k, s in guide_trace.nodes.items() if s['type'] == 'sample']}")
        kl, _ = kl_per_dim(guide_trace.nodes[latent], model_trace.nodes[latent], analytic=True)
        total = kl if total is None else total + kl
    return (total.double().cpu() / n).reshape(-1).tolist()
