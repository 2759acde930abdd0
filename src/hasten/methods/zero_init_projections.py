"""Zero-initialised residual projections: the output projection of every attention and MLP
branch starts at zero, so each block starts as the identity and the residual stream carries
the embedding unchanged at step 0 (Goyal et al. 2017's zero-gamma idea, used by
modded-nanogpt for its projections). Applies to hasten's GPT blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import InitSurgery
from hasten.models.gpt import MLP, CausalSelfAttention


def zero_init_projections(model: nn.Module) -> int:
    """Zero the ``proj`` (residual output) weights of every attention and MLP; returns how many."""
    count = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (CausalSelfAttention, MLP)):
                module.proj.weight.zero_()
                count += 1
    return count


class ZeroInitProjections(InitSurgery):
    name = "zero_init_projections"
    target = "hasten GPT attention or MLP"
    hint = "zero_init_projections applies to hasten.models.gpt blocks (the shakespeare workload)"
    priority = 25  # after surgery that builds new blocks

    def surgery(self, model: nn.Module) -> int:
        return zero_init_projections(model)


register(
    MethodCard(
        name="zero_init_projections",
        summary="Start every attention and MLP output projection at zero: each block begins as the identity",
        component="model",
        action="restrict",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Goyal et al.", 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", "1706.02677"),
        functional=("zero_init_projections",),
        effect="A smoother start at high learning rates (fewer steps); nothing per step",
        not_worth_it="Resuming or fine-tuning (it only changes the initialisation); models other than hasten's GPT",
        export="unchanged: only the initial weights differ",
        applies_to=("text",),
    ),
    ZeroInitProjections,
)
