"""Your own Pyro program from a file: ``pyro-vae train --program FILE.py:NAME``.

``NAME`` in ``FILE.py`` may be any of

- a ``(model, guide)`` pair: functions, ``nn.Module`` s, ``PyroModule`` s, an autoguide;
- an object with ``.model`` and ``.guide`` (Pyro's VAE example: an ``nn.Module`` whose methods call
  ``pyro.module``);
- a function or class that returns one of these; if it takes an argument, it is given the training
  data set (a ``pyro_vae.data.Dataset``: ``.train``, ``.test``, ``.shape``, ``.dim``, ``.name``).

The model and guide are then called as ``model(x)`` and ``guide(x)`` with a minibatch of rows (with
``--index``: ``model(x, index)``, each row's position in the training set, for local parameters in
``pyro.plate("data", N, subsample=index)``).

A file may also define ``callbacks()``, returning ``pyro_vae.callbacks.Callback`` s that the command
line adds to the run (e.g. ``[EveryStep(clip_params)]``, as Pyro's sparse_gamma_def clamps its
parameters after every step).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pyro_vae.errors import UserError

if TYPE_CHECKING:
    from pyro_vae.data import Dataset


def resolve(spec: str) -> tuple[Path, str]:
    """``"FILE.py:NAME"`` → (absolute path, NAME), with one-line errors for a bad spec or a missing file."""
    path, colon, name = str(spec).rpartition(":")
    if not colon or not path or not name.isidentifier():
        raise UserError(f"--program takes FILE.py:NAME (e.g. my_vae.py:build), got {spec!r}")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise UserError(f"--program: there is no file {path!r}")
    return file, name


def load(spec: str, dataset: Dataset | None = None) -> tuple[Callable, Callable]:
    """The (model, guide) pair that ``FILE.py:NAME`` names (see the module docstring)."""
    file, name = resolve(spec)
    module = _module(file)
    if not hasattr(module, name):
        found = ", ".join(n for n, v in vars(module).items()
                          if not n.startswith("_") and not isinstance(v, types.ModuleType)) or "nothing"
        raise UserError(f"--program: {file.name} has no {name!r}; it defines: {found}")
    return _pair(getattr(module, name), name, dataset, file.name)


def callbacks(spec: str) -> list:
    """The callbacks that ``FILE.py`` asks for with a function ``callbacks()`` (none if it has none), from the
    run of the file that :func:`load` made last (so they see the same module-level objects as the programs)."""
    file, _ = resolve(spec)
    made = getattr(_LOADED.get(file) or _module(file), "callbacks", None)
    if made is None:
        return []
    try:
        return list(made())
    except Exception as error:
        raise UserError(f"--program: {file.name}:callbacks() failed: {type(error).__name__}: {error}") from None


_LOADED: dict[Path, types.ModuleType] = {}  # each file's latest run, for callbacks()


def _module(file: Path) -> types.ModuleType:
    """``FILE.py`` run afresh as a module (its folder importable, as ``python FILE.py`` makes it)."""
    module_name = f"pyro_vae_program_{file.stem}"
    importer = importlib.util.spec_from_file_location(module_name, file)
    if importer is None or importer.loader is None:
        raise UserError(f"--program: {str(file)!r} is not a Python file")
    module = importlib.util.module_from_spec(importer)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    if str(file.parent) not in sys.path:  # its helper modules import as they would under `python FILE.py`
        sys.path.insert(0, str(file.parent))
    try:
        importer.loader.exec_module(module)
    except Exception as error:
        raise UserError(f"--program: running {file.name} failed: {type(error).__name__}: {error}") from None
    _LOADED[file] = module
    return module


def _pair(obj, name: str, dataset, file: str, called: bool = False) -> tuple[Callable, Callable]:
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(callable(p) for p in obj):
        return obj[0], obj[1]
    if not isinstance(obj, type) and callable(getattr(obj, "model", None)) and callable(getattr(obj, "guide", None)):
        return obj.model, obj.guide
    if callable(obj) and not called:
        try:
            takes_data = any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                             for p in inspect.signature(obj).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature
            takes_data = False
        try:
            made = obj(dataset) if takes_data else obj()
        except Exception as error:
            raise UserError(f"--program: {file}:{name}(...) failed: {type(error).__name__}: {error}") from None
        return _pair(made, name, dataset, file, called=True)
    raise UserError(f"--program {file}:{name} must be a (model, guide) pair, an object with .model and .guide, or a "
                    f"function returning one; {'it returned' if called else 'it is'} an object of type {type(obj).__name__}")
