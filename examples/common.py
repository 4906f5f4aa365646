"""What the lecture's examples share: the data, the command line, and each model trained once.

Every example runs alone and writes where ``--out`` says, by default under runs/:

    python examples/autoencoder.py                        # → runs/examples/autoencoder/
    python examples/autoencoder.py --out /tmp/ae --quick  # one epoch per model: a smoke run

When ``examples/lecture.py`` runs them together, a model that several examples use is trained once. Only
``make figures`` writes into docs/figures (it passes ``--out docs/figures``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path

import torch

from pyro_vae import data, plots, quality, settings
from pyro_vae.analysis import experiment, latent_space
from pyro_vae.analysis.ablation import Handled
from pyro_vae.guides.denoising import DenoisingGuide
from pyro_vae.objectives import Objective, scale_observations

# Small networks: one intra-op thread is as fast as two, and does not fight other processes for the cores.
torch.set_num_threads(1)

RUNS = Path("runs") / "examples"  # the default output folder of every example, relative to where it runs
C = settings.VAESettings.c  # the observation variance c of p(x|z) = N(f(z), cI): `pyro-vae train`'s default
HIDDEN = (256,)    # one hidden layer in e (or g, h) and in d (or f)
DROP = 0.5         # the denoising autoencoder's masking noise: each pixel erased with this probability


def quick() -> bool:
    """A smoke run of the scripts (``--quick``): one epoch per model."""
    return os.environ.get("PYRO_VAE_QUICK") == "1"


def epochs(n: int) -> int:
    return 1 if quick() else n


def default_out(name: str) -> Path:
    """Where example ``name`` writes unless told otherwise: runs/examples/NAME."""
    return RUNS / name


def cli(main, name: str, argv=None) -> dict:
    """The command line of one example: ``--out`` (default runs/examples/NAME) and ``--quick``.

    Runs ``main(out)`` and writes its numbers to ``out/numbers.json`` as ``{name: numbers}``.
    """
    parser = argparse.ArgumentParser(description=f"examples/{name}.py: see its docstring")
    parser.add_argument("--out", type=Path, default=default_out(name),
                        help=f"folder for the figures and numbers.json (default {default_out(name)})")
    parser.add_argument("--quick", action="store_true", help="one epoch per model, to check the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ["PYRO_VAE_QUICK"] = "1"
    numbers = main(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "numbers.json").write_text(json.dumps({name: numbers}, indent=1, default=_plain) + "\n")
    return numbers


@functools.lru_cache(maxsize=None)
def mnist() -> data.Dataset:
    """5,000 real MNIST digits (4,000 train, 1,000 test), offline."""
    return data.load("mnist-5k")


def trained(kind: str, latent_dim: int = 2, c: float = C, n_epochs: int = 30, seed: int = 0):
    """(model, guide) of one of the lecture's models, trained by SVI on MNIST-5k's training rows.

    kind: ``ae`` (Delta guide, no prior), ``linear-ae``, ``dae`` (denoising AE: half the pixels of the
    guide's input erased), ``vae``, ``recon-only`` (VAE without the KL term), ``kl-only`` (VAE without the
    reconstruction term).
    """
    return _trained(kind, int(latent_dim), float(c), int(n_epochs), int(seed))


@functools.lru_cache(maxsize=None)  # keyed on every argument, spelled out, so equal requests share a model
def _trained(kind: str, latent_dim: int, c: float, n_epochs: int, seed: int):
    shape = mnist().shape
    if kind in ("ae", "linear-ae", "dae"):
        model, guide = experiment.seeded(experiment.autoencoder, shape, latent_dim, c, HIDDEN,
                                       linear=kind == "linear-ae", seed=seed)
        if kind == "dae":
            guide = DenoisingGuide(guide, drop=DROP)
    else:
        model, guide = experiment.seeded(experiment.vae, shape, latent_dim, c, HIDDEN, seed=seed)
    objective = Objective(beta=0.0) if kind == "recon-only" else None  # β = 0: the KL term dropped
    trained_model = Handled(model, scale_observations(0.0)) if kind == "kl-only" else model  # log p(x|z) dropped
    lr = 1e-2 if kind == "linear-ae" else 1e-3
    experiment.train(trained_model, guide, mnist().train, epochs=epochs(n_epochs), lr=lr, seed=seed,
                   objective=objective)
    return model.eval(), guide.eval()


def draw_codes(ax, codes: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor, title: str, n: int = 400):
    """μ(x) coloured by digit, and for the first n rows an ellipse of half-widths σ(x): the room q(z|x) takes."""
    import numpy as np
    from matplotlib.collections import EllipseCollection

    plots.scatter_codes(ax, codes.numpy(), labels.numpy(), title)
    ax.set_xlabel("z₁ (first latent coordinate)")
    ax.set_ylabel("z₂")
    if float(sigma.max()) > 0:
        colours = plt_colours(labels[:n])
        ax.add_collection(EllipseCollection(2 * sigma[:n, 0].numpy(), 2 * sigma[:n, 1].numpy(), np.zeros(n),
                                            units="xy", offsets=codes[:n].numpy(), offset_transform=ax.transData,
                                            facecolors=colours, alpha=0.08))


def compact_png(path: Path) -> Path:
    """Re-saves a PNG with a 256-colour palette: translucent ellipses blend into many colours otherwise."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def plt_colours(labels: torch.Tensor):
    import matplotlib

    return matplotlib.colormaps["tab10"](labels.numpy() % 10)


def report(title: str, numbers: dict) -> dict:
    """Prints an example's numbers as one JSON line, so anyone can rerun and compare them."""
    print(f"{title}: {json.dumps(numbers, default=_plain)}")
    return numbers


def _plain(value):
    """JSON for tensors and NumPy numbers."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return float(value)


@functools.lru_cache(maxsize=None)
def classifier():
    """The held-out judge of decoded images (see ``latent_space.digit_classifier``)."""
    dataset = mnist()
    return latent_space.digit_classifier(dataset.train, dataset.train_labels)


@functools.lru_cache(maxsize=None)
def judge():
    """The judge of generated images: ``quality.judge``'s CNN for MNIST-5k (its 4,000 training digits, with a
    "no digit" class), trained once and cached, so the lecture and `pyro-vae evaluate --samples` judge with one
    network. Its accuracy on the 1,000 test digits is reported."""
    return quality.judge(mnist())


LEGEND_POINTS = 9  # the smallest legend text that a slide shows legibly


def save(fig, path: Path) -> Path:
    """Writes a matplotlib figure to ``path`` (a .png, creating its folder) and the same figure as an SVG beside
    it, for slides, then closes it. A legend in smaller type than ``LEGEND_POINTS`` is refused."""
    import matplotlib.pyplot as plt

    small = [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()
             if text.get_fontsize() < LEGEND_POINTS]
    if small:
        plt.close(fig)
        raise ValueError(f"{Path(path).name}: legend text under {LEGEND_POINTS} pt ({small[:3]}): drop its fontsize")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    with plt.rc_context({"svg.hashsalt": "pyro-vae", "svg.fonttype": "none"}):  # same figure, same file
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return path


def image_panel(ax, images: torch.Tensor, shape, nrow: int, title: str, row_labels=None, column_labels=None) -> None:
    """Rows of pixels drawn as one grid of images (torchvision's make_grid), nrow images per row, titled;
    optional labels name the rows (on the left) and the columns (below)."""
    from torchvision.utils import make_grid

    images = images.detach().cpu().clamp(0, 1).reshape(-1, *shape)
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    height, width = shape[-2] + 2, shape[-1] + 2  # one image and its padding
    ax.set_yticks([2 + height * i + shape[-2] / 2 for i in range(len(row_labels or []))], row_labels or [],
                  fontsize=8)
    ax.set_xticks([2 + width * i + shape[-1] / 2 for i in range(len(column_labels or []))], column_labels or [],
                  fontsize=8)
    ax.tick_params(length=0)


@functools.lru_cache(maxsize=None)
def generator(setting: str, seed: int = 0):
    """(model, guide) of a setting of examples/generation_table.py (e.g. ``mixture_prior_8``, the VAE with a
    learned mixture prior), trained on MNIST-5k's training digits with ``seed``: once per process, so
    generation.py and generation_quality.py share it under examples/lecture.py."""
    import generation_table  # a sibling example; it imports this module, so not at the top

    model, guide, _ = generation_table.trained(setting, mnist(), seed)
    return model, guide
