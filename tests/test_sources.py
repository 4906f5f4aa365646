"""Data sources for fit (issue 22): uint8 bytes, arrays read from their file, torch Datasets and DataLoaders.

Each must give the trajectory the in-memory float tensors give (same batches, same rows, same draws),
resume exactly, and keep memory bounded where it promises to.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import pyro

from pyro_vae import builders, cli, fit, runs
from pyro_vae import data as datasets
from pyro_vae.callbacks import Callback, EarlyStopping
from pyro_vae.errors import UserError
from pyro_vae.sources import FileRows, Streamed, Tensors, make

SHAPE = {"shape": [1, 4, 4], "latent_dim": 2, "hidden": [8]}


@pytest.fixture(autouse=True)
def _fresh_store():
    pyro.clear_param_store()
    yield


def images(n=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4)).astype(np.uint8)


def trained_weights(data, **options):
    torch.manual_seed(0)
    model, guide = builders.build_vae(SHAPE)
    fit(model, guide, data, epochs=2, batch_size=16, device="cpu", quiet=True, evaluator=None, **options)
    return torch.cat([p.detach().reshape(-1) for m in (model, guide) for p in m.parameters()])


class Images(torch.utils.data.Dataset):
    def __init__(self, array):
        self.array = array

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        return torch.from_numpy(self.array[i].reshape(-1))


def test_every_source_gives_the_in_memory_trajectory(tmp_path):
    x = images()
    np.save(tmp_path / "x.npy", x)
    floats = torch.from_numpy(x.reshape(48, -1)).float() / 255
    reference = trained_weights(floats)
    sources = {"uint8 tensor (kept as bytes)": torch.from_numpy(x.reshape(48, -1)),
               "rows read from the file": FileRows.open(tmp_path / "x.npy"),
               "np.memmap": np.load(tmp_path / "x.npy", mmap_mode="r"),
               "torch Dataset": Images(x),
               "DataLoader": torch.utils.data.DataLoader(Images(x), batch_size=16, shuffle=True)}
    for name, data in sources.items():
        assert torch.equal(trained_weights(data), reference), name


def test_uint8_stays_bytes_on_the_device():
    source = make(torch.zeros(10, 6, dtype=torch.uint8), torch.device("cpu"))
    assert isinstance(source, Tensors) and source.tensors[0].dtype == torch.uint8
    (rows,) = next(source.batches([torch.arange(3)]))
    assert rows.dtype == torch.float32


def test_streamed_batches_come_in_order_with_the_next_one_read_ahead(tmp_path):
    x = images(100)
    np.save(tmp_path / "x.npy", x)
    source = make(FileRows.open(tmp_path / "x.npy"), torch.device("cpu"))
    assert isinstance(source, Streamed)
    index = [torch.tensor([5, 1, 99]), torch.tensor([0]), torch.arange(10, 20)]
    for idx, (rows,) in zip(index, source.batches(index)):
        assert torch.equal(rows, torch.from_numpy(x.reshape(100, -1)[idx.numpy()]).float() / 255)


def test_streamed_run_resumes_exactly(tmp_path):
    np.save(tmp_path / "x.npy", images())
    common = dict(batch_size=16, device="cpu", quiet=True, evaluator=None, config={"model": None},
                  checkpoint_every="2steps")

    def run(out, epochs, resume=False):
        pyro.clear_param_store()
        torch.manual_seed(0)
        model, guide = builders.build_vae(SHAPE)
        fit(model, guide, FileRows.open(tmp_path / "x.npy"), epochs=epochs, out=out, resume=resume, **common)
        return torch.cat([p.detach().reshape(-1) for m in (model, guide) for p in m.parameters()])

    straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    assert torch.equal(run(tmp_path / "b", 3, resume=True), straight)


def test_cli_streams_a_npy_from_its_file(tmp_path):
    np.save(tmp_path / "x.npy", images(60))
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(tmp_path / "x.npy"), "--stream", "always", "--hidden", "8",
                     "--epochs", "2", "--batch-size", "16", "--device", "cpu", "--quiet", "--out", str(out)]) in (0, None)
    config = json.loads((out / "config.json").read_text())
    assert config["stream"] == "always" and "read from the file batch by batch" in config["data_scaling"]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "test_elbo" in metrics[-1]
    report = runs.load(out).evaluate()
    assert report["test_examples"] == 12 and np.isfinite(report["test_elbo"])


def test_streamed_dataset_splits_as_the_in_memory_one(tmp_path):
    np.save(tmp_path / "x.npy", images(30))
    streamed = datasets.load(str(tmp_path / "x.npy"), stream="always")
    memory = datasets.load(str(tmp_path / "x.npy"), stream="never")
    assert torch.equal(streamed.train[:], memory.train) and torch.equal(streamed.test[:], memory.test)
    assert streamed.shape == memory.shape == (1, 4, 4)


def test_an_iterable_dataset_is_refused():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(16)

    with pytest.raises(UserError, match="map-style dataset"):
        make(Stream(), torch.device("cpu"))


def test_a_callback_stops_training_and_early_stopping_keeps_the_best_epoch(tmp_path):
    class StopAtTwo(Callback):
        def on_epoch_start(self, trainer):
            self.started = trainer.epoch

        def on_epoch_end(self, trainer, metrics):
            trainer.stop = trainer.epoch == 2

    stop = StopAtTwo()
    model, guide = builders.build_vae(SHAPE)
    history = fit(model, guide, torch.rand(32, 16), epochs=10, batch_size=16, device="cpu", quiet=True,
                  callbacks=[stop], out=tmp_path / "run", config={"model": None})
    assert len(history) == 2 and stop.started == 2
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["epoch"] == 2
    early = EarlyStopping("train_loss_negated", patience=2)
    seen = iter([1.0, 2.0, 1.5, 1.9, 3.0])

    class Measure(Callback):
        def on_epoch_end(self, trainer, metrics):
            metrics["train_loss_negated"] = next(seen)

    pyro.clear_param_store()
    model, guide = builders.build_vae(SHAPE)
    history = fit(model, guide, torch.rand(32, 16), epochs=5, batch_size=16, device="cpu", quiet=True,
                  evaluator=None, callbacks=[Measure(), early])
    assert len(history) == 4 and early.best == 2.0 and early.best_epoch == 2


def test_a_checkpoint_from_a_newer_version_is_one_line(tmp_path):
    model, guide = builders.build_vae(SHAPE)
    fit(model, guide, torch.rand(32, 16), epochs=1, batch_size=16, device="cpu", quiet=True,
        out=tmp_path / "run", config={"model": None})
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["version"] == 2
    state["version"] = 99
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(UserError, match="written by a newer pyro-vae"):
        fit(model, guide, torch.rand(32, 16), epochs=2, batch_size=16, device="cpu", quiet=True,
            out=tmp_path / "run", config={"model": None}, resume=True)
    del state["version"]  # a checkpoint from before the version was written still loads
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    fit(model, guide, torch.rand(32, 16), epochs=2, batch_size=16, device="cpu", quiet=True,
        out=tmp_path / "run", config={"model": None}, resume=True)
