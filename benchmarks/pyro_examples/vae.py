"""Pyro's VAE example (examples/vae/vae.py), small: an ``nn.Module`` whose methods are the model and guide.

    latent z ~ N(0, I),  obs x ~ Bernoulli(decoder(z)) over the pixels, in plate "data";
    guide: latent z ~ N(μ(x), σ(x)²) from the encoder.

As in the example: ``pyro.module`` registers the networks, the Bernoulli decoder takes grey levels
(``validate_args=False``), Trace_ELBO, Adam(lr 1e-3), minibatches (here sklearn's 8×8 digits,
z of dimension 2, 32 hidden units, batches of 128).
"""

import pyro
import pyro.distributions as dist
import torch
from torch import nn

PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 150, 128, "data", 1.0
CLI = ["--optimizer", "adam", "--lr", "0.001"]


class Encoder(nn.Module):
    def __init__(self, x_dim, z_dim, hidden_dim):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(x_dim, hidden_dim), nn.Linear(hidden_dim, z_dim), \
            nn.Linear(hidden_dim, z_dim)
        self.softplus = nn.Softplus()

    def forward(self, x):
        hidden = self.softplus(self.fc1(x))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))


class Decoder(nn.Module):
    def __init__(self, x_dim, z_dim, hidden_dim):
        super().__init__()
        self.fc1, self.fc21 = nn.Linear(z_dim, hidden_dim), nn.Linear(hidden_dim, x_dim)
        self.softplus, self.sigmoid = nn.Softplus(), nn.Sigmoid()

    def forward(self, z):
        return self.sigmoid(self.fc21(self.softplus(self.fc1(z))))


class VAE(nn.Module):
    def __init__(self, x_dim=64, z_dim=2, hidden_dim=32):
        super().__init__()
        self.encoder, self.decoder = Encoder(x_dim, z_dim, hidden_dim), Decoder(x_dim, z_dim, hidden_dim)
        self.z_dim = z_dim

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = x.new_zeros(x.shape[0], self.z_dim), x.new_ones(x.shape[0], self.z_dim)
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decoder(z)
            pyro.sample("obs", dist.Bernoulli(loc_img, validate_args=False).to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))


def make(rows):
    vae = VAE(rows[0].shape[-1])
    return vae.model, vae.guide


def build(dataset):
    return VAE(dataset.train.shape[-1])


def data(n=640, seed=0):
    """``n`` of sklearn's 8×8 digits as grey levels in [0, 1] (64 columns), in a seeded order."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data[:n] / 16.0, dtype=torch.float32)
    return (x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))],)


def optimizer():
    return pyro.optim.Adam({"lr": 1.0e-3})


def loss():
    return pyro.infer.Trace_ELBO()


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed, batch_size=BATCH_SIZE)
