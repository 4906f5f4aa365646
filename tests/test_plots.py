"""Figures that work in notebooks (returned, saved only when asked, no backend forced) and keep colour."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import pyro_vae
from pyro_vae import cli, plots
from pyro_vae import data as datasets


def test_importing_plots_and_drawing_forces_no_backend():
    """No ``matplotlib.use`` on import, and no pyplot: a notebook keeps its inline backend."""
    code = ("import sys, torch\nfrom pyro_vae import plots\n"
            "fig = plots.elbo_curves([{'epoch': 1, 'train_elbo': -3.0}, {'epoch': 2, 'train_elbo': -2.0}])\n"
            "print(type(fig).__name__, 'matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "module://no.such.backend"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Figure", "False"]


def test_figures_are_returned_and_saved_only_when_given_a_path(tiny_run, digits, tmp_path):
    run = pyro_vae.load(tiny_run)
    x = digits.test[:20]
    figures = {"reconstructions": lambda p: plots.reconstructions(run.model, run.guide, x, digits.shape, p),
               "samples": lambda p: plots.samples(run.model, digits.shape, p, n=9),
               "elbo": lambda p: plots.elbo_curves(run.metrics, p),
               "latent": lambda p: plots.latent(run.guide, x, digits.test_labels[:20], p),
               "manifold": lambda p: plots.manifold(run.model, digits.shape, p, n=5)}
    for name, draw in figures.items():
        before = set(tmp_path.iterdir())
        fig = draw(None)
        assert isinstance(fig, Figure) and set(tmp_path.iterdir()) == before
        for ax in fig.axes:
            if not ax.get_label() == "<colorbar>":
                assert ax.get_xlabel() and ax.get_ylabel() or not ax.get_xticks().size, name  # labelled axes
        path = tmp_path / f"{name}.png"
        assert isinstance(draw(path), Figure) and Image.open(path).size[0] > 100


def test_image_grid_keeps_colour_size_and_channels():
    red = torch.zeros(4, 3, 5, 7)
    red[:, 0] = 1.0
    grid = plots.image_grid(red.reshape(4, -1), (3, 5, 7), rows=2)
    assert grid.shape == (2 * 5 + 3, 2 * 7 + 3, 3)  # 1-pixel white lines between and around the images
    assert np.allclose(grid[1, 1], [1, 0, 0]) and np.allclose(grid[0, 0], [1, 1, 1])
    grey = plots.image_grid(torch.full((6, 12), 0.25), (1, 3, 4), rows=3)
    assert grey.shape == (3 * 3 + 4, 2 * 4 + 3) and grey[1, 1] == 0.25
    two_channels = plots.image_grid(torch.rand(2, 2 * 9), (2, 3, 3), rows=1)
    assert two_channels.shape == (3 + 2, 4 * 3 + 5)  # each example's channels side by side


@pytest.fixture
def colour_folder(tmp_path):
    """24 RGB PNGs of 8×8: a red, green or blue square on black."""
    folder = tmp_path / "colour"
    folder.mkdir()
    for i in range(24):
        image = np.zeros((8, 8, 3), dtype=np.uint8)
        image[2:6, 2:6, i % 3] = 255
        Image.fromarray(image, "RGB").save(folder / f"{i:02d}.png")
    return folder


def test_a_folder_of_rgb_pngs_loads_in_colour(colour_folder):
    d = datasets.load(str(colour_folder))
    assert d.shape == (3, 8, 8) and d.dim == 192
    images = torch.cat([d.train, d.test]).reshape(-1, 3, 8, 8)
    assert set(images[:, :, 3, 3].argmax(-1).tolist()) == {0, 1, 2} and images.amax() == 1.0


def test_a_channels_last_array_loads_channels_first(tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, (10, 6, 5, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    d = datasets.load(str(tmp_path / "x.npy"))
    assert d.shape == (3, 6, 5)
    rows = torch.cat([d.train, d.test]).reshape(-1, 3, 6, 5).numpy()
    assert any(np.allclose(rows[0], x[i].transpose(2, 0, 1)) for i in range(10))


def test_colour_data_trains_and_samples_in_colour(colour_folder, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(colour_folder), "--hidden", "16", "--epochs", "1", "--batch-size",
                     "8", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    assert cli.main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 192)
    assert cli.main(["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    for path in (tmp_path / "s.png", out / "figures" / "reconstructions.png"):
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=int)
        assert np.abs(pixels[..., 0] - pixels[..., 1]).max() > 30, path  # not grey
