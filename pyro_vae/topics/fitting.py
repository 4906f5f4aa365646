"""A topic run from its settings: config → (model, guide), the objective, and SVI with ``pyro_vae.fit``.

``config`` is the run's config.json: ``model`` (lda or prodlda), ``topics``, ``alpha``, ``eta``, ``hidden``,
``dropout``, ``vocab_size``, ``max_length``, the corpus and its vectorizer settings, and the training
settings. It alone rebuilds model and guide; the vocabulary is kept beside it in ``vocab.txt``.
"""

from __future__ import annotations

from pathlib import Path

import pyro
import torch
from pyro.infer import TraceEnum_ELBO, TraceMeanField_ELBO
from torch import nn

from pyro_vae.checkpoint import write_text
from pyro_vae.errors import UserError
from pyro_vae.guides.topics import DocumentEncoder, LDAGuide, ProdLDAGuide
from pyro_vae.models.topics import LDA, ProdLDA
from pyro_vae.topics import metrics
from pyro_vae.topics.corpus import Corpus
from pyro_vae.topics.settings import TopicSettings
from pyro_vae.train import fit

VOCAB = "vocab.txt"  # one word a line, in the order of the model's columns


def build(config: dict) -> tuple[nn.Module, nn.Module]:
    """(model, guide) from a run's config.json: LDA with its enumerating guide, or ProdLDA with its encoder."""
    vocab, topics = config["vocab_size"], config["topics"]
    encoder = DocumentEncoder(vocab, topics, config["hidden"], config["dropout"])
    if config["model"] == "lda":
        return LDA(vocab, topics, config["max_length"], config["alpha"], config["eta"]), LDAGuide(encoder, vocab)
    return ProdLDA(vocab, topics, config["alpha"], config["dropout"]), ProdLDAGuide(encoder)


def objective(model_name: str) -> pyro.infer.ELBO:
    """LDA: the per-word topic is summed out by enumeration. ProdLDA: KL(q(z)‖p(z)) of two Gaussians in closed form."""
    return TraceEnum_ELBO(max_plate_nesting=LDA.max_plate_nesting) if model_name == "lda" else TraceMeanField_ELBO()


def make_config(vectorized: Corpus, /, settings: TopicSettings | None = None, **changes) -> dict:
    """The run's config.json: ``settings`` (a :class:`TopicSettings`, default its defaults) with ``changes``
    (its fields as keywords), α and the learning rate completed, plus what the ``vectorized`` corpus fixes
    (vocabulary size, longest document). Checks them against the corpus."""
    settings = (settings or TopicSettings()).replace(**changes).complete()
    config = {**settings.to_dict(), "vocab_size": vectorized.vocab_size, "max_length": vectorized.max_length}
    check(config, vectorized)
    return config


def check(config: dict, corpus: Corpus) -> None:
    """Settings that cannot work with this corpus are a one-line UserError, before training starts."""
    n, batch = corpus.train.shape[0], config["batch_size"]
    if n % batch == 1 and batch <= n:  # a batch larger than the data is fit's to refuse
        raise UserError(f"--batch-size {batch} leaves a last batch of one document, which batch norm "
                        f"cannot normalize: use --batch-size {batch - 1} or {batch + 1}")
    if config["topics"] < 2:
        raise UserError("--topics must be at least 2: one topic is just the corpus' word frequencies")
    if config["topics"] > corpus.vocab_size:
        raise UserError(f"--topics {config['topics']} is more than the {corpus.vocab_size} words of the vocabulary: "
                        "use fewer topics or a lower --min-df")


def load_corpus(config: dict) -> Corpus:
    """The corpus a config (or ``TopicSettings.to_dict()``) was trained on, split and vectorized the same way again."""
    from pyro_vae.topics.corpus import load_corpus as load

    return load(config["corpus"], min_df=config["min_df"], max_df=config["max_df"],
                max_features=config["max_features"], test_size=config["test_size"], seed=config["seed"],
                data_dir=config.get("data_dir"))


def train(corpus: Corpus, config: dict, *, device: str | torch.device = "auto", out: str | Path | None = None,
          resume: bool = False, overwrite: bool = False, quiet: bool = False) -> tuple[nn.Module, nn.Module, list]:
    """Builds model and guide from ``config`` (``make_config``) and fits them to the training documents.

    Maximizes Σ_d ELBO_d = Σ_d E_q[log p(words_d | θ_d, φ)] − KL(q(θ_d) ‖ p(θ_d)) (− KL(q(φ) ‖ p(φ)) for
    LDA, counted once per data set) by SVI; with ``out`` the run folder gets ``vocab.txt`` besides
    fit's config.json, metrics.jsonl and checkpoint.pt, and ``resume`` continues it. Returns
    (model, guide, per-epoch metrics).
    """
    pyro.set_rng_seed(config["seed"])
    model, guide = build(config)
    history = fit(model, guide, corpus.train, test_data=corpus.test, objective=objective(config["model"]),
                  evaluator=metrics.evaluator, epochs=config["epochs"], batch_size=config["batch_size"],
                  lr=config["lr"], seed=config["seed"], device=device, out=out, resume=resume,
                  overwrite=overwrite, config=config, quiet=quiet)
    if out is not None:
        write_text(Path(out) / VOCAB, "".join(f"{word}\n" for word in corpus.vocab))
    return model, guide, history


def fit_run(settings: TopicSettings, out: str | Path, *, resume: bool = False, overwrite: bool = False,
            device: str | torch.device = "auto", quiet: bool = False, baseline_iter: int | None = None,
            figures: bool = True) -> dict:
    """``pyro-vae topics`` in one call: the corpus, the config (``make_config``), training (on ``resume``
    continued from the checkpoint in ``out``), then the report files in ``out`` (``report.write_outputs``).
    Returns the report (``report.summarize``). A new run folder that fails before its first checkpoint is
    removed again (by ``fit``); one that fails later is kept, and ``resume`` finishes it."""
    from pyro_vae.topics import report

    corpus = load_corpus(settings.to_dict())
    config = make_config(corpus, settings)
    model, guide, _ = train(corpus, config, device=device, out=out, resume=resume, overwrite=overwrite, quiet=quiet)
    summary = report.summarize(model, guide, corpus, config, baseline_iter)
    report.write_outputs(Path(out), summary, guide, corpus, figures=figures)
    return summary
