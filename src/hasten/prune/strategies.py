"""Pruning strategies: score every prunable weight, keep the best-scored ones.

- ``global_magnitude`` / ``layer_magnitude``: score ``|w|`` (ShrinkBench's GlobalMagWeight / LayerMagWeight).
- ``global_gradient`` / ``layer_gradient``: score ``|w * dL/dw|`` on one training batch (GlobalMagGrad /
  LayerMagGrad), a first-order estimate of the loss change from removing the weight.
- ``random``: uniform scores from a seeded generator, layer by layer: the baseline every method must beat.
- ``channel_norm``: structured; whole output channels (rows of a Linear, filters of a Conv2d) ranked
  by their weight's L2 norm within each layer (ShrinkBench's WeightNormChannelPruning).

*Global* strategies rank all prunable weights together, so layers end up with different densities;
*layerwise* ones keep the same fraction of every layer. Unstructured strategies keep exactly the
budget's count (ties broken by position; the layerwise rounding remainder goes to the layers with the
largest remainders). The channel strategy keeps whole channels, so it reaches the nearest count a
whole number of channels per layer allows (the achieved compression is what is reported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.prune.masks import Budget, weight_of

Scores = dict[str, torch.Tensor]
STRATEGIES = ("global_magnitude", "layer_magnitude", "global_gradient", "layer_gradient", "random", "channel_norm")


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown pruning strategy {name!r}", f"known strategies: {', '.join(STRATEGIES)}")
    return name


def magnitude_scores(layers: dict[str, nn.Module]) -> Scores:
    return {name: weight_of(m).detach().abs() for name, m in layers.items()}


def gradient_scores(
    model: nn.Module,
    layers: dict[str, nn.Module],
    batch: tuple[Any, Any],
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor],
) -> Scores:
    """``|w * dL/dw|`` from one batch; the model's own gradients are left as they were."""
    weights = {name: weight_of(m) for name, m in layers.items()}
    inputs, targets = batch
    was_training = model.training
    model.eval()
    try:
        loss = loss_fn(model(inputs), targets)
        grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
    finally:
        model.train(was_training)
    return {
        name: (w.detach() * (g if g is not None else torch.zeros_like(w))).abs()
        for (name, w), g in zip(weights.items(), grads)
    }


def random_scores(layers: dict[str, nn.Module], seed: int) -> Scores:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.rand(weight_of(m).shape, generator=generator) for name, m in layers.items()}


def _keep_top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """A 0/1 mask keeping exactly ``count`` entries of ``scores`` (the highest; earlier position wins ties)."""
    flat = scores.flatten().double()
    order = torch.argsort(flat, descending=True, stable=True)
    mask = torch.zeros_like(flat)
    mask[order[:count]] = 1.0
    return mask.view_as(scores).float()


def global_masks(scores: Scores, budget: Budget) -> Scores:
    """Keep the ``budget.kept`` best scores over all layers together."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    kept = _keep_top(flat, budget.kept)
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = kept[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks


def layer_counts(sizes: dict[str, int], total_kept: int) -> dict[str, int]:
    """Split ``total_kept`` over layers in proportion to their sizes, summing exactly (largest remainders)."""
    total = sum(sizes.values())
    exact = {name: n * total_kept / total for name, n in sizes.items()}
    counts = {name: int(v) for name, v in exact.items()}
    spare = total_kept - sum(counts.values())
    for name in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[:spare]:
        counts[name] += 1
    return counts


def layer_masks(scores: Scores, budget: Budget) -> Scores:
    """Keep the same fraction of every layer (its best scores)."""
    counts = layer_counts({name: s.numel() for name, s in scores.items()}, budget.kept)
    return {name: _keep_top(s, counts[name]) for name, s in scores.items()}


def channel_masks(layers: dict[str, nn.Module], budget: Budget) -> Scores:
    """Keep, in every layer, the output channels with the largest L2 norm: ``round(fraction * channels)``
    of them (at least one)."""
    masks = {}
    for name, module in layers.items():
        w = weight_of(module).detach()
        norms = w.flatten(1).norm(dim=1)
        keep = max(1, round(budget.fraction * len(norms)))
        rows = _keep_top(norms, keep)
        masks[name] = rows.view(-1, *([1] * (w.dim() - 1))).expand_as(w).clone()
    return masks


def compute_masks(
    strategy: str,
    model: nn.Module,
    layers: dict[str, nn.Module],
    budget: Budget,
    *,
    seed: int = 0,
    batch: tuple[Any, Any] | None = None,
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
) -> Scores:
    """The masks ``strategy`` chooses for ``budget`` (gradient strategies need ``batch`` and ``loss_fn``)."""
    check_strategy(strategy)
    if strategy == "channel_norm":
        return channel_masks(layers, budget)
    if strategy in ("global_gradient", "layer_gradient"):
        if batch is None or loss_fn is None:
            raise ConfigError(f"strategy {strategy!r} needs a batch and a loss", "pass batch= and loss_fn=")
        scores = gradient_scores(model, layers, batch, loss_fn)
    elif strategy == "random":
        scores = random_scores(layers, seed)
    else:
        scores = magnitude_scores(layers)
    return global_masks(scores, budget) if strategy.startswith("global") else layer_masks(scores, budget)
