"""Test-time augmentation with flips and translations, as in cifar10-airbench (Jordan 2024).

The eval output is a weighted average of the model's logits over views of each image:

- level 1: the image and its mirror, 1/2 each (2 forward passes);
- level 2: half the weight on level 1; the other half split between the level-1 pair of the
  image shifted by ``translate`` pixels up-left and down-right (reflect padding): weights
  1/4, 1/4, 1/8, 1/8, 1/8, 1/8 (6 forward passes).

Training is untouched; evaluation costs ``views`` forward passes per image, and that is an
*inference* cost the model will carry in use. hasten records it (``state.extra["tta"]`` and the
run's config) so reports show the quality gain next to its inference price, never as a free win.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]
VIEWS = {0: 1, 1: 2, 2: 6}


def translate_batch(images: torch.Tensor, shift: int) -> torch.Tensor:
    """Shift images by ``shift`` pixels down and right (negative: up and left), reflecting at the edges."""
    if shift == 0:
        return images
    pad = abs(shift)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    height, width = images.shape[-2:]
    start = pad - shift
    return padded[..., start : start + height, start : start + width]


def tta_views(images: torch.Tensor, level: int = 2, translate: int = 1) -> list[tuple[float, torch.Tensor]]:
    """The ``(weight, view)`` pairs whose weighted logits ``tta_forward`` sums; weights sum to 1."""
    if level not in VIEWS:
        raise ConfigError(f"unknown TTA level {level}", "use 0 (none), 1 (mirror) or 2 (mirror + translate)")
    if level == 0:
        return [(1.0, images)]
    if images.ndim != 4:
        raise ConfigError(
            f"flip/translate TTA needs image batches (N, C, H, W); got shape {tuple(images.shape)}",
            "use tta on image workloads",
        )
    mirror = lambda x, w: [(w / 2, x), (w / 2, x.flip(-1))]  # noqa: E731
    if level == 1:
        return mirror(images, 1.0)
    views = mirror(images, 0.5)
    for shift in (-translate, translate):
        views += mirror(translate_batch(images, shift), 0.25)
    return views


def tta_forward(
    model: nn.Module, images: torch.Tensor, level: int = 2, translate: int = 1, forward: Forward | None = None
) -> torch.Tensor:
    """Weighted average of the logits over the TTA views. ``forward(model, x)`` defaults to ``model(x)``."""
    run = forward or (lambda m, x: m(x))
    total: torch.Tensor | None = None
    for weight, view in tta_views(images, level, translate):
        logits = run(model, view).float() * weight
        total = logits if total is None else total + logits
    return total  # type: ignore[return-value]


class TTAForward:
    """An ``eval_forward`` that applies TTA around the one it replaces."""

    def __init__(self, base: Forward, level: int, translate: int) -> None:
        self.base, self.level, self.translate = base, level, translate

    def __call__(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return tta_forward(model, inputs, self.level, self.translate, self.base)


class TTA(Algorithm):
    """Records the inference cost at INIT; replaces ``state.eval_forward`` at FIT_START, late
    (priority 50), so it wraps any eval forward another method installed."""

    name = "tta"
    touches = frozenset({"eval"})
    data_parallel = True
    priority = 50

    def __init__(self, level: int = 2, translate: int = 1) -> None:
        if level not in VIEWS:
            raise ValueError(f"level must be 0, 1 or 2, got {level}")
        if translate < 1:
            raise ValueError(f"translate must be >= 1 pixel, got {translate}")
        self.level = level
        self.translate = translate

    @property
    def views(self) -> int:
        return VIEWS[self.level]

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.FIT_START)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            cost = {"level": self.level, "views": self.views, "inference_cost_factor": float(self.views)}
            state.extra[self.name] = cost
            state.run_info.setdefault("config", {})["tta"] = dict(cost)
        elif not isinstance(state.eval_forward, TTAForward):
            state.eval_forward = TTAForward(state.eval_forward, self.level, self.translate)


register(
    MethodCard(
        name="tta",
        summary="Average eval logits over mirrored and shifted views; costs inference, not training",
        component="evaluation",
        export="weights unchanged; the reported quality needs tta_forward at inference (2 or 6 passes per input)",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Keller Jordan", 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", "2404.00498"),
        not_worth_it=(
            "when inference cost matters as much as training cost (each prediction costs 2 or 6 forward "
            "passes); images without left-right symmetry; text"
        ),
        effect="no training cost; a quality gain at eval that lets a shorter run reach the target, paid for "
        "with 2x (level 1) or 6x (level 2) inference compute, reported as such",
        applies_to=("image",),
        functional=("tta_forward", "tta_views", "translate_batch"),
    ),
    TTA,
)
