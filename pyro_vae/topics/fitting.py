"""A topic run from its settings: config → (model, guide), the objective, and SVI with ``pyro_vae.fit``.

``config`` is the run's config.json: ``model`` (lda or prodlda), ``topics``, ``alpha``, ``eta``, ``hidden``,
``dropout``, ``vocab_size``, ``max_length``, the corpus and its vectorizer settings, and the training
settings. It alone rebuilds model and guide; the vocabulary is kept beside it in ``vocab.txt``.
"""

from __future__ import annotations

import shutil
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
from pyro_vae.topics.defaults import DEFAULTS, LEARNING_RATES, MODELS, default_alpha
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


def make_config(vectorized: Corpus, /, **settings) -> dict:
    """The run's config.json: ``settings`` (any key of ``defaults.DEFAULTS``, ``alpha``, ``lr``, ``data_dir``)
    over the defaults, plus what the ``vectorized`` corpus fixes (vocabulary size, longest document). Checks them."""
    unknown = set(settings) - set(DEFAULTS) - {"alpha", "lr", "data_dir"}
    if unknown:
        raise UserError(f"unknown topic-model setting(s) {', '.join(sorted(unknown))}: "
                        f"use {', '.join(sorted(DEFAULTS))}, alpha, lr or data_dir")
    config = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    config.pop("baseline_iter")
    if config["model"] not in MODELS:
        raise UserError(f"unknown topic model {config['model']!r}: choose one of {', '.join(MODELS)}")
    config.setdefault("alpha", default_alpha(config["model"], config["topics"]))
    config.setdefault("lr", LEARNING_RATES[config["model"]])
    config.update(vocab_size=vectorized.vocab_size, max_length=vectorized.max_length)
    check(config, vectorized)
    return config


def check(config: dict, corpus: Corpus) -> None:
    """Settings that cannot work with this corpus are a one-line UserError, before training starts."""
    if not 0 <= config["dropout"] < 1:
        raise UserError(f"--dropout must be in [0, 1), got {config['dropout']}")
    n, batch = corpus.train.shape[0], config["batch_size"]
    if batch > n:
        raise UserError(f"--batch-size {batch} is larger than the {n} training documents: use --batch-size {n} or less")
    if n % batch == 1:
        raise UserError(f"--batch-size {batch} leaves a last batch of one document, which batch norm "
                        f"cannot normalize: use --batch-size {batch - 1} or {batch + 1}")
    if config["topics"] < 2:
        raise UserError("--topics must be at least 2: one topic is just the corpus' word frequencies")
    if config["topics"] > corpus.vocab_size:
        raise UserError(f"--topics {config['topics']} is more than the {corpus.vocab_size} words of the vocabulary: "
                        "use fewer topics or a lower --min-df")


def load_corpus(config: dict) -> Corpus:
    """The corpus a config was trained on, split and vectorized the same way again."""
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


def fit_run(settings: dict, out: str | Path, *, resume: bool = False, overwrite: bool = False,
            device: str | torch.device = "auto", quiet: bool = False, baseline_iter: int | None = None,
            figures: bool = True) -> dict:
    """``pyro-vae topics`` in one call: the corpus, the config (``make_config``; on ``resume`` the saved one),
    training, then the report files in ``out`` (``report.write_outputs``). Returns the report
    (``report.summarize``); a new run folder is removed again if anything fails."""
    from pyro_vae.topics import report

    corpus = load_corpus({**DEFAULTS, **settings})
    config = settings if resume else make_config(corpus, **{k: v for k, v in settings.items() if k != "baseline_iter"})
    out = Path(out)
    created = not out.exists()
    model, guide, _ = train(corpus, config, device=device, out=out, resume=resume, overwrite=overwrite, quiet=quiet)
    try:
        summary = report.summarize(model, guide, corpus, config, baseline_iter)
        report.write_outputs(out, summary, guide, corpus, figures=figures)
    except BaseException:
        if created:  # no half-written run is left behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    return summary
