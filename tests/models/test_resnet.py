"""The CIFAR ResNet: configurable widths and depth, standard parts findable by type."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hasten.models.resnet import CifarResNet, ResidualBlock, Stage


def test_default_shape_and_parts() -> None:
    model = CifarResNet()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(ResidualBlock) == 2 and kinds.count(Stage) == 3
    assert kinds.count(nn.Conv2d) == 1 + 3 + 2 * 2 and kinds.count(nn.BatchNorm2d) == 8
    assert kinds.count(nn.MaxPool2d) == 3
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))  # BatchNorm adds the shift


@pytest.mark.parametrize(("widths", "blocks", "stem"), [((8, 16), (0, 2), 4), ((24, 48, 96, 192), (1, 1, 1, 1), 12)])
def test_widths_and_depth_are_configurable(widths: tuple, blocks: tuple, stem: int) -> None:
    model = CifarResNet(widths=widths, blocks=blocks, stem=stem, classes=7)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 7)
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) == sum(blocks)
    assert model.stem[0].out_channels == stem and model.head.in_features == widths[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[-1].out_channels == widths[-1]


def test_residual_block_adds_its_input() -> None:
    block = ResidualBlock(4)
    for conv in (block.conv1, block.conv2):
        nn.init.zeros_(conv[1].weight)  # zero the BatchNorm gains: the branch outputs zero
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)


def test_mismatched_widths_and_blocks_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        CifarResNet(widths=(8, 16), blocks=(1,))


def test_a_training_step_changes_every_parameter() -> None:
    torch.manual_seed(0)
    model = CifarResNet(widths=(8, 16, 32), stem=8)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.arange(8))
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_strided_downsampling_replaces_the_pools() -> None:
    pooled, strided = CifarResNet(), CifarResNet(downsample="stride")
    assert sum(isinstance(m, nn.MaxPool2d) for m in strided.modules()) == 0
    assert [s.conv[0].stride for s in strided.stages] == [(2, 2)] * 3
    assert sum(p.numel() for p in pooled.parameters()) == sum(p.numel() for p in strided.parameters())
    x = torch.randn(2, 3, 32, 32)
    assert strided(x).shape == pooled(x).shape == (2, 10)
    mixed = CifarResNet(downsample=("stride", "pool", "pool"))
    assert sum(isinstance(m, nn.MaxPool2d) for m in mixed.modules()) == 2
    with pytest.raises(ValueError, match="one entry per stage"):
        CifarResNet(downsample=("stride", "pool"))
    with pytest.raises(ValueError, match="'pool' or 'stride'"):
        CifarResNet(downsample="avg")
