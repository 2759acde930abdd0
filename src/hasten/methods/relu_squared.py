"""ReLU² activation (So et al. 2021, "Primer"): relu(x)**2 in place of GELU. Primer found it
among the largest single gains of its architecture search; modded-nanogpt's MLPs use it.
It is cheaper than GELU and its output is sparse. Applies to any model with ``nn.GELU``
modules (hasten's GPT MLP, timm-style MLPs).
"""

from __future__ import annotations

from torch import nn

from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import InitSurgery
from hasten.models.gpt import ReLU2


def apply_relu_squared(model: nn.Module) -> int:
    """Replace every ``nn.GELU`` module with ``ReLU2``; returns how many."""
    targets = [
        (parent, name)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.GELU)
    ]
    for parent, name in targets:
        setattr(parent, name, ReLU2())
    return len(targets)


class ReLUSquared(InitSurgery):
    name = "relu_squared"
    target = "nn.GELU module"
    hint = "relu_squared replaces GELU modules; this model has none"

    def surgery(self, model: nn.Module) -> int:
        return apply_relu_squared(model)


register(
    MethodCard(
        name="relu_squared",
        summary="relu(x)**2 in place of GELU in the MLPs (Primer)",
        component="model",
        action="replace",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "So et al.", 2021, "Primer: Searching for Efficient Transformers for Language Modeling", "2109.08668"
        ),
        functional=("apply_relu_squared", "hasten.models.gpt.ReLU2"),
        effect="Lower loss per step in transformer MLPs; the activation itself is cheaper than GELU",
        not_worth_it="Models whose activations are functional calls, not nn.GELU modules (refused); convnets "
        "tuned around GELU/ReLU",
        export="cannot be removed: a different activation function",
        applies_to=("text", "any"),
    ),
    ReLUSquared,
)
