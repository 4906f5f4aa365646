"""7. The role of c in p(x|z) = N(f(z), cI).

    −ELBO = E_q ‖x − f(z)‖² / 2c + KL(q(z|x) ‖ p(z)) + const

c divides the reconstruction term only, so a larger c puts more weight on the KL regularizer: the
codes carry less information about x (KL falls) and reconstructions get worse (error rises).
Trains one VAE with an 8-D code per c (with 2 dimensions the bottleneck, not c, sets the error) and
plots the test reconstruction error ‖x − f(μ(x))‖² and the KL against c.
"""

from pathlib import Path

import matplotlib.pyplot as plt

from common import cli, default_out, mnist, report, save, trained
from pyro_vae.analysis.ablation import elbo_terms


CS = (0.01, 0.03, 0.1, 0.3, 1.0)
LATENT_DIM = 8


def main(figures: Path = default_out("role_of_c")) -> dict:
    x = mnist().test
    rows = {c: elbo_terms(*trained("vae", LATENT_DIM, c), x) for c in CS}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(CS, [rows[c]["mse"] for c in CS], "o-", color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("c (observation variance)")
    ax.set_ylabel("reconstruction error ‖x − f(μ(x))‖²", color="tab:blue")
    twin = ax.twinx()
    twin.plot(CS, [rows[c]["kl"] for c in CS], "s-", color="tab:red")
    twin.set_ylabel("KL(q ‖ p(z)) (nats)", color="tab:red")
    ax.set_title("larger c: more weight on the KL term")
    save(fig, figures / "role_of_c.png")
    return report("role of c", {str(c): {k: rows[c][k] for k in ("mse", "kl", "sigma")} for c in CS})


if __name__ == "__main__":
    cli(main, "role_of_c")
