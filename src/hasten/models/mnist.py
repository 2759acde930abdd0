"""A small convolutional network for MNIST: two conv-BN-ReLU-pool stages and a linear head.

Sized so that two epochs on two CPU cores take well under a minute and reach about 99%.
"""

from __future__ import annotations

import torch
from torch import nn


class MnistCNN(nn.Module):
    """28x28x1 -> conv(c1) -> pool -> conv(c2) -> pool -> 7x7xc2 -> linear(hidden) -> linear(10)."""

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
