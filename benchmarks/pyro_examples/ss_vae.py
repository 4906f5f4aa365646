"""The semi-supervised VAE (M2) of Pyro's examples/vae/ss_vae_M2.py, small: the digit label y is enumerated.

    z ~ N(0, I),  y ~ OneHotCategorical(1/10),  x ~ Bernoulli(decoder(z, y)),  in pyro.plate("data");
    guide: y ~ OneHotCategorical(encoder_y(x)) where y is not given, z ~ N(encoder_z(x, y)).

As in the example: the plate has **no size** (Pyro gives it −1), the guide is
``config_enumerate(..., "parallel", expand=True)`` so the unobserved y is summed out,
TraceEnum_ELBO(max_plate_nesting=1), Adam(lr 0.00042, betas (0.9, 0.999)), minibatches; the networks
come from a helper module beside the file (the example imports ``utils.custom_mlp``). Two data sets:
``unlabelled`` rows x (y enumerated) and ``labelled`` rows (x, y) with y one-hot.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate
from torch import nn

from suite import concat, mlp  # beside this file, as examples/vae/utils/custom_mlp.py is beside ss_vae_M2.py

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "unlabelled", 60, 64, "data", 1.0
CLI = ["--optimizer", "adam", "--lr", "0.00042", "--elbo", "enum"]
LABELS = 10


class SSVAE(nn.Module):
    def __init__(self, x_dim=64, z_dim=4, hidden=32):
        super().__init__()
        self.z_dim = z_dim
        self.encoder_y = nn.Sequential(mlp([x_dim, hidden, LABELS]), nn.Softmax(dim=-1))
        self.encoder_z = mlp([x_dim + LABELS, hidden, 2 * z_dim])
        self.decoder = nn.Sequential(mlp([z_dim + LABELS, hidden, x_dim]), nn.Sigmoid())

    def model(self, xs, ys=None):
        pyro.module("ss_vae", self)
        batch_size = xs.size(0)
        with pyro.plate("data"):
            prior_loc = xs.new_zeros([batch_size, self.z_dim])
            prior_scale = xs.new_ones([batch_size, self.z_dim])
            zs = pyro.sample("z", dist.Normal(prior_loc, prior_scale).to_event(1))
            alpha_prior = xs.new_ones([batch_size, LABELS]) / LABELS
            ys = pyro.sample("y", dist.OneHotCategorical(alpha_prior), obs=ys)
            loc = self.decoder(concat(zs, ys))
            pyro.sample("x", dist.Bernoulli(loc, validate_args=False).to_event(1), obs=xs)

    def guide(self, xs, ys=None):
        with pyro.plate("data"):
            if ys is None:
                alpha = self.encoder_y(xs)
                ys = pyro.sample("y", dist.OneHotCategorical(alpha))
            loc, log_scale = self.encoder_z(concat(xs, ys)).chunk(2, dim=-1)
            pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))


def make(rows):
    ss_vae = SSVAE(rows[0].shape[-1])
    return ss_vae.model, config_enumerate(ss_vae.guide, "parallel", expand=True)


def unlabelled(dataset):
    return make((dataset.train,))


labelled = unlabelled


def data(n=384, seed=0, labels=False):
    """sklearn's 8×8 digits as grey levels (x), with one-hot labels (y) when ``labels``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    x = torch.tensor(digits.data[:n] / 16.0, dtype=torch.float32)[order]
    y = nn.functional.one_hot(torch.tensor(digits.target[:n]), LABELS).float()[order]
    return (x, y) if labels else (x,)


def optimizer():
    return pyro.optim.Adam({"lr": 0.00042, "betas": (0.9, 0.999)})


def loss():
    return TraceEnum_ELBO(max_plate_nesting=1)


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed, batch_size=BATCH_SIZE)
