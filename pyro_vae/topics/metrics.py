"""Measures of a topic model: coherence, diversity and held-out perplexity.

    NPMI coherence   gensim's CoherenceModel(coherence="c_npmi", topn=10): for each pair of a topic's
                     top words, log[p(w_i, w_j) / p(w_i) p(w_j)] / −log p(w_i, w_j), with probabilities
                     counted in 10-word sliding windows of a reference corpus; −1 (never together) to 1.
    diversity        unique words among every topic's top 25, divided by 25·T; 1 = no word shared.
    perplexity       exp(−Σ_d ELBO_d / Σ_d N_d): the per-word ELBO of held-out documents, with the
                     corpus-wide latents (LDA's φ) fixed at their posterior mean, so only the
                     documents' own θ_d are inferred (by the amortized encoder).

Anything that defines ``topics()`` (T × V topic-word weights) in its guide or model and
``proportions(counts)`` in its guide can be measured, including the sklearn baseline.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Sequence

import torch

from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.poutine.util import site_is_subsample

from pyro_vae.errors import UserError
from pyro_vae.evaluate import Program
from pyro_vae.settings import TrainingSettings

if TYPE_CHECKING:
    from pyro_vae.topics.corpus import Corpus

TOP_COHERENCE, TOP_DIVERSITY = 10, 25


def topic_words(model: Program, guide: Program) -> torch.Tensor:
    """(T, V) topic-word weights: the guide's E_q[φ] (LDA), else the model's own (ProdLDA)."""
    return guide.topics() if hasattr(guide, "topics") else model.topics()


def top_words(weights: torch.Tensor, vocab: list[str], n: int = TOP_COHERENCE) -> list[list[str]]:
    """Each topic's n highest-weighted words, best first."""
    index = weights.detach().float().cpu().topk(min(n, weights.shape[-1]), dim=-1).indices
    return [[vocab[i] for i in row] for row in index.tolist()]


def npmi(topics: list[list[str]], texts: list[list[str]], topn: int = TOP_COHERENCE) -> tuple[float, list[float]]:
    """(mean, per topic) NPMI coherence of ranked topic words against reference ``texts``.

    A word that never occurs in the reference texts has no co-occurrence probability (gensim would
    return inf); such words are skipped and the topic's next-ranked words take their place.
    """
    from gensim.corpora import Dictionary
    from gensim.models import CoherenceModel

    dictionary = Dictionary(texts)
    seen = [[w for w in topic if w in dictionary.token2id][:topn] for topic in topics]
    if any(len(topic) < 2 for topic in seen):
        raise UserError("cannot measure coherence: a topic has fewer than 2 of its top words in the reference "
                        "documents; use more documents or a smaller --min-df")
    model = CoherenceModel(topics=seen, texts=texts, dictionary=dictionary, coherence="c_npmi", topn=topn)
    per_topic = [float(v) for v in model.get_coherence_per_topic()]
    return sum(per_topic) / len(per_topic), per_topic


def diversity(topics: list[list[str]], k: int = TOP_DIVERSITY) -> float:
    """Unique words among all topics' top k, divided by k·T (k is cut to the shortest topic if needed)."""
    k = min(k, *(len(t) for t in topics))
    return len({w for topic in topics for w in topic[:k]}) / (k * len(topics))


def _globals_at_their_mean(model: Program, guide: Program, counts: torch.Tensor):
    """model and guide with every latent outside the "data" plate fixed to its mean under q and hidden."""
    trace = poutine.trace(guide).get_trace(counts)
    fixed = {name: site["fn"].mean for name, site in trace.nodes.items()
             if site["type"] == "sample" and not site_is_subsample(site)
             and not any(f.name == "data" for f in site["cond_indep_stack"])}
    if not fixed:
        return model, guide
    return (poutine.block(poutine.condition(model, data=fixed), hide=list(fixed)),
            poutine.block(poutine.condition(guide, data=fixed), hide=list(fixed)))


@torch.no_grad()
def document_elbo(model: Program, guide: Program, counts: torch.Tensor, batch_size: int = TrainingSettings.eval_batch_size, num_particles: int = 1) -> float:
    """Σ_d ELBO_d over the documents (rows of ``counts``), in nats.

    ELBO_d = E_q[log p(words_d | θ_d, φ̄)] − KL(q(θ_d) ‖ p(θ_d)), estimated with ``num_particles``
    draws of θ_d; LDA's per-word topics are summed out exactly by TraceEnum_ELBO. One host sync
    per batch of documents.
    """
    elbo = TraceEnum_ELBO(max_plate_nesting=getattr(model, "max_plate_nesting", 2), num_particles=num_particles)
    total = 0.0
    with warnings.catch_warnings():  # without enumerated sites (ProdLDA) TraceEnum_ELBO is Trace_ELBO, as wanted
        warnings.filterwarnings("ignore", "TraceEnum_ELBO found no sample sites configured for enumeration")
        for start in range(0, counts.shape[0], batch_size):
            batch = counts[start:start + batch_size]
            total -= elbo.loss(*_globals_at_their_mean(model, guide, batch), batch)
    return total


def perplexity(model: Program, guide: Program, counts: torch.Tensor, batch_size: int = TrainingSettings.eval_batch_size, num_particles: int = 1) -> float:
    """exp(−Σ_d ELBO_d / Σ_d N_d): an upper bound on the per-word perplexity of the documents."""
    return math.exp(-document_elbo(model, guide, counts, batch_size, num_particles) / float(counts.sum()))


def evaluator(model: Program, guide: Program, data: torch.Tensor | Sequence[torch.Tensor], batch_size: int = TrainingSettings.eval_batch_size) -> dict:
    """For ``fit(evaluator=...)``: ELBO per document and per-word perplexity."""
    counts = data[0] if isinstance(data, (tuple, list)) else data
    elbo = document_elbo(model, guide, counts, batch_size)
    return {"elbo": elbo / counts.shape[0], "perplexity": math.exp(-elbo / float(counts.sum()))}


def measure(model: Program, guide: Program, corpus: Corpus, num_particles: int = 4) -> dict:
    """The three measures of a trained model on a corpus, as in the comparison table."""
    model.eval(), guide.eval()
    ranked = top_words(topic_words(model, guide), corpus.vocab, n=max(TOP_DIVERSITY, 3 * TOP_COHERENCE))
    device = next((p.device for p in [*model.parameters(), *guide.parameters()]), torch.device("cpu"))
    return {"npmi_train": npmi(ranked, corpus.train_texts)[0],
            "npmi_test": npmi(ranked, corpus.test_texts)[0],
            "diversity": diversity([t[:TOP_DIVERSITY] for t in ranked]),
            "perplexity_test": perplexity(model, guide, corpus.test.to(device), num_particles=num_particles)}
