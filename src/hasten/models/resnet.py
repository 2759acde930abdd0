"""A ResNet-style CIFAR network with configurable widths and depth.

The layout follows the small "ResNet-9" family that won DAWNBench on CIFAR-10: a stem
convolution, then stages that each widen with a convolution, halve the resolution with a
max-pool and optionally add residual blocks. Pooling early keeps most convolutions on small
feature maps, which is what makes this shape fast on a CPU. Every part is a plain
``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.ReLU`` / ``nn.MaxPool2d`` / ``nn.Linear`` and every
residual block is a ``ResidualBlock``, so surgery methods can find them by type.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ConvBN(nn.Sequential):
    """3x3 convolution (no bias: BatchNorm supplies it), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two ``ConvBN`` layers with an identity shortcut: ``x + f(x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(channels, channels)
        self.conv2 = ConvBN(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class Stage(nn.Module):
    """Widen with a ``ConvBN`` and halve the resolution, then ``blocks`` residual blocks.

    ``downsample="pool"`` convolves at full resolution then max-pools (ResNet-9);
    ``"stride"`` uses a stride-2 convolution instead (ResNet), a quarter of the work.
    """

    def __init__(self, in_channels: int, out_channels: int, blocks: int, downsample: str = "pool") -> None:
        super().__init__()
        if downsample not in ("pool", "stride"):
            raise ValueError(f"downsample must be 'pool' or 'stride', not {downsample!r}")
        self.conv = ConvBN(in_channels, out_channels, stride=2 if downsample == "stride" else 1)
        self.pool = nn.MaxPool2d(2) if downsample == "pool" else nn.Identity()
        self.blocks = nn.Sequential(*(ResidualBlock(out_channels) for _ in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pool(self.conv(x)))


class CifarResNet(nn.Module):
    """``stem`` channels, then one ``Stage`` per entry of ``widths`` with ``blocks[i]`` residual blocks.

    The defaults (16 -> 32/64/128, residual blocks in the first and last stage) are the
    ResNet-9 layout at a quarter of its width. The head is a global max-pool and a linear
    classifier. ``downsample`` is how the stages halve the resolution (see ``Stage``): one
    mode for all, or one per stage.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128),
        blocks: Sequence[int] = (1, 0, 1),
        stem: int = 16,
        classes: int = 10,
        in_channels: int = 3,
        downsample: str | Sequence[str] = "pool",
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {tuple(widths)} and blocks {tuple(blocks)} must have the same length")
        modes = [downsample] * len(widths) if isinstance(downsample, str) else list(downsample)
        if len(modes) != len(widths):
            raise ValueError(f"downsample {tuple(modes)} needs one entry per stage ({len(widths)})")
        self.stem = ConvBN(in_channels, stem)
        stages, channels = [], stem
        for width, count, mode in zip(widths, blocks, modes):
            stages.append(Stage(channels, width, count, mode))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))
