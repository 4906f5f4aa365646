"""The public API: light to import, every name documented and typed, and docs/api.md generated from it."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pyro_vae

ROOT = Path(__file__).resolve().parents[1]


def make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_callables():
    """(qualified name, function) of every public function and method in the reference's modules."""
    api = make_api()
    for module_name in api.MODULES:
        for name, obj in api._members(importlib.import_module(module_name)):
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for member, value in api._class_members(obj):
                    yield f"{module_name}.{name}.{member}", value


def test_api_reference_is_current():
    assert (ROOT / "docs" / "api.md").read_text() == make_api().render(), \
        "docs/api.md is stale: run .venv/bin/python docs/make_api.py"


def test_import_pyro_vae_is_light_and_names_load_on_first_use():
    code = "import sys, pyro_vae\nprint('torch' in sys.modules, pyro_vae.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", pyro_vae.__version__], done.stderr
    from pyro_vae import data, evaluate, runs, train

    assert pyro_vae.load is runs.load and pyro_vae.fit is train.fit and pyro_vae.load_data is data.load
    assert pyro_vae.elbo_parts is evaluate.elbo_parts and pyro_vae.plots.__name__ == "pyro_vae.plots"
    assert set(pyro_vae.__all__) <= set(dir(pyro_vae))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pyro_vae.nope


@pytest.mark.parametrize("name, obj", list(public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_name_has_a_docstring_and_type_hints(name, obj):
    assert inspect.getdoc(obj), f"{name} has no docstring"
    if not inspect.isfunction(obj) or name.startswith("pyro_vae.train."):  # train.py: issue 14's file
        return
    sig = inspect.signature(obj)
    untyped = [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.annotation is p.empty]
    assert not untyped, f"{name}: parameters without a type hint: {untyped}"
    assert obj.__name__ == "__init__" or sig.return_annotation is not sig.empty, f"{name}: no return type"


def test_the_package_ships_py_typed():
    assert (ROOT / "pyro_vae" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in config["package-data"]["pyro_vae"]
    assert {"pyro_vae.topics", "pyro_vae.irt"} <= set(config["packages"])


def test_companion_modules_load_on_first_use():
    code = ("import sys, pyro_vae.topics, pyro_vae.irt\nlight = 'torch' not in sys.modules\n"
            "print(light, pyro_vae.topics.metrics.TOP_COHERENCE, pyro_vae.irt.reference.NUM_NODES)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "10", "121"], done.stderr
    with pytest.raises(AttributeError, match="has no attribute 'corpus'"):
        pyro_vae.irt.corpus
