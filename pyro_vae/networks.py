"""The function approximators e, d of the lecture: an MLP, and a small CNN for 28x28 images.

Networks are plain ``nn.Module`` s. Pyro programs in ``models/`` and ``guides/`` own them, so
``parameters()`` and ``state_dict()`` cover everything a torch optimizer and a checkpoint need.
"""

from __future__ import annotations

import math

from torch import nn

from pyro_vae.errors import UserError


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int | None = None) -> nn.Sequential:
    """Linear layers with ReLU in between; with ``out_dim`` the last layer stays linear."""
    sizes = [in_dim, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    if out_dim is not None:
        layers.append(nn.Linear(sizes[-1], out_dim))
    return nn.Sequential(*layers)


def _check_conv_shape(shape) -> tuple[int, int, int]:
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise UserError(f"--network conv needs images whose height and width divide by 4 (e.g. 28x28), "
                        f"got shape {tuple(shape)}; use --network mlp")
    return tuple(shape)


def conv_trunk(shape, hidden: int) -> nn.Sequential:
    """Image rows → features: two stride-2 convolutions (H/4 x W/4 x 64), then a linear layer."""
    c, h, w = _check_conv_shape(shape)
    return nn.Sequential(
        nn.Unflatten(1, (c, h, w)),
        nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
    )


def conv_decoder(latent_dim: int, shape, hidden: int) -> nn.Sequential:
    """Codes → image rows (pre-activation f(z)): the mirror image of :func:`conv_trunk`."""
    c, h, w = _check_conv_shape(shape)
    return nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(),
        nn.Linear(hidden, 64 * (h // 4) * (w // 4)), nn.ReLU(),
        nn.Unflatten(1, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        nn.Flatten(),
    )


def data_dim(shape) -> int:
    """Values per example: prod(shape)."""
    return math.prod(shape)
