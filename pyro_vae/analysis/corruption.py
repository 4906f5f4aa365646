"""Denoising: corrupt the input, reconstruct the clean example (§4)."""

from __future__ import annotations

import torch

from pyro_vae.evaluate import encode
from pyro_vae.guides.denoising import corrupt


@torch.no_grad()
def decode_codes(model, guide, x: torch.Tensor) -> torch.Tensor:
    """E[x | z = code of x]: the decoder applied to the guide's code (its mean) for the input x."""
    return model.generate(encode(guide, x))


@torch.no_grad()
def denoising_mse(model, guide, clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Mean over rows of ‖clean − d(e(noisy))‖²: how well a noisy input is mapped back to the clean one."""
    return float((decode_codes(model, guide, noisy) - clean).pow(2).sum(1).mean())


def noisy_copy(x: torch.Tensor, noise: float = 0.0, drop: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A reproducible corrupted copy of x (the same corruption the denoising guide trains on)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return corrupt(x, noise, drop, generator=generator)
