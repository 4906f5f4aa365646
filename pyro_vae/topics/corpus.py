"""Text corpora as bags of words: (D, V) word-count tensors, split into training and held-out documents.

``load_corpus(name)`` is the one entry point. Names: ``lee`` (offline default: gensim's Lee
background corpus, 300 news articles shipped in the gensim wheel), ``20news`` (scikit-learn's 20
Newsgroups, downloaded and cached on first use), or a path: a folder of ``.txt`` files (one
document each) or a text file with one document per line.

Documents are split first; sklearn's ``CountVectorizer`` (English stop words, words of two or more
letters, ``min_df``, ``max_df``, ``max_features``) then learns the vocabulary from the training
documents alone, so held-out documents are scored on words the model was trained on.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyro_vae.errors import UserError
from pyro_vae.topics.settings import TopicSettings

NAMES = ("lee", "20news")
OFFLINE_HINT = "use --corpus lee (300 news articles shipped with gensim, offline) or your own folder of .txt files"
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # words of two or more letters: no numbers, no underscores


@dataclass(frozen=True)
class Corpus:
    """Word counts of training and held-out documents over one vocabulary, and their word lists."""

    name: str
    train: torch.Tensor  # (D_train, V) float word counts
    test: torch.Tensor  # (D_test, V)
    vocab: list[str]
    train_texts: list[list[str]]  # each document's in-vocabulary words, in order (for coherence)
    test_texts: list[list[str]]

    @property
    def vocab_size(self) -> int:
        """V, the number of words in the vocabulary."""
        return len(self.vocab)

    @property
    def max_length(self) -> int:
        """Words in the longest document, training or held-out."""
        return int(max(self.train.sum(-1).max(), self.test.sum(-1).max()))


def load_corpus(name: str = TopicSettings.corpus, *, min_df: float = TopicSettings.min_df,
                max_df: float = TopicSettings.max_df, max_features: int | None = TopicSettings.max_features,
                test_size: float = TopicSettings.test_size, seed: int = TopicSettings.seed,
                data_dir: str | os.PathLike | None = None) -> Corpus:
    """Reads, splits and vectorizes a corpus. Raises :class:`UserError` with a one-line reason."""
    documents = read_documents(name, data_dir)
    if len(documents) < 2:
        raise UserError(f"corpus {name!r} has {len(documents)} document(s): it needs at least 2 "
                        "(some to train on, some held out)")
    if not 0 < test_size < 1:
        raise UserError(f"--test-size must be a fraction between 0 and 1, got {test_size}")
    order = np.random.default_rng(seed).permutation(len(documents))
    num_test = min(max(1, round(test_size * len(documents))), len(documents) - 1)
    train_docs = [documents[i] for i in order[num_test:]]
    test_docs = [documents[i] for i in order[:num_test]]
    return vectorize(Path(name).name if name not in NAMES else name, train_docs, test_docs,
                     min_df=min_df, max_df=max_df, max_features=max_features)


def vectorize(name: str, train_docs: list[str], test_docs: list[str], *,
              min_df: float = TopicSettings.min_df, max_df: float = TopicSettings.max_df,
              max_features: int | None = TopicSettings.max_features) -> Corpus:
    """Bags of words of the training and held-out documents over the training documents' vocabulary.

    Documents left without a single vocabulary word carry no evidence about topics and are dropped.
    """
    min_df, max_df = _df(min_df, "min-df"), _df(max_df, "max-df")
    vectorizer = _vectorizer(min_df=min_df, max_df=max_df, max_features=max_features)
    try:
        train = vectorizer.fit_transform(train_docs)
    except ValueError as error:  # "empty vocabulary", "After pruning, no terms remain", "max_df ... < min_df"
        raise UserError(f"corpus {name!r} has no vocabulary after vectorizing ({str(error).split(';')[0].rstrip('.')}): "
                        "give documents with more text, a lower --min-df or a higher --max-df") from None
    test = vectorizer.transform(test_docs)
    vocab = vectorizer.get_feature_names_out().tolist()
    keep_train, keep_test = np.flatnonzero(train.sum(1).A1), np.flatnonzero(test.sum(1).A1)
    if len(keep_test) == 0:
        raise UserError(f"corpus {name!r}: none of the held-out documents contains a vocabulary word; "
                        "use a larger corpus, a lower --min-df or a higher --max-df")
    words = set(vocab)
    analyze = vectorizer.build_analyzer()
    texts = lambda docs, keep: [[w for w in analyze(docs[i]) if w in words] for i in keep]  # noqa: E731
    as_tensor = lambda m, keep: torch.as_tensor(m[keep].toarray(), dtype=torch.float32)  # noqa: E731
    return Corpus(name, as_tensor(train, keep_train), as_tensor(test, keep_test), vocab,
                  texts(train_docs, keep_train), texts(test_docs, keep_test))


def counts(documents: list[str], vocab: list[str]) -> torch.Tensor:
    """(D, V) word counts of new documents over a trained run's vocabulary; other words are ignored."""
    if isinstance(documents, str) or not all(isinstance(d, str) for d in documents):
        raise UserError("give the documents as a list of strings, one string per document")
    return torch.as_tensor(_vectorizer(vocabulary=vocab).transform(documents).toarray(), dtype=torch.float32)


def _vectorizer(**options):
    """sklearn's CountVectorizer as every corpus here uses it: English stop words, words of 2+ letters."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words="english", token_pattern=TOKEN_PATTERN, **options)


def read_documents(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The raw texts of a corpus by name or path."""
    if name == "lee":
        from gensim.test.utils import datapath

        return _lines(Path(datapath("lee_background.cor")))
    if name == "20news":
        return _twenty_newsgroups(data_dir)
    path = Path(name)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise UserError(f"corpus folder {name!r} holds no .txt files: put one document per .txt file there")
        return [_read(f) for f in files]
    if path.is_file():
        return _lines(path)
    raise UserError(f"unknown corpus {name!r}: choose {' or '.join(NAMES)}, or give a folder of .txt files "
                    "or a text file with one document per line")


def _twenty_newsgroups(data_dir) -> list[str]:
    from sklearn.datasets import fetch_20newsgroups

    try:
        with warnings.catch_warnings():  # sklearn warns before each retry; our one line says it all
            warnings.filterwarnings("ignore", "Retry downloading")
            bunch = fetch_20newsgroups(data_home=data_dir, subset="all", remove=("headers", "footers", "quotes"))
    except OSError as error:  # URLError, timeouts, DNS failures: offline
        raise UserError(f"could not download 20news ({type(error).__name__}): {OFFLINE_HINT}") from None
    return list(bunch.data)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise UserError(f"cannot read {str(path)!r}: {error.strerror}") from None


def _lines(path: Path) -> list[str]:
    return [line for line in _read(path).splitlines() if line.strip()]


def _df(value: float, flag: str) -> float | int:
    """sklearn reads an int as a number of documents and a float as a fraction of them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"--{flag} must be a number of documents (e.g. 2) or a fraction (e.g. 0.5), got {value!r}")
    if isinstance(value, int) and value < 1 or isinstance(value, float) and not 0 < value <= 1:
        raise UserError(f"--{flag} {value}: give a whole number of documents (>= 1) or a fraction in (0, 1]")
    return value
