"""A reopened topic run (``pyro-vae topics``): its vocabulary, its topics, and scores of new documents."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from pyro_vae.errors import UserError
from pyro_vae.runs import Run
from pyro_vae.settings import TrainingSettings
from pyro_vae.topics import fitting, metrics
from pyro_vae.topics.corpus import Corpus


class TopicRun(Run):
    """An LDA or ProdLDA run: ``vocab``, ``topics()``, ``proportions(documents)``, ``score(documents)``.

    Documents are plain strings; they are counted over the run's vocabulary (``vocab.txt``) with the
    same tokenizer as the training corpus, so words the run never saw are ignored.
    """

    kind = "topics"

    @staticmethod
    def build(config: dict) -> tuple[nn.Module, nn.Module]:
        return fitting.build(config)

    @property
    def data(self) -> dict:
        return {"corpus": self.config.get("corpus"), "vocab_size": self.config.get("vocab_size"),
                "vocab_file": str(self.path / fitting.VOCAB), "test_size": self.config.get("test_size"),
                "seed": self.config.get("seed")}

    @cached_property
    def vocab(self) -> list[str]:
        """The run's words, in the order of the model's columns."""
        path = self.path / fitting.VOCAB
        if not path.is_file():
            raise UserError(f"{str(self.path)!r} has no {fitting.VOCAB} (a run cut short before it was written, or "
                            "one made by an older version): train it again to score new documents")
        words = path.read_text().splitlines()
        if len(words) != self.config["vocab_size"]:
            raise UserError(f"{str(path)!r} has {len(words)} words, but the model has {self.config['vocab_size']}: "
                            "the run folder is damaged; train it again")
        return words

    def counts(self, documents: list[str]) -> torch.Tensor:
        """(D, V) word counts of ``documents`` over the run's vocabulary."""
        from pyro_vae.topics.corpus import counts

        return counts(documents, self.vocab)

    def topics(self, num_words: int = metrics.TOP_COHERENCE) -> list[list[str]]:
        """Each topic's ``num_words`` most probable words, best first."""
        return metrics.top_words(metrics.topic_words(self.model, self.guide), self.vocab, num_words)

    @torch.no_grad()
    def proportions(self, documents: list[str]) -> torch.Tensor:
        """(D, T) topic proportions E_q[θ_d] of new documents, from the run's encoder."""
        return self.guide.proportions(self.counts(documents))

    def score(self, documents: list[str], num_particles: int = 4) -> dict:
        """ELBO of new documents: ``elbo`` Σ_d ELBO_d (nats, a lower bound on Σ_d log p(words_d)), ``words``,
        and ``perplexity`` exp(−Σ_d ELBO_d / Σ_d N_d); documents without a vocabulary word are left out."""
        counts = self.counts(documents)
        counts = counts[counts.sum(-1) > 0]
        if counts.shape[0] == 0:
            raise UserError("none of the documents contains a word of the run's vocabulary: nothing to score")
        elbo = metrics.document_elbo(self.model, self.guide, counts, num_particles=num_particles)
        words = float(counts.sum())
        return {"documents": counts.shape[0], "words": words, "elbo": elbo, "perplexity": math.exp(-elbo / words)}

    def corpus(self) -> Corpus:
        """The training corpus, split and vectorized again as in training (``topics.corpus.Corpus``)."""
        return fitting.load_corpus(self.config)

    def evaluate(self, batch_size: int = TrainingSettings.eval_batch_size, seed: int = 0, num_samples: int | None = None,
                 device: str | torch.device = "cpu") -> dict:
        """Held-out ELBO per document and per-word perplexity exp(−Σ_d ELBO_d / Σ_d N_d), with the corpus-wide
        latents at their posterior mean (``num_samples``: draws of θ_d per document, default 1)."""
        corpus = self.corpus()
        model, guide = self.model.to(device), self.guide.to(device)
        torch.manual_seed(seed)
        test = corpus.test.to(device)
        elbo = metrics.document_elbo(model, guide, test, batch_size, num_samples or 1)
        return {"test_documents": test.shape[0], "test_elbo": elbo / test.shape[0],
                "test_perplexity": math.exp(-elbo / float(test.sum()))}

    def figures(self, folder: str | Path | None = None) -> list[Path]:
        """topic_words.png and document_topics.png (held-out documents) into ``folder`` (default figures/)."""
        from pyro_vae.topics.report import figure_set, topic_rows

        weights = metrics.topic_words(self.model, self.guide).detach().cpu()
        return figure_set(topic_rows(weights, self.vocab, self.topics()), self.guide, self.corpus().test,
                          Path(folder) if folder is not None else self.path / "figures")
