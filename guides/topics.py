"""Amortized guides for the topic models: one network reads a document's bag of words.

    q(z_d) = N(μ(n_d), σ(n_d)²)             ProdLDA: θ_d = softmax(z_d), exactly a VAE's encoder
    q(θ_d) = Dirichlet(γ(μ(n_d), σ(n_d)))    LDA: the same encoder, its Gaussian turned into the
                                             Dirichlet it approximates (the inverse Laplace map)
    q(φ_t) = Dirichlet(λ_t)                  LDA's topics: free parameters, one set for the corpus
"""

from __future__ import annotations

import torch
from torch import nn

import pyro
import pyro.distributions as dist

from pyro_vae.models.topics import dirichlet_from_laplace

# Floors of the Dirichlet concentrations, for float32: a draw from Dirichlet(c) with c ≲ 0.2 can underflow
# to 1e-38, and then ∂ log p/∂θ ∝ 1/θ, times DataScale's N/B for a document's θ, overflows to NaN.
# φ is global (no N/B), so 0.1 suffices. The cap stops an encoder with σ → 0 from overflowing.
THETA_RANGE, PHI_RANGE = (0.3, 1e5), (0.1, 1e5)


class DocumentEncoder(nn.Module):
    """n_d ↦ (μ_d, log σ²_d): word counts → Linear → softplus → Linear → softplus → dropout → two heads.

    Against component collapse (Srivastava & Sutton 2017), where the posterior settles on a few
    topics and the rest go unused: each head is batch-normed, so codes stay spread across a batch
    and no topic can be switched off early; dropout on the hidden layer keeps the encoder from
    leaning on a handful of words.
    """

    def __init__(self, vocab_size: int, num_topics: int, hidden: int = 100, dropout: float = 0.2):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(vocab_size, hidden), nn.Softplus(),
                                   nn.Linear(hidden, hidden), nn.Softplus(), nn.Dropout(dropout))
        self.mu = nn.Sequential(nn.Linear(hidden, num_topics), nn.BatchNorm1d(num_topics))
        self.log_var = nn.Sequential(nn.Linear(hidden, num_topics), nn.BatchNorm1d(num_topics))

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (documents, topics), of the bag of words."""
        h = self.trunk(counts)
        return self.mu(h), self.log_var(h)


class ProdLDAGuide(nn.Module):
    """guide(counts): z_d ~ q(z_d) = N(μ(n_d), σ(n_d)²) for every document."""

    def __init__(self, encoder: DocumentEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, counts: torch.Tensor) -> None:
        """z_d ~ N(μ(counts_d), σ(counts_d)²) at site "z" in the "data" plate."""
        mu, log_var = self.encoder(counts)
        with pyro.plate("data", counts.shape[0], device=counts.device):
            pyro.sample("z", dist.Normal(mu, (0.5 * log_var).exp()).to_event(1))

    @torch.no_grad()
    def proportions(self, counts: torch.Tensor) -> torch.Tensor:
        """(D, T): θ_d = softmax(μ(n_d)), each document's topic mix at the code's mean."""
        return torch.softmax(self.encoder(counts)[0], -1)


class LDAGuide(nn.Module):
    """guide(counts): φ_t ~ Dirichlet(λ_t), then θ_d ~ Dirichlet(γ_d) with γ_d from the encoder."""

    def __init__(self, encoder: DocumentEncoder, vocab_size: int):
        super().__init__()
        self.encoder = encoder
        # random λ around 1 breaks the symmetry between topics
        self.log_lambda = nn.Parameter(0.5 * torch.rand(encoder.mu[0].out_features, vocab_size))

    def topic_concentration(self) -> torch.Tensor:
        """λ (topics, vocab) of q(φ_t) = Dirichlet(λ_t), positive."""
        return self.log_lambda.exp().clamp(*PHI_RANGE)

    def concentration(self, counts: torch.Tensor) -> torch.Tensor:
        """γ (documents, topics) of q(θ_d) = Dirichlet(γ_d): the encoder's Gaussian (μ, σ) mapped back by
        the inverse Laplace approximation."""
        mu, log_var = self.encoder(counts)
        return dirichlet_from_laplace(mu, (0.5 * log_var).exp()).clamp(*THETA_RANGE)

    def forward(self, counts: torch.Tensor) -> None:
        """φ_t ~ Dirichlet(λ_t) in the "topics" plate, then θ_d ~ Dirichlet(γ_d) in the "data" plate."""
        with pyro.plate("topics", self.log_lambda.shape[0]):
            pyro.sample("phi", dist.Dirichlet(self.topic_concentration()))
        gamma = self.concentration(counts)
        with pyro.plate("data", counts.shape[0], device=counts.device):
            pyro.sample("theta", dist.Dirichlet(gamma))

    @torch.no_grad()
    def topics(self) -> torch.Tensor:
        """(T, V): E_q[φ_t] = λ_t / Σ_v λ_tv."""
        lam = self.topic_concentration()
        return lam / lam.sum(-1, keepdim=True)

    @torch.no_grad()
    def proportions(self, counts: torch.Tensor) -> torch.Tensor:
        """(D, T): E_q[θ_d] = γ_d / Σ_t γ_dt."""
        gamma = self.concentration(counts)
        return gamma / gamma.sum(-1, keepdim=True)
