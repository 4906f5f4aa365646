"""On a CUDA GPU: a VAE epoch keeps every parameter and every per-step tensor on the GPU, its steps read
nothing back to the host, and a run resumed on the GPU ends where an uninterrupted one does.

Skipped without CUDA; ``benchmarks/gpu_check.sh`` runs it on a GPU machine (about 30 s there).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import pyro

from pyro_vae import callbacks, cli, runs
from pyro_vae import checkpoint as ckpt
from pyro_vae.train import Trainer, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TRAIN = ["train", "--dataset", "digits", "--hidden", "32", "--seed", "3", "--device", "cuda", "--quiet",
         "--no-figures"]


class Devices(callbacks.Callback):
    """Records the device of every parameter and of the epoch's loss buffer, after every step (no sync)."""

    def __init__(self):
        self.seen: set[str] = set()

    def on_step_end(self, trainer) -> None:
        self.seen |= {str(p.device) for p in trainer.params} | {str(trainer.current.losses.device)}


def test_a_vae_epoch_on_the_gpu_keeps_parameters_and_metrics_there(digits):
    model, guide = runs.build({"model": "vae", "shape": list(digits.shape), "hidden": [32], "latent_dim": 2})
    devices = Devices()
    history = fit(model, guide, digits.train, test_data=digits.test, epochs=1, batch_size=128, device="cuda",
                  callbacks=[devices], quiet=True)
    assert devices.seen == {"cuda:0"}
    assert {p.device.type for p in [*model.parameters(), *guide.parameters()]} == {"cuda"}
    assert all(v.device.type == "cuda" for v in pyro.get_param_store().values())
    metrics = history[-1]
    for key in ("train_loss", "train_elbo", "test_elbo", "test_reconstruction", "test_kl"):
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key  # read back once an epoch


def test_a_training_step_does_not_synchronize_with_the_host(digits, monkeypatch):
    """Every step after the first (which runs Pyro's validation) under ``set_sync_debug_mode("error")``:
    a ``.item()``, a ``float(t)``, a blocking copy to or from the GPU inside a step raises."""
    step = Trainer._step
    checked = []

    def strict_step(self, i, *args):
        if self.step == 0:
            return step(self, i, *args)
        torch.cuda.set_sync_debug_mode("error")
        try:
            return step(self, i, *args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
            checked.append(i)

    monkeypatch.setattr(Trainer, "_step", strict_step)
    model, guide = runs.build({"model": "vae", "shape": list(digits.shape), "hidden": [32], "latent_dim": 2})
    fit(model, guide, digits.train, epochs=2, batch_size=128, device="cuda", evaluator=None, quiet=True)
    assert len(checked) == 2 * math.ceil(digits.train.shape[0] / 128) - 1


def _checkpoint(run: Path) -> tuple[dict, list[dict]]:
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return ckpt.load(run / "checkpoint.pt"), [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]


def test_a_run_resumed_on_the_gpu_ends_where_an_uninterrupted_one_does(tmp_path, capsys):
    assert cli.main([*TRAIN, "--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    assert cli.main([*TRAIN, "--epochs", "1", "--out", str(tmp_path / "split")]) == 0
    assert cli.main([*TRAIN, "--epochs", "2", "--resume", "--out", str(tmp_path / "split")]) == 0
    (whole, whole_metrics), (split, split_metrics) = _checkpoint(tmp_path / "whole"), _checkpoint(tmp_path / "split")
    assert (split["epoch"], split["step"]) == (whole["epoch"], whole["step"])
    assert "cuda" in split["rng"][0]  # the GPU's random state is part of the checkpoint
    # a GPU kernel may sum in another order from one run to the next (atomics): 1e-4, not tests/test_resume.py's 1e-6
    for part in ("model", "guide"):
        for name, value in whole[part].items():
            torch.testing.assert_close(split[part][name], value, rtol=1e-4, atol=1e-5, msg=f"{part}.{name}")
    assert len(split_metrics) == len(whole_metrics) == 2
    for a, b in zip(split_metrics, whole_metrics):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    reopened = runs.load(tmp_path / "split")  # on the CPU
    assert {p.device.type for p in reopened.model.parameters()} == {"cpu"}
