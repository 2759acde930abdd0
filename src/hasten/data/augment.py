"""Batch-wise image augmentation on tensors: random crop with padding, horizontal flip, normalize.

Each function works on a whole uint8 batch (N, C, H, W) on its device at once, with no
per-sample Python, so the data path stays far cheaper than the model step. Randomness
comes from torch's global generator (on the batch's device), which the Trainer seeds and
checkpoints; pass ``generator`` to use another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` on each side and cut a random window of the original size per image."""
    if padding <= 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    where = generator.device if generator is not None else None
    shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=where).to(images.device)
    rows = (shifts[0, :, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (shifts[1, :, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    if p <= 0:
        return images
    where = generator.device if generator is not None else None
    flip = torch.rand(len(images), generator=generator, device=where) < p
    flip = flip.to(images.device)[:, None, None, None]
    return torch.where(flip, images.flip(-1), images)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (or float) images on the 0-255 scale -> float32 ``(x - mean) / std`` per channel."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(shape)
    return (images.float() - mean_t) / std_t


@dataclass(frozen=True)
class Normalize:
    """``transform`` for ``TensorBatches``: normalize inputs, leave targets alone (evaluation data)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return normalize(images, self.mean, self.std), targets


@dataclass(frozen=True)
class ImageAugment:
    """``transform`` for ``TensorBatches``: random crop, random flip, then normalize (training data)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 4
    flip: bool = True

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = random_crop(images, self.crop_padding)
        if self.flip:
            images = random_flip(images)
        return normalize(images, self.mean, self.std), targets
