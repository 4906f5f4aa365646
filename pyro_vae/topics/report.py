"""What a topic run reports: each topic's top words and NPMI, the measures table, and the files it writes.

    topics.txt    the printed table
    topics.json   top words with their weights p(word | topic), the measures, the baseline's measures
    figures/topic_words.png, figures/document_topics.png
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from pyro_vae.checkpoint import write_text
from pyro_vae.models.topics import LDA
from pyro_vae.topics import metrics
from pyro_vae.topics.corpus import Corpus


def summarize(model: nn.Module, guide: nn.Module, corpus: Corpus, config: dict,
              baseline_iter: int | None = None) -> dict:
    """Top words, the three measures, and (with ``baseline_iter``) sklearn's LDA measured the same way."""
    torch.manual_seed(config["seed"])
    weights = metrics.topic_words(model, guide).cpu()
    ranked = metrics.top_words(weights, corpus.vocab, metrics.TOP_COHERENCE)
    _, per_topic = metrics.npmi(ranked, corpus.train_texts)
    rows = {f"{config['model']} (pyro)": metrics.measure(model, guide, corpus)}
    if baseline_iter:
        from pyro_vae.topics.baseline import SklearnLDAGuide, fit_sklearn_lda

        # the same LDA priors as ours: alpha for an lda run, else sklearn's default 1/T
        alpha = config["alpha"] if config["model"] == "lda" else 1.0 / config["topics"]
        lda = fit_sklearn_lda(corpus.train, config["topics"], alpha, config["eta"], baseline_iter, config["seed"])
        reference = LDA(corpus.vocab_size, config["topics"], corpus.max_length, alpha, config["eta"])
        rows["sklearn LDA"] = metrics.measure(reference, SklearnLDAGuide(lda), corpus)
    topics = [{**row, "npmi": per_topic[row["topic"] - 1]} for row in topic_rows(weights, corpus.vocab, ranked)]
    return {"corpus": config["corpus"], "model": config["model"], "documents": {"train": corpus.train.shape[0],
            "test": corpus.test.shape[0]}, "vocab_size": corpus.vocab_size, "topics": topics, "measures": rows,
            "table": format_table(topics, rows)}


def topic_rows(weights: torch.Tensor, vocab: list[str], ranked: list[list[str]]) -> list[dict]:
    """One row per topic: its number (from 1), top ``words`` and their ``weights`` p(word | topic)."""
    index = {word: v for v, word in enumerate(vocab)}
    return [{"topic": t + 1, "words": words, "weights": [float(weights[t, index[w]]) for w in words]}
            for t, words in enumerate(ranked)]


def format_table(topics: list[dict], rows: dict) -> str:
    """Each topic's NPMI and top words, then one line of measures per model."""
    lines = ["topic   NPMI  top words"]
    lines += [f"{t['topic']:5d} {t['npmi']:6.3f}  {' '.join(t['words'])}" for t in topics]
    lines += ["", f"{'':20s} {'NPMI train':>10s} {'NPMI held-out':>13s} {'diversity':>9s} {'perplexity held-out':>19s}"]
    lines += [f"{name:20s} {m['npmi_train']:10.3f} {m['npmi_test']:13.3f} {m['diversity']:9.3f} "
              f"{m['perplexity_test']:19.1f}" for name, m in rows.items()]
    return "\n".join(lines)


def write_outputs(out: Path, report: dict, guide: nn.Module, corpus: Corpus, figures: bool = True) -> list[Path]:
    """topics.txt, topics.json and (with ``figures``) the two figures into the run folder; returns the paths."""
    out = Path(out)
    write_text(out / "topics.txt", report["table"] + "\n")
    write_text(out / "topics.json", json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2) + "\n")
    paths = [out / "topics.txt", out / "topics.json"]
    if figures:
        paths += figure_set(report["topics"], guide, corpus.test, out / "figures")
    return paths


def figure_set(topics: list[dict], guide: nn.Module, counts: torch.Tensor, folder: Path) -> list[Path]:
    """topic_words.png and document_topics.png (the first 20 of ``counts``) into ``folder``."""
    from pyro_vae.topics.figures import document_topics, topic_words

    device = next(guide.parameters()).device
    with torch.no_grad():
        theta = guide.proportions(counts[:20].to(device)).cpu()
    topic_words(topics, folder / "topic_words.png")
    document_topics(theta, folder / "document_topics.png")
    return [folder / "topic_words.png", folder / "document_topics.png"]
