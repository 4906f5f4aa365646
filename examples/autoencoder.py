"""3. An autoencoder is a Pyro program too: a Delta guide and a dropped prior.

    guide:  z = e(x)                         (guides/delta.py)
    model:  p(z) masked out,  x ~ N(d(z), cI)  (models/autoencoder.py)
    −ELBO = ‖x − d(e(x))‖² / 2c + (D/2) log 2πc    per row

Checks that Pyro's Trace_ELBO on the trained pair equals the squared error / 2c plus that constant,
and draws test digits above their reconstructions d(e(x)).
"""

import math
from pathlib import Path

import torch
from pyro.infer import Trace_ELBO

import matplotlib.pyplot as plt

from common import C, cli, default_out, image_panel, mnist, report, save, trained


def main(figures: Path = default_out("autoencoder")) -> dict:
    dataset = mnist()
    model, guide = trained("ae", 2)
    x = dataset.test
    with torch.no_grad():
        svi_loss = float(Trace_ELBO().differentiable_loss(model, guide, x)) / len(x)
        squared_error = float((x - model.decoder(guide.encoder(x))).pow(2).sum(1).mean())
    constant = 0.5 * x.shape[1] * math.log(2 * math.pi * C)
    fig, ax = plt.subplots(figsize=(8, 1.9), layout="constrained")
    with torch.no_grad():
        image_panel(ax, torch.cat([x[:12], model.decoder(guide.encoder(x[:12]))]), dataset.shape, 12,
                    "2-D autoencoder: 12 test digits", row_labels=["x", "d(e(x))"])
    save(fig, figures / "autoencoder.png")
    return report("autoencoder", {"svi_loss_per_example": svi_loss, "mse": squared_error,
                                  "mse_over_2c_plus_constant": squared_error / (2 * C) + constant})


if __name__ == "__main__":
    cli(main, "autoencoder")
