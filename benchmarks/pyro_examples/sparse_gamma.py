"""A deep exponential family like Pyro's examples/sparse_gamma_def.py, small, with its custom guide.

    w_top, w_bottom ~ Gamma(0.1, 0.3) elementwise (global), in their own plates;
    z_top ~ Gamma(0.1, 0.1),  z_bottom ~ Gamma(0.1, 0.1 / (z_top·w_top)),
    obs ~ Poisson(z_bottom·w_bottom),  in plate "data".

The guide holds **per-row parameters**: ``pyro.param`` of shape (N, width) for each row's z, so the
rows must stay in order (full batch, as in the example). Gamma guides through softplus, as there,
TraceMeanField_ELBO, ClippedAdam(lr 0.05, clip_norm 20), and after every step ``clip_params`` keeps
the raw parameters above −2.5 (shape) and −4.5 (mean); in ``fit`` that is :class:`ClipParams`, a
callback's ``on_step_end``.
"""

import pyro
import torch
from pyro.distributions import Gamma, Poisson
from torch.nn.functional import softplus

from pyro_vae.callbacks import Callback

# tolerance: one Gamma draw per row and step makes the trajectory noisy (Pyro's loop moves ~3.6 between seeds)
PROGRAM, STEPS, BATCH_SIZE, PLATE, TOLERANCE = "build", 300, None, "data", 2.0
CLI = ["--optimizer", "clipped-adam", "--lr", "0.05", "--clip-norm", "20", "--elbo", "meanfield"]
TOP, BOTTOM, PIXELS = 3, 6, 20
ALPHA_Z, BETA_Z, ALPHA_W, BETA_W = 0.1, 0.1, 0.1, 0.3


def rand_tensor(shape, mean, sigma):
    return mean * torch.ones(shape) + sigma * torch.randn(shape)


class SparseGammaDEF:
    def model(self, x):
        with pyro.plate("w_top_plate", TOP * BOTTOM):
            w_top = pyro.sample("w_top", Gamma(x.new_tensor(ALPHA_W), x.new_tensor(BETA_W)))
        with pyro.plate("w_bottom_plate", BOTTOM * PIXELS):
            w_bottom = pyro.sample("w_bottom", Gamma(x.new_tensor(ALPHA_W), x.new_tensor(BETA_W)))
        with pyro.plate("data", x.size(0)):
            z_top = pyro.sample("z_top", Gamma(x.new_tensor(ALPHA_Z), x.new_tensor(BETA_Z)).expand([TOP]).to_event(1))
            mean_bottom = z_top @ w_top.reshape(TOP, BOTTOM)
            z_bottom = pyro.sample("z_bottom", Gamma(ALPHA_Z, BETA_Z / mean_bottom).to_event(1))
            pyro.sample("obs", Poisson(z_bottom @ w_bottom.reshape(BOTTOM, PIXELS)).to_event(1), obs=x)

    def guide(self, x):
        x_size = x.size(0)

        def sample_zs(name, width):
            alpha_z_q = pyro.param(f"alpha_z_q_{name}", lambda: rand_tensor((x_size, width), 0.5, 0.1))
            mean_z_q = pyro.param(f"mean_z_q_{name}", lambda: rand_tensor((x_size, width), 0.0, 0.1))
            alpha_z_q, mean_z_q = softplus(alpha_z_q), softplus(mean_z_q)
            pyro.sample(f"z_{name}", Gamma(alpha_z_q, alpha_z_q / mean_z_q).to_event(1))

        def sample_ws(name, width):
            alpha_w_q = pyro.param(f"alpha_w_q_{name}", lambda: rand_tensor((width,), 0.5, 0.1))
            mean_w_q = pyro.param(f"mean_w_q_{name}", lambda: rand_tensor((width,), 0.0, 0.1))
            alpha_w_q, mean_w_q = softplus(alpha_w_q), softplus(mean_w_q)
            pyro.sample(f"w_{name}", Gamma(alpha_w_q, alpha_w_q / mean_w_q))

        with pyro.plate("w_top_plate", TOP * BOTTOM):
            sample_ws("top", TOP * BOTTOM)
        with pyro.plate("w_bottom_plate", BOTTOM * PIXELS):
            sample_ws("bottom", BOTTOM * PIXELS)
        with pyro.plate("data", x_size):
            sample_zs("top", TOP)
            sample_zs("bottom", BOTTOM)


def clip_params():
    for param, clip in zip(("alpha", "mean"), (-2.5, -4.5)):
        for layer in ("_q_top", "_q_bottom"):
            for wz in ("_w", "_z"):
                pyro.param(param + wz + layer).data.clamp_(min=clip)


class ClipParams(Callback):
    """sparse_gamma_def's ``clip_params()`` after every optimizer step of ``fit``."""

    def on_step_end(self, trainer):
        clip_params()


def make(rows):
    sparse_gamma_def = SparseGammaDEF()
    return sparse_gamma_def.model, sparse_gamma_def.guide


def build(dataset):
    return make((dataset.train,))


def callbacks():
    return [ClipParams()]


def data(n=40, seed=0):
    """Poisson counts (n, PIXELS) from the model's own kind of structure: nonnegative factors."""
    g = torch.Generator().manual_seed(seed)
    factors = torch.rand(n, BOTTOM, generator=g) * (torch.rand(n, BOTTOM, generator=g) < 0.5)
    loadings = 4 * torch.rand(BOTTOM, PIXELS, generator=g) * (torch.rand(BOTTOM, PIXELS, generator=g) < 0.4)
    return (torch.poisson(factors @ loadings + 0.1, generator=g),)


def optimizer():
    return pyro.optim.ClippedAdam({"lr": 0.05, "clip_norm": 20.0})


def loss():
    return pyro.infer.TraceMeanField_ELBO()


def reference(rows, steps=STEPS, seed=0):
    from suite import svi_loop

    return svi_loop(lambda: make(rows), rows, optimizer(), loss(), steps, seed, after_step=clip_params)
