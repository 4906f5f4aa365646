"""Matplotlib figures of a trained run: reconstructions, samples, ELBO curves, latent codes, manifold.

Every figure function returns a ``matplotlib.figure.Figure`` and saves it only when given a ``path``, so
in a notebook ``plots.samples(model, shape)`` shows inline. Figures are made with ``Figure()``, not
``pyplot``: importing this module sets no backend and opens no window, and nothing needs closing.
Image grids come from ``torchvision.utils.make_grid``, so any image size and channel count (grey, RGB)
survives. Models provide ``generate(z)`` (E[x|z]); guides are read through their trace (``evaluate.encode``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from pyro_vae.errors import UserError
from pyro_vae.data import Dataset
from pyro_vae.evaluate import Program, encode, reconstruct


def image_grid(images: torch.Tensor, shape: Sequence[int], rows: int) -> np.ndarray:
    """(N, D) rows of images of ``shape`` (C, H, W) → one array for ``imshow``, ``rows`` images high:
    (H', W') for grey, (H', W', 3 or 4) for RGB(A); other channel counts show each channel in grey,
    side by side. Pixels are clipped to [0, 1]; images are separated by a 1-pixel white line."""
    from torchvision.utils import make_grid

    c, h, w = shape if len(shape) == 3 else (1, 1, shape[0])
    images = images.detach().float().cpu().clamp(0, 1).reshape(len(images), c, h, w)
    cols = max(1, math.ceil(len(images) / rows))
    if c in (3, 4):
        return make_grid(images, nrow=cols, padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    grey = images.reshape(len(images) * c, 1, h, w)  # C = 1, or channels side by side
    return make_grid(grey, nrow=cols * c, padding=1, pad_value=1.0)[0].numpy()


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Writes ``fig`` to ``path`` (folders made, atomically: a crash leaves no half file) and returns the path.
    A figure made with pyplot is closed afterwards, so scripts drawing many figures don't pile them up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    pyplot = sys.modules.get("matplotlib.pyplot")  # only if the caller uses pyplot; never imported here
    if pyplot is not None:
        pyplot.close(fig)
    return path


def finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Saves ``fig`` to ``path`` when one is given; returns the figure either way."""
    if path is not None:
        save_figure(fig, path)
    return fig


def show_grid(grid: np.ndarray, title: str, path: str | os.PathLike | None = None,
              inches_per_pixel: float = 1 / 40, xlabel: str = "", ylabel: str = "") -> Figure:
    """An ``image_grid`` array as a figure, pixels in [0, 1] (grey for 2-D arrays, colour for (H, W, 3))."""
    height, width = grid.shape[:2]
    fig = Figure(figsize=(min(10, max(3, width * inches_per_pixel)), min(10, max(1.5, height * inches_per_pixel))))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


def reconstructions(model: Program, guide: Program, x: torch.Tensor, shape: Sequence[int],
                    path: str | os.PathLike | None = None, n: int = 10, sites: tuple[str, str] | None = None) -> Figure:
    """Top row: test inputs x. Bottom row: E[x | z = μ(x)], at the (latent, observed) ``sites`` (default: found
    by role, ``evaluate.reconstruct``)."""
    x = x[:n]
    both = torch.cat([x, reconstruct(model, guide, x, *(sites or ()))])
    return show_grid(image_grid(both, shape, rows=2), "test inputs (top) and reconstructions (bottom)", path,
                     xlabel="test example", ylabel="E[x | μ(x)]    x")


def samples(model: nn.Module, shape: Sequence[int], path: str | os.PathLike | None = None, n: int = 64,
            seed: int = 0) -> Figure:
    """E[x | z] for z ~ p(z) = N(0, I)."""
    images = generate_samples(model, n, seed)
    return show_grid(image_grid(images, shape, rows=max(1, int(np.sqrt(n)))), "decoded draws z ~ N(0, I)", path,
                     xlabel=f"{n} draws, seed {seed}")


@torch.no_grad()
def generate_samples(model: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """(n, D) decoded draws E[x | z], z ~ N(0, I) of ``model.latent_dim`` dimensions, reproducible by ``seed``."""
    param = next(model.parameters())
    generator = torch.Generator(device=param.device).manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=generator, device=param.device, dtype=param.dtype)
    return model.generate(z)


def elbo_curves(metrics: list[dict], path: str | os.PathLike | None = None) -> Figure:
    """Train and test ELBO per example against the epoch."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    epochs = [m["epoch"] for m in metrics]
    for key, label in (("train_elbo", "train"), ("test_elbo", "test")):
        if metrics and key in metrics[0]:
            ax.plot(epochs, [m[key] for m in metrics], marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO per example (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    return finish(fig, path)


def scatter_codes(ax: Axes, codes: np.ndarray, labels: np.ndarray | None, title: str,
                  xlabel: str = "z₁", ylabel: str = "z₂") -> None:
    """2-D codes as points on ``ax``, coloured by integer ``labels`` (tab10, with a legend) when given."""
    colours = None if labels is None else np.asarray(labels)
    points = ax.scatter(codes[:, 0], codes[:, 1], c=colours, cmap=None if labels is None else "tab10",
                        vmin=None if labels is None else 0, vmax=None if labels is None else 9, s=4, alpha=0.7)
    if labels is not None:  # 9 pt, legible on a slide; two tight columns hide few points
        ax.legend(*points.legend_elements(), fontsize=9, markerscale=0.8, loc="best", ncol=2, handletextpad=0.1,
                  columnspacing=0.6, labelspacing=0.25, borderpad=0.3, framealpha=0.7)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def latent(guide: Program, x: torch.Tensor, labels: torch.Tensor | None,
           path: str | os.PathLike | None = None) -> Figure:
    """Test codes μ(x) coloured by label; for more than 2 latent dimensions, their first two principal components."""
    codes = encode(guide, x).detach().cpu().numpy()
    title, axes = "latent codes μ(x)", ("z₁", "z₂")
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes, title, axes = PCA(2).fit_transform(codes), "latent codes μ(x), first two principal components", \
            ("principal component 1", "principal component 2")
    elif codes.shape[1] == 1:
        codes, title, axes = np.c_[codes, np.zeros_like(codes)], "latent codes μ(x) (1-D)", ("z₁", "")
    fig = Figure(figsize=(5, 5))
    scatter_codes(fig.subplots(), codes, None if labels is None else labels.cpu().numpy(), title, *axes)
    return finish(fig, path)


@torch.no_grad()
def manifold_images(model: nn.Module, n: int = 15) -> torch.Tensor:
    """E[x|z] on an n×n grid of z at Normal quantiles, so the grid covers p(z) evenly."""
    param = next(model.parameters())
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n, dtype=torch.float64))
    q = q.to(device=param.device, dtype=param.dtype)
    z = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)
    return model.generate(z)


def manifold(model: nn.Module, shape: Sequence[int], path: str | os.PathLike | None = None, n: int = 15) -> Figure:
    """The decoded manifold of a 2-D latent: E[x|z] on an n×n grid of z at Normal quantiles 0.05 … 0.95."""
    return show_grid(image_grid(manifold_images(model, n), shape, rows=n), "decoded grid of z at Normal quantiles",
                     path, xlabel="z₁ →", ylabel="← z₂")


def all_figures(model: nn.Module, guide: Program, dataset: Dataset, metrics: list[dict], folder: str | os.PathLike) -> list[Path]:
    """The run's figure set into ``folder``; ``manifold.png`` only for a 2-D latent. Returns the paths."""
    folder = Path(folder)
    model, guide = model.cpu().eval(), guide.cpu().eval()
    x, labels = dataset.test[:2000].cpu(), None if dataset.test_labels is None else dataset.test_labels[:2000]
    figures = {"reconstructions.png": lambda path: reconstructions(model, guide, x, dataset.shape, path),
               "samples.png": lambda path: samples(model, dataset.shape, path),
               "elbo.png": lambda path: elbo_curves(metrics, path),
               "latent.png": lambda path: latent(guide, x, labels, path)}
    if model.latent_dim == 2:
        figures["manifold.png"] = lambda path: manifold(model, dataset.shape, path)
    for name, draw in figures.items():
        draw(folder / name)
    return [folder / name for name in figures]


SAMPLE_FILES = {".png": "image grid", ".npy": "array"}  # what ``write_samples`` writes, by suffix


def check_output(path: str | os.PathLike, kinds: dict[str, str] = SAMPLE_FILES) -> Path:
    """An output file's path, checked before any work: a known suffix (``kinds``: suffix → what it holds)
    and an existing folder."""
    path = Path(path)
    if path.suffix not in kinds:
        raise UserError(f"--out {str(path)!r}: write a " + " or a ".join(f"{s} {w}" for s, w in kinds.items()))
    if not path.parent.is_dir():
        raise UserError(f"--out {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return path


def write_samples(images: torch.Tensor, shape: Sequence[int], path: str | os.PathLike, title: str) -> Path:
    """Decoded rows to ``path``: a .npy array of rows, or a .png image grid with ``title``."""
    path = check_output(path)
    if path.suffix == ".npy":
        tmp = path.with_name(f".{path.stem}.tmp.npy")
        np.save(tmp, images.detach().cpu().numpy())
        tmp.replace(path)
    else:
        show_grid(image_grid(images, shape, rows=max(1, int(np.sqrt(len(images))))), title, path)
    return path
