"""The lecture's topic model on real news, with the VAE's trainer: encoder/decoder carry over to documents.

    python examples/topic_model.py [--model lda|prodlda] [--topics 10] [--epochs 100] [--out FOLDER]

A corpus is bags of words; topic t is a distribution φ_t over words; document d a distribution θ_d over
topics. ProdLDA is a VAE whose code z_d gives θ_d = softmax(z_d); LDA sums each word's topic out.
Both are fitted by the same ``fit`` as the VAE and compared with scikit-learn's LDA on the same words.
The command line does the same and also writes a run folder: ``pyro-vae topics --baseline``.
"""

import argparse
import json
from pathlib import Path

import pyro

from pyro_vae.models.topics import LDA
from pyro_vae.topics import metrics
from pyro_vae.topics.corpus import load_corpus
from pyro_vae.topics.baseline import SklearnLDAGuide, fit_sklearn_lda
from pyro_vae.topics.fitting import build, objective
from pyro_vae.train import fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", choices=["lda", "prodlda"], default="prodlda")
parser.add_argument("--topics", type=int, default=10)
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--out", type=Path, default=Path("runs/examples/topic_model"),
                    help="folder for topics.json (default runs/examples/topic_model)")
args = parser.parse_args()

corpus = load_corpus("lee")  # 300 news articles shipped with gensim: 240 to train on, 60 held out
print(f"{corpus.train.shape[0]} training and {corpus.test.shape[0]} held-out documents, {corpus.vocab_size} words")

alpha, eta = (1.0 / args.topics if args.model == "lda" else 1.0), 0.1
pyro.set_rng_seed(0)
model, guide = build({"model": args.model, "vocab_size": corpus.vocab_size, "topics": args.topics, "alpha": alpha,
                      "eta": eta, "hidden": 100, "dropout": 0.2, "max_length": corpus.max_length})
fit(model, guide, corpus.train, test_data=corpus.test, objective=objective(args.model),
    evaluator=metrics.evaluator, epochs=args.epochs, batch_size=64, lr=0.05 if args.model == "lda" else 0.01,
    device="cpu", quiet=True)

topics = metrics.top_words(metrics.topic_words(model, guide), corpus.vocab)
for t, words in enumerate(topics, 1):
    print(f"topic {t:2d}: {' '.join(words)}")

# the reference a user would otherwise pick, fitted on the same words and split, measured the same way
sklearn_lda = fit_sklearn_lda(corpus.train, args.topics, alpha=1.0 / args.topics, eta=eta)
reference = LDA(corpus.vocab_size, args.topics, corpus.max_length, 1.0 / args.topics, eta)
rows = {f"{args.model} (pyro)": metrics.measure(model, guide, corpus),
        "sklearn LDA": metrics.measure(reference, SklearnLDAGuide(sklearn_lda), corpus)}
print(f"\n{'':16s} {'NPMI train':>10s} {'NPMI held-out':>13s} {'diversity':>9s} {'perplexity':>10s}")
for name, m in rows.items():
    print(f"{name:16s} {m['npmi_train']:10.3f} {m['npmi_test']:13.3f} {m['diversity']:9.3f} "
          f"{m['perplexity_test']:10.1f}")

args.out.mkdir(parents=True, exist_ok=True)
(args.out / "topics.json").write_text(json.dumps({"topics": [list(words) for words in topics], "measures": rows},
                                                 indent=1, default=float) + "\n")
print(f"\ntopics and measures written to {args.out / 'topics.json'}")
