"""Bayesian linear regression of Pyro's tutorial: a ``PyroModule`` with ``PyroSample`` priors, an autoguide.

    weight ~ N(0, 1), bias ~ N(0, 10²), sigma ~ Uniform(0, 10),  y_i ~ N(x_i·weight + bias, sigma²);
    guide: AutoDiagonalNormal(model).

As in the tutorial: ``model(x, y)`` with the features and the targets as two arrays, Trace_ELBO,
Adam(lr 0.03), full batch (here 2,000 steps). With weak priors and many rows the posterior
median of (weight, bias) is the least-squares fit.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer.autoguide import AutoDiagonalNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 2000, None, "data", 0.02
CLI = ["--optimizer", "adam", "--lr", "0.03"]
TIMED = True  # issue 19: a 2,000-step full-batch fit takes at most 1.3× Pyro's plain loop
PARTICLES = 200  # a global latent: its noise is shared by every row, so draws are what averages it


class BayesianRegression(PyroModule):
    def __init__(self, in_features, out_features=1):
        super().__init__()
        self.linear = PyroModule[nn.Linear](in_features, out_features)
        self.linear.weight = PyroSample(dist.Normal(0.0, 1.0).expand([out_features, in_features]).to_event(2))
        self.linear.bias = PyroSample(dist.Normal(0.0, 10.0).expand([out_features]).to_event(1))

    def forward(self, x, y=None):
        sigma = pyro.sample("sigma", dist.Uniform(x.new_tensor(0.0), x.new_tensor(10.0)))
        mean = self.linear(x).squeeze(-1)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", dist.Normal(mean, sigma), obs=y)
        return mean


def make(rows):
    model = BayesianRegression(rows[0].shape[-1])
    return model, AutoDiagonalNormal(model)


def build(dataset):
    return make((dataset.train,))


def data(n=200, seed=0):
    """(x, y): y = x·(1, −2, 0.5) + 0.3 + N(0, 0.5²), three standard-normal features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 + 0.5 * torch.randn(n, generator=g)
    return x, y


def optimizer():
    return pyro.optim.Adam({"lr": 0.03})


def loss():
    return pyro.infer.Trace_ELBO()


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed)


def answer(rows):
    """Least squares: (weight, bias) minimizing ‖y − x·w − b‖²."""
    x, y = rows
    design = torch.cat([x, torch.ones(x.shape[0], 1)], 1).double()
    coef = torch.linalg.lstsq(design, y.double()[:, None]).solution[:, 0]
    return {f"w{i}": float(c) for i, c in enumerate(coef[:-1])} | {"bias": float(coef[-1])}


def fitted(model, guide):
    median = guide.median()
    weight, bias = median["linear.weight"].reshape(-1), median["linear.bias"].reshape(-1)
    return {f"w{i}": float(w) for i, w in enumerate(weight)} | {"bias": float(bias[0])}


ANSWER_TOLERANCE = {"w0": 0.05, "w1": 0.05, "w2": 0.05, "bias": 0.05}
