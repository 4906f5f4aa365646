"""pyro-vae: PCA → autoencoder → variational autoencoder, written as Pyro programs.

The public API (each name is imported on first use, so ``import pyro_vae`` stays light)::

    pyro_vae.load(path)                    reopen any run folder: model, guide, config, metrics, and
                                           encode/decode/generate/reconstruct, score(...) or topics()
    pyro_vae.load_data(name)               train/test tensors in [0, 1] with labels and image shape
    pyro_vae.fit(model, guide, data, ...)  SVI for any Pyro model/guide pair (any idiom), with run folders,
                                           exact resume, callbacks and torchrun
    pyro_vae.TrainingSettings,             the settings dataclasses: every default, defined once
    VAESettings, ObjectiveSettings
    pyro_vae.Callback                      a hook into the training loop (per step, report, epoch)
    pyro_vae.elbo_parts, log_likelihood,   measures from Pyro traces
    encode, reconstruct
    pyro_vae.build(config)                 (model, guide) from a config dict
    pyro_vae.data, evaluate, plots, runs, topics, irt, models, guides   the modules
    pyro_vae.UserError                     every bad-input error; its message is one line
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from pyro_vae.errors import UserError

__version__ = "0.1.0"

# public name → (module, attribute or None for the module itself)
_LAZY = {
    "load": ("pyro_vae.runs", "load"), "build": ("pyro_vae.runs", "build"), "Run": ("pyro_vae.runs", "Run"),
    "register": ("pyro_vae.runs", "register"), "fit": ("pyro_vae.train", "fit"),
    "TrainingSettings": ("pyro_vae.settings", "TrainingSettings"), "VAESettings": ("pyro_vae.settings", "VAESettings"),
    "ObjectiveSettings": ("pyro_vae.settings", "ObjectiveSettings"), "Callback": ("pyro_vae.callbacks", "Callback"),
    "load_data": ("pyro_vae.data", "load"), "Dataset": ("pyro_vae.data", "Dataset"),
    "elbo_parts": ("pyro_vae.evaluate", "elbo_parts"), "log_likelihood": ("pyro_vae.evaluate", "log_likelihood"),
    "encode": ("pyro_vae.evaluate", "encode"), "reconstruct": ("pyro_vae.evaluate", "reconstruct"),
    **{name: (f"pyro_vae.{name}", None) for name in ("data", "evaluate", "plots", "runs", "topics", "irt", "models",
                                                     "guides", "objectives", "settings", "callbacks")},
}
__all__ = ["UserError", "__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from pyro_vae import callbacks, data, evaluate, guides, irt, models, objectives, plots, runs, settings, topics  # noqa: F401
    from pyro_vae.callbacks import Callback  # noqa: F401
    from pyro_vae.data import Dataset  # noqa: F401
    from pyro_vae.data import load as load_data  # noqa: F401
    from pyro_vae.evaluate import elbo_parts, encode, log_likelihood, reconstruct  # noqa: F401
    from pyro_vae.runs import Run, build, load, register  # noqa: F401
    from pyro_vae.settings import ObjectiveSettings, TrainingSettings, VAESettings  # noqa: F401
    from pyro_vae.train import fit  # noqa: F401


def __getattr__(name: str):
    """Imports a public name on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'pyro_vae' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def lazy_submodules(package: str, names: tuple[str, ...]) -> Callable[[str], ModuleType]:
    """A module ``__getattr__`` for ``package`` that imports its submodule ``names`` on first use (PEP 562)."""

    def __getattr__(name: str) -> ModuleType:
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
