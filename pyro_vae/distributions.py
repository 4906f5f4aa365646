"""Distributions over the last dimension for the VAE's prior, encoder and likelihoods.

``IsotropicNormal(loc, σ)`` = N(loc, σ² I), σ one shared number:

    log p(x) = −‖x − loc‖² / 2σ² − D log σ − (D/2) log 2π

``DiagonalNormal(loc, scale)`` = N(loc, diag scale²):

    log q(z) = −½ Σ_j ((z_j − loc_j) / scale_j)² − Σ_j log scale_j − (D/2) log 2π

Both are ``dist.Normal(loc, scale).to_event(1)`` with the same values and gradients (tested), made
for the training step's fixed cost. Normal broadcasts σ to loc's shape and computes σ², log σ and a
division for every pixel, forward and backward, which on a CPU takes longer than the decoder's matrix
products; the squared error is all ``IsotropicNormal`` computes, in one fused pass (``mse_loss``).
``DiagonalNormal`` is one object instead of two (``Independent`` of ``Normal``), and ``expand`` to the
shape it already has (which ``pyro.plate`` asks of every site on every step) returns it unchanged
instead of building two more.

``IndependentBernoulli(logits)`` = Π_j Bernoulli(x_j; sigmoid(logits_j)):

    log p(x) = −Σ_j BCE(logits_j, x_j) = Σ_j x_j logits_j − log(1 + e^logits_j)

is ``dist.Bernoulli(logits=f).to_event(1)`` without its two full-size negations (forward and
backward): the sign is applied after the sum over pixels. Grey levels in [0, 1] are allowed as soft
targets, so the {0, 1} support is not checked.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch.distributions import constraints, register_kl
from torch.nn.functional import binary_cross_entropy_with_logits, mse_loss

import pyro.distributions as dist
from pyro.distributions import TorchDistribution

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class _OverLastDim(TorchDistribution):
    """A distribution over the last dimension: the tensors named in ``_batched`` carry the batch shape,
    those in ``_shared`` are kept as they are when the distribution is expanded."""

    _batched: tuple[str, ...] = ()
    _shared: tuple[str, ...] = ()

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape and _instance is None:
            return self  # distributions are immutable: the same one serves
        new = self._get_checked_instance(type(self), _instance)
        for name in self._batched:
            setattr(new, name, getattr(self, name).expand(batch_shape + self.event_shape))
        for name in self._shared:
            setattr(new, name, getattr(self, name))
        TorchDistribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new


class _Normal(_OverLastDim):
    has_rsample = True
    support = constraints.real_vector

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc


class IsotropicNormal(_Normal):
    """N(loc, scale² I): event shape ``loc.shape[-1:]``; ``scale`` a positive number or 0-dim tensor."""

    arg_constraints = {"loc": constraints.real_vector}  # scale may be a number: checked in __init__
    _batched, _shared = ("loc",), ("scale",)

    def __init__(self, loc: torch.Tensor, scale: float | torch.Tensor, validate_args=None):
        if isinstance(scale, torch.Tensor) and scale.dim() != 0:
            raise ValueError(f"IsotropicNormal: scale must be a number or 0-dim tensor, got shape {tuple(scale.shape)}")
        self.loc, self.scale = loc, scale
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)
        if self._validate_args and not (scale > 0 if isinstance(scale, Real) else bool(scale > 0)):
            raise ValueError(f"IsotropicNormal: scale must be positive, got {float(scale)}")

    def _log_scale(self):
        return math.log(self.scale) if isinstance(self.scale, Real) else self.scale.log()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log N(value; loc, scale² I), summed over the event dimension."""
        if self._validate_args:
            self._validate_sample(value)
        # one fused pass over loc and value forward and one backward, where (value - loc).pow(2) makes
        # two image-sized tensors forward and three passes back; broadcast views, not copies
        squared_error = mse_loss(*torch.broadcast_tensors(self.loc, value), reduction="none").sum(-1)
        return squared_error / (-2 * self.scale ** 2) - self.loc.shape[-1] * (self._log_scale() + _HALF_LOG_2PI)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """loc + scale ε, ε ~ N(0, I): a reparameterized draw."""
        shape = self._extended_shape(sample_shape)
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc.expand(shape) + self.scale * noise

    @property
    def variance(self) -> torch.Tensor:
        """scale², broadcast to loc's shape."""
        return torch.zeros_like(self.loc) + self.scale ** 2

    def entropy(self) -> torch.Tensor:
        """(D/2) log(2πe scale²) per event."""
        per_dim = 0.5 + _HALF_LOG_2PI + self._log_scale()
        return self.loc.new_zeros(self.batch_shape) + self.loc.shape[-1] * per_dim

    def factors(self) -> dist.Normal:
        """The D independent one-dimensional factors N(loc_j, σ²), e.g. for a KL per latent dimension."""
        scale = self.scale if isinstance(self.scale, torch.Tensor) else torch.full_like(self.loc, self.scale)
        return dist.Normal(self.loc, scale.expand(self.loc.shape))


class DiagonalNormal(_Normal):
    """N(loc, diag scale²): event shape ``loc.shape[-1:]``, ``scale`` > 0 of loc's shape."""

    arg_constraints = {"loc": constraints.real_vector, "scale": constraints.independent(constraints.positive, 1)}
    # the scale as built, before any expand: Σ log σ of K expanded copies (e.g. K importance samples
    # per example) is then computed once and broadcast, not K times
    _batched, _shared = ("loc", "scale"), ("_built_scale",)

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args=None):
        if loc.shape != scale.shape:
            loc, scale = torch.broadcast_tensors(loc, scale)
        self.loc, self.scale = loc, scale
        self._built_scale = scale
        super().__init__(loc.shape[:-1], loc.shape[-1:], validate_args=validate_args)

    def _sum_log_scale(self) -> torch.Tensor:
        return self._built_scale.log().sum(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log N(value; loc, diag scale²), summed over the event dimension."""
        if self._validate_args:
            self._validate_sample(value)
        standardized = (value - self.loc) / self.scale
        return standardized.pow(2).sum(-1) * -0.5 - self._sum_log_scale() - self.loc.shape[-1] * _HALF_LOG_2PI

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """loc + scale ε, ε ~ N(0, I): a reparameterized draw."""
        shape = self._extended_shape(sample_shape)
        return self.loc + self.scale * torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)

    @property
    def stddev(self) -> torch.Tensor:
        """scale."""
        return self.scale

    @property
    def variance(self) -> torch.Tensor:
        """scale²."""
        return self.scale.pow(2)

    def entropy(self) -> torch.Tensor:
        """Σ_d ½ log(2πe scale_d²) per event."""
        return (self._sum_log_scale() + self.loc.shape[-1] * (0.5 + _HALF_LOG_2PI)).expand(self.batch_shape)

    def factors(self) -> dist.Normal:
        """The D independent one-dimensional factors N(loc_j, scale_j²), e.g. for a KL per latent dimension."""
        return dist.Normal(self.loc, self.scale)


@register_kl(DiagonalNormal, DiagonalNormal)
@register_kl(DiagonalNormal, IsotropicNormal)
@register_kl(IsotropicNormal, DiagonalNormal)
@register_kl(IsotropicNormal, IsotropicNormal)
def _kl_normal_normal(q, p):
    """KL(q ‖ p) = Σ_j log(s_j / σ_j) + (σ_j² + (μ_j − m_j)²) / 2s_j² − ½  for q = N(μ, σ²), p = N(m, s²)."""
    variance_ratio = (q.scale / p.scale) ** 2  # a number when both scales are
    log_ratio = math.log(variance_ratio) if isinstance(variance_ratio, Real) else variance_ratio.log()
    per_dim = ((q.loc - p.loc) / p.scale).pow(2) + variance_ratio - 1 - log_ratio
    return 0.5 * per_dim.sum(-1)


class IndependentBernoulli(_OverLastDim):
    """Independent Bernoulli(sigmoid(logits_j)) for every entry j of the last dimension (event shape)."""

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.independent(constraints.unit_interval, 1)  # soft targets allowed
    has_rsample = False
    _batched = ("logits",)

    def __init__(self, logits: torch.Tensor, validate_args=None):
        self.logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Σ_d x_d log σ(f_d) + (1 − x_d) log σ(−f_d), from the logits."""
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits
        if value.shape != logits.shape:  # e.g. K samples of logits for one x
            logits, value = torch.broadcast_tensors(logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """0/1 draws, without gradient."""
        with torch.no_grad():
            return torch.bernoulli(self.mean.expand(self._extended_shape(sample_shape)))

    @property
    def mean(self) -> torch.Tensor:
        """sigmoid(logits)."""
        return torch.sigmoid(self.logits)

    @property
    def variance(self) -> torch.Tensor:
        """p (1 − p)."""
        p = self.mean
        return p * (1 - p)
