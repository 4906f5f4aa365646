"""Exam analysis by item response theory, fitted by SVI like the VAE.

    exams.py      answer matrices with a mask (``load``: lsat, a CSV, py-irt JSON lines; ``synthetic``)
    settings.py   the settings as a dataclass: flags, checks, help, config.json, each declared once (no torch)
    fitting.py    config → (model, guide), ``train`` (SVI with ``pyro_vae.fit``)
    reference.py  the exact marginal likelihood and MML fits by quadrature (numpy/scipy only)
    report.py     the item table, abilities, the run folder's irt.json and abilities.csv
    figures.py    item characteristic curves (a matplotlib Figure)
    run.py        ``IRTRun``: a reopened IRT run that scores new students without refitting the items

The model and guides themselves are ``pyro_vae.models.irt`` and ``pyro_vae.guides.irt``.
"""

from pyro_vae import lazy_submodules

__getattr__ = lazy_submodules(__name__, ("exams", "settings", "fitting", "reference", "report", "figures", "run"))
