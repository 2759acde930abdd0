"""Rotary position embeddings (Su et al. 2021): rotate each head's queries and keys by an
angle that grows with position, instead of adding a learned position table to the input.

Attention scores then depend on relative positions only, and the model has no position
parameters to learn: the speedrun records (modded-nanogpt) use it from the start. Applies to
models built from ``hasten.models.gpt`` blocks (``CausalSelfAttention``); the learned table
of a ``CharGPT`` is removed.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import InitSurgery
from hasten.models.gpt import CausalSelfAttention, CharGPT, rotary_tables


def apply_rotary_embeddings(model: nn.Module, base: float = 10000.0) -> int:
    """Switch every ``CausalSelfAttention`` of a ``CharGPT`` to rotary positions and drop the
    learned position table; returns how many attention modules changed."""
    if not isinstance(model, CharGPT):
        return 0
    context, count = model.config.context, 0
    for module in model.modules():
        if isinstance(module, CausalSelfAttention) and not module.rotary:
            head_size = module.qkv.in_features // module.heads
            if head_size % 2:
                raise ValueError(f"rotary embeddings need an even head size, got {head_size}")
            cos, sin = rotary_tables(context, head_size, base, device=module.qkv.weight.device)
            module.register_buffer("cos", cos, persistent=False)
            module.register_buffer("sin", sin, persistent=False)
            module.rotary = True
            count += 1
    model.position_embedding = None
    model.config = dataclasses.replace(model.config, position="rotary")
    return count


class RotaryEmbeddings(InitSurgery):
    """Rotary positions at INIT, before the optimizer is built."""

    name = "rotary_embeddings"
    target = "hasten GPT attention"
    hint = "rotary_embeddings applies to hasten.models.gpt.CharGPT models (the shakespeare workload)"

    def __init__(self, base: float = 10000.0) -> None:
        if base <= 1:
            raise ValueError(f"base must be > 1, got {base}")
        self.base = base

    def surgery(self, model: nn.Module) -> int:
        return apply_rotary_embeddings(model, self.base)


register(
    MethodCard(
        name="rotary_embeddings",
        summary="Rotate queries and keys by position (RoPE) instead of adding a learned position table",
        component="model",
        action="replace",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Su et al.", 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding", "2104.09864"),
        functional=("apply_rotary_embeddings", "hasten.models.gpt.apply_rotary", "hasten.models.gpt.rotary_tables"),
        effect="Lower loss per step than a learned position table (relative positions are built in); a few "
        "elementwise ops per attention call",
        not_worth_it="Models whose attention is not hasten's CausalSelfAttention (refused); very long runs where a "
        "learned table has time to catch up",
        export="cannot be removed: the model's positions are rotary; it exports with the rotation in its forward",
        applies_to=("text",),
    ),
    RotaryEmbeddings,
)
