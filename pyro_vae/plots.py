"""Matplotlib figures of a trained run: reconstructions, samples, ELBO curves, latent codes, manifold.

Figure functions take tensors and a path and return the path; ``all_figures`` draws a run's set.
Models provide ``generate(z)`` (E[x|z]); guides are read through their trace (``evaluate.encode``).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pyro_vae.evaluate import encode, reconstruct  # noqa: E402


def image_grid(images: torch.Tensor, shape, rows: int) -> np.ndarray:
    """(N, D) rows → one (rows·H, cols·W) array for ``imshow``."""
    c, h, w = shape if len(shape) == 3 else (1, 1, shape[0])
    images = images.detach().float().cpu().clamp(0, 1).reshape(len(images), c, h, w)[:, 0]
    cols = int(np.ceil(len(images) / rows))
    grid = np.ones((rows * h, cols * w), dtype=np.float32)
    for i, im in enumerate(images.numpy()):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = im
    return grid


def save_figure(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def show_grid(grid: np.ndarray, title: str, path, inches_per_pixel: float = 1 / 40):
    height, width = grid.shape
    fig, ax = plt.subplots(figsize=(min(10, max(3, width * inches_per_pixel)), min(10, max(1.5, height * inches_per_pixel))))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return save_figure(fig, path)


def reconstructions(model, guide, x: torch.Tensor, shape, path, n: int = 10):
    """Top row: test inputs x. Bottom row: E[x | z = μ(x)]."""
    x = x[:n]
    both = torch.cat([x, reconstruct(model, guide, x)])
    return show_grid(image_grid(both, shape, rows=2), "test inputs (top) and reconstructions (bottom)", path)


def samples(model, shape, path, n: int = 64, seed: int = 0):
    """E[x | z] for z ~ p(z) = N(0, I)."""
    images = generate_samples(model, n, seed)
    return show_grid(image_grid(images, shape, rows=int(np.sqrt(n))), "decoded draws z ~ N(0, I)", path)


@torch.no_grad()
def generate_samples(model, n: int, seed: int = 0) -> torch.Tensor:
    param = next(model.parameters())
    generator = torch.Generator(device=param.device).manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=generator, device=param.device, dtype=param.dtype)
    return model.generate(z)


def elbo_curves(metrics: list[dict], path):
    """Train and test ELBO per example against the epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = [m["epoch"] for m in metrics]
    for key, label in (("train_elbo", "train"), ("test_elbo", "test")):
        if metrics and key in metrics[0]:
            ax.plot(epochs, [m[key] for m in metrics], marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO per example (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def scatter_codes(ax, codes: np.ndarray, labels, title: str):
    colours = None if labels is None else np.asarray(labels)
    points = ax.scatter(codes[:, 0], codes[:, 1], c=colours, cmap="tab10", s=4, alpha=0.7)
    if labels is not None:
        ax.legend(*points.legend_elements(), fontsize=6, markerscale=0.7, loc="best")
    ax.set_title(title)


def latent(guide, x: torch.Tensor, labels, path):
    """Test codes μ(x) coloured by label; for more than 2 latent dimensions, their first two principal components."""
    codes = encode(guide, x).detach().cpu().numpy()
    title = "latent codes μ(x)"
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes, title = PCA(2).fit_transform(codes), "latent codes μ(x), first two principal components"
    elif codes.shape[1] == 1:
        codes, title = np.c_[codes, np.zeros_like(codes)], "latent codes μ(x) (1-D)"
    fig, ax = plt.subplots(figsize=(5, 5))
    scatter_codes(ax, codes, None if labels is None else labels.cpu().numpy(), title)
    return save_figure(fig, path)


@torch.no_grad()
def manifold_images(model, n: int = 15) -> torch.Tensor:
    """E[x|z] on an n×n grid of z at Normal quantiles, so the grid covers p(z) evenly."""
    param = next(model.parameters())
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n, dtype=torch.float64))
    q = q.to(device=param.device, dtype=param.dtype)
    z = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)
    return model.generate(z)


def manifold(model, shape, path, n: int = 15):
    return show_grid(image_grid(manifold_images(model, n), shape, rows=n),
                     "decoded grid of z at Normal quantiles", path)


def all_figures(model, guide, dataset, metrics, folder) -> list[Path]:
    """The run's figure set; ``manifold.png`` only for a 2-D latent and image data."""
    folder = Path(folder)
    model, guide = model.cpu().eval(), guide.cpu().eval()
    x, labels = dataset.test[:2000].cpu(), None if dataset.test_labels is None else dataset.test_labels[:2000]
    paths = [reconstructions(model, guide, x, dataset.shape, folder / "reconstructions.png"),
             samples(model, dataset.shape, folder / "samples.png"),
             elbo_curves(metrics, folder / "elbo.png"),
             latent(guide, x, labels, folder / "latent.png")]
    if model.latent_dim == 2:
        paths.append(manifold(model, dataset.shape, folder / "manifold.png"))
    return paths
