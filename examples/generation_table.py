"""Generation, measured: which settings' decoded draws look like the data (MNIST-5k's digits, Fashion-MNIST)?

    python examples/generation_table.py --out docs/figures   # → generation_mnist-5k.json and .png
    python examples/generation_table.py --out docs/figures --dataset fashion-mnist   # a shorter table
    python examples/generation_table.py --quick              # one epoch per model: a smoke run

Each setting is trained on the training split (one seed, 0) and draws N = 1,000 images in two ways:
  - prior:   x = E[x | z], z ~ p(z) = N(0, I)              (a VAE only: an autoencoder has no prior);
  - mixture: x = E[x | z], z ~ a 10-component Gaussian mixture fitted to the training codes μ(x)
             (the ex-post density of Ghosh et al. 2020, for the VAE and for the autoencoder alike).
Every set of images is measured against the test split by ``pyro_vae.quality.sample_quality`` with the data
set's cached judge (a CNN trained here; its test accuracy is reported): Fréchet distance in the judge's 128-D
feature space, precision and recall (k = 3), the judged rate (p ≥ 0.9) and the classes covered. Controls:
1,000 real training images (the floor) and 1,000 blends (x_a + x_b)/2 of two training images of different
classes. Fashion-MNIST's 60,000 images get the two 16-D settings only, for 8 epochs (each ≤ 3 minutes here).
The numbers go to OUT/generation_DATASET.json; docs/generation.md shows them (checked by tests/test_quality.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import epochs, image_panel, save  # noqa: E402
from pyro_vae import builders, data, quality, runs# noqa: E402
from pyro_vae.analysis import experiment, sampling# noqa: E402
from pyro_vae.evaluate import encode  # noqa: E402
from pyro_vae.train import fit  # noqa: E402

N, SEED, COMPONENTS = 1000, 0, 10
# name → (what it is, its config for runs.build and builders.objective, epochs, learning rate)
SETTINGS = {
    "lecture_c0.1": ("VAE, Gaussian c = 0.1, MLP 256, 8-D (§9's setting)",
                     {"model": "vae", "likelihood": "gaussian", "c": 0.1, "hidden": [256], "latent_dim": 8}, 30, 1e-3),
    "bernoulli_mlp_8": ("VAE, Bernoulli, MLP 512-256, 8-D",
                        {"model": "vae", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 8}, 100, 1e-3),
    "bernoulli_mlp_4": ("VAE, Bernoulli, MLP 512-256, 4-D",
                        {"model": "vae", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 4}, 60, 1e-3),
    "bernoulli_mlp_8_beta2": ("VAE, Bernoulli, MLP 512-256, 8-D, β = 2",
                              {"model": "vae", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 8,
                               "beta": 2.0}, 60, 1e-3),
    "bernoulli_mlp_16": ("VAE, Bernoulli, MLP 512-256, 16-D",
                         {"model": "vae", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 16}, 100, 1e-3),
    "bernoulli_conv_16": ("VAE, Bernoulli, conv, 16-D",
                          {"model": "vae", "likelihood": "bernoulli", "hidden": [256], "latent_dim": 16,
                           "network": "conv"}, 20, 1e-3),
    "autoencoder_16": ("autoencoder, Bernoulli, MLP 512-256, 16-D",
                       {"model": "autoencoder", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 16},
                       100, 1e-3),
}
COLUMNS = ("frechet_distance", "precision", "recall", "digit_rate", "coverage")
# data set → (its settings, epochs instead of theirs or None, what one image is)
TABLES = {"mnist-5k": (list(SETTINGS), None, "digits"),
          "fashion-mnist": (["bernoulli_mlp_16", "autoencoder_16"], 8, "images")}


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> data.Dataset:
    return data.load(name)


def trained(name: str, images: data.Dataset, n_epochs: int | None = None):
    """(model, guide, seconds) of one setting, trained by ``fit`` on the training images (for ``n_epochs``
    instead of the setting's own, when given)."""
    _, config, own_epochs, lr = SETTINGS[name]
    model, guide = experiment.seeded(runs.build, {"shape": list(images.shape), **config}, seed=SEED)
    started = time.perf_counter()
    fit(model, guide, images.train, epochs=epochs(n_epochs or own_epochs), lr=lr, batch_size=128, seed=SEED, device="cpu",
        objective=builders.objective(config), evaluator=None, quiet=True)
    return model.eval(), guide.eval(), time.perf_counter() - started


@torch.no_grad()
def mixture_draws(model, guide, train: torch.Tensor, n: int = N) -> torch.Tensor:
    """E[x | z] for n draws z of a Gaussian mixture fitted to the training codes μ(x) (sklearn, full covariances)."""
    from sklearn.mixture import GaussianMixture

    codes = encode(guide, train).double().numpy()
    mixture = GaussianMixture(COMPONENTS, covariance_type="full", random_state=SEED).fit(codes)
    z, _ = mixture.sample(n)
    return model.generate(torch.as_tensor(z[np.random.default_rng(SEED).permutation(n)], dtype=torch.float32))


def main(out: Path, name: str = "mnist-5k") -> dict:
    torch.set_num_threads(1)
    images_of, (settings, n_epochs, word) = dataset(name), TABLES[name]
    judged = quality.judge(images_of)
    measure = functools.partial(quality.sample_quality, judged, reference=images_of.test)
    numbers = {"dataset": name, "judge_test_accuracy": judged.test_accuracy, "samples": N, "seed": SEED, "rows": {}}
    images = {"real": images_of.train[:N],
              "blends": sampling.blended_digits(images_of.train, images_of.train_labels, N, seed=SEED)}
    rows = numbers["rows"]
    rows["real"] = {"what": f"real training {word} (the floor)", **measure(images["real"])}
    rows["blends"] = {"what": f"blends of two training {word} (control)", **measure(images["blends"])}
    for setting in settings:
        what, config = SETTINGS[setting][:2]
        model, guide, seconds = trained(setting, images_of, n_epochs)
        print(f"  {setting}: trained in {seconds:.0f} s", flush=True)
        draws = {"prior": sampling.prior_draws(model, N, seed=SEED)} if config["model"] == "vae" else {}
        draws["mixture"] = mixture_draws(model, guide, images_of.train)
        if n_epochs:
            what += f", {n_epochs} epochs"
        for how, generated in draws.items():
            rows[f"{setting}/{how}"] = {"what": f"{what}, {how} draws", "train_seconds": seconds,
                                        **measure(generated)}
            images[f"{setting}/{how}"] = generated
    figure(images, rows, images_of.shape, out / f"generation_{name}.png")
    print(table(numbers))
    return numbers


def table(numbers: dict) -> str:
    """The markdown table of docs/generation.md, from generation.json's numbers (the test rebuilds it)."""
    lines = [f"Judge: {numbers['dataset']}'s CNN, {numbers['judge_test_accuracy']:.1%} accuracy on the test split; "
             f"{numbers['samples']:,} images per row, seed {numbers['seed']}.", "",
             "| images | Fréchet distance ↓ | precision ↑ | recall ↑ | judged (p ≥ 0.9) ↑ | classes covered |",
             "|---|---|---|---|---|---|"]
    for name, row in numbers["rows"].items():
        lines.append(f"| {row['what']} | {row['frechet_distance']:.1f} | {row['precision']:.2f} | "
                     f"{row['recall']:.2f} | {row['digit_rate']:.1%} | {row['coverage']:.1f} |")
    return "\n".join(lines)


def figure(images: dict, rows: dict, shape, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(images)
    columns = 4
    lines = (len(names) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 4.8 * lines),
                             layout="constrained", squeeze=False)
    for ax, name in zip(axes.flat, names):
        row = rows[name]
        title = row["what"].replace(", prior", ":\nprior").replace(", mixture", ":\nmixture")
        image_panel(ax, images[name][:36], shape, 6,
                    f"{title}\nFD {row['frechet_distance']:.1f}, judged {row['digit_rate']:.0%}")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    save(fig, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "examples" / "generation_table",
                        help="folder for generation_DATASET.json and .png (default runs/examples/generation_table)")
    parser.add_argument("--dataset", choices=list(TABLES), default="mnist-5k", help="the data (default mnist-5k)")
    parser.add_argument("--quick", action="store_true", help="one epoch per model, to check the script runs")
    args = parser.parse_args()
    if args.quick:
        os.environ["PYRO_VAE_QUICK"] = "1"
    result = main(args.out, args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"generation_{args.dataset}.json").write_text(json.dumps(result, indent=1) + "\n")
