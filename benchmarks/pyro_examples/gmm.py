"""The Gaussian mixture of Pyro's GMM tutorial: assignments summed out, a MAP guide for the rest.

    weights ~ Dirichlet(0.5·1), scale ~ LogNormal(0, 2), locs_k ~ N(0, 10²) in plate "components";
    assignment_i ~ Categorical(weights), obs_i ~ N(locs[assignment_i], scale²) in plate "data".

As in the tutorial: ``config_enumerate`` on the model, ``AutoDelta`` on the model blocked to
(weights, locs, scale), started by an ``init_loc_fn`` (the tutorial's, but the locations at the data's quartiles
rather than the best of many random pairs of points),
TraceEnum_ELBO(max_plate_nesting=1), Adam(lr 0.1, betas (0.8, 0.99)), 200 full-batch steps.
The fitted locations are the two clusters' means.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoDelta

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 200, None, "data", 0.02
CLI = ["--optimizer", "adam", "--lr", "0.1", "--elbo", "enum"]
K = 2
PARTICLES = 1  # a point-mass guide and the discrete sites summed out: the ELBO is exact


@config_enumerate
def model(data):
    data = data.reshape(-1)  # (N,) as in the tutorial, or the (N, 1) rows of an array file
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * data.new_ones(K)))
    scale = pyro.sample("scale", dist.LogNormal(data.new_tensor(0.0), 2.0))
    with pyro.plate("components", K):
        locs = pyro.sample("locs", dist.Normal(data.new_tensor(0.0), 10.0))
    with pyro.plate("data", len(data)):
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


def make(rows):
    data = rows[0].reshape(-1)

    def init_loc_fn(site):
        if site["name"] == "weights":
            return torch.ones(K) / K  # the tutorial's start: equal weights, half the variance, two data points
        if site["name"] == "scale":
            return (data.var() / 2).sqrt()
        if site["name"] == "locs":  # the tutorial restarts from many random pairs of points; one good start here
            return data.quantile(data.new_tensor([0.25, 0.75]))
        raise ValueError(site["name"])

    return model, AutoDelta(poutine.block(model, expose=["weights", "locs", "scale"]), init_loc_fn=init_loc_fn)


def build(dataset):
    return make((dataset.train,))


def data(n=100, seed=0):
    """Two clusters: n/2 points from N(0, 1), n/2 from N(10, 1), as (n, 1) rows."""
    g = torch.Generator().manual_seed(seed)
    return (torch.cat([torch.randn(n // 2, generator=g), 10 + torch.randn(n - n // 2, generator=g)])[:, None],)


def optimizer():
    return pyro.optim.Adam({"lr": 0.1, "betas": [0.8, 0.99]})


def loss():
    return TraceEnum_ELBO(max_plate_nesting=1)


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed)


def answer(rows):
    """The two clusters' sample means (the points below 5 and above)."""
    x = rows[0].reshape(-1)
    return {"loc_low": float(x[x < 5].mean()), "loc_high": float(x[x >= 5].mean())}


def fitted(model, guide):
    locs = guide.median()["locs"].sort().values
    return {"loc_low": float(locs[0]), "loc_high": float(locs[1])}


ANSWER_TOLERANCE = {"loc_low": 0.2, "loc_high": 0.2}
