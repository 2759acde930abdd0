"""The MNIST CNN on real digits: shapes, parts, and that it learns from a handful of steps."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hasten.data import mnist
from hasten.data.augment import normalize
from hasten.models.mnist import MnistCNN


def test_shape_and_parts() -> None:
    model = MnistCNN(channels=(8, 12), hidden=32)
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2


def test_learns_real_digits_in_a_few_steps(data_dir: Path) -> None:
    torch.manual_seed(0)
    data = mnist.load_mnist("test", data_dir)
    images, labels = data.tensors()
    x, y = normalize(images[:256], mnist.MEAN, mnist.STD), labels[:256]
    model = MnistCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(20):
        batch = slice(32 * (step % 8), 32 * (step % 8 + 1))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
