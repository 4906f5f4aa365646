"""11. Bayes and the ELBO: log p(x) = ELBO(q) + KL(q(z) ‖ p(z|x)), checked on a linear-Gaussian model.

    p(z) = N(0, I),  p(x|z) = N(W z + b, c I)   ⇒   p(x) = N(b, W Wᵀ + c I),  p(z|x) Gaussian

For any q, the three terms come from three separate closed forms (``bayes.linear_gaussian_terms``),
and Pyro's Monte-Carlo Trace_ELBO on the same model, written as the package's VAE with a linear
decoder, estimates the ELBO independently. Figure: as q's mean slides from the prior's mean to the
posterior's, the ELBO rises to log p(x); the gap is always KL(q ‖ p(z|x)).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.infer import Trace_ELBO

from common import cli, default_out, report, save
from pyro_vae.analysis.bayes import linear_gaussian_terms
from pyro_vae.models import VAE
from pyro_vae.models.likelihoods import Gaussian


DIM, LATENT_DIM, C = 5, 2, 0.5


class FixedGuide(nn.Module):
    """guide(x): z ~ q = N(m, diag s²), the same q for every row (no encoder: q is given)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.loc, self.scale = loc, scale

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.Normal(self.loc, self.scale).to_event(1))


def linear_gaussian(seed: int = 0):
    """A fixed W, b and one x drawn from the model (float64)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(DIM, LATENT_DIM, generator=generator, dtype=torch.float64)
    bias = torch.randn(DIM, generator=generator, dtype=torch.float64)
    z = torch.randn(LATENT_DIM, generator=generator, dtype=torch.float64)
    x = weight @ z + bias + C ** 0.5 * torch.randn(DIM, generator=generator, dtype=torch.float64)
    return weight, bias, x


def pyro_elbo(weight, bias, x, loc, scale, num_particles: int = 20_000) -> float:
    decoder = nn.Linear(LATENT_DIM, DIM).double()
    with torch.no_grad():
        decoder.weight.copy_(weight), decoder.bias.copy_(bias)
    model, guide = VAE(decoder, LATENT_DIM, Gaussian(C)), FixedGuide(loc, scale)
    elbo = Trace_ELBO(num_particles=num_particles, vectorize_particles=True, max_plate_nesting=1)
    pyro.set_rng_seed(0)
    with torch.no_grad():
        return -float(elbo.loss(model, guide, x[None]))


def main(figures: Path = default_out("elbo_identity")) -> dict:
    weight, bias, x = linear_gaussian()
    exact = linear_gaussian_terms(weight, bias, C, x, torch.zeros(LATENT_DIM, dtype=torch.float64),
                                  torch.ones(LATENT_DIM, dtype=torch.float64))
    post_mean, post_std = exact["posterior_mean"], exact["posterior_cov"].diagonal().sqrt()

    ts = torch.linspace(0, 1, 21, dtype=torch.float64)
    path = [linear_gaussian_terms(weight, bias, C, x, t * post_mean, post_std) for t in ts]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ts, [p["log_px"] for p in path], color="black", label="log p(x)")
    ax.plot(ts, [p["elbo"] for p in path], color="tab:blue", label="ELBO(q)")
    ax.fill_between(ts, [p["elbo"] for p in path], [p["log_px"] for p in path], color="tab:red", alpha=0.2,
                    label="KL(q ‖ p(z|x))")
    ax.set_xlabel("q's mean: prior mean (0) → posterior mean (1)")
    ax.set_ylabel("nats")
    ax.legend()
    save(fig, figures / "elbo_identity.png")

    loc, scale = 0.5 * post_mean, post_std  # one q halfway, shown term by term
    terms = linear_gaussian_terms(weight, bias, C, x, loc, scale)
    return report("ELBO identity", {
        "log_px": terms["log_px"], "elbo": terms["elbo"], "kl_to_posterior": terms["kl_posterior"],
        "elbo_plus_kl": terms["elbo"] + terms["kl_posterior"], "pyro_trace_elbo_estimate": pyro_elbo(
            weight, bias, x, loc, scale),
        "elbo_at_posterior_minus_log_px": path[-1]["elbo"] - path[-1]["log_px"]})


if __name__ == "__main__":
    cli(main, "elbo_identity")
