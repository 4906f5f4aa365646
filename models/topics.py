"""The lecture's topic model as Pyro programs: a corpus is bags of words, with T topics.

    φ_t ~ Dirichlet(η)                 topic t: a distribution over the V words
    θ_d ~ Dirichlet(α)                 document d: a distribution over the T topics
    for each word n of document d:  topic ~ Categorical(θ_d),  word ~ Categorical(φ_topic)

``LDA`` writes this process literally and sums the per-word topic out by enumeration
(TraceEnum_ELBO), so p(word | θ_d, φ) = Σ_t θ_dt φ_t,word exactly. ``ProdLDA`` (Srivastava &
Sutton 2017) is the scalable version: a VAE whose code z_d gives θ_d = softmax(z_d) and whose
decoder scores the bag of words at once. Both take ``counts``, the (D, V) word counts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import pyro
import pyro.distributions as dist


def words_of(counts: torch.Tensor, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, V) word counts → (L, D) word ids, one per word position, and the (L, D) mask of real words.

    Documents shorter than ``max_length`` are padded (mask False); longer ones are cut.
    """
    ends = counts.cumsum(-1)  # word v fills positions ends[v-1] .. ends[v]-1
    position = torch.arange(max_length, device=counts.device, dtype=counts.dtype)
    position = position.expand(counts.shape[0], max_length).contiguous()
    words = torch.searchsorted(ends, position, right=True).clamp(max=counts.shape[-1] - 1)
    return words.T, (position < ends[:, -1:]).T


class LDA(nn.Module):
    """model(counts): φ_t ~ Dir(η); θ_d ~ Dir(α); per word: topic ~ Cat(θ_d), word ~ Cat(φ_topic).

    The topic site is enumerated in parallel: train with ``TraceEnum_ELBO(max_plate_nesting=2)``.
    Padding positions zero only the word factor, so Σ_t θ_dt · 1 = 1 adds nothing for them.
    """

    max_plate_nesting = 2

    def __init__(self, vocab_size: int, num_topics: int, max_length: int, alpha: float = 0.1, eta: float = 0.1):
        super().__init__()
        self.vocab_size, self.num_topics, self.max_length = vocab_size, num_topics, max_length
        self.alpha, self.eta = alpha, eta

    def forward(self, counts: torch.Tensor) -> None:
        """φ_t ~ Dir(η), θ_d ~ Dir(α), each word's topic ~ Cat(θ_d) (enumerated), word ~ Cat(φ_topic)."""
        words, mask = words_of(counts, self.max_length)
        with pyro.plate("topics", self.num_topics, device=counts.device):
            phi = pyro.sample("phi", dist.Dirichlet(counts.new_full((self.vocab_size,), self.eta)))
        with pyro.plate("data", counts.shape[0], device=counts.device):
            theta = pyro.sample("theta", dist.Dirichlet(counts.new_full((self.num_topics,), self.alpha)))
            with pyro.plate("words", self.max_length, dim=-2, device=counts.device):
                topic = pyro.sample("topic", dist.Categorical(theta), infer={"enumerate": "parallel"})
                # word ~ Categorical(φ_topic), scored by looking up log φ_topic,word: a Categorical site
                # would broadcast V-long logits over every (topic, position, document) in the backward pass
                pyro.factor("word", phi.log()[topic, words].masked_fill(~mask, 0.0))


def laplace_prior(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale) of the Gaussian over z that approximates θ = softmax(z) ~ Dirichlet(α) (MacKay 1998).

        μ_k  = log α_k − (1/K) Σ_i log α_i
        σ²_k = (1/α_k)(1 − 2/K) + (1/K²) Σ_i 1/α_i
    """
    k = alpha.shape[-1]
    loc = alpha.log() - alpha.log().mean(-1, keepdim=True)
    variance = (1 - 2 / k) / alpha + alpha.reciprocal().sum(-1, keepdim=True) / k ** 2
    return loc, variance.sqrt()


def dirichlet_from_laplace(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The inverse map: the concentration α of the Dirichlet whose Laplace approximation is N(loc, scale²),

        α_k = (1/σ²_k) (1 − 2/K + (e^{μ_k}/K²) Σ_i e^{−μ_i})      (Hennig et al. 2012)
    """
    k = loc.shape[-1]
    # in log space, so that extreme encoder outputs saturate instead of giving inf / inf = NaN
    log_spread = loc + (-loc).logsumexp(-1, keepdim=True) - 2 * math.log(k)
    return (torch.logaddexp(log_spread.new_tensor(math.log(1 - 2 / k) if k > 2 else -math.inf), log_spread)
            - 2 * scale.log()).exp()


class Words(dist.Multinomial):
    """A document's words drawn one by one from Categorical(p), scored from their counts n:
    log p = Σ_v n_v log p_v. Multinomial would add log(N!/Π n_v!), which is not a property of the
    model; leaving it out makes LDA's and ProdLDA's per-word likelihoods the same quantity."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Σ_v n_v log p_v of counts n (no multinomial coefficient)."""
        return (value * self.logits).sum(-1)


class ProdLDA(nn.Module):
    """model(counts): z_d ~ N(μ_α, σ_α²) (the Laplace approximation to Dirichlet(α) for θ_d = softmax(z_d)),
    then the bag of words ~ Categorical(softmax(β θ_d)) per word: a product of experts, not a mixture.

    The decoder is dropout(θ) → β (T → V, no bias) → batch norm, as in Srivastava & Sutton: batch norm
    and dropout keep every topic in use (without them the decoder tends to collapse onto a few).
    """

    max_plate_nesting = 1

    def __init__(self, vocab_size: int, num_topics: int, alpha: float = 1.0, dropout: float = 0.2):
        super().__init__()
        self.vocab_size, self.num_topics, self.alpha = vocab_size, num_topics, alpha
        self.decoder = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_topics, vocab_size, bias=False),
                                     nn.BatchNorm1d(vocab_size, affine=False))

    def prior(self, counts: torch.Tensor) -> dist.Distribution:
        """p(z_d) = N(μ_α, σ_α²), the Laplace approximation to Dirichlet(α) in the softmax basis."""
        return dist.Normal(*laplace_prior(counts.new_full((self.num_topics,), self.alpha))).to_event(1)

    def forward(self, counts: torch.Tensor) -> None:
        """z_d ~ p(z) at "z", then the words ~ Cat(softmax(β softmax(z_d))) at "words" (observed counts)."""
        with pyro.plate("data", counts.shape[0], device=counts.device):
            z = pyro.sample("z", self.prior(counts))
            pyro.sample("words", Words(logits=self.decoder(torch.softmax(z, -1))), obs=counts)

    @torch.no_grad()
    def topics(self) -> torch.Tensor:
        """(T, V): p(word | θ = e_t), the words of a document about topic t alone (decoder in eval mode)."""
        weight = self.decoder[1].weight
        one_topic = torch.eye(self.num_topics, device=weight.device, dtype=weight.dtype)
        training = self.decoder.training
        self.decoder.eval()  # running batch-norm statistics, no dropout
        probs = torch.softmax(self.decoder(one_topic), -1)
        self.decoder.train(training)
        return probs
