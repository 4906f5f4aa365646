"""Data-parallel training: 2 CPU processes (gloo, localhost) against one process.

The ranks are forked from the test process (cheap: no second import of torch) and join a process
group through the same environment variables torchrun sets; one test runs torchrun itself.
"""

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from torch import nn

import pyro
import pyro.distributions as dist

from pyro_vae import checkpoint as ckpt
from pyro_vae import cli
from pyro_vae.guides import Encoder
from pyro_vae.models import VAE
from pyro_vae.models.likelihoods import Gaussian
from pyro_vae.train import fit

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, port, fn, args, errors):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    try:
        fn(rank, *args)
        code = 0
    except BaseException:
        errors.put(f"rank {rank}: {traceback.format_exc()}")
        code = 1
    finally:
        from pyro_vae import distributed

        distributed.shutdown()
    os._exit(code)  # skip pytest's atexit machinery in the forked child


@pytest.fixture(scope="module", autouse=True)
def warm_parent(tmp_path_factory):
    """One short run in the test process first: the forked ranks then inherit its lazy imports
    (torch's optimizer machinery, DDP, the evaluator) instead of each paying for them."""
    out = tmp_path_factory.mktemp("warm") / "run"
    assert cli.main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--batch-size", "512",
                     "--device", "cpu", "--quiet", "--no-figures", "--out", str(out)]) == 0
    torch.nn.parallel.DistributedDataParallel  # noqa: B018  (imports torch.distributed's Python side)


def run_ranks(fn, *args, timeout=120):
    """Runs ``fn(rank, *args)`` in WORLD forked processes that form one gloo process group."""
    ctx = multiprocessing.get_context("fork")
    errors, port = ctx.Queue(), _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, fn, args, errors)) for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    messages = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert all(p.exitcode == 0 for p in procs), "\n".join(messages) or [p.exitcode for p in procs]


class FixedNoiseModel(nn.Module):
    """The lecture's VAE model; ``eps`` (the guide's noise) rides along as a data column."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, eps):
        return self.vae(x)


class FixedNoiseGuide(nn.Module):
    """q_x(z) = N(μ(x), σ(x)²) reparameterized with noise ``eps`` taken from the data, not the RNG:
    z = μ + σ·eps, scored by log q(z). Each row then gets the same noise whichever rank it lands on."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x, eps):
        mu, sigma = self.encoder(x)
        z = mu + sigma * eps
        log_q = dist.Normal(mu, sigma).log_prob(z).sum(-1)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.Delta(z, log_density=log_q, event_dim=1))


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(45, 6, generator=g)  # 45 rows, batch 8: the last batch of 5 splits 3 / 2 over the ranks
    eps = torch.randn(45, 2, generator=g)
    torch.manual_seed(1)
    encoder = Encoder(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), 8, 2)
    model = FixedNoiseModel(VAE(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 6)), 2, Gaussian(0.5)))
    return model, FixedNoiseGuide(encoder), (x, eps)


def _train_fixed_noise(streamed: bool = False):
    model, guide, data = _problem()
    if streamed:  # a map-style torch Dataset: each rank reads only its shard's rows, one batch ahead
        data = torch.utils.data.TensorDataset(*data)
    # plain SGD: unlike Adam, its step is proportional to the gradient, so a wrongly scaled loss shows
    history = fit(model, guide, data, epochs=2, batch_size=8, device="cpu", evaluator=None, quiet=True,
                  optimizer=lambda params: torch.optim.SGD(params, lr=1e-3))
    params = {f"model.{k}": v for k, v in model.state_dict().items()}
    params.update({f"guide.{k}": v for k, v in guide.state_dict().items()})
    return params, [h["train_loss"] for h in history]


def _ddp_fixed_noise(rank, out_dir, streamed=False):
    params, losses = _train_fixed_noise(streamed)
    torch.save({"params": params, "losses": losses}, Path(out_dir) / f"rank{rank}.pt")


@pytest.mark.parametrize("streamed", [False, True], ids=["tensors", "torch Dataset"])
def test_two_ranks_take_the_one_process_steps(tmp_path, streamed):
    """Global batch 8 over 2 gloo ranks = batch 8 in one process (on tensors): same parameters and global loss."""
    single_params, single_losses = _train_fixed_noise()
    run_ranks(_ddp_fixed_noise, str(tmp_path), streamed)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["losses"] == pytest.approx(single_losses, rel=1e-6)  # the reported loss is the global one
        for name, value in single_params.items():
            torch.testing.assert_close(got["params"][name], value, rtol=0, atol=1e-5, msg=name)
    initial, _, _ = _problem()
    moved = max((v - single_params[f"model.{k}"]).abs().max() for k, v in initial.state_dict().items())
    assert moved > 1e-3  # the comparison is not between two untrained models


def _cli_ranks(rank, argv):
    code = cli.main(argv)
    assert code == 0, code


def _params(run):
    state = ckpt.load(Path(run) / "checkpoint.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"guide.{k}": v for k, v in state["guide"].items()}}


def test_cli_under_ddp_writes_once_and_resumes_exactly(tmp_path):
    """Rank 0 alone writes; a DDP run resumed from epoch 1 ends where an uninterrupted one does."""
    common = ["train", "--dataset", "digits", "--hidden", "16", "--batch-size", "200", "--device", "cpu",
              "--quiet", "--no-figures", "--seed", "4"]
    straight, halted = tmp_path / "straight", tmp_path / "halted"
    run_ranks(_cli_ranks, common + ["--epochs", "2", "--out", str(straight)])
    run_ranks(_cli_ranks, common + ["--epochs", "1", "--out", str(halted)])
    run_ranks(_cli_ranks, ["train", "--resume", "--epochs", "2", "--out", str(halted), "--device", "cpu",
                           "--quiet", "--no-figures"])

    assert sorted(p.name for p in straight.iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]  # one writer, not one line per rank
    assert len(ckpt.load(straight / "checkpoint.pt")["rng"]) == WORLD  # each rank's noise state is kept
    for name, value in _params(straight).items():
        torch.testing.assert_close(_params(halted)[name], value, rtol=0, atol=1e-6, msg=name)
    resumed = [json.loads(line) for line in (halted / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows, resumed, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            pytest.approx({k: v for k, v in b.items() if k != "seconds"}, rel=1e-6)


def _cli_fails_on_every_rank(rank, argv, out):
    code = cli.main(argv)
    assert code == 2, code
    assert sorted(p.name for p in Path(out).iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]


def test_a_run_folder_error_found_by_rank_0_stops_every_rank(tmp_path):
    """Only rank 0 looks at --out; its one-line error reaches the other rank instead of leaving it waiting."""
    out = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--batch-size", "512", "--device",
            "cpu", "--quiet", "--no-figures", "--out", str(out)]
    assert cli.main(argv) == 0
    run_ranks(_cli_fails_on_every_rank, argv, str(out), timeout=60)  # "already holds a run" on both ranks


@pytest.mark.slow
def test_torchrun_launch_line(tmp_path):
    """The documented launch line itself: torchrun --standalone --nproc_per_node=2 -m pyro_vae.cli train."""
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "run"
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "pyro_vae.cli", "train", "--dataset", "digits",
         "--hidden", "8", "--epochs", "1", "--batch-size", "256", "--device", "cpu", "--quiet", "--no-figures",
         "--out", str(out)], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["epoch"] == 1  # one summary line: rank 0's
    assert len(result.stdout.strip().splitlines()) == 1
    assert len(ckpt.load(out / "checkpoint.pt")["rng"]) == 2
