"""Exact resume after SIGKILL, atomic checkpoints, --keep-last, and the NaN/divergence guard.

A run is killed for real (SIGKILL) in a process forked from the test, at a chosen optimizer step or
in the middle of writing a checkpoint; resuming it must end where an uninterrupted run of the same
seed ends: parameters, optimizer state and metrics equal within 1e-6 (wall time excluded).
"""

import io
import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

import pyro

from pyro_vae import checkpoint as ckpt
from pyro_vae import cli, runs
from pyro_vae.settings import interval
from pyro_vae.errors import UserError
from pyro_vae.train import fit

# digits: 1,438 training rows, batch 128 → 12 optimizer steps per epoch, 36 in all
COMMON = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "3", "--seed", "3", "--device", "cpu",
          "--quiet", "--no-figures"]


def _states(run):
    state = ckpt.load(Path(run) / "checkpoint.pt")
    return state, [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(run, reference):
    (got, got_metrics), (want, want_metrics) = _states(run), _states(reference)
    assert (got["epoch"], got["step"]) == (want["epoch"], want["step"]) == (3, 36)
    for part in ("model", "guide"):
        for name, value in want[part].items():
            torch.testing.assert_close(got[part][name], value, rtol=0, atol=1e-6, msg=f"{part}.{name}")
    for key, value in want["optimizer"]["state"].items():  # Adam's moments continue too
        torch.testing.assert_close(got["optimizer"]["state"][key]["exp_avg_sq"], value["exp_avg_sq"],
                                   rtol=1e-6, atol=1e-12)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert len(got_metrics) == len(want_metrics) == 3
    for a, b in zip(drop(got_metrics), drop(want_metrics)):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-6)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: a forked child can't use the parent's OpenMP pool, and the reference and
    the resumed runs should sum in the same order as the killed one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(COMMON + ["--out", str(out)]) == 0
    return out


def _killed_child(argv, patch):
    torch.set_num_threads(1)
    patch()
    cli.main(argv)
    os._exit(0)  # reached only if the kill never came


def run_until_killed(argv, patch):
    """Runs ``pyro-vae ARGV`` in a forked process that ``patch`` arranges to SIGKILL itself."""
    proc = multiprocessing.get_context("fork").Process(target=_killed_child, args=(argv, patch))
    proc.start()
    proc.join(300)
    assert proc.exitcode == -signal.SIGKILL, proc.exitcode


def _kill_at_step_17():
    real_step, calls = torch.optim.Adam.step, [0]

    def step(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 17:  # epoch 2, two steps after the step-15 checkpoint
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(self, *args, **kwargs)

    torch.optim.Adam.step = step


def test_sigkill_mid_epoch_then_resume_continues_the_same_trajectory(tmp_path, reference):
    out = tmp_path / "run"
    run_until_killed(COMMON + ["--out", str(out), "--checkpoint-every", "5steps", "--keep-last", "2"],
                     _kill_at_step_17)
    state, metrics = _states(out)
    assert (state["epoch"], state["step"], state["partial"]["rows"]) == (1, 15, 3 * 128)
    assert [m["epoch"] for m in metrics] == [1]
    assert cli.main(["train", "--resume", "--out", str(out), "--device", "cpu", "--quiet", "--no-figures"]) == 0
    assert_same_run(out, reference)
    # --keep-last 2: the two newest of the checkpoints at steps 5, 10, ..., 35 and the final one
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == \
        ["epoch-0003-step-00000035.pt", "epoch-0003-step-00000036.pt"]


def _kill_while_writing_second_checkpoint():
    real_save, calls = torch.save, [0]

    def slow_save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:  # the epoch-2 checkpoint: half of it reaches the disk, then the process dies
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.save = slow_save


def test_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path, reference):
    out = tmp_path / "run"
    run_until_killed(COMMON + ["--out", str(out)], _kill_while_writing_second_checkpoint)
    assert len(list(out.glob(".checkpoint.pt.*.tmp"))) == 1  # the half-written file is there...
    state, metrics = _states(out)
    assert (state["epoch"], state["step"]) == (1, 12)  # ...and checkpoint.pt is still epoch 1's, whole
    assert [m["epoch"] for m in metrics] == [1, 2]  # epoch 2's line was written before its checkpoint
    assert cli.main(["train", "--resume", "--out", str(out), "--device", "cpu", "--quiet", "--no-figures"]) == 0
    assert not list(out.glob(".*.tmp"))
    assert_same_run(out, reference)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save({"model": {"w": torch.ones(3)}}, path)

    def broken(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        ckpt.save({"model": {"w": torch.zeros(3)}}, path)
    assert torch.equal(ckpt.load(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_checkpoint_every_syntax():
    assert interval(3) == interval("3") == interval("3epochs") == (3, "epochs")
    assert interval("3 epoch") == (3, "epochs")
    assert interval("500steps") == interval("500step") == (500, "steps")
    assert interval("30s") == interval("30 seconds") == (30, "seconds") and interval("2min") == (120, "seconds")
    assert interval("auto").in_epochs(2000) == (20, "epochs") and interval("auto").in_epochs(100) == (1, "epochs")
    for bad in ("0", "-2", "steps", "5 weeks", "1.5epochs", True):
        with pytest.raises(UserError, match="--checkpoint-every takes N, Nepochs, Nsteps, Nseconds"):
            interval(bad)


def _tiny_vae():
    pyro.set_rng_seed(0)
    return runs.build({"model": "vae", "shape": [6], "latent_dim": 2, "likelihood": "gaussian", "c": 0.5,
                       "hidden": [8]})


def test_divergence_stops_with_the_step_and_keeps_the_good_checkpoint(tmp_path):
    model, guide = _tiny_vae()
    data = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))  # batch 8: 5 steps per epoch
    steps = [0]

    def poison_step_8(batch):
        steps[0] += 1
        return (batch[0] * (float("inf") if steps[0] == 8 else 1.0),)

    out = tmp_path / "run"
    with pytest.raises(UserError) as error:
        fit(model, guide, data, epochs=3, batch_size=8, device="cpu", out=out, checkpoint_every="3steps",
            transform=poison_step_8, evaluator=None, quiet=True)
    message = str(error.value)
    assert "\n" not in message and "NaN/inf at step 8" in message
    assert "learning rate" in message and "[0, 1]" in message and str(out / "checkpoint.pt") in message
    state = ckpt.load(out / "checkpoint.pt")
    assert state["step"] == 6  # the checkpoint before the NaN, not replaced
    assert all(torch.isfinite(v).all() for v in state["model"].values())


class NaNGradient(nn.Module):
    """A finite loss whose gradient is NaN: d/dw sqrt(0·w) = 0·∞."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        pyro.factor("sqrt_of_zero", torch.sqrt(self.w * 0))


class NoLatents(nn.Module):
    def forward(self, x):
        pass


def test_clip_norm_catches_a_nan_gradient_with_a_finite_loss():
    model, guide, data = NaNGradient(), NoLatents(), torch.zeros(8, 1)
    with pytest.raises(UserError, match="NaN/inf at step 1\\."):
        fit(model, guide, data, epochs=1, batch_size=4, clip_norm=1.0, device="cpu", evaluator=None, quiet=True)


def test_clip_norm_bounds_every_step():
    model, guide = _tiny_vae()
    before = torch.cat([p.detach().flatten().clone() for p in [*model.parameters(), *guide.parameters()]])
    fit(model, guide, torch.rand(40, 6), epochs=1, batch_size=8, clip_norm=1e-3, device="cpu", evaluator=None,
        quiet=True, optimizer=lambda params: torch.optim.SGD(params, lr=1.0))
    after = torch.cat([p.detach().flatten() for p in [*model.parameters(), *guide.parameters()]])
    assert 0 < (after - before).norm() <= 5 * 1e-3 * (1 + 1e-5)  # 5 steps of SGD, each clipped to norm 1e-3


def test_interrupted_api_run_with_a_scheduler_resumes_exactly(tmp_path):
    """Python API: Ctrl-C at step 8 (a checkpoint at step 6), then resume: the lr schedule continues too."""
    data = torch.rand(40, 6, generator=torch.Generator().manual_seed(1))
    options = dict(epochs=3, batch_size=8, device="cpu", checkpoint_every="3steps", evaluator=None, quiet=True,
                   scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    straight = fit(*_tiny_vae(), data, out=tmp_path / "straight", **options)
    steps = [0]

    def interrupt_at_step_8(batch):
        steps[0] += 1
        if steps[0] == 8:
            raise KeyboardInterrupt
        return batch

    with pytest.raises(KeyboardInterrupt):
        fit(*_tiny_vae(), data, out=tmp_path / "cut", transform=interrupt_at_step_8, **options)
    assert ckpt.load(tmp_path / "cut" / "checkpoint.pt")["step"] == 6
    model, guide = _tiny_vae()
    resumed = fit(model, guide, data, out=tmp_path / "cut", resume=True, **options)
    assert [m["lr"] for m in resumed] == [5e-4, 2.5e-4, 1.25e-4]
    for a, b in zip(resumed, straight, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    want = ckpt.load(tmp_path / "straight" / "checkpoint.pt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, want["model"][name], rtol=0, atol=1e-6)
