"""Measures for any model/guide pair, computed from Pyro traces.

``poutine.trace(guide)`` gives z ~ q(z|x); ``poutine.replay(model)`` scores it under p(x, z):

    ELBO = E_q[log p(x, z) − log q(z|x)] = reconstruction − kl     (per example, in nats)
    reconstruction = E_q[Σ_observed sites log p(x_s | ...)],  kl = Σ_latent sites E_q[log q(z_s) − log p(z_s | ...)]

(for the VAE: E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))). Sites are told apart by their role in the traces
(:class:`Sites`: observed or latent, inside the data plate or global, enumerated), never by their names,
so nothing here knows which model it measures. Results are accumulated on the data's device and read back once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch.distributions import constraints

import pyro
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.distributions.torch_distribution import ExpandedDistribution, MaskedDistribution
from pyro.distributions.util import scale_and_mask
from pyro.poutine.subsample_messenger import _Subsample
from pyro.poutine.util import prune_subsample_sites

from pyro_vae import sites as shared
from pyro_vae.errors import UserError
from pyro_vae.handlers import DataScale, lean_traces
from pyro_vae.objectives import kl_per_dim
from pyro_vae.settings import TrainingSettings
from pyro_vae.sites import Program, in_plate, sample_sites


_WRAPPERS = (torch.distributions.Independent, ExpandedDistribution, MaskedDistribution)


def _sample_traces(model, guide, *batch):
    """(model trace, guide trace): one joint draw z ~ q, then the model replayed at it."""
    model_trace, guide_trace = lean_traces(model, guide, *batch)
    # a plate's own subsample site is no part of p or q (Pyro's ELBOs drop it too); it also lives on the
    # default device, not the data's
    return prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)


def traces(model: Program, guide: Program, *batch: torch.Tensor) -> tuple[poutine.Trace, poutine.Trace]:
    """(model trace, guide trace) with log-probabilities computed: one joint draw z ~ q, then p(x, z)."""
    model_trace, guide_trace = _sample_traces(model, guide, *batch)
    guide_trace.compute_log_prob()
    model_trace.compute_log_prob()
    return model_trace, guide_trace


def _scored_sites(trace):
    return [s for s in trace.nodes.values() if s["type"] == "sample" and "log_prob_sum" in s]


def _as_tuple(data) -> tuple:
    """One array of rows (a tensor, or rows read from a file) or several, as a tuple."""
    return tuple(data) if isinstance(data, (tuple, list)) else (data,)


def _batches(data, batch_size):
    data = _as_tuple(data)
    n = data[0].shape[0]
    for start in range(0, n, batch_size):
        yield tuple(t[start:start + batch_size] for t in data), n


PER_SITE_LIMIT = 32  # more latent sites than this (a site per time step, per observation): no kl/<site> keys


@dataclass(frozen=True)
class Sites:
    """The roles of a program's sample sites, read from one pair of traces, never from their names.

    ``latent``: the guide's latent sites inside the data plate (one value per example); ``global_latent``:
    latent sites outside it (in the guide, or only in the model); ``observed``: the model's observed sites;
    ``outside``: those of them outside the data plate (a site per observation in a Python loop);
    ``data``: observed sites inside the data plate whose value has the shape of the data rows;
    ``unguided``: latent sites of the model that the guide lacks and that are not enumerated;
    ``enumerated``: sites with ``infer={"enumerate": ...}`` in either program; ``max_plate_nesting``:
    the most vectorized plates around any site.
    """

    plate: str
    latent: tuple[str, ...]
    global_latent: tuple[str, ...]
    observed: tuple[str, ...]
    outside: tuple[str, ...]
    data: tuple[str, ...]
    unguided: tuple[str, ...]
    enumerated: tuple[str, ...]
    max_plate_nesting: int

    def why_no_proposal(self) -> str | None:
        """Why the guide is no proposal for the importance-sampled log p(x_i) of each example, or None: every
        latent must be drawn by the guide, once per example (log p(x_i) of one row needs them all in its plate)."""
        where = f"pyro.plate({self.plate!r})"
        if self.enumerated:
            return (f"its site(s) {', '.join(self.enumerated)} are enumerated (summed out), not drawn by the guide; "
                    "evaluate reports the enumerated ELBO instead")
        if self.unguided:
            return f"the guide has no site for its latent(s) {', '.join(self.unguided)}"
        if self.global_latent:
            return (f"its latent(s) {', '.join(self.global_latent)} are global, not inside {where}: shared by all "
                    "examples, so log p(x) does not split into one importance-sampled term per example")
        if self.outside:
            return (f"its observed site(s) {', '.join(self.outside[:3])}{', …' if len(self.outside) > 3 else ''} "
                    f"are not inside {where}, so log p(x) does not split into one term per example")
        return None

    def vae(self) -> tuple[str, str]:
        """(latent, observed): the one per-example latent site and the one observed site holding the data rows,
        which ``encode``, ``reconstruct``, ``decode`` and ``generate`` need; else a one-line UserError why not."""
        where = f"pyro.plate({self.plate!r})"
        if len(self.latent) != 1:
            found = (f"{len(self.latent)} per-example latent sites ({', '.join(self.latent)})" if self.latent else
                     f"no latent site in the guide inside {where}"
                     + (f" (global latent(s): {', '.join(self.global_latent)})" if self.global_latent else ""))
            raise UserError(f"it has {found}; encode/decode need exactly one")
        if len(self.data) != 1:
            found = (f"{len(self.data)} observed sites ({', '.join(self.data)})" if self.data else
                     "no observed site")
            raise UserError(f"it has {found} inside {where} whose value is the data rows; reconstruct/decode "
                            f"need exactly one")
        return self.latent[0], self.data[0]


def roles(model_trace: poutine.Trace, guide_trace: poutine.Trace, rows: torch.Tensor, plate: str = "data") -> Sites:
    """The :class:`Sites` of a (model trace, guide trace) pair run on a batch whose first tensor is ``rows``."""
    model_sites, guide_sites = sample_sites(model_trace), sample_sites(guide_trace)
    enumerated = tuple(shared.enumerated(model_trace, guide_trace))
    guided = {s["name"] for s in guide_sites}
    latents = [s for s in guide_sites if not s["is_observed"] and not s["infer"].get("is_auxiliary")]
    unguided = [s for s in model_sites if not s["is_observed"] and s["name"] not in guided | set(enumerated)]
    latents += unguided
    observed = [s for s in model_sites if s["is_observed"]]
    names = lambda sites: tuple(s["name"] for s in sites)  # noqa: E731
    return Sites(plate=plate,
                 latent=names(s for s in latents if in_plate(s, plate) and s["name"] in guided),
                 global_latent=names(s for s in latents if not in_plate(s, plate)),
                 observed=names(observed),
                 outside=names(s for s in observed if not in_plate(s, plate)),
                 data=names(s for s in observed if in_plate(s, plate) and s["value"].shape == rows.shape),
                 unguided=names(unguided), enumerated=enumerated,
                 max_plate_nesting=shared.max_plate_nesting(model_trace, guide_trace))


# what a program raises when it meets rows it was not written for (a plate or parameters of the training set's size)
PROGRAM_ERRORS = (ValueError, RuntimeError, IndexError)


def failed_on(error: Exception, rows: int) -> Exception:
    """The one-line error for programs that fail on a batch of ``rows`` rows (running out of memory is no such
    failure: it comes back as it was)."""
    if isinstance(error, torch.OutOfMemoryError):
        return error
    reason = " ".join(str(error).split("Trace Shapes:")[0].split())  # Pyro's message, without its shape table
    return UserError(f"the model and guide failed on {rows} rows ({type(error).__name__}: {reason}): give rows shaped "
                     f"like the training rows; a program with a plate or parameters per training row runs on all its "
                     f"training rows at once only")


@torch.no_grad()
def program_sites(model: Program, guide: Program, *batch: torch.Tensor, plate: str = "data") -> Sites:
    """The roles of the program's sites (:class:`Sites`), from one draw on ``batch``, scored (so that programs
    that can't score these rows fail here, with :func:`failed_on`'s line)."""
    try:
        model_trace, guide_trace = traces(model, guide, *batch)
    except PROGRAM_ERRORS as error:
        raise failed_on(error, batch[0].shape[0]) from None
    return roles(model_trace, guide_trace, batch[0], plate)


@torch.no_grad()
def elbo_parts(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = TrainingSettings.eval_batch_size,
               plate: str = "data") -> dict:
    """Per-example ELBO = E_q[log p(x, z) − log q(z)] and its parts, one draw of z, for any program:

        reconstruction = E_q[Σ_observed sites log p(x_s | ...)]
        kl             = E_q[Σ_latent sites log q(z_s) − log p(z_s | ...)] = Σ_s kl/<s>
        elbo           = reconstruction − kl

    with ``kl/<name>`` for each latent site (up to ``PER_SITE_LIMIT`` of them), roles read from the traces.
    Global sites (outside the ``plate`` plate) are counted once for the whole data set, as in the trainer:
    each batch runs under ``DataScale(N, rows)``, then is weighted by rows/N. A program with an observed site
    outside the plate (a site per observation in a Python loop), or one that fails on a part of the rows (a plate
    or parameters of the data set's size), can't be split into batches and is evaluated in one batch of all rows.

    A program with enumerated sites (``infer={"enumerate": ...}``, e.g. ``config_enumerate``) gets the
    enumerated ELBO, −``TraceEnum_ELBO(max_plate_nesting).loss`` per example under the same scaling, and
    only ``elbo``: an enumerated site is summed out, not drawn, so its terms do not split into reconstruction and kl.
    """
    data = _as_tuple(data)
    n = data[0].shape[0]
    found, log_p, log_q = None, {}, {}
    for batch, _ in _batches(data, batch_size):
        rows = batch[0].shape[0]
        try:
            with DataScale(n, rows, plate):
                model_trace, guide_trace = traces(model, guide, *batch)
        except PROGRAM_ERRORS as error:
            if found is None and rows < n and not isinstance(error, torch.OutOfMemoryError):
                # e.g. a plate or parameters per training row: all rows in one batch may work
                return elbo_parts(model, guide, data, n, plate)
            raise failed_on(error, rows) from None
        if found is None:
            found = roles(model_trace, guide_trace, batch[0], plate)
            if found.outside and rows < n:  # per-observation sites can't be scaled from a batch
                return elbo_parts(model, guide, data, n, plate)
            if found.enumerated:
                return enumerated_elbo(model, guide, data, batch_size, plate, found.max_plate_nesting)
        for into, trace in ((log_p, model_trace), (log_q, guide_trace)):
            for site in _scored_sites(trace):
                value = site["log_prob_sum"] * (rows / n)
                into[site["name"]] = value + into[site["name"]] if site["name"] in into else value
    groups = _latent_groups(guide_trace, [k for k in log_p if k not in found.observed])
    zero = batch[0].new_zeros((), dtype=torch.float64)
    terms = [sum((log_p[k] for k in found.observed if k in log_p), zero)]
    terms += [sum((log_q.get(k, zero) - log_p.get(k, zero) for k in names), zero) for names in groups.values()]
    values = (torch.stack([t.double() for t in terms]).cpu() / n).tolist()  # one host sync
    reconstruction, kls = values[0], values[1:]
    kl = sum(kls)
    parts = {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}
    if len(groups) <= PER_SITE_LIMIT:
        parts.update({f"kl/{key}": value for key, value in zip(groups, kls)})
    return parts


def _latent_groups(guide_trace, model_latents: list[str]) -> dict[str, list[str]]:
    """Key → the sites whose log q − log p make up one per-site KL term: each latent site on its own, except that
    an auxiliary guide site (an autoguide's unconstrained draw, ``infer={"is_auxiliary": True}``) joins the sites
    drawn after it up to the next auxiliary one (AutoNormal: one site; AutoDiagonalNormal: all of them), keyed
    ``a+b+...`` by their names; latent sites of the model alone come last."""
    groups: list[list[str]] = []
    auxiliary = set()
    for site in _scored_sites(guide_trace):
        if site["is_observed"]:
            continue
        if site["infer"].get("is_auxiliary"):
            auxiliary.add(site["name"])
            groups.append([site["name"]])
        elif groups and groups[-1][0] in auxiliary:
            groups[-1].append(site["name"])
        else:
            groups.append([site["name"]])
    seen = {name for names in groups for name in names}
    groups += [[name] for name in model_latents if name not in seen]
    return {"+".join(n for n in names if n not in auxiliary) or names[0]: names for names in groups}


@torch.no_grad()
def enumerated_elbo(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int,
                    plate: str = "data", max_plate_nesting: int | None = None) -> dict:
    """``{"elbo": −TraceEnum_ELBO(max_plate_nesting).loss / N}``: the ELBO with enumerated sites summed out,
    per example, each batch under ``DataScale(N, rows)`` and weighted by rows/N (see :func:`elbo_parts`)."""
    data = _as_tuple(data)
    if max_plate_nesting is None:
        max_plate_nesting = program_sites(model, guide, *(t[:batch_size] for t in data), plate=plate).max_plate_nesting
    objective = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    total = 0.0
    for batch, n in _batches(data, batch_size):
        try:
            with DataScale(n, batch[0].shape[0], plate):  # Pyro's loss is a float: one host sync per batch
                total += objective.loss(model, guide, *batch) * (batch[0].shape[0] / n)
        except PROGRAM_ERRORS as error:
            raise failed_on(error, batch[0].shape[0]) from None
    return {"elbo": -total / n}


@torch.no_grad()
def encode(guide: Program, x: torch.Tensor, site: str | None = None) -> torch.Tensor:
    """The mean of q(z|x) at ``site`` (for a Delta guide: the code itself); by default the guide's one latent
    site inside ``pyro.plate("data")``, whatever its name."""
    trace = prune_subsample_sites(poutine.trace(guide).get_trace(x))
    if site is None:
        inside = [name for name, s in trace.nodes.items()
                  if s["type"] == "sample" and not s["is_observed"] and in_plate(s, "data")]
        if len(inside) != 1:
            raise UserError(f"encode needs one latent site of the guide inside pyro.plate('data'), found "
                            f"{len(inside)} ({', '.join(inside) or 'none'}): pass site=NAME")
        site = inside[0]
    return trace.nodes[site]["fn"].mean


@torch.no_grad()
def reconstruct(model: Program, guide: Program, x: torch.Tensor, latent: str | None = None,
                observed: str | None = None) -> torch.Tensor:
    """E[x | z = mean of q(z|x)]: the model's reconstruction of x from its most likely code. The sites are
    the program's one per-example latent and the observed site holding the rows, unless named."""
    if latent is None or observed is None:
        found = program_sites(model, guide, x).vae()
        latent, observed = latent or found[0], observed or found[1]
    code = encode(guide, x, latent)
    trace = poutine.trace(poutine.condition(model, data={latent: code})).get_trace(x)
    return trace.nodes[observed]["fn"].mean


@torch.no_grad()
def generate(model: Program, x_like: torch.Tensor, observed: str | None = None) -> torch.Tensor:
    """E[x | z] for z ~ p(z), for any model: run without a guide, a model draws its latents from the prior.

    ``x_like`` (n rows shaped like the data) gives the data plate its size; its values are not used
    by the draw of z, only as the observed site's value, which the mean of p(x|z) ignores. ``observed``:
    by default the one observed site whose value is the rows.
    """
    trace = poutine.trace(model).get_trace(x_like)
    if observed is None:
        observed = roles(prune_subsample_sites(trace), poutine.Trace(), x_like).data
        if len(observed) != 1:
            raise UserError(f"generate needs one observed site inside pyro.plate('data') whose value is the rows, "
                            f"found {len(observed)} ({', '.join(observed) or 'none'}): pass observed=NAME")
        observed = observed[0]
    return trace.nodes[observed]["fn"].mean


@torch.no_grad()
def reconstruction_mse(model: Program, guide: Program, data: torch.Tensor, batch_size: int = TrainingSettings.eval_batch_size,
                       latent: str | None = None, observed: str | None = None) -> float:
    """Mean squared error per example, ‖x − E[x | μ(x)]‖², summed over dimensions."""
    total = None
    if latent is None or observed is None:
        latent, observed = program_sites(model, guide, *(t[:2] for t in _as_tuple(data))).vae()
    for (x, *_), n in _batches(data, batch_size):
        err = (reconstruct(model, guide, x, latent, observed) - x).pow(2).sum()
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
    data = _as_tuple(data)
    n, dims = data[0].shape[0], data[0][0].numel()
    batch_size, chunk = pass_shape(n, dims, num_samples, max_pairs, batch_size)
    nesting, data_dim, checked = _plate_layout(model, guide, tuple(t[:2] for t in data), plate)
    # one buffer for the results and one for the support flags, not a small tensor per batch kept to the end:
    # those pin the heap between the passes' large blocks, and glibc's heap then grows with every pass
    values = outside = None
    plates = {}
    with pyro.validation_enabled(False):
        try:
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
        except PROGRAM_ERRORS as error:  # e.g. a plate or parameters of the training set's size
            raise failed_on(error, batch[0].shape[0]) from None
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
    one trace run under the caller's validation setting; every sample site must be in ``plate``, drawn by the guide."""
    dims, data_dims, checked = [], set(), []
    model_trace, guide_trace = _sample_traces(model, guide, *batch)
    why = roles(model_trace, guide_trace, batch[0], plate).why_no_proposal()
    if why:
        raise UserError(f"log_likelihood does not apply to this program: {why}")
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
def kl_per_dimension(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = TrainingSettings.eval_batch_size,
                     latent: str | None = None, plate: str = "data") -> list[float]:
    """KL_j = mean over x of KL(q(z_j|x) ‖ p(z_j)) for each dimension j of site ``latent`` (by default the
    program's one latent site inside the ``plate`` plate, whatever its name), in nats.

    Analytic where torch knows it, else one draw of log q − log p. KL_j ≈ 0 marks a collapsed
    dimension: the code ignores x there. Σ_j KL_j is the ELBO's KL term.
    """
    total = None
    for batch, n in _batches(data, batch_size):
        model_trace, guide_trace = traces(model, guide, *batch)
        if latent is None:
            inside = roles(model_trace, guide_trace, batch[0], plate).latent
            if len(inside) != 1:
                raise UserError(f"kl_per_dimension needs one latent site inside pyro.plate({plate!r}), found "
                                f"{len(inside)} ({', '.join(inside) or 'none'}): pass latent=NAME")
            latent = inside[0]
        if latent not in guide_trace.nodes:
            raise UserError(f"the guide has no sample site {latent!r}: pass latent= one of "
                            f"{[k for k, s in guide_trace.nodes.items() if s['type'] == 'sample']}")
        kl, _ = kl_per_dim(guide_trace.nodes[latent], model_trace.nodes[latent], analytic=True)
        total = kl if total is None else total + kl
    return (total.double().cpu() / n).reshape(-1).tolist()
