"""Which weights may be pruned, how a compression target becomes a count of kept weights, and masks.

Following ShrinkBench (Blalock et al. 2020): the prunable weights are those of ``nn.Linear`` and
``nn.Conv2d`` layers, the classifier (by default the last such layer) excluded. A *compression*
``c`` is the ratio of all parameters to the nonzero ones after pruning, so the prunable weights
kept are ``total / c - unprunable``: biases, norms, embeddings and the classifier count as kept.
Masks are applied with ``torch.nn.utils.prune``, which keeps ``weight_orig`` and a ``weight_mask``
buffer and recomputes ``weight = weight_orig * weight_mask`` before every forward: pruned weights
stay zero through any number of optimizer steps, and the mask is saved in the state dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from hasten.errors import ConfigError

PRUNABLE_TYPES = (nn.Linear, nn.Conv2d)


def prunable_layers(model: nn.Module, include_classifier: bool = False) -> dict[str, nn.Module]:
    """Linear and Conv2d layers by name, in registration order; the last one (the classifier) is left out
    unless ``include_classifier``. A model with none is a ConfigError."""
    layers: dict[str, nn.Module] = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    if layers and not include_classifier:
        layers.pop(list(layers)[-1])
    if not layers:
        raise ConfigError(
            f"{type(model).__name__} has no prunable layers (Linear or Conv2d"
            f"{', classifier excluded' if not include_classifier else ''})",
            "prune a model with Linear/Conv2d layers, or pass include_classifier=True",
        )
    return layers


def weight_of(module: nn.Module) -> torch.Tensor:
    """The weight as trained (``weight_orig`` once masked): what strategies score."""
    return cast(torch.Tensor, getattr(module, "weight_orig", module.weight))


@dataclass(frozen=True)
class Budget:
    """How many parameters there are and how many prunable weights a compression keeps."""

    total: int
    prunable: int
    kept: int

    @property
    def unprunable(self) -> int:
        return self.total - self.prunable

    @property
    def fraction(self) -> float:
        """Fraction of the prunable weights kept (ShrinkBench's ``(total/c - unprunable) / prunable``)."""
        return self.kept / self.prunable


def parameter_count(model: nn.Module) -> int:
    """Parameters, counting a masked weight once (``weight_orig``) and tied weights once."""
    return sum(p.numel() for p in model.parameters())


def budget_for(model: nn.Module, layers: dict[str, nn.Module], compression: float) -> Budget:
    """The kept-weight count for ``compression``; below 1, or beyond what pruning every prunable
    weight could reach, is a ConfigError."""
    if not compression >= 1.0:
        raise ConfigError(f"compression {compression} is below 1", "give a ratio >= 1, e.g. 2, 4, 8, 16, 32")
    total = parameter_count(model)
    prunable = sum(weight_of(m).numel() for m in layers.values())
    kept = round(total / compression) - (total - prunable)
    if kept < 1:
        best = total / (total - prunable + 1)
        raise ConfigError(
            f"compression {compression:g} is out of reach: the unprunable parameters alone give {best:.1f}x",
            f"ask for at most {best:.1f}x, or include the classifier",
        )
    return Budget(total, prunable, min(kept, prunable))


def apply_masks(layers: dict[str, nn.Module], masks: dict[str, torch.Tensor]) -> None:
    """Mask each named layer's weight (replacing an earlier mask)."""
    for name, mask in masks.items():
        module = layers[name]
        if torch_prune.is_pruned(module):
            current = cast(torch.Tensor, module.weight_mask)
            current.copy_(mask.to(current))
        else:
            torch_prune.custom_from_mask(module, "weight", mask.to(weight_of(module).device))


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current masks by layer name (unmasked layers are absent)."""
    return {name: m.weight_mask.detach().clone() for name, m in model.named_modules() if hasattr(m, "weight_mask")}


def restore_masks(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Put the masks of a saved pruned model onto a fresh copy, so ``load_state_dict`` then fits."""
    modules = dict(model.named_modules())
    for key, mask in state_dict.items():
        if key.endswith(".weight_mask"):
            name = key[: -len(".weight_mask")]
            apply_masks({name: modules[name]}, {name: mask})


def nonzero_count(model: nn.Module) -> int:
    """Parameters minus the masked-out weights (ShrinkBench's ``size_nz``, counted from the masks so a
    weight that happens to be exactly zero, such as a fresh norm bias, still counts as kept)."""
    pruned = sum(
        int((cast(torch.Tensor, m.weight_mask) == 0).sum()) for m in model.modules() if hasattr(m, "weight_mask")
    )
    return parameter_count(model) - pruned
