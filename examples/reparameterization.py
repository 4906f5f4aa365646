"""8. The reparameterization trick: pathwise vs score-function gradients of the same ELBO.

    pathwise:        z = μ(x) + σ(x) ε, ε ~ N(0, I)     ∇ E_q[f(z)] = E_ε[∇ f(μ + σ ε)]
    score function:  z ~ q (no gradient through z)      ∇ E_q[f(z)] = E_q[f(z) ∇ log q(z)]

Both are unbiased; Pyro's Trace_ELBO picks one per site: the pathwise gradient when the guide's
distribution has ``rsample``, the score function when it does not (guides/score_function.py). On a
trained VAE, many draws of each gradient with respect to the output layers of the encoder (the μ and σ
heads g, h) give their variance.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common import cli, default_out, mnist, report, trained
from pyro_vae.analysis import gradient_draws, gradient_variance
from pyro_vae.guides.score_function import ScoreFunctionGuide
from pyro_vae.plots import save_figure

NUM_DRAWS, BATCH = 200, 32


def main(figures: Path = default_out("reparameterization")) -> dict:
    model, guide = trained("vae", 2)
    x = mnist().test[:BATCH]
    params = [*guide.encoder.mu.parameters(), *guide.encoder.sigma.parameters()]
    pathwise = gradient_draws(model, guide, x, params, NUM_DRAWS, seed=1)
    score = gradient_draws(model, ScoreFunctionGuide(guide.encoder), x, params, NUM_DRAWS, seed=1)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    k = int(pathwise.mean(0).abs().argmax())  # the coordinate with the largest mean gradient
    bins = np.linspace(float(score[:, k].min()), float(score[:, k].max()), 50)
    axes[0].hist(score[:, k].numpy(), bins=bins, alpha=0.6, label="score function")
    axes[0].hist(pathwise[:, k].numpy(), bins=bins, alpha=0.8, label="pathwise (reparameterized)")
    axes[0].set_title(f"one gradient coordinate, {NUM_DRAWS} draws")
    axes[0].legend(fontsize=8)
    for draws, label in ((score, "score function"), (pathwise, "pathwise")):
        axes[1].plot(np.sort(draws.var(0).numpy())[::-1], label=label)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("parameter of g and h (sorted by variance)")
    axes[1].set_ylabel("variance over draws")
    axes[1].legend(fontsize=8)
    save_figure(fig, figures / "reparameterization.png")

    standard_error = ((pathwise.var(0) + score.var(0)) / NUM_DRAWS).sqrt()
    agree = ((pathwise.mean(0) - score.mean(0)).abs() <= 3 * standard_error).float().mean()
    variances = {"pathwise": gradient_variance(pathwise), "score_function": gradient_variance(score)}
    return report("reparameterization", {
        "variance": variances, "variance_ratio": variances["score_function"] / variances["pathwise"],
        "means_agree_within_3_standard_errors": float(agree)})


if __name__ == "__main__":
    cli(main, "reparameterization")
