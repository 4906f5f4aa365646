"""Topic models as Pyro programs: corpora, the LDA/ProdLDA builders and fitting, measures, the sklearn reference.

    corpus.py     text → bags of words (``load_corpus``, ``counts`` for new documents)
    settings.py   the settings as a dataclass: flags, checks, help, config.json, each declared once (no torch)
    fitting.py    config → (model, guide), the objective, ``train`` (SVI with ``pyro_vae.fit``)
    metrics.py    NPMI coherence, diversity, held-out perplexity
    baseline.py   scikit-learn's LatentDirichletAllocation as a Pyro guide, measured the same way
    report.py     the topic table and the run folder's topics.json, topics.txt, figures
    figures.py    topic-word bars and document-topic heatmaps (matplotlib Figures)
    run.py        ``TopicRun``: a reopened topic run that scores new documents

The models and guides themselves are ``pyro_vae.models.topics`` and ``pyro_vae.guides.topics``.
"""

from pyro_vae import lazy_submodules

__getattr__ = lazy_submodules(__name__, ("corpus", "settings", "fitting", "metrics", "baseline", "report", "figures", "run"))
