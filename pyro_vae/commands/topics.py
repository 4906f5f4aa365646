"""pyro-vae topics: fit a topic model (LDA or ProdLDA) to a corpus by SVI, with the same trainer as the VAE.

Writes into the run folder: config.json, metrics.jsonl, checkpoint.pt (as ``train`` does), topics.txt
(the printed table), topics.json (top words, measures, baseline) and figures/topic_words.png,
figures/document_topics.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from matplotlib.ticker import MaxNLocator

import pyro
from pyro.infer import TraceEnum_ELBO, TraceMeanField_ELBO

from pyro_vae import text, topic_metrics
from pyro_vae.commands.options import add_device, positive_float, positive_int
from pyro_vae.checkpoint import write_text
from pyro_vae.errors import UserError
from pyro_vae.guides.topics import DocumentEncoder, LDAGuide, ProdLDAGuide
from pyro_vae.models.topics import LDA, ProdLDA
from pyro_vae.plots import plt, save_figure
from pyro_vae.train import fit, resolve_device

LEARNING_RATES = {"lda": 0.05, "prodlda": 0.01}


def count_or_fraction(value: str) -> int | float:
    """'2' → 2 documents; '0.5' → half of the documents (sklearn's min_df/max_df convention)."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of documents or a fraction, got {value!r}") from None


def add_parser(sub) -> None:
    p = sub.add_parser("topics", help="fit a topic model (LDA or ProdLDA) to a corpus",
                       description="Topics as Pyro programs. LDA: φ_t ~ Dir(η), θ_d ~ Dir(α), per word topic ~ "
                                   "Cat(θ_d), word ~ Cat(φ_topic), the topic summed out by enumeration. ProdLDA: "
                                   "θ_d = softmax(z_d), z_d ~ Laplace approximation of Dir(α), words ~ "
                                   "Cat(softmax(β θ_d)). Both with an amortized encoder of the bag of words.")
    p.add_argument("--corpus", default="lee",
                   help="lee (offline default: 300 news articles shipped with gensim), 20news (downloaded), a folder "
                        "of .txt files, or a text file with one document per line")
    p.add_argument("--data-dir", help="where 20news is cached (default: scikit-learn's data home)")
    p.add_argument("--model", choices=["lda", "prodlda"], default="prodlda", help="(default prodlda)")
    p.add_argument("--topics", type=positive_int, default=10, help="number of topics T (default 10)")
    p.add_argument("--alpha", type=positive_float,
                   help="Dirichlet(α) prior of each document's topic mix θ_d (default 1/T for lda, 1 for prodlda)")
    p.add_argument("--eta", type=positive_float, default=0.1,
                   help="Dirichlet(η) prior of each topic's words φ_t, LDA only (default 0.1)")
    p.add_argument("--hidden", type=positive_int, default=100, help="encoder hidden width (default 100)")
    p.add_argument("--dropout", type=float, default=0.2, help="encoder (and ProdLDA decoder) dropout (default 0.2)")
    p.add_argument("--min-df", type=count_or_fraction, default=2,
                   help="drop words in fewer documents than this (a count, or a fraction like 0.01; default 2)")
    p.add_argument("--max-df", type=count_or_fraction, default=0.5,
                   help="drop words in more documents than this (a fraction, or a count; default 0.5)")
    p.add_argument("--max-features", type=positive_int, default=2000, help="keep the most frequent N words (2000)")
    p.add_argument("--test-size", type=float, default=0.2, help="fraction of documents held out (default 0.2)")
    p.add_argument("--epochs", type=positive_int, default=100, help="passes over the training documents (100)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="documents per SVI step (default 64)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default 0.05 for lda, 0.01 for prodlda)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_device(p)
    p.add_argument("--baseline", action="store_true",
                   help="also fit scikit-learn's LatentDirichletAllocation on the same words and split, and compare")
    p.add_argument("--baseline-iter", type=positive_int, default=50, help="its passes over the data (default 50)")
    p.add_argument("--out", default="runs/topics", help="run folder (default runs/topics)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def build(config: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, guide) from a run's config.json."""
    vocab, topics = config["vocab_size"], config["topics"]
    encoder = DocumentEncoder(vocab, topics, config["hidden"], config["dropout"])
    if config["model"] == "lda":
        return LDA(vocab, topics, config["max_length"], config["alpha"], config["eta"]), LDAGuide(encoder, vocab)
    return ProdLDA(vocab, topics, config["alpha"], config["dropout"]), ProdLDAGuide(encoder)


def objective(model_name: str):
    """LDA: the per-word topic is summed out by enumeration. ProdLDA: KL(q(z)‖p(z)) of two Gaussians in closed form."""
    return TraceEnum_ELBO(max_plate_nesting=LDA.max_plate_nesting) if model_name == "lda" else TraceMeanField_ELBO()


def check_options(args, corpus: text.Corpus) -> None:
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}")
    n = corpus.train.shape[0]
    if args.batch_size > n:
        raise UserError(f"--batch-size {args.batch_size} is larger than the {n} training documents: "
                        f"use --batch-size {n} or less")
    if n % args.batch_size == 1:
        raise UserError(f"--batch-size {args.batch_size} leaves a last batch of one document, which batch norm "
                        f"cannot normalize: use --batch-size {args.batch_size - 1} or {args.batch_size + 1}")
    if args.topics < 2:
        raise UserError("--topics must be at least 2: one topic is just the corpus' word frequencies")
    if args.topics > corpus.vocab_size:
        raise UserError(f"--topics {args.topics} is more than the {corpus.vocab_size} words of the vocabulary: "
                        "use fewer topics or a lower --min-df")


def run(args) -> None:
    device = resolve_device(args.device)
    corpus = text.load_corpus(args.corpus, min_df=args.min_df, max_df=args.max_df, max_features=args.max_features,
                              test_size=args.test_size, seed=args.seed, data_dir=args.data_dir)
    check_options(args, corpus)
    alpha = args.alpha if args.alpha is not None else (1.0 / args.topics if args.model == "lda" else 1.0)
    lr = args.lr if args.lr is not None else LEARNING_RATES[args.model]
    config = {"model": args.model, "corpus": args.corpus, "topics": args.topics, "alpha": alpha, "eta": args.eta,
              "hidden": args.hidden, "dropout": args.dropout, "vocab_size": corpus.vocab_size,
              "max_length": corpus.max_length, "min_df": args.min_df, "max_df": args.max_df,
              "max_features": args.max_features, "test_size": args.test_size, "seed": args.seed,
              "batch_size": args.batch_size, "lr": lr, "epochs": args.epochs}
    out = Path(args.out)
    created = not out.exists()
    pyro.set_rng_seed(args.seed)
    model, guide = build(config)
    fit(model, guide, corpus.train, test_data=corpus.test, objective=objective(args.model),
        evaluator=topic_metrics.evaluator, epochs=args.epochs, batch_size=args.batch_size, lr=lr, seed=args.seed,
        device=device, out=out, overwrite=args.overwrite, config=config, quiet=args.quiet)
    try:
        report = summarize(model, guide, corpus, config, args)
        write_outputs(out, report, guide, corpus, figures=not args.no_figures)
    except BaseException:
        if created:  # no half-written run is left behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(report["table"])


def summarize(model, guide, corpus: text.Corpus, config: dict, args) -> dict:
    """Top words, the three measures, and (with --baseline) sklearn's LDA measured the same way."""
    torch.manual_seed(config["seed"])
    weights = topic_metrics.topic_words(model, guide).cpu()
    ranked = topic_metrics.top_words(weights, corpus.vocab, topic_metrics.TOP_COHERENCE)
    _, per_topic = topic_metrics.npmi(ranked, corpus.train_texts)
    rows = {f"{config['model']} (pyro)": topic_metrics.measure(model, guide, corpus)}
    if args.baseline:
        from pyro_vae.topics_baseline import SklearnLDAGuide, fit_sklearn_lda

        # the same LDA priors as ours: --alpha for an lda run, else sklearn's default 1/T
        alpha = config["alpha"] if config["model"] == "lda" else 1.0 / config["topics"]
        lda = fit_sklearn_lda(corpus.train, config["topics"], alpha, config["eta"], args.baseline_iter, config["seed"])
        reference = LDA(corpus.vocab_size, config["topics"], corpus.max_length, alpha, config["eta"])
        rows["sklearn LDA"] = topic_metrics.measure(reference, SklearnLDAGuide(lda), corpus)
    topics = [{"topic": t + 1, "npmi": per_topic[t], "words": words,
               "weights": [float(weights[t, corpus.vocab.index(w)]) for w in words]} for t, words in enumerate(ranked)]
    return {"corpus": config["corpus"], "model": config["model"], "documents": {"train": corpus.train.shape[0],
            "test": corpus.test.shape[0]}, "vocab_size": corpus.vocab_size, "topics": topics, "measures": rows,
            "table": format_table(topics, rows)}


def format_table(topics: list[dict], rows: dict) -> str:
    lines = ["topic   NPMI  top words"]
    lines += [f"{t['topic']:5d} {t['npmi']:6.3f}  {' '.join(t['words'])}" for t in topics]
    lines += ["", f"{'':20s} {'NPMI train':>10s} {'NPMI held-out':>13s} {'diversity':>9s} {'perplexity held-out':>19s}"]
    lines += [f"{name:20s} {m['npmi_train']:10.3f} {m['npmi_test']:13.3f} {m['diversity']:9.3f} "
              f"{m['perplexity_test']:19.1f}" for name, m in rows.items()]
    return "\n".join(lines)


def write_outputs(out: Path, report: dict, guide, corpus: text.Corpus, figures: bool = True) -> None:
    write_text(out / "topics.txt", report["table"] + "\n")
    write_text(out / "topics.json", json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2) + "\n")
    if figures:
        plot_topic_words(report["topics"], out / "figures" / "topic_words.png")
        device = next(guide.parameters()).device
        plot_document_topics(guide.proportions(corpus.test[:20].to(device)).cpu(), out / "figures" / "document_topics.png")


def plot_topic_words(topics: list[dict], path: Path) -> Path:
    """One bar chart per topic: its top words and their weights p(word | topic)."""
    cols = min(5, len(topics))
    rows = -(-len(topics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.4 * rows), squeeze=False)
    for ax, topic in zip(axes.flat, topics):
        ax.barh(range(len(topic["words"]))[::-1], topic["weights"], color="tab:blue")
        ax.set_yticks(range(len(topic["words"]))[::-1], topic["words"], fontsize=7)
        ax.set_title(f"topic {topic['topic']}", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    for ax in axes.flat[len(topics):]:
        ax.axis("off")
    fig.suptitle("topic-word weights p(word | topic)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_document_topics(theta: torch.Tensor, path: Path) -> Path:
    """Heatmap of E_q[θ_d] for a few held-out documents: which topics each one is about."""
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * theta.shape[1] + 1.5), max(3, 0.25 * theta.shape[0] + 1)))
    image = ax.imshow(theta.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(theta.shape[1]), [str(t + 1) for t in range(theta.shape[1])], fontsize=7)
    ax.set_yticks(range(theta.shape[0]), [str(d + 1) for d in range(theta.shape[0])], fontsize=7)
    ax.set_xlabel("topic")
    ax.set_ylabel("held-out document")
    ax.set_title("topic proportions θ_d (posterior mean)")
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path)

