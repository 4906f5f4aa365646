"""4. The denoising autoencoder: encode a corrupted x̃, reconstruct the clean x.

    x̃ = m ⊙ x,  m_i ~ Bernoulli(1/2)  (half the pixels erased)     z = e(x̃)     loss ‖x − d(z)‖² / 2c

Only the guide changes (guides/denoising.py wraps the Delta guide; the model still scores the clean x).
Both autoencoders here have a 16-D code; on corrupted test digits the denoising one's output is much
closer to the clean digit. Figure rows: corrupted input, plain AE output, denoising AE output, clean digit.
"""

from pathlib import Path

import torch

import matplotlib.pyplot as plt

from common import DROP, cli, default_out, image_panel, mnist, report, save, trained
from pyro_vae.analysis.corruption import decode_codes, denoising_mse, noisy_copy

LATENT_DIM = 16


def main(figures: Path = default_out("denoising")) -> dict:
    dataset = mnist()
    plain, denoising = trained("ae", LATENT_DIM), trained("dae", LATENT_DIM)
    clean = dataset.test
    noisy = noisy_copy(clean, drop=DROP, seed=1)  # the test corruption is drawn apart from the training one

    rows = [noisy[:10], decode_codes(*plain, noisy[:10]), decode_codes(*denoising, noisy[:10]), clean[:10]]
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    image_panel(ax, torch.cat(rows), dataset.shape, 10, "10 test digits, half of their pixels erased",
                row_labels=["corrupted x̃", "plain AE d(e(x̃))", "denoising AE d(e(x̃))", "clean x"])
    save(fig, figures / "denoising.png")
    return report("denoising", {
        "erased_fraction": DROP,
        "corrupted_input_mse": float((noisy - clean).pow(2).sum(1).mean()),
        "plain_ae_mse_on_corrupted": denoising_mse(*plain, clean, noisy),
        "denoising_ae_mse_on_corrupted": denoising_mse(*denoising, clean, noisy),
        "plain_ae_mse_on_clean": denoising_mse(*plain, clean, clean),
    })


if __name__ == "__main__":
    cli(main, "denoising")
