"""Untied output head: give the output layer its own matrix instead of sharing the token
embedding's. The input and output roles of a token then stop competing for one matrix;
modded-nanogpt unties them (and zero-initialises the head). The head starts from a copy of
the embedding (``init="copy"``) or from zeros (``init="zero"``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import InitSurgery

INITS = ("copy", "zero")


def untie_head(model: nn.Module, init: str = "copy") -> int:
    """Give every ``nn.Linear`` that shares its weight with an ``nn.Embedding`` its own
    parameter; returns how many were untied."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) in embedded:
            with torch.no_grad():
                weight = module.weight.detach().clone() if init == "copy" else torch.zeros_like(module.weight)
            module.weight = nn.Parameter(weight)
            count += 1
    config = getattr(model, "config", None)
    if count and dataclasses.is_dataclass(config) and hasattr(config, "tied_head"):
        model.config = dataclasses.replace(config, tied_head=False)  # type: ignore[type-var,assignment]
    return count


class UntiedHead(InitSurgery):
    name = "untied_head"
    target = "output layer tied to an embedding"
    hint = "untied_head applies to models whose head shares the token embedding (the shakespeare GPT)"

    def __init__(self, init: str = "copy") -> None:
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.init = init

    def surgery(self, model: nn.Module) -> int:
        return untie_head(model, self.init)


register(
    MethodCard(
        name="untied_head",
        summary="Give the output layer its own matrix instead of the token embedding's",
        component="model",
        action="replace",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Press and Wolf",
            2017,
            "Using the Output Embedding to Improve Language Models (tying; this method undoes it)",
            "1608.05859",
        ),
        functional=("untie_head",),
        effect="Lower loss per step in small language models; more parameters (vocab x width), same FLOPs",
        not_worth_it="Large vocabularies where the extra matrix costs memory; models with no tied head (refused)",
        export="unchanged in form: a plain Linear head with its own weight",
        applies_to=("text",),
    ),
    UntiedHead,
)
