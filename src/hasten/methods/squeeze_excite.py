"""Squeeze-and-excitation (Hu et al. 2017): reweight channels by a gate computed from the whole map.

``SE(x) = x * sigmoid(W2 relu(W1 mean_hw(x)))`` with a bottleneck of ``C * latent_channels``
units (the paper's reduction ratio r = 16 is ``latent_channels = 1/16``). Two placements:

- ``conv`` (Composer's placement): after every ``Conv2d`` with at least ``min_channels`` input
  *and* output channels, so the RGB stem and other narrow-input convs stay ungated;
- ``residual`` (the paper's SE-ResNet): on each residual branch, before the addition,
  found by probing the model once (``find_residual_branches``).

Or pick the modules yourself with ``predicate``. The wrapped module keeps its parameters;
the gate's parameters are new, so build the optimizer afterwards (the Trainer does) or pass
it to be updated.

Differences from Composer's ``apply_squeeze_excite``: the defaults are the paper's bottleneck
(``latent_channels=1/16``, r = 16; Composer: 64 units) and ``min_channels=64`` (Composer: 128,
too wide for hasten's small CIFAR nets); the gate's two linear layers have biases (the paper,
timm; Composer has none); and ``placement="residual"`` is hasten's own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.methods.surgery import (
    Predicate,
    checked_predicate,
    find_residual_branches,
    replace_modules,
    require_some,
    sample_inputs,
)

PLACEMENTS = ("conv", "residual")


def latent_size(channels: int, latent_channels: float) -> int:
    """Bottleneck width: a fraction of ``channels`` if ``latent_channels < 1``, else that many units."""
    if latent_channels <= 0:
        raise ConfigError(f"latent_channels must be positive, got {latent_channels}", "use 1/16 (the paper's r=16)")
    size = channels * latent_channels if latent_channels < 1 else latent_channels
    return max(1, int(size))


class SqueezeExcite2d(nn.Module):
    """The SE gate for ``channels``-channel feature maps."""

    def __init__(self, channels: int, latent_channels: float = 1 / 16) -> None:
        super().__init__()
        hidden = latent_size(channels, latent_channels)
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None].to(x.dtype)


class SqueezeExciteWrapper(nn.Module):
    """``module`` followed by an SE gate on its (N, C, H, W) output."""

    def __init__(self, module: nn.Module, channels: int, latent_channels: float = 1 / 16) -> None:
        super().__init__()
        self.module = module
        self.se = SqueezeExcite2d(channels, latent_channels)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = self.module(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or out.ndim != 4:
            raise ConfigError(
                f"squeeze-excite needs (N, C, H, W) outputs, got {getattr(out, 'shape', type(out))}",
                "target modules that output 4-D feature maps",
            )
        return self.se(out)


def apply_squeeze_excite(
    model: nn.Module,
    latent_channels: float = 1 / 16,
    min_channels: int = 64,
    placement: str = "conv",
    example_input: Any = None,
    predicate: Predicate | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Add SE gates; return how many. ``placement="conv"`` gates each ``Conv2d`` whose input and
    output channels are both at least ``min_channels``; ``"residual"`` gates each residual branch
    with 4-D outputs of at
    least ``min_channels`` channels (needs ``example_input``). ``predicate`` narrows either."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"unknown squeeze-excite placement {placement!r}", f"use one of {', '.join(PLACEMENTS)}")
    latent_size(1, latent_channels)  # validates before the model is touched
    channels: dict[str, int] = {}
    if placement == "conv":
        for name, module in model.named_modules():
            if type(module) is nn.Conv2d and min(module.in_channels, module.out_channels) >= min_channels:
                channels[name] = module.out_channels
    else:
        if example_input is None:
            raise ConfigError(
                "residual placement needs an example input to find the residual branches",
                "pass example_input=<one batch of inputs>",
            )
        for branch in find_residual_branches(model, example_input):
            if branch.kind == "branch" and len(branch.output_shape) == 4 and branch.output_shape[1] >= min_channels:
                channels[branch.name] = branch.output_shape[1]

    def wanted(name: str, module: nn.Module) -> bool:
        return name in channels and (predicate is None or bool(predicate(name, module)))

    return replace_modules(
        model, wanted, lambda name, module: SqueezeExciteWrapper(module, channels[name], latent_channels), optimizer
    )


class SqueezeExcite(Algorithm):
    """Add SE gates at INIT (see ``apply_squeeze_excite``)."""

    name = "squeeze_excite"
    touches = frozenset({"model"})
    data_parallel = True
    api_only = frozenset({"predicate"})  # a Python callable or class, not a CLI value
    priority = 40

    def __init__(
        self,
        latent_channels: float = 0.0625,
        min_channels: int = 64,
        placement: str = "conv",
        *,
        predicate: Predicate | None = None,
    ) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        if latent_channels <= 0:
            raise ValueError(f"latent_channels must be positive, got {latent_channels}")
        self.latent_channels = latent_channels
        self.min_channels = min_channels
        self.placement = placement
        self._predicate = checked_predicate(predicate)

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        example = sample_inputs(state.train_data, 2).to(state.device) if self.placement == "residual" else None
        count = apply_squeeze_excite(
            state.model,
            self.latent_channels,
            self.min_channels,
            self.placement,
            example,
            self._predicate,
            state.optimizer,
        )
        what = "Conv2d with >= {} input and output" if self.placement == "conv" else "residual branch with >= {} output"
        require_some(
            count,
            self.name,
            what.format(self.min_channels) + " channels",
            "lower squeeze_excite:min_channels=..., or drop it for this model",
        )


CARD = MethodCard(
    name="squeeze_excite",
    summary="Add squeeze-and-excitation channel gates after wide convs (or on residual branches).",
    component="model",
    action="augment",
    mechanism="step-count",
    bottleneck=("compute",),
    paper=Paper(
        "Jie Hu, Li Shen, Samuel Albanie, Gang Sun, Enhua Wu", 2017, "Squeeze-and-Excitation Networks", "1709.01507"
    ),
    export="cannot be removed or folded: the gate depends on the input. The surgered model uses only standard "
    "ops and exports as it is; it is slower at inference (peers measured about 20% on ResNet-50).",
    not_worth_it="narrow nets (the gates are tiny and their overhead is mostly kernel launches) and when "
    "inference cost matters; the gain shows where feature maps are small and channels many.",
    effect="more accuracy per step for a few percent more compute per step, and a slower model at inference. "
    "Placement as Composer's (convs with >= min_channels inputs and outputs); defaults differ: "
    "latent_channels=1/16 (the paper's r=16; Composer: 64 units), min_channels=64 (Composer: 128), and the "
    "gate's linears have biases (the paper, timm; Composer: none)",
    applies_to=("image",),
    needs=("conv2d",),
    functional=("apply_squeeze_excite", "SqueezeExcite2d"),
)

register(CARD, SqueezeExcite)
