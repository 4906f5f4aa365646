"""The denoising autoencoder's guide: encode a corrupted x̃, while the model still scores the clean x.

    x̃ = m ⊙ (x + noise · ε),   ε ~ N(0, I),  m_i ~ Bernoulli(1 − drop)   (Gaussian and/or masking noise)
    q(z | x̃)                    any guide, here read on x̃

The ELBO's reconstruction term is then log p(x | z) with z from x̃: the code must carry what is
common to x and its corruptions, so the decoder learns to undo the noise.
"""

from __future__ import annotations

import torch
from torch import nn


def corrupt(x: torch.Tensor, noise: float = 0.0, drop: float = 0.5,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """x + noise·ε with ε ~ N(0, I), then each value erased (set to 0) with probability ``drop``."""
    noisy = x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if noise else x
    if drop > 0:
        keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= drop
        noisy = noisy * keep
    return noisy


class DenoisingGuide(nn.Module):
    """guide(x) = inner_guide(x̃) while training; in eval mode the guide reads the input it is given."""

    def __init__(self, guide: nn.Module, noise: float = 0.0, drop: float = 0.5):
        super().__init__()
        self.guide, self.noise, self.drop = guide, float(noise), float(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The inner guide on a corrupted copy x̃ of x in training, on x itself in eval mode."""
        return self.guide(corrupt(x, self.noise, self.drop) if self.training else x)
