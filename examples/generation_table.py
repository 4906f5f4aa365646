"""Generation, measured: which settings' decoded draws look like the data (MNIST-5k's digits, Fashion-MNIST)?

    python examples/generation_table.py --out docs/figures   # → generation_mnist-5k.json, .png, _gap.png
    python examples/generation_table.py --out docs/figures --dataset fashion-mnist   # three settings, 8 epochs
    python examples/generation_table.py --out docs/figures --only mixture_prior_8 --seeds 0   # a part of the grid
    python examples/generation_table.py --quick --out /tmp/g # one epoch per model: a smoke run

Each setting is trained on the training split with seeds 0, 1 and 2, and draws N = 1,000 images in two ways:
  - prior:   x = E[x | z], z ~ p(z): N(0, I), or the learned mixture p(z) = Σ_k π_k N(m_k, diag s_k²) of
             models/mixture_prior.py (an autoencoder has no prior);
  - mixture: x = E[x | z], z ~ a 10-component Gaussian mixture fitted to the training codes μ(x) after
             training (the ex-post density of Ghosh et al. 2020, for the VAE and for the autoencoder alike).
Every set of images is measured against the test split by ``pyro_vae.quality.sample_quality`` with the data
set's cached judge (a CNN trained here; its test accuracy is reported): Fréchet distance in the judge's 128-D
feature space, precision and recall (k = 3), the judged rate (p ≥ 0.9) and the classes covered. Controls:
1,000 real training images (the floor) and 1,000 blends (x_a + x_b)/2 of two training images of different
classes, drawn with each seed. The table gives the mean over seeds and the [min, max] interval.

The grid varies one axis at a time around the Bernoulli MLP VAE with an 8-D code: likelihood (the lecture's
Gaussian c = 0.1, learned σ), network (conv), latent size (2, 16, 32), β (2), each for 100 epochs; and the
prior (N(0, I) against a learned mixture, with β = 1 and 2) for 300 epochs. Fashion-MNIST's 60,000 images get
the lecture's setting, the learned-prior VAE and the autoencoder, 8 epochs each.
Each finished (setting, seed) is written to OUT/generation_DATASET.json at once (under a lock, so processes
given different ``--only`` settings can share the file); a rerun keeps the finished ones (``--fresh`` starts
over), so a killed run loses one model. Trained states, the figure's images (seed 0) and the 2-D codes of the
gap figure wait in WORK (default runs/examples/generation_table). docs/generation.md shows the numbers
(checked by tests/test_quality.py).
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import epochs, image_panel, save  # noqa: E402
from pyro_vae import builders, data, plots, quality, runs  # noqa: E402
from pyro_vae.analysis import experiment, sampling  # noqa: E402
from pyro_vae.evaluate import encode  # noqa: E402
from pyro_vae.models.mixture_prior import MixturePriorVAE  # noqa: E402
from pyro_vae.train import fit  # noqa: E402

N, SEEDS, COMPONENTS, FIGURE_IMAGES = 1000, (0, 1, 2), 10, 36
BERNOULLI = {"model": "vae", "likelihood": "bernoulli", "hidden": [512, 256], "latent_dim": 8}
# name → (what it is, its config for runs.build and builders.objective, epochs); "prior_components": K makes the
# prior a learned mixture of K Gaussians (models/mixture_prior.py)
SETTINGS = {
    "lecture_c0.1": ("VAE, Gaussian c = 0.1, MLP 256, 8-D (§9's setting)",
                     {"model": "vae", "likelihood": "gaussian", "c": 0.1, "hidden": [256], "latent_dim": 8}, 30),
    # one axis at a time around the Bernoulli MLP with an 8-D code, 100 epochs each
    "bernoulli_mlp_8_short": ("VAE, Bernoulli, MLP 512-256, 8-D", BERNOULLI, 100),
    "learned_sigma_8": ("VAE, Gaussian learned σ, MLP 512-256, 8-D",
                        {**BERNOULLI, "likelihood": "gaussian-learned", "c": 1.0}, 100),
    "bernoulli_mlp_2": ("VAE, Bernoulli, MLP 512-256, 2-D", {**BERNOULLI, "latent_dim": 2}, 100),
    "bernoulli_mlp_16": ("VAE, Bernoulli, MLP 512-256, 16-D", {**BERNOULLI, "latent_dim": 16}, 100),
    "bernoulli_mlp_32": ("VAE, Bernoulli, MLP 512-256, 32-D", {**BERNOULLI, "latent_dim": 32}, 100),
    "bernoulli_mlp_8_beta2": ("VAE, Bernoulli, MLP 512-256, 8-D, β = 2", {**BERNOULLI, "beta": 2.0}, 100),
    "bernoulli_conv_16": ("VAE, Bernoulli, conv, 16-D",
                          {**BERNOULLI, "hidden": [256], "latent_dim": 16, "network": "conv"}, 10),
    # the prior: N(0, I) against a learned mixture (with β = 1 and 2), 300 epochs each; the autoencoder, 100
    "bernoulli_mlp_8": ("VAE, Bernoulli, MLP 512-256, 8-D", BERNOULLI, 300),
    "mixture_prior_8": ("VAE, Bernoulli, MLP 512-256, 8-D, learned mixture prior (K = 10)",
                        {**BERNOULLI, "prior_components": 10}, 300),
    "mixture_prior_8_beta2": ("VAE, Bernoulli, MLP 512-256, 8-D, β = 2, learned mixture prior (K = 10)",
                              {**BERNOULLI, "prior_components": 10, "beta": 2.0}, 300),
    "autoencoder_16": ("autoencoder, Bernoulli, MLP 512-256, 16-D",
                       {**BERNOULLI, "model": "autoencoder", "latent_dim": 16}, 100),
}
COLUMNS = ("frechet_distance", "precision", "recall", "digit_rate", "coverage")
# data set → (its settings, epochs instead of theirs or None, what one image is)
TABLES = {"mnist-5k": (list(SETTINGS), None, "digits"),
          "fashion-mnist": (["lecture_c0.1", "mixture_prior_8", "autoencoder_16"], 8, "images")}
WORK = Path("runs") / "examples" / "generation_table"  # trained states and the figures' images, between runs
GAP_SETTING = "bernoulli_mlp_2"  # the 2-D VAE whose codes show the gap between N(0, I) and the data


@functools.lru_cache(maxsize=None)
def dataset(name: str) -> data.Dataset:
    return data.load(name)


def build(config: dict, shape) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, guide) of a setting: ``runs.build``'s, with the prior made a learned mixture when the config asks."""
    model, guide = runs.build({"shape": list(shape), **config})
    if config.get("prior_components"):
        model = MixturePriorVAE(model.decoder, model.latent_dim, model.likelihood, config["prior_components"])
    return model, guide


def trained(name: str, images: data.Dataset, seed: int, n_epochs: int | None = None, work: Path = WORK):
    """(model, guide, seconds) of one setting, trained by ``fit`` on the training images with ``seed`` (for
    ``n_epochs`` instead of the setting's own, when given). The trained states are kept in WORK/models, and a
    later call (this script resumed, or examples/generation.py) reads them instead of training again."""
    _, config, own_epochs = SETTINGS[name]
    model, guide = experiment.seeded(build, config, images.shape, seed=seed)
    n_epochs = epochs(n_epochs or own_epochs)
    # the file's name holds the config's digest too: a setting whose config was edited trains again
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    kept = work / "models" / f"{images.name}-{name}-{digest}-seed{seed}-{n_epochs}epochs.pt"
    if kept.exists():
        states = torch.load(kept, weights_only=True)
        model.load_state_dict(states["model"]), guide.load_state_dict(states["guide"])
        return model.eval(), guide.eval(), states["seconds"]
    started = time.perf_counter()
    fit(model, guide, images.train, epochs=n_epochs, lr=1e-3, batch_size=128, seed=seed,
        device="cpu", objective=builders.objective(config), evaluator=None, quiet=True)
    seconds = time.perf_counter() - started
    kept.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "guide": guide.state_dict(), "seconds": seconds}, kept)
    return model.eval(), guide.eval(), seconds


@torch.no_grad()
def mixture_draws(model, guide, train: torch.Tensor, n: int = N, seed: int = 0) -> torch.Tensor:
    """E[x | z] for n draws z of a Gaussian mixture fitted to the training codes μ(x) (sklearn, full covariances)."""
    from sklearn.mixture import GaussianMixture

    codes = encode(guide, train).double().numpy()
    mixture = GaussianMixture(COMPONENTS, covariance_type="full", random_state=seed).fit(codes)
    z, _ = mixture.sample(n)  # sorted by component: shuffled, so a figure's first images show every one
    return model.generate(torch.as_tensor(z[np.random.default_rng(seed).permutation(n)], dtype=torch.float32))


def summary(per_seed: dict) -> dict:
    """Mean, min and max of each column over the seeds."""
    return {column: {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values))}
            for column in COLUMNS for values in [[row[column] for row in per_seed.values()]]}


def main(out: Path, name: str = "mnist-5k", work: Path | None = None, fresh: bool = False,
         only: list[str] | None = None, seeds: list[int] | None = None) -> dict:
    torch.set_num_threads(1)
    work = work or WORK
    images_of, (settings, n_epochs, word) = dataset(name), TABLES[name]
    path, kept = out / f"generation_{name}.json", work / f"images_{name}.pt"

    def stored() -> dict:
        """What the JSON file holds, if it was written with this script's samples and seeds."""
        numbers = {} if fresh or not path.exists() else json.loads(path.read_text())
        return numbers if numbers.get("samples") == N and numbers.get("seeds") == list(SEEDS) else {}

    numbers = stored()
    judged = quality.judge(images_of)
    numbers.update({"dataset": name, "judge_test_accuracy": judged.test_accuracy, "samples": N,
                    "seeds": list(SEEDS)})
    rows = numbers.setdefault("rows", {})
    figures = torch.load(kept) if kept.exists() and not fresh else {}
    measure = functools.partial(quality.sample_quality, judged, reference=images_of.test)

    def record(row: str, what: str, seed: int, generated: torch.Tensor, **extra) -> None:
        entry = rows.setdefault(row, {"what": what, "per_seed": {}})
        entry["what"] = what
        entry["per_seed"][str(seed)] = {**extra, **measure(generated)}
        entry["summary"] = summary(entry["per_seed"])
        if seed == SEEDS[0]:
            figures[row] = generated[:FIGURE_IMAGES].clone()

    def written() -> None:
        # merged with what another process (``--only`` other settings) wrote meanwhile, then replaced atomically;
        # the lock keeps two processes from reading the same file and each writing it without the other's row
        work.mkdir(parents=True, exist_ok=True)
        with open(work / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged()

    def merged() -> None:
        for row, entry in stored().get("rows", {}).items():
            mine = rows.setdefault(row, entry)
            mine["per_seed"] = {**entry["per_seed"], **mine["per_seed"]}
            mine["summary"] = summary(mine["per_seed"])
        if kept.exists() and not fresh:
            figures.update({k: v for k, v in torch.load(kept).items() if k not in figures})
        out.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        for target, write in ((path, lambda f: f.write_text(json.dumps(numbers, indent=1) + "\n")),
                              (kept, lambda f: torch.save(figures, f))):
            partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            write(partial)
            partial.replace(target)

    for seed in SEEDS:
        if str(seed) not in rows.get("blends", {}).get("per_seed", {}):
            real = images_of.train[torch.randperm(len(images_of.train), generator=torch.Generator().manual_seed(seed))[:N]]
            record("real", f"real training {word} (the floor)", seed, real)
            record("blends", f"blends of two training {word} (control)", seed,
                   sampling.blended_digits(images_of.train, images_of.train_labels, N, seed=seed))
    written()
    chosen = settings if not only else [s for s in only if s in settings]
    for seed, setting in [(seed, setting) for seed in seeds or SEEDS for setting in chosen]:  # every setting once first
        what, config, own_epochs = SETTINGS[setting]
        what += f", {epochs(n_epochs or own_epochs)} epochs"  # 1 under --quick
        hows = ("prior", "mixture") if config["model"] == "vae" else ("mixture",)
        if all(str(seed) in rows.get(f"{setting}/{how}", {}).get("per_seed", {}) for how in hows):
            continue
        model, guide, seconds = trained(setting, images_of, seed, n_epochs, work)
        print(f"  {setting}, seed {seed}: trained in {seconds:.0f} s", flush=True)
        if "prior" in hows:
            record(f"{setting}/prior", f"{what}, prior draws", seed, sampling.prior_draws(model, N, seed=seed),
                   train_seconds=seconds)
        record(f"{setting}/mixture", f"{what}, mixture draws", seed,
               mixture_draws(model, guide, images_of.train, seed=seed), train_seconds=seconds)
        if setting == GAP_SETTING and seed == SEEDS[0]:
            figures["gap_codes"] = encode(guide, images_of.train)
        written()
    order = ["real", "blends", *(f"{s}/{how}" for s in settings for how in ("prior", "mixture"))]
    numbers["rows"] = {row: rows[row] for row in order if row in rows}
    written()
    figure(figures, numbers["rows"], images_of.shape, out / f"generation_{name}.png")
    if "gap_codes" in figures:
        gap_figure(figures["gap_codes"], images_of.train_labels, out / f"generation_{name}_gap.png")
    print(table(numbers))
    return numbers


def cell(stats: dict, form: str) -> str:
    """One measure over the seeds: the mean and [min, max]."""
    return f"{stats['mean']:{form}} [{stats['min']:{form}}, {stats['max']:{form}}]"


def table(numbers: dict) -> str:
    """The markdown table of docs/generation.md, from generation.json's numbers (the test rebuilds it)."""
    lines = [f"Judge: {numbers['dataset']}'s CNN, {numbers['judge_test_accuracy']:.1%} accuracy on the test split; "
             f"{numbers['samples']:,} images per row and seed; each cell: the mean over the row's seeds [min, max].",
             "", "| images | seeds | Fréchet distance ↓ | precision ↑ | recall ↑ | judged (p ≥ 0.9) ↑ | classes covered |",
             "|---|---|---|---|---|---|---|"]
    for row in numbers["rows"].values():
        s, seeds = row["summary"], ", ".join(sorted(row["per_seed"]))
        lines.append(f"| {row['what']} | {seeds} | {cell(s['frechet_distance'], '.1f')} | {cell(s['precision'], '.2f')} | "
                     f"{cell(s['recall'], '.2f')} | {cell(s['digit_rate'], '.1%')} | {cell(s['coverage'], '.1f')} |")
    return "\n".join(lines)


def figure(images: dict, rows: dict, shape, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = [name for name in rows if name in images]
    columns = 4
    lines = (len(names) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 4.8 * lines),
                             layout="constrained", squeeze=False)
    for ax, name in zip(axes.flat, names):
        row, seed = rows[name], rows[name]["per_seed"]["0"]
        title = row["what"].replace(", prior", ":\nprior").replace(", mixture", ":\nmixture")
        title = title.replace(", learned mixture", ",\nlearned mixture")
        image_panel(ax, images[name][:FIGURE_IMAGES], shape, 6,
                    f"{title}\nseed 0: FD {seed['frechet_distance']:.1f}, judged {seed['digit_rate']:.0%}")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    save(fig, path)


def gap_figure(codes: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """The 2-D VAE's training codes μ(x), coloured by class, over the contours of N(0, I)'s density: where the
    prior puts mass and no code lies, a prior draw decodes to no digit."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6.5), layout="constrained")
    plots.scatter_codes(ax, codes.numpy(), labels.numpy(),
                        "codes μ(x) of the 4,000 training digits (2-D Bernoulli VAE, seed 0)\n"
                        "over N(0, I): contours hold 39%, 86%, 99% of the prior's mass",
                        xlabel="z₁", ylabel="z₂")
    grid = np.linspace(-4, 4, 201)
    z1, z2 = np.meshgrid(grid, grid)
    density = np.exp(-(z1 ** 2 + z2 ** 2) / 2) / (2 * np.pi)
    radii = np.array([3.0, 2.0, 1.0])  # a 2-D N(0, I) holds 1 − exp(−r²/2) of its mass within radius r
    ax.contour(z1, z2, density, levels=np.exp(-radii ** 2 / 2) / (2 * np.pi), colors="black", linewidths=1)
    ax.set_xlim(-4, 4)
    ax.set_ylim(-4, 4)
    ax.set_aspect("equal")
    save(fig, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "examples" / "generation_table",
                        help="folder for generation_DATASET.json and .png (default runs/examples/generation_table)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the figure's images between runs (default runs/examples/generation_table)")
    parser.add_argument("--dataset", choices=list(TABLES), default="mnist-5k", help="the data (default mnist-5k)")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="train only these settings now")
    parser.add_argument("--seeds", nargs="+", type=int, choices=SEEDS, help="train only these seeds now")
    parser.add_argument("--fresh", action="store_true", help="start over instead of keeping finished settings")
    parser.add_argument("--quick", action="store_true", help="one epoch per model, to check the script runs")
    args = parser.parse_args()
    if args.quick:
        os.environ["PYRO_VAE_QUICK"] = "1"
    main(args.out, args.dataset, args.work, args.fresh, args.only, args.seeds)
