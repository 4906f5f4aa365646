"""The reference a user would otherwise pick: scikit-learn's LatentDirichletAllocation.

It fits the same LDA model (same α, η, vocabulary and split) by batch variational Bayes, with
q(φ_t) = Dirichlet(λ_t) (``components_``) and per-document q(θ_d) = Dirichlet(γ_d) found by an
iterative E-step instead of an encoder. ``SklearnLDAGuide`` exposes that posterior as a Pyro guide,
so our own ``topics.metrics`` measure both with the same estimators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

import pyro
import pyro.distributions as dist

from pyro_vae.topics.settings import BASELINE_ITER

if TYPE_CHECKING:
    from sklearn.decomposition import LatentDirichletAllocation


def fit_sklearn_lda(counts: torch.Tensor, num_topics: int, alpha: float, eta: float, max_iter: int = BASELINE_ITER,
                    seed: int = 0) -> "LatentDirichletAllocation":
    """scikit-learn's batch variational LDA fitted to word ``counts`` with our α, η and topics."""
    from sklearn.decomposition import LatentDirichletAllocation

    lda = LatentDirichletAllocation(n_components=num_topics, doc_topic_prior=alpha, topic_word_prior=eta,
                                    learning_method="batch", max_iter=max_iter, random_state=seed)
    return lda.fit(counts.cpu().numpy())


class SklearnLDAGuide(nn.Module):
    """guide(counts): φ_t ~ Dirichlet(λ_t = components_[t]), θ_d ~ Dirichlet(γ_d from sklearn's E-step)."""

    def __init__(self, lda: "LatentDirichletAllocation"):
        super().__init__()
        self.lda = lda
        self.register_buffer("lam", torch.as_tensor(lda.components_, dtype=torch.float32))

    def concentration(self, counts: torch.Tensor) -> torch.Tensor:
        """γ (documents, topics) of q(θ_d) from sklearn's E-step."""
        gamma = self.lda.transform(counts.detach().cpu().numpy(), normalize=False)
        return torch.as_tensor(gamma, dtype=counts.dtype, device=counts.device)

    def forward(self, counts: torch.Tensor) -> None:
        """φ_t ~ Dirichlet(λ_t), θ_d ~ Dirichlet(γ_d): sklearn's posterior as a Pyro guide."""
        with pyro.plate("topics", self.lam.shape[0]):
            pyro.sample("phi", dist.Dirichlet(self.lam))
        with pyro.plate("data", counts.shape[0]):
            pyro.sample("theta", dist.Dirichlet(self.concentration(counts)))

    def topics(self) -> torch.Tensor:
        """(T, V) E_q[φ_t] = λ_t / Σ λ_t."""
        return self.lam / self.lam.sum(-1, keepdim=True)

    def proportions(self, counts: torch.Tensor) -> torch.Tensor:
        """(D, T) E_q[θ_d] = γ_d / Σ γ_d."""
        gamma = self.concentration(counts)
        return gamma / gamma.sum(-1, keepdim=True)
