"""pyro-vae topics: fit a topic model (LDA or ProdLDA) to a corpus by SVI, with the same trainer as the VAE.

Writes into the run folder: config.json, metrics.jsonl, checkpoint.pt (as ``train`` does), vocab.txt (the
vocabulary, for scoring new documents), topics.txt (the printed table), topics.json (top words, measures,
baseline) and figures/topic_words.png, figures/document_topics.png. The library side is ``pyro_vae.topics``;
the flags are the fields of ``pyro_vae.topics.settings.TopicSettings``.
"""

from __future__ import annotations

from pyro_vae import settings
from pyro_vae.commands.options import add_run_folder, add_settings, saved_config
from pyro_vae.topics.settings import BASELINE_ITER, TopicSettings


def add_parser(sub) -> None:
    """Adds ``topics`` to the subparsers."""
    p = sub.add_parser("topics", help="fit a topic model (LDA or ProdLDA) to a corpus",
                       description="Topics as Pyro programs. LDA: φ_t ~ Dir(η), θ_d ~ Dir(α), per word topic ~ "
                                   "Cat(θ_d), word ~ Cat(φ_topic), the topic summed out by enumeration. ProdLDA: "
                                   "θ_d = softmax(z_d), z_d ~ Laplace approximation of Dir(α), words ~ "
                                   "Cat(softmax(β θ_d)). Both with an amortized encoder of the bag of words.")
    add_settings(p, TopicSettings, "the topic model, its corpus and training")
    baseline = p.add_argument_group("the reference")
    baseline.add_argument("--baseline", action="store_true",
                          help="also fit scikit-learn's LatentDirichletAllocation on the same words and split, "
                               "and compare")
    baseline.add_argument("--baseline-iter", type=settings.argument_type("int", "positive"), default=BASELINE_ITER,
                          help=f"its passes over the data (default: {BASELINE_ITER})")
    add_run_folder(p, "runs/topics", figures="skip the figures")
    p.set_defaults(run=run)


def run(args) -> None:
    """Fits (or resumes) a topic run and prints its topic table."""
    from pyro_vae.topics import fitting
    from pyro_vae.train import resolve_device

    topic_settings = TopicSettings.resolve(vars(args), saved_config(args), fixed=True)
    summary = fitting.fit_run(topic_settings, args.out, resume=args.resume, overwrite=args.overwrite,
                              device=resolve_device(args.device), quiet=args.quiet,
                              baseline_iter=args.baseline_iter if args.baseline else None,
                              figures=not args.no_figures)
    print(summary["table"])
