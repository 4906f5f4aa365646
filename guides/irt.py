"""Guides for the IRT models: q(items) q(abilities), with the abilities amortized or not.

    q(θ_s) = N(μ(x_s, m_s), σ(x_s, m_s)²)   AbilityEncoder: answers x_s and mask m_s → μ, σ (a VAE's encoder)
    q(θ_s) = N(μ_s, σ_s²)                   MeanFieldAbilities: two free numbers per student (py-irt's guide)
    q(items) = Normal / LogNormal per item parameter, or a point estimate (Delta)
"""

import torch
from torch import nn
from torch.nn.functional import logsigmoid, softplus

import pyro
import pyro.distributions as dist


class AbilityEncoder(nn.Module):
    """(answers, mask) ↦ (μ, σ): a product of experts on a grid of abilities, one per answered item.

    Item t answered right contributes the log-factor log σ(w_t θ + c_t), answered wrong
    log σ(−(w_t θ + c_t)), with w_t, c_t learned (the encoder's own, not the model's, parameters);
    a learned Normal N(m_0, s_0²) is the prior expert. On grid points θ_g = m_0 + u_g, u_g ∈ [−7, 7]:

        log w_sg = log N(θ_g; m_0, s_0²) + Σ_{t answered} log σ(±(w_t θ_g + c_t)) − log Z_s
        μ_s = Σ_g w_sg θ_g,      σ_s² = Σ_g w_sg θ_g² − μ_s²

    An unanswered item contributes nothing, so any subset of items is scored alike, a new student
    needs no refit, and one who answered nothing gets the prior expert. The logistic factors are the
    form of every IRT model here, so q can follow skewed posteriors (all right, all wrong) that fixed
    Gaussian experts miss. The grid step 0.1 resolves posterior sds down to about 0.1.
    """

    def __init__(self, num_items: int, grid: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("grid", torch.linspace(-7.0, 7.0, 141) if grid is None else grid, persistent=False)
        self.slope = nn.Parameter(torch.ones(num_items))
        self.offset = nn.Parameter(torch.zeros(num_items))
        self.prior_loc, self.prior_log_scale = nn.Parameter(torch.zeros(())), nn.Parameter(torch.zeros(()))

    def forward(self, answers: torch.Tensor, mask: torch.Tensor,
                student: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) of q(θ_s), each (students, 1), from the answers and their mask (``student`` unused)."""
        theta = self.prior_loc + self.grid  # the grid follows the prior mean (the lecture model's μ)
        logit = theta.unsqueeze(-1) * self.slope + self.offset  # (G, J)
        right, wrong = answers * mask, (1 - answers) * mask
        log_w = right @ logsigmoid(logit).T + wrong @ logsigmoid(-logit).T \
            - 0.5 * (self.grid / self.prior_log_scale.exp()) ** 2
        weights = log_w.softmax(-1)
        mean = weights @ theta
        variance = (weights * (theta - mean.unsqueeze(-1)) ** 2).sum(-1)
        return mean.unsqueeze(-1), variance.clamp(min=1e-8).sqrt().unsqueeze(-1)


class MeanFieldAbilities(nn.Module):
    """student index ↦ (μ_s, σ_s): free parameters per training student; cannot score a new one."""

    def __init__(self, num_students: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(num_students, 1))
        self.raw_scale = nn.Parameter(torch.full((num_students, 1), -1.0))

    def forward(self, answers: torch.Tensor, mask: torch.Tensor,
                student: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_s, σ_s) of the students indexed by ``student``, each (len(student), 1)."""
        return self.loc[student], softplus(self.raw_scale[student]) + 1e-4


class ItemGuide(nn.Module):
    """q(items): Normal (LogNormal for a positive parameter) per item, or with ``point`` a Delta (the MAP).

    Mean-field: q treats items and abilities as independent, so its sds come from the curvature of the
    ELBO with the abilities' spread fixed, and understate the posterior sd where abilities are poorly
    known (few items per student; see docs/irt.md).
    """

    def __init__(self, item_sites: dict, num_items: int, point: bool = False):
        super().__init__()
        self.item_sites, self.num_items, self.point = dict(item_sites), num_items, point
        self.loc = nn.ParameterDict({name: nn.Parameter(torch.zeros(num_items)) for name in item_sites})
        self.raw_scale = nn.ParameterDict({name: nn.Parameter(torch.full((num_items,), -3.0))
                                           for name in item_sites})

    def posterior(self, name: str) -> dist.Distribution:
        """q(item parameter ``name``): Normal, LogNormal (positive) or, for point estimates, Delta; batch shape (items,)."""
        loc, positive = self.loc[name], self.item_sites[name]
        if self.point:
            return dist.Delta(loc.exp() if positive else loc)
        scale = softplus(self.raw_scale[name]) + 1e-4
        return dist.LogNormal(loc, scale) if positive else dist.Normal(loc, scale)

    def forward(self) -> dict[str, torch.Tensor]:
        """Samples every item parameter from q in the "items" plate; returns them by name."""
        with pyro.plate("items", self.num_items, dim=-1):
            return {name: pyro.sample(name, self.posterior(name)) for name in self.item_sites}


class IRTGuide(nn.Module):
    """guide(answers, mask, student=None): items ~ q(items), then θ_s ~ N(μ, σ²) from ``abilities``."""

    def __init__(self, items: ItemGuide, abilities: nn.Module):
        super().__init__()
        self.items, self.abilities = items, abilities

    def forward(self, answers: torch.Tensor, mask: torch.Tensor, student: torch.Tensor | None = None) -> torch.Tensor:
        """items ~ q(items), then θ_s ~ N(μ_s, σ_s²) at site "ability" in the "data" plate; returns θ."""
        self.items()
        loc, scale = self.abilities(answers, mask, student)
        with pyro.plate("data", answers.shape[0], dim=-2, device=answers.device):
            return pyro.sample("ability", dist.Normal(loc, scale))
