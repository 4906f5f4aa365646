"""8. The reparameterization trick: pathwise vs score-function gradients of the same ELBO.

    pathwise:        z = μ(x) + σ(x) ε, ε ~ N(0, I)     ∇ E_q[f(z)] = E_ε[∇ f(μ + σ ε)]
    score function:  z ~ q (no gradient through z)      ∇ E_q[f(z)] = E_q[f(z) ∇ log q(z)]

Both are unbiased; Pyro's Trace_ELBO picks one per site: the pathwise gradient when the guide's
distribution has ``rsample``, the score function when it does not (guides/score_function.py). On a
trained VAE, many draws of each gradient with respect to the output layers of the encoder (the μ and σ
heads g, h) give their variance.

Some coordinates have zero variance under both estimators: the weights from the trunk's ReLU units that
are silent (output 0) on every image of the batch. Their gradient is exactly 0 in every draw, so a log
scale cannot show them; the figure marks where they begin and the numbers count them.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common import cli, default_out, mnist, report, save, trained
from pyro_vae.analysis.gradients import gradient_draws, gradient_variance
from pyro_vae.guides.score_function import ScoreFunctionGuide

NUM_DRAWS, BATCH = 200, 32


def main(figures: Path = default_out("reparameterization")) -> dict:
    model, guide = trained("vae", 2)
    x = mnist().test[:BATCH]
    params = [*guide.encoder.mu.parameters(), *guide.encoder.sigma.parameters()]
    pathwise = gradient_draws(model, guide, x, params, NUM_DRAWS, seed=1)
    score = gradient_draws(model, ScoreFunctionGuide(guide.encoder), x, params, NUM_DRAWS, seed=1)

    with torch.no_grad():  # the trunk's ReLU units that output 0 on every image of the batch
        silent = (guide.encoder.trunk(x) == 0).all(0)
        dead = (guide.encoder.trunk(mnist().test) == 0).all(0)
    zero, latent_dim = pathwise.var(0) == 0, guide.encoder.mu.out_features

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    k = int(pathwise.mean(0).abs().argmax())  # the coordinate with the largest mean gradient
    bins = np.linspace(float(score[:, k].min()), float(score[:, k].max()), 50)
    axes[0].hist(score[:, k].numpy(), bins=bins, alpha=0.6, label="score function")
    axes[0].hist(pathwise[:, k].numpy(), bins=bins, alpha=0.8, label="pathwise (reparameterized)")
    axes[0].set_title(f"one gradient coordinate, {NUM_DRAWS} draws")
    axes[0].set_xlabel("∂(−ELBO)/∂θ for that coordinate")
    axes[0].set_ylabel("number of draws")
    axes[0].legend()
    for draws, label in ((score, "score function"), (pathwise, "pathwise")):
        axes[1].plot(np.sort(draws.var(0).numpy())[::-1], label=label)
    nonzero = int((~zero).sum())
    axes[1].axvline(nonzero, color="grey", ls=":", lw=1)
    axes[1].annotate(f"{int(zero.sum())} coordinates: the weights of\n{int(silent.sum())} ReLU units silent on "
                     f"all {BATCH} digits;\ntheir gradient is exactly 0", (nonzero, 1e3), xytext=(-8, 0),
                     textcoords="offset points", ha="right", fontsize=7.5)
    axes[1].set_yscale("log")
    axes[1].set_xlabel(f"parameter of g and h ({len(zero)} in all), sorted by variance")
    axes[1].set_ylabel("variance over draws (log scale)")
    axes[1].legend()
    save(fig, figures / "reparameterization.png")

    standard_error = ((pathwise.var(0) + score.var(0)) / NUM_DRAWS).sqrt()
    agree = ((pathwise.mean(0) - score.mean(0)).abs() <= 3 * standard_error).float().mean()
    variances = {"pathwise": gradient_variance(pathwise), "score_function": gradient_variance(score)}
    return report("reparameterization", {
        "variance": variances, "variance_ratio": variances["score_function"] / variances["pathwise"],
        "means_agree_within_3_standard_errors": float(agree), "coordinates": len(zero),
        "zero_variance_coordinates": int(zero.sum()), "silent_units_on_batch": int(silent.sum()),
        "trunk_units": len(silent), "dead_units_on_test": int(dead.sum()),
        "zero_variance_are_silent_units_weights": bool(torch.equal(zero, _outgoing(silent, latent_dim)))})


def _outgoing(units: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """The mask over (μ-head weight, μ-head bias, σ-head weight, σ-head bias) of the weights from ``units``."""
    weights = units.expand(latent_dim, -1).reshape(-1)
    bias = torch.zeros(latent_dim, dtype=torch.bool)
    return torch.cat([weights, bias, weights, bias])


if __name__ == "__main__":
    cli(main, "reparameterization")
