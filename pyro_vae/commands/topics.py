"""pyro-vae topics: fit a topic model (LDA or ProdLDA) to a corpus by SVI, with the same trainer as the VAE.

Writes into the run folder: config.json, metrics.jsonl, checkpoint.pt (as ``train`` does), vocab.txt (the
vocabulary, for scoring new documents), topics.txt (the printed table), topics.json (top words, measures,
baseline) and figures/topic_words.png, figures/document_topics.png. The library side is ``pyro_vae.topics``.
"""

from __future__ import annotations

import argparse

from pyro_vae.commands.options import add_device, add_resume, positive_float, positive_int
from pyro_vae.topics.defaults import DEFAULTS, LEARNING_RATES, MODELS

# on --resume these come from the run's config.json; the others may change (e.g. --epochs to train longer)
RESUMABLE = ("epochs", "lr")


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
    """Adds ``topics`` to the subparsers."""
    d = DEFAULTS
    p = sub.add_parser("topics", help="fit a topic model (LDA or ProdLDA) to a corpus",
                       description="Topics as Pyro programs. LDA: φ_t ~ Dir(η), θ_d ~ Dir(α), per word topic ~ "
                                   "Cat(θ_d), word ~ Cat(φ_topic), the topic summed out by enumeration. ProdLDA: "
                                   "θ_d = softmax(z_d), z_d ~ Laplace approximation of Dir(α), words ~ "
                                   "Cat(softmax(β θ_d)). Both with an amortized encoder of the bag of words.")
    p.add_argument("--corpus", help="lee (offline default: 300 news articles shipped with gensim), 20news "
                                    "(downloaded), a folder of .txt files, or a text file with one document per line "
                                    f"(default {d['corpus']})")
    p.add_argument("--data-dir", help="where 20news is cached (default: scikit-learn's data home, ~/scikit_learn_data "
                                      "or $SCIKIT_LEARN_DATA)")
    p.add_argument("--model", choices=MODELS, help=f"(default {d['model']})")
    p.add_argument("--topics", type=positive_int, help=f"number of topics T (default {d['topics']})")
    p.add_argument("--alpha", type=positive_float,
                   help="Dirichlet(α) prior of each document's topic mix θ_d (default 1/T for lda, 1 for prodlda)")
    p.add_argument("--eta", type=positive_float,
                   help=f"Dirichlet(η) prior of each topic's words φ_t, LDA only (default {d['eta']})")
    p.add_argument("--hidden", type=positive_int, help=f"encoder hidden width (default {d['hidden']})")
    p.add_argument("--dropout", type=float, help=f"encoder (and ProdLDA decoder) dropout (default {d['dropout']})")
    p.add_argument("--min-df", type=count_or_fraction,
                   help=f"drop words in fewer documents than this (a count, or a fraction like 0.01; "
                        f"default {d['min_df']})")
    p.add_argument("--max-df", type=count_or_fraction,
                   help=f"drop words in more documents than this (a fraction, or a count; default {d['max_df']})")
    p.add_argument("--max-features", type=positive_int,
                   help=f"keep the most frequent N words (default {d['max_features']})")
    p.add_argument("--test-size", type=float, help=f"fraction of documents held out (default {d['test_size']})")
    p.add_argument("--epochs", type=positive_int,
                   help=f"passes over the training documents (default {d['epochs']})")
    p.add_argument("--batch-size", type=positive_int, help=f"documents per SVI step (default {d['batch_size']})")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate (default "
                   + ", ".join(f"{rate} for {model}" for model, rate in LEARNING_RATES.items()) + ")")
    p.add_argument("--seed", type=int, help=f"random seed (default {d['seed']})")
    add_device(p)
    p.add_argument("--baseline", action="store_true",
                   help="also fit scikit-learn's LatentDirichletAllocation on the same words and split, and compare")
    p.add_argument("--baseline-iter", type=positive_int, default=d["baseline_iter"],
                   help=f"its passes over the data (default {d['baseline_iter']})")
    p.add_argument("--out", default="runs/topics", help="run folder (default runs/topics)")
    add_resume(p)
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(run=run)


def run(args) -> None:
    """Fits (or resumes) a topic run and prints its topic table."""
    from pyro_vae import runs
    from pyro_vae.topics import fitting
    from pyro_vae.train import resolve_device

    given = {key: getattr(args, key) for key in (*DEFAULTS, "alpha", "lr", "data_dir") if key != "baseline_iter"}
    summary = fitting.fit_run(runs.command_settings(DEFAULTS, given, args.out, args.resume, RESUMABLE), args.out,
                              resume=args.resume, overwrite=args.overwrite, device=resolve_device(args.device),
                              quiet=args.quiet, baseline_iter=args.baseline_iter if args.baseline else None,
                              figures=not args.no_figures)
    print(summary["table"])
