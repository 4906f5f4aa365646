"""Objectives for any model/guide pair: the ELBO, its importance-weighted bound, β, KL warm-up, free bits.

Every objective is a Pyro ELBO: ``objective.differentiable_loss(model, guide, *batch)`` is the loss and
``objective(model, guide)`` is an ``nn.Module`` computing it, so ``fit(..., objective=...)`` takes any of them.

    trace      −ELBO = −E_q[log p(x|z)] + β·E_q[log q(z|x) − log p(z)]        (Monte Carlo KL, the lecture)
    meanfield  −ELBO = −E_q[log p(x|z)] + β·KL(q(z|x) ‖ p(z))                  (analytic KL where known)
    iwae       −L_K  = −E[log (1/K) Σ_k p(x, z_k)/q(z_k|x)],  z_k ~ q(z|x)      (Burda et al. 2016)
    free bits  β·KL → β·Σ_j max(λ, KL_j), KL_j the minibatch KL of latent dimension j (Kingma et al. 2016)
    warm-up    β_e = β·min(1, (e − 1)/N) in epoch e = 1, 2, ...: reconstruction only in epoch 1, full β from N + 1

β, warm-up and free bits act on sites, not on a model's code: β is :class:`~pyro_vae.handlers.SiteScale`
around model and guide, so they hold for every model in ``models/`` and for a user's own.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, kl_divergence

from pyro.distributions.util import scale_and_mask
from pyro.infer import ELBO, Trace_ELBO, TraceEnum_ELBO, TraceTMC_ELBO
from pyro.infer.elbo import ELBOModule
from pyro.infer.util import get_dependent_plate_dims, torch_sum

from pyro_vae import elbos
from pyro_vae.errors import UserError
from pyro_vae.handlers import SiteScale
from pyro_vae.settings import ELBOS
from pyro_vae.sites import Program




def scale_latents(beta: float) -> SiteScale:
    """``with scale_latents(β): loss = Trace_ELBO().differentiable_loss(model, guide, x)`` gives −rec + β·KL.

    β = 0 leaves the reconstruction term only. Use it as a context or wrap a program: ``scale_latents(β)(model)``.
    """
    return SiteScale(beta)


def scale_observations(weight: float) -> SiteScale:
    """Scales log p(x|z) of observed sites; ``scale_observations(0)`` leaves the KL term only."""
    return SiteScale(weight, observed=True)


def warmup_beta(beta: float, epoch: int | None, kl_warmup: int) -> float:
    """β_e = β·min(1, (e − 1)/N) for epoch e ≥ 1 and N = ``kl_warmup`` epochs; β itself without warm-up."""
    if not kl_warmup or epoch is None:
        return beta
    return beta * min(1.0, (epoch - 1) / kl_warmup)


class Objective:
    """A Pyro ELBO with β, KL warm-up and free bits, for any model/guide pair.

    Args:
        elbo: ``"trace"``, ``"meanfield"``, ``"iwae"``, or any Pyro ELBO instance (e.g. a sync-free one).
        particles: samples z ~ q per example, vectorized (one pass of model and guide).
        beta: weight of the latent terms (KL), β ≥ 0; 1 is the ELBO.
        kl_warmup: ramp β over this many epochs (``fit`` calls ``set_epoch``); 0: no warm-up.
        free_bits: λ ≥ 0 nats per latent dimension, below which the KL of a dimension is not penalized.
    """

    def __init__(self, elbo: str | ELBO = "trace", particles: int = 1, beta: float = 1.0, kl_warmup: int = 0,
                 free_bits: float = 0.0, max_plate_nesting: float = float("inf")):
        _check(elbo, particles, beta, kl_warmup, free_bits)
        self.name = elbo if isinstance(elbo, str) else type(elbo).__name__
        self.particles, self.beta, self.kl_warmup, self.free_bits = particles, beta, kl_warmup, free_bits
        self.max_plate_nesting = max_plate_nesting
        # "auto" is made "enum" or "trace" by for_program, once the program's sites are known
        self.elbo = elbo if isinstance(elbo, ELBO) else \
            None if elbo == "auto" else make_elbo(elbo, particles, free_bits, max_plate_nesting)
        self.epoch = None

    def resolve(self, enumerated: bool) -> None:
        """``auto`` becomes ``enum`` for a program with enumerated sites, else ``trace``."""
        if self.name == "auto":
            self.name = "enum" if enumerated else "trace"
            _check(self.name, self.particles, self.beta, self.kl_warmup, self.free_bits)
            self.elbo = make_elbo(self.name, self.particles, self.free_bits, self.max_plate_nesting)

    def set_epoch(self, epoch: int) -> None:
        """Tells the objective the epoch about to start (for the KL warm-up)."""
        self.epoch = epoch

    @property
    def beta_now(self) -> float:
        """β of the current epoch, after warm-up."""
        return warmup_beta(self.beta, self.epoch, self.kl_warmup)

    def differentiable_loss(self, model: Program, guide: Program, *args, **kwargs) -> torch.Tensor:
        """−ELBO with the latent sites scaled by the current β (the inner ELBO's own when β = 1)."""
        beta = self.beta_now
        if beta == 1.0:
            return self.elbo.differentiable_loss(model, guide, *args, **kwargs)
        with SiteScale(beta):
            return self.elbo.differentiable_loss(model, guide, *args, **kwargs)

    def loss(self, model: Program, guide: Program, *args, **kwargs) -> float:
        """−ELBO as a float, without gradients."""
        with torch.no_grad():
            return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model: Program, guide: Program, *args, **kwargs) -> float:
        """−ELBO as a float, its gradients accumulated into the parameters: what ``pyro.infer.SVI`` calls."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return float(loss.detach())

    def __call__(self, model, guide) -> ELBOModule:
        return ELBOModule(model, guide, self)

    def config(self) -> dict:
        """The objective's settings as the config.json keys that rebuild it."""
        return {"elbo": self.name, "particles": self.particles, "beta": self.beta,
                "kl_warmup": self.kl_warmup, "free_bits": self.free_bits}

    def __repr__(self) -> str:
        return "Objective(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"


# an Objective is used wherever Pyro takes an ELBO: pyro.infer.SVI then calls its loss and loss_and_grads
ELBO.register(Objective)

ENUMERATING = (TraceEnum_ELBO, TraceTMC_ELBO)  # the ELBOs that sum out sites marked for enumeration


def for_program(objective: ELBO | None, enumerated: tuple[str, ...], max_plate_nesting: int) -> ELBO:
    """The objective ``fit`` trains a program with: the given one, or by default ``Trace_ELBO``, or
    ``TraceEnum_ELBO`` when the program has sites marked for enumeration (``config_enumerate``,
    ``infer={"enumerate": ...}``). An objective that can't sum those sites out is refused in one line:
    Trace_ELBO would sample them from the model's prior, unscored by the guide, and fit another model.
    ``max_plate_nesting`` is set where it was left to Pyro's guess, which runs the program once more
    and draws random numbers there (so a resumed run would not continue the same trajectory).
    """
    if objective is None:
        objective = TraceEnum_ELBO() if enumerated else elbos.Trace_ELBO()
    if isinstance(objective, Objective):
        objective.resolve(bool(enumerated))
    inner = objective.elbo if isinstance(objective, Objective) else objective
    if enumerated and not isinstance(inner, ENUMERATING):
        name = objective.name if isinstance(objective, Objective) else type(objective).__name__
        raise UserError(f"the program marks site(s) {', '.join(map(repr, enumerated))} for enumeration, which "
                        f"{name} can't sum out (it would sample them unscored and fit another model): train with "
                        "--elbo enum (or leave --elbo at auto), i.e. TraceEnum_ELBO")
    if isinstance(inner, ELBO) and inner.max_plate_nesting == float("inf"):
        inner.max_plate_nesting = max_plate_nesting + (inner.vectorize_particles and inner.num_particles > 1)
    return objective


def make_elbo(name: str, particles: int = 1, free_bits: float = 0.0,
              max_plate_nesting: float = float("inf")) -> ELBO:
    """The Pyro ELBO behind ``--elbo NAME --particles K [--free-bits λ]``, particles vectorized."""
    if name == "iwae":
        return IWAE(particles, max_plate_nesting)
    if name == "enum":  # discrete sites marked infer={"enumerate": "parallel"} are summed out exactly
        return TraceEnum_ELBO(num_particles=particles, vectorize_particles=particles > 1,
                              max_plate_nesting=max_plate_nesting)
    if free_bits > 0:
        return FreeBitsELBO(free_bits, particles, analytic_kl=name == "meanfield",
                            max_plate_nesting=max_plate_nesting)
    # the sync-free equivalents of Pyro's Trace_ELBO / TraceMeanField_ELBO (pyro_vae/elbos.py)
    elbo = elbos.Trace_ELBO if name == "trace" else elbos.TraceMeanField_ELBO
    return elbo(num_particles=particles, vectorize_particles=particles > 1, max_plate_nesting=max_plate_nesting)


def _check(elbo, particles, beta, kl_warmup, free_bits) -> None:
    if isinstance(elbo, str) and elbo not in ELBOS:
        raise UserError(f"unknown --elbo {elbo!r}: choose one of {', '.join(ELBOS)}")
    if not isinstance(elbo, (str, ELBO)):
        raise UserError(f"elbo must be one of {', '.join(ELBOS)} or a Pyro ELBO, got {type(elbo).__name__}")
    if not isinstance(particles, int) or particles < 1:
        raise UserError(f"--particles must be a whole number >= 1, got {particles!r}")
    if not (isinstance(beta, (int, float)) and 0 <= beta < math.inf):
        raise UserError(f"--beta must be a finite number >= 0, got {beta!r}")
    if not isinstance(kl_warmup, int) or kl_warmup < 0:
        raise UserError(f"--kl-warmup must be a whole number of epochs >= 0, got {kl_warmup!r}")
    if not (isinstance(free_bits, (int, float)) and 0 <= free_bits < math.inf):
        raise UserError(f"--free-bits must be a finite number of nats >= 0, got {free_bits!r}")
    if isinstance(elbo, ELBO) and (particles != 1 or free_bits):
        raise UserError("particles and free_bits belong to the named objectives (trace, meanfield, iwae); "
                        "a Pyro ELBO instance brings its own num_particles")
    if elbo == "enum" and free_bits > 0:
        raise UserError("--free-bits clamps a closed-form or Monte Carlo KL per dimension: use --elbo trace or "
                        "meanfield with --free-bits")
    if elbo == "iwae" and free_bits > 0:
        raise UserError("--free-bits clamps the KL term, which the IWAE bound does not have: "
                        "use --elbo trace or meanfield with --free-bits")


class _VectorizedELBO(Trace_ELBO):
    """Trace_ELBO's traces (one vectorized pass for K particles) with a loss that needs no host sync."""

    def __init__(self, num_particles: int = 1, max_plate_nesting: float = float("inf")):
        super().__init__(num_particles=num_particles, max_plate_nesting=max_plate_nesting,
                         vectorize_particles=num_particles > 1)

    def _traces(self, model, guide, args, kwargs):
        (model_trace, guide_trace), = self._get_traces(model, guide, args, kwargs)
        if torch.is_grad_enabled():
            for site in guide_trace.nodes.values():
                if site["type"] == "sample" and not site["fn"].has_rsample:
                    raise UserError(f"{type(self).__name__} needs reparameterized latents, but guide site "
                                    f"{site['name']!r} ({type(site['fn']).__name__}) has no rsample: "
                                    "use --elbo trace or meanfield")
        return model_trace, guide_trace

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            return float(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return float(loss.detach())


class IWAE(_VectorizedELBO):
    """The importance-weighted bound, a log-mean-exp over K particles per data point:

        L_K(x) = log (1/K) Σ_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),   ELBO = L_1 ≤ L_K ≤ L_{K+1} ≤ log p(x)

    It is RenyiELBO(alpha=0) with a ``differentiable_loss`` (so ``IWAE(K)(model, guide)`` is a module),
    reparameterized gradients, and the data-subsampling scale N/B applied outside the log-mean-exp,
    so a minibatch estimates the full data set's bound. Sites outside the per-example plates (global
    latents) make the weights joint over the batch, as in RenyiELBO.
    """

    def differentiable_loss(self, model: Program, guide: Program, *args, **kwargs) -> torch.Tensor:
        """−log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q, summed over the batch."""
        model_trace, guide_trace = self._traces(model, guide, args, kwargs)
        terms = [(1.0, s) for s in model_trace.nodes.values() if s["type"] == "sample"] + \
                [(-1.0, s) for s in guide_trace.nodes.values() if s["type"] == "sample"]
        sum_dims = get_dependent_plate_dims([s for _, s in terms])
        rho = _common_data_scale([s for _, s in terms])
        log_w = 0.0
        for sign, site in terms:
            if rho is None:  # joint weights, each site scaled as in Pyro's ELBOs
                log_p = site["log_prob"]
            else:  # per-example weights; the data scale rho multiplies the log-mean-exp instead
                log_p = scale_and_mask(site["unscaled_log_prob"], site.get("site_scale", 1.0),
                                       site["mask"])
            log_w = log_w + sign * torch_sum(log_p, sum_dims)
        if self.num_particles > 1:
            log_w = torch.logsumexp(log_w, dim=-self.max_plate_nesting) - math.log(self.num_particles)
        return -log_w.sum() * (1.0 if rho is None else rho)


def _common_data_scale(sites) -> float | None:
    """The subsampling scale shared by all sites (their scale without β), or None if they differ."""
    scales = []
    for site in sites:
        factor = site.get("site_scale", 1.0)
        if isinstance(site["scale"], torch.Tensor) or isinstance(factor, torch.Tensor):
            return None
        if factor != 0:
            scales.append(site["scale"] / factor)
    if not scales:
        return 1.0
    return scales[0] if all(math.isclose(s, scales[0], rel_tol=1e-9) for s in scales) else None


class FreeBitsELBO(_VectorizedELBO):
    """−ELBO with the KL of each latent dimension j clamped from below (Kingma et al. 2016):

        loss = −Σ_i E_q[log p(x_i|z)] + Σ_j max(λ·N, Σ_i KL_ij)

    KL_ij is analytic (``analytic_kl``, where torch knows it) or the one-sample log q − log p, summed
    over the data with the sites' scales (N/B per row, β), so λ is in nats per example and dimension.
    A dimension whose KL is below λ gets no gradient pushing it further toward the prior.
    """

    def __init__(self, free_bits: float, num_particles: int = 1, analytic_kl: bool = False,
                 max_plate_nesting: float = float("inf")):
        super().__init__(num_particles, max_plate_nesting)
        self.free_bits, self.analytic_kl = free_bits, analytic_kl

    def differentiable_loss(self, model: Program, guide: Program, *args, **kwargs) -> torch.Tensor:
        """−[E_q log p(x|z) − Σ_d max(λ, KL_d)], the KL per latent dimension floored at λ."""
        model_trace, guide_trace = self._traces(model, guide, args, kwargs)
        reconstruction = sum(s["log_prob_sum"] for s in model_trace.nodes.values()
                             if s["type"] == "sample" and s["is_observed"])
        kl = 0.0
        for name, q_site in guide_trace.nodes.items():
            if q_site["type"] != "sample":
                continue
            per_dim, weight = kl_per_dim(q_site, model_trace.nodes[name], self.analytic_kl)
            kl = kl + torch.maximum(per_dim, self.free_bits * weight).sum()
        return (kl - reconstruction) / self.num_particles


def kl_per_dim(q_site: dict, p_site: dict, analytic: bool = True) -> tuple[torch.Tensor, torch.Tensor | float]:
    """(Σ over the site's plates of scale·KL_j, Σ of scale): KL per latent dimension j of one latent site.

    Dimensions are the site's event dims declared with ``to_event``; a distribution with its own
    event shape (e.g. MultivariateNormal) counts as one dimension. KL is analytic when ``analytic`` and
    torch has it for the factors, else the one-sample log q(z) − log p(z) at the site's value.
    """
    q, p = _factors(q_site["fn"]), _factors(p_site["fn"])
    if q.event_shape != p.event_shape:  # factorized differently (e.g. a Delta guide): the site is one dimension
        q, p = q_site["fn"], p_site["fn"]
    z = q_site["value"]
    kl = None
    if analytic:
        try:
            kl = kl_divergence(q, p)
        except NotImplementedError:
            pass
    if kl is None:
        kl = q.log_prob(z) - p.log_prob(z)
    batch_shape, event_shape = q_site["fn"].batch_shape, q_site["fn"].event_shape
    latent_shape = event_shape[:len(event_shape) - len(q.event_shape)]
    kl = kl.expand(batch_shape + latent_shape)
    weight = scale_and_mask(kl.new_ones(batch_shape), q_site["scale"], q_site["mask"])
    weighted = kl * weight.reshape(batch_shape + (1,) * len(latent_shape))
    return weighted.sum(tuple(range(len(batch_shape)))), weight.sum()


def _factors(fn):
    """The distribution of the individual latent dimensions: ``to_event`` (Independent) unwrapped,
    or a multivariate distribution's own ``factors()`` (pyro_vae.distributions)."""
    if hasattr(fn, "factors"):
        return fn.factors()
    while isinstance(fn, Independent):
        fn = fn.base_dist
    return fn
