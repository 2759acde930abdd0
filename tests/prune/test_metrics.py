"""Multiply-adds against a hand count, dense and with zeros skipped."""

from __future__ import annotations

import torch
from torch import nn

from hasten.prune import apply_masks, multiply_adds


def test_multiply_adds_match_a_hand_count() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    counted = multiply_adds(model, torch.randn(1, 3, 8, 8))
    conv = 8 * 8 * (4 * 3 * 3 * 3)  # each of 64 output positions: 4 filters of 3x3x3 weights
    linear = 256 * 10
    assert counted.dense == conv + linear
    mask = torch.ones(4, 3, 3, 3)
    mask[:2] = 0  # half the filters
    apply_masks({"conv": model[0]}, {"conv": mask})
    counted = multiply_adds(model, torch.randn(1, 3, 8, 8))
    assert counted.nonzero == conv // 2 + linear and counted.dense == conv + linear
    assert counted.speedup == (conv + linear) / (conv // 2 + linear)


def test_linear_counts_every_sequence_position() -> None:
    model = nn.Linear(5, 7, bias=False)
    assert multiply_adds(model, torch.randn(2, 3, 5)).dense == 2 * 3 * 5 * 7
