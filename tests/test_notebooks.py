"""The teaching notebooks (notebooks/*.ipynb) run top to bottom, and are committed without outputs.

Each notebook is executed by nbclient in a fresh kernel of this interpreter (a kernelspec written to a
temporary folder, so the kernel is the venv's python whatever Jupyter finds elsewhere), with
``PYRO_VAE_NOTEBOOK_FAST=1``: the notebooks then train fewer epochs, through the same code a teacher runs.
Every translated edition (notebooks/LANG/) runs too, as the English one does. These are the suite's
longest tests: ``make test`` spreads them over its pytest-xdist workers (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EDITIONS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[a-z][a-z]/[0-9][0-9]_*.ipynb"))


def _name(path: Path) -> str:
    return path.stem if path.parent.name == "notebooks" else f"{path.parent.name}/{path.stem}"


TIMEOUT_PER_CELL = 300   # seconds: one cell (a training run) on a busy 2-core machine
TIMEOUT_PER_NOTEBOOK = 180  # seconds for a whole notebook, in fast mode
KERNEL = "pyro-vae-notebook-test"


def test_the_series_is_there():
    """Numbered from 00 (the VAE from scratch) without gaps."""
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS + EDITIONS, ids=_name)
def test_committed_without_outputs(path):
    """Outputs stay out of git, so a notebook's diff shows only what a person changed."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"{path.name}: clear the outputs before committing (Kernel → Restart & Clear Outputs)"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec that starts ipykernel with this very interpreter (the venv's python)."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pyro-vae (tests)", "language": "python"}))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS + EDITIONS, ids=_name)
def test_notebook_runs(path, kernel_dir, monkeypatch, tmp_path):
    import nbclient  # the dev extra installs them: a missing one is a failure, not a skip
    import nbformat
    from traitlets.config import Config

    monkeypatch.setenv("JUPYTER_PATH", f"{kernel_dir}{os.pathsep}{os.environ.get('JUPYTER_PATH', '')}")
    monkeypatch.setenv("PYRO_VAE_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.chdir(tmp_path)  # anything a notebook writes with a relative path lands here
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    # Unix sockets in tmp_path rather than TCP ports: kernels that two xdist workers start at the same moment
    # could be handed the same free port
    transport = Config({"KernelManager": {"transport": "ipc" if os.name == "posix" else "tcp"}})
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_PER_CELL, kernel_name=KERNEL, config=transport,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    figures = sum("image/png" in output.get("data", {}) for cell in notebook.cells
                  for output in cell.get("outputs", []))
    assert figures >= 1, f"{path.name} shows no figure inline"
    assert seconds < TIMEOUT_PER_NOTEBOOK, f"{path.name} took {seconds:.0f}s in fast mode"
