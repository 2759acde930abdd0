"""μnit Scaling's hyperparameter-transfer rules as optimizer parameter groups.

Tune the learning rate ``lr`` and the weight decay at a small width ``base_width``; at width
``width`` (Narayan et al. 2025, §3):

- hidden linear weights: ``lr * sqrt(base_width / width)``;
- embeddings, norms and the output head: ``lr`` unchanged;
- weight decay fully decoupled from the learning rate and unchanged: each step multiplies a
  decayed matrix by ``1 - weight_decay * (lr_t / lr_peak)``, whatever its group's lr. With AdamW
  this is its ``weight_decay`` set to ``weight_decay / group_lr``. Norm gains are not decayed.

The paper uses Lion; here the groups feed AdamW (App. A.4 of the paper treats Lion as Adam-like,
so the same rules apply).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.models.unit_gpt import UnitGPT


def check_base_width(base_width: int, width: int) -> None:
    if base_width < 1 or base_width > width:
        raise ConfigError(
            f"transfer base width {base_width} is outside 1..{width} (the model's width)",
            "base_width is the width the lr was tuned at: at most the model's width",
        )


def unit_param_groups(
    model: UnitGPT, lr: float, weight_decay: float, base_width: int | None = None
) -> list[dict[str, Any]]:
    """Four named groups (``hidden``, ``embedding``, ``norm``, ``head``) with the transfer rules applied."""
    if lr <= 0 or weight_decay < 0:
        raise ConfigError(f"unit scaling needs lr > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
    width = model.config.width
    base = width if base_width is None else base_width
    check_base_width(base, width)
    hidden_lr = lr * math.sqrt(base / width)
    named = dict(model.named_parameters())
    head = [named.pop("lm_head.weight")]
    embedding = [named.pop("token_embedding.weight"), named.pop("position_embedding.weight")]
    norm = [p for name, p in named.items() if p.dim() < 2]
    hidden = [p for name, p in named.items() if p.dim() >= 2]

    def decay(group_lr: float) -> float:
        return weight_decay / group_lr

    return [
        {"name": "hidden", "params": hidden, "lr": hidden_lr, "weight_decay": decay(hidden_lr)},
        {"name": "embedding", "params": embedding, "lr": lr, "weight_decay": decay(lr)},
        {"name": "norm", "params": norm, "lr": lr, "weight_decay": 0.0},
        {"name": "head", "params": head, "lr": lr, "weight_decay": decay(lr)},
    ]


def unit_adamw(
    model: UnitGPT,
    lr: float,
    weight_decay: float,
    base_width: int | None = None,
    betas: tuple[float, float] = (0.9, 0.99),
) -> torch.optim.AdamW:
    """AdamW over ``unit_param_groups``."""
    return torch.optim.AdamW(unit_param_groups(model, lr, weight_decay, base_width), lr=lr, betas=betas)


def group_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{group name: lr}``, for records and tests."""
    return {g.get("name", str(i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}


def count(params: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
