"""The pruning benchmark: masks on Linear/Conv2d weights, ShrinkBench's strategies and metrics, and
one protocol (train once, prune, fine-tune, measure) shared by every strategy.

    from hasten.prune import prunable_layers, budget_for, compute_masks, apply_masks
    layers = prunable_layers(model)                      # classifier excluded
    budget = budget_for(model, layers, compression=8)    # total / 8 parameters left, unprunable ones counted
    apply_masks(layers, compute_masks("global_magnitude", model, layers, budget))
"""

from hasten.prune.masks import (
    Budget,
    apply_masks,
    budget_for,
    masks_of,
    nonzero_count,
    parameter_count,
    prunable_layers,
    restore_masks,
)
from hasten.prune.metrics import (
    MultiplyAdds,
    inference_time,
    interleaved_inference_ratio,
    multiply_adds,
)
from hasten.prune.strategies import STRATEGIES, compute_masks

__all__ = [
    "STRATEGIES",
    "Budget",
    "MultiplyAdds",
    "apply_masks",
    "budget_for",
    "compute_masks",
    "inference_time",
    "interleaved_inference_ratio",
    "masks_of",
    "multiply_adds",
    "nonzero_count",
    "parameter_count",
    "prunable_layers",
    "restore_masks",
]
