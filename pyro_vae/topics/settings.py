"""The settings of a topic run, each declared once: ``pyro-vae topics``' flags, checks, help and the run's
config.json come from :class:`TopicSettings`. No torch here, so ``pyro-vae topics --help`` stays quick."""

from __future__ import annotations

from dataclasses import dataclass

from pyro_vae.settings import Settings, option

MODELS = ("lda", "prodlda")
# Adam's step size: LDA's Dirichlet concentrations move faster than ProdLDA's decoder weights
LEARNING_RATES = {"lda": 0.05, "prodlda": 0.01}
BASELINE_ITER = 50  # passes of scikit-learn's LDA over the data, for the comparison (topics --baseline)


@dataclass(frozen=True)
class TopicSettings(Settings):
    """A topic model (LDA or ProdLDA), its corpus and vectorizer, and how it is trained.

    ``alpha`` and ``lr`` are None until :meth:`complete` fills in the model's own defaults.
    """

    corpus: str = option("lee", "lee (offline default: 300 news articles shipped with gensim), 20news (downloaded), "
                                "a folder of .txt files, or a text file with one document per line")
    data_dir: str | None = option(None, "where 20news is cached", shown="scikit-learn's data home, "
                                  "~/scikit_learn_data or $SCIKIT_LEARN_DATA", free=True)
    model: str = option("prodlda", "the topic model", choices=MODELS)
    topics: int = option(10, "number of topics T", "positive")
    alpha: float | None = option(None, "Dirichlet(α) prior of each document's topic mix θ_d", "positive",
                                 shown="1/T for lda, 1 for prodlda")
    eta: float = option(0.1, "Dirichlet(η) prior of each topic's words φ_t, LDA only", "positive")
    hidden: int = option(100, "encoder hidden width", "positive")
    dropout: float = option(0.2, "encoder (and ProdLDA decoder) dropout", "fraction")
    min_df: int | float = option(2, "drop words in fewer documents than this (a count, or a fraction like 0.01)")
    max_df: int | float = option(0.5, "drop words in more documents than this (a fraction, or a count)")
    max_features: int | None = option(2000, "keep the most frequent N words", "positive")
    test_size: float = option(0.2, "fraction of documents held out")
    epochs: int = option(100, "passes over the training documents", "positive", free=True)
    batch_size: int = option(64, "documents per SVI step", "positive")
    lr: float | None = option(None, "Adam learning rate", "positive", free=True,
                              shown=", ".join(f"{rate} for {model}" for model, rate in LEARNING_RATES.items()))
    seed: int = option(0, "random seed")

    def complete(self) -> "TopicSettings":
        """The settings with the model's own defaults filled in: α = 1/T for LDA (sklearn's default), 1 for
        ProdLDA (its Laplace approximation's); the learning rate of ``LEARNING_RATES``."""
        alpha = self.alpha if self.alpha is not None else 1.0 / self.topics if self.model == "lda" else 1.0
        return self.replace(alpha=alpha, lr=self.lr if self.lr is not None else LEARNING_RATES[self.model])
