"""Compression targets become exact nonzero counts (unprunable parameters counted); masks survive
optimizer steps and a save / load into a fresh model; bad input is one ConfigError."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.prune import (
    apply_masks,
    budget_for,
    compute_masks,
    masks_of,
    nonzero_count,
    parameter_count,
    prunable_layers,
    restore_masks,
)
from tests.harness import TinyConvNet


def small() -> nn.Module:
    torch.manual_seed(0)
    return TinyConvNet(width=8)


def test_classifier_is_excluded_by_default_and_configurable() -> None:
    model = small()
    assert list(prunable_layers(model)) == ["stem.0", "down.0", "block.0"]
    assert list(prunable_layers(model, include_classifier=True))[-1] == "head"


@pytest.mark.parametrize(
    "strategy", ["global_magnitude", "layer_magnitude", "random", "global_gradient", "layer_gradient"]
)
@pytest.mark.parametrize("compression", [2, 4, 8, 12])
def test_compression_is_reached_exactly(strategy: str, compression: float) -> None:
    model = small()
    layers = prunable_layers(model)
    budget = budget_for(model, layers, compression)
    batch = (torch.randn(4, 3, 16, 16), torch.randint(10, (4,)))
    apply_masks(
        layers, compute_masks(strategy, model, layers, budget, seed=1, batch=batch, loss_fn=nn.functional.cross_entropy)
    )
    total = parameter_count(model)
    assert total == sum(p.numel() for p in small().parameters())  # weight_orig counted once
    assert nonzero_count(model) == round(total / compression)
    unprunable = total - sum(m.weight.numel() for m in layers.values())
    assert budget.fraction == pytest.approx(
        (total / compression - unprunable) / budget.prunable, abs=1 / budget.prunable
    )


def test_layerwise_keeps_the_same_fraction_of_every_layer() -> None:
    model = small()
    layers = prunable_layers(model)
    masks = compute_masks("layer_magnitude", model, layers, budget_for(model, layers, 4))
    fractions = [m.mean().item() for m in masks.values()]
    assert max(fractions) - min(fractions) < 0.01


def test_magnitude_keeps_the_largest_weights() -> None:
    model = small()
    layers = prunable_layers(model)
    masks = compute_masks("global_magnitude", model, layers, budget_for(model, layers, 4))
    kept = torch.cat([layers[n].weight.abs()[m.bool()] for n, m in masks.items()])
    dropped = torch.cat([layers[n].weight.abs()[~m.bool()] for n, m in masks.items()])
    assert kept.min() >= dropped.max()


def test_random_strategy_is_seeded() -> None:
    model = small()
    layers = prunable_layers(model)
    budget = budget_for(model, layers, 8)
    a = compute_masks("random", model, layers, budget, seed=3)
    b = compute_masks("random", model, layers, budget, seed=3)
    c = compute_masks("random", model, layers, budget, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_channel_strategy_drops_whole_output_channels() -> None:
    model = small()
    layers = prunable_layers(model)
    masks = compute_masks("channel_norm", model, layers, budget_for(model, layers, 4))
    for mask in masks.values():
        per_channel = mask.flatten(1)
        assert ((per_channel.sum(1) == 0) | (per_channel.sum(1) == per_channel.shape[1])).all()
        assert 0 < per_channel[:, 0].sum() < len(per_channel)


def test_masks_survive_optimizer_steps_and_a_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = small()
    layers = prunable_layers(model)
    apply_masks(layers, compute_masks("global_magnitude", model, layers, budget_for(model, layers, 8)))
    before = masks_of(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(8, 3, 16, 16)), torch.randint(10, (8,))).backward()
        optimizer.step()
    for name, module in layers.items():
        assert torch.equal(module.weight == 0, before[name] == 0)  # pruned weights are still exactly zero
    torch.save(model.state_dict(), tmp_path / "pruned.pt")
    fresh = small()
    state = torch.load(tmp_path / "pruned.pt", weights_only=True)
    restore_masks(fresh, state)
    fresh.load_state_dict(state)
    assert all(torch.equal(masks_of(fresh)[k], before[k]) for k in before)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(fresh.eval()(x), model.eval()(x))


@pytest.mark.parametrize("compression, match", [(0.5, "below 1"), (1e6, "out of reach")])
def test_unreachable_or_invalid_compression_is_refused(compression: float, match: str) -> None:
    model = small()
    with pytest.raises(ConfigError, match=match):
        budget_for(model, prunable_layers(model), compression)


def test_unknown_strategy_and_model_without_prunable_layers_are_refused() -> None:
    model = small()
    layers = prunable_layers(model)
    with pytest.raises(ConfigError, match="unknown pruning strategy"):
        compute_masks("biggest", model, layers, budget_for(model, layers, 2))
    with pytest.raises(ConfigError, match="no prunable layers"):
        prunable_layers(nn.Sequential(nn.Linear(4, 2)))  # its only layer is the classifier
