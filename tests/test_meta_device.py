"""GPU readiness without a GPU: every tensor our code makes must follow the data's device.

Under ``with torch.device("meta"):`` a tensor created without an explicit device lands on the meta
device (no data), while the data and the parameters stay on the CPU. Mixing the two fails, and so does
reading a meta tensor back, so model, guide, a training step and the evaluator only pass when they
create everything with ``x.new_*`` / ``device=x.device``, as they would have to on a GPU.

Models and guides are built BEFORE entering the context, so their parameters are real CPU tensors.
"""

from __future__ import annotations

import math

import pytest
import torch

from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_vae import evaluate, runs
from pyro_vae.train import ScaledLoss, fit


def vae(likelihood="gaussian", network="mlp"):
    shape = [1, 28, 28] if network == "conv" else [1, 8, 8]
    torch.manual_seed(0)
    return runs.build({"model": "vae", "shape": shape, "latent_dim": 2, "hidden": [16], "likelihood": likelihood,
                       "c": 0.1, "network": network})


def rows(n=32, dim=64):
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(0))


def test_the_meta_context_catches_a_tensor_made_without_a_device():
    """The guard itself: without this, the tests below could not fail."""
    x = rows()
    with torch.device("meta"):
        assert torch.zeros(3).device.type == "meta" and x.new_zeros(3).device.type == "cpu"
        with pytest.raises((RuntimeError, NotImplementedError)):
            float((x[0, :3] + torch.ones(3)).sum())


@pytest.mark.parametrize("likelihood,network", [("gaussian", "mlp"), ("bernoulli", "mlp"), ("gaussian", "conv")])
def test_model_guide_and_evaluator_run_under_the_meta_device(likelihood, network):
    model, guide = vae(likelihood, network)
    x = rows(8, 784 if network == "conv" else 64)
    with torch.device("meta"):
        assert model(x).device.type == "cpu"
        assert guide(x).device.type == "cpu"
        for objective in (Trace_ELBO(), TraceMeanField_ELBO()):
            assert objective.differentiable_loss(model, guide, x).device.type == "cpu"
        parts = evaluate.elbo_parts(model, guide, x, batch_size=3)  # uneven batches on purpose
        assert math.isfinite(parts["elbo"]) and parts["elbo"] == pytest.approx(parts["reconstruction"] - parts["kl"])
        assert evaluate.encode(guide, x).device.type == "cpu"
        assert evaluate.reconstruct(model, guide, x).shape == x.shape
        assert math.isfinite(evaluate.reconstruction_mse(model, guide, x, batch_size=5))
        assert model.generate(x.new_zeros(4, 2)).device.type == "cpu"


def test_a_manual_training_step_with_the_trainers_loss_module():
    model, guide = vae()
    x = rows()
    loss_module = ScaledLoss(Trace_ELBO()(model, guide), num_data=320)  # a batch of 32 stands for 320 rows
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in loss_module.parameters()]
    with torch.device("meta"):
        for _ in range(2):  # the second step also uses Adam's state made in the first
            loss = loss_module(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert loss.device.type == "cpu" and torch.isfinite(loss)
    after = list(loss_module.parameters())
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(after, before))
    assert all(s["step"].device.type == "cpu" for s in optimizer.state.values())


def test_fit_one_epoch_with_checkpoint_under_the_meta_device(tmp_path):
    """`fit` itself: batching, Adam, loss accumulation, divergence check, evaluation and the checkpoint."""
    model, guide = vae()
    x, test = rows(48), rows(16)
    with torch.device("meta"):
        history = fit(model, guide, x, test_data=test, epochs=1, batch_size=16, device="cpu", quiet=True,
                      out=tmp_path / "run", config={"note": "meta"})
    assert history[0]["step"] == 3 and all(math.isfinite(v) for v in history[0].values())
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in model.parameters())
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and all(t.device.type == "cpu" for t in state["model"].values())


def _global_mean():
    """A plain-function program (Pyro's SVI-tutorial idiom) written device-clean: x.new_zeros."""
    import pyro
    import pyro.distributions as dist
    from torch.distributions import constraints

    def model(x):
        mu = pyro.sample("mu", dist.Normal(x.new_zeros(x.shape[1]), 10.0).to_event(1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(mu, 1.0).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("mu_loc", lambda: x.new_zeros(x.shape[1]))
        scale = pyro.param("mu_scale", lambda: x.new_ones(x.shape[1]), constraint=constraints.positive)
        pyro.sample("mu", dist.Normal(loc, scale).to_event(1))

    return model, guide


def _regression_with_autoguide():
    """A PyroModule whose autoguide makes its parameters on the first call, inside fit."""
    import pyro
    import pyro.distributions as dist
    from pyro.infer.autoguide import AutoNormal
    from pyro.nn import PyroModule, PyroSample

    class Regression(PyroModule):
        def __init__(self):
            super().__init__()
            self.linear = PyroModule[torch.nn.Linear](3, 1)
            self.linear.weight = PyroSample(lambda linear: dist.Normal(linear.bias.new_zeros(()), 1.0)
                                            .expand([1, 3]).to_event(2))

        def forward(self, rows):
            mean = self.linear(rows[:, :3]).squeeze(-1)
            with pyro.plate("data", rows.shape[0]):
                pyro.sample("obs", dist.Normal(mean, 1.0), obs=rows[:, 3])

    torch.manual_seed(0)
    model = Regression()
    return model, AutoNormal(model)


@pytest.mark.parametrize("build", [_global_mean, _regression_with_autoguide], ids=["pyro.param", "autoguide"])
def test_fit_and_resume_of_a_users_program_under_the_meta_device(build, tmp_path):
    """The new paths: the first call that makes lazy parameters, param-store checkpoints, resume."""
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(0))
    model, guide = build()
    with torch.device("meta"):
        fit(model, guide, x, epochs=1, batch_size=16, device="cpu", quiet=True, out=tmp_path / "run")
    model, guide = build()
    with torch.device("meta"):
        history = fit(model, guide, x, epochs=2, batch_size=16, device="cpu", quiet=True, out=tmp_path / "run",
                      resume=True)
    assert [h["epoch"] for h in history] == [1, 2] and all(math.isfinite(h["train_loss"]) for h in history)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in state["param_store"].values())
