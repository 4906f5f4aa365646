"""Figures of a topic model: each function returns a matplotlib ``Figure`` and saves it only when given a path."""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pyro_vae.plots import finish


def topic_words(topics: list[dict], path: str | Path | None = None) -> Figure:
    """One bar chart per topic: its top words and their weights p(word | topic) (``report.summarize``'s topics)."""
    cols = min(5, len(topics))
    rows = -(-len(topics) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, topic in zip(axes.flat, topics):
        ax.barh(range(len(topic["words"]))[::-1], topic["weights"], color="tab:blue")
        ax.set_yticks(range(len(topic["words"]))[::-1], topic["words"], fontsize=7)
        ax.set_title(f"topic {topic['topic']}", fontsize=8)
        ax.set_xlabel("p(word | topic)", fontsize=6)
        ax.set_ylabel("top words", fontsize=6)
        ax.tick_params(axis="x", labelsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    for ax in axes.flat[len(topics):]:
        ax.axis("off")
    fig.suptitle("topic-word weights p(word | topic)")
    fig.tight_layout()
    return finish(fig, path)


def document_topics(theta: torch.Tensor, path: str | Path | None = None) -> Figure:
    """Heatmap of E_q[θ_d], (documents, topics): which topics each document is about."""
    theta = theta.detach().cpu()
    fig = Figure(figsize=(max(4, 0.4 * theta.shape[1] + 1.5), max(3, 0.25 * theta.shape[0] + 1)))
    ax = fig.subplots()
    image = ax.imshow(theta.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(theta.shape[1]), [str(t + 1) for t in range(theta.shape[1])], fontsize=7)
    ax.set_yticks(range(theta.shape[0]), [str(d + 1) for d in range(theta.shape[0])], fontsize=7)
    ax.set_xlabel("topic")
    ax.set_ylabel("document")
    ax.set_title("topic proportions θ_d (posterior mean)")
    fig.colorbar(image, ax=ax, label="E_q[θ_dt]")
    return finish(fig, path)
