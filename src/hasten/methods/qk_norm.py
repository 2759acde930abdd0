"""QK-norm: RMS-normalise each head's queries and keys before attention (Henry et al. 2020,
Dehghani et al. 2023). Attention logits stay bounded, so the model tolerates the higher
learning rates a short run needs; modded-nanogpt uses it. Applies to hasten's GPT attention.
"""

from __future__ import annotations

from torch import nn

from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import InitSurgery
from hasten.models.gpt import CausalSelfAttention


def apply_qk_norm(model: nn.Module) -> int:
    """Turn on QK-norm in every ``CausalSelfAttention``; returns how many changed."""
    count = 0
    for module in model.modules():
        if isinstance(module, CausalSelfAttention) and not module.qk_norm:
            module.qk_norm = True
            count += 1
    return count


class QKNorm(InitSurgery):
    name = "qk_norm"
    target = "hasten GPT attention"
    hint = "qk_norm applies to hasten.models.gpt attention (the shakespeare workload)"

    def surgery(self, model: nn.Module) -> int:
        return apply_qk_norm(model)


register(
    MethodCard(
        name="qk_norm",
        summary="RMS-normalise queries and keys per head before attention: bounded logits, higher stable lr",
        component="model",
        action="restrict",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Dehghani et al.", 2023, "Scaling Vision Transformers to 22 Billion Parameters", "2302.05442"),
        functional=("apply_qk_norm",),
        effect="Stable training at higher learning rates (fewer steps); two cheap norms per attention call",
        not_worth_it="Runs already at a low, safe learning rate gain little; attention other than hasten's is refused",
        export="cannot be removed: the normalisation is part of the attention function",
        applies_to=("text",),
    ),
    QKNorm,
)
