"""Item response theory as a Pyro program: student s answers item t right with probability σ(η_st).

    lecture   η_st = α_s β_t,             α_s ~ N(μ, 1),  β_t ~ LogNormal(0, 1)   (difficulty 1/β_t)
    1pl       η_st = θ_s − b_t,           θ_s ~ N(0, 1),  b_t ~ N(0, 3²)          (Rasch)
    2pl       η_st = a_t (θ_s − b_t),     θ_s ~ N(0, 1),  b_t ~ N(0, 3²),  a_t ~ LogNormal(0, 1)

    answers_st ~ Bernoulli(σ(η_st))   for the answered (s, t) only: a missing answer is masked out of
                                      the likelihood, never imputed

The ability is the latent code of a student's answer row, as z is of an image in a VAE; item
parameters are global latents (outside the ``"data"`` plate, so they count once per data set).

The lecture model's catch: σ(−u) = 1 − σ(u), so with α_s ~ N(0, 1) every item's marginal solve rate
E σ(α β_t) is exactly 1/2 whatever β_t, and β could not fit any item's rate. Abilities therefore
get a learned mean μ (α_s ~ N(μ, 1)); then E σ(α β_t) moves away from 1/2 as β_t grows, but every
item stays on the same side of 1/2 as μ: the model cannot hold easy and hard items at once.
"""

import torch
from torch import nn

import pyro
import pyro.distributions as dist
from pyro import poutine

# the item parameters of each model (pyro_vae.irt.settings.KINDS names them for the CLI), and whether each is
# positive (LogNormal) or real (Normal)
ITEM_SITES = {"lecture": {"beta": True}, "1pl": {"difficulty": False},
              "2pl": {"difficulty": False, "discrimination": True}}


class IRT(nn.Module):
    """model(answers, mask, student=None): item parameters ~ prior, abilities ~ prior, answers ~ σ(η).

    answers and mask are (students, items); ``student`` (row indices) is only read by the mean-field
    guide, which takes the same arguments.
    """

    def __init__(self, num_items: int, kind: str = "2pl", difficulty_scale: float = 3.0,
                 log_scale: float = 1.0):
        super().__init__()
        self.num_items, self.kind = num_items, kind
        self.item_sites = ITEM_SITES[kind]
        self.difficulty_scale, self.log_scale = difficulty_scale, log_scale
        if kind == "lecture":
            self.mu = nn.Parameter(torch.zeros(()))  # the learned mean ability (see the module docstring)

    def prior(self, name: str, x: torch.Tensor) -> dist.Distribution:
        """p(item parameter ``name``): LogNormal(0, s) for a positive one, else Normal(0, difficulty_scale)."""
        zeros = x.new_zeros(self.num_items)
        if self.item_sites[name]:
            return dist.LogNormal(zeros, self.log_scale)
        return dist.Normal(zeros, self.difficulty_scale)

    def mean_ability(self, x: torch.Tensor) -> torch.Tensor:
        """The prior mean of each student's ability, (students, 1): μ (lecture) or 0."""
        return self.mu.expand(x.shape[0], 1) if self.kind == "lecture" else x.new_zeros(x.shape[0], 1)

    def logits(self, ability: torch.Tensor, items: dict) -> torch.Tensor:
        """η: α β (lecture), θ − b (1pl) or a (θ − b) (2pl), broadcast over students × items."""
        if self.kind == "lecture":
            return ability * items["beta"]
        if self.kind == "1pl":
            return ability - items["difficulty"]
        return items["discrimination"] * (ability - items["difficulty"])

    def forward(self, answers: torch.Tensor, mask: torch.Tensor, student: torch.Tensor | None = None) -> torch.Tensor:
        """items ~ prior, θ_s ~ N(mean, 1) at "ability", answers_st ~ Bernoulli(σ(η_st)) where the mask is True."""
        item_plate = pyro.plate("items", self.num_items, dim=-1, device=answers.device)
        with item_plate:
            items = {name: pyro.sample(name, self.prior(name, answers)) for name in self.item_sites}
        with pyro.plate("data", answers.shape[0], dim=-2, device=answers.device):
            ability = pyro.sample("ability", dist.Normal(self.mean_ability(answers), 1.0))
            with item_plate, poutine.mask(mask=mask):
                return pyro.sample("answers", dist.Bernoulli(logits=self.logits(ability, items)), obs=answers)
