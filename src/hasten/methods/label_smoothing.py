"""Label smoothing (Szegedy et al. 2015): train towards ``(1 - eps) * one_hot(y) + eps / K`` instead of ``one_hot(y)``.

Cross-entropy is linear in the target distribution, so the smoothed loss is
``(1 - eps) * CE(outputs, y) + eps * mean_k(-log softmax(outputs)_k)``. hasten implements it
exactly that way, as a wrapper around the run's own loss: it stays linear in the targets, so
MixUp/CutMix, which interpolate the loss between two target sets, give the loss on the
smoothed *mixed* distribution with no special casing.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]


def smooth_labels(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """The smoothed target distribution (shape of ``logits``) for class-index ``targets``."""
    classes = logits.shape[-1]
    one_hot = F.one_hot(targets, classes).to(torch.float32)
    return (1.0 - smoothing) * one_hot + smoothing / classes


def uniform_cross_entropy(outputs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the uniform distribution, averaged over every prediction."""
    return -F.log_softmax(outputs.float(), dim=-1).mean(dim=-1).mean()


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every target element (classification and language modelling)."""
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]).float(), targets.reshape(-1))


def label_smoothing_loss(
    outputs: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1, base_loss: LossFn | None = None
) -> torch.Tensor:
    """``(1 - smoothing) * base_loss(outputs, targets) + smoothing * uniform_cross_entropy(outputs)``.

    With the default ``base_loss`` (mean cross-entropy) this is exactly cross-entropy against
    ``smooth_labels(outputs, targets, smoothing)``, i.e. ``F.cross_entropy(..., label_smoothing=)``.
    """
    base = (base_loss or cross_entropy)(outputs, targets)
    return (1.0 - smoothing) * base + smoothing * uniform_cross_entropy(outputs)


class LabelSmoothedLoss:
    """Wrap a mean cross-entropy loss so it trains towards smoothed labels (timm: ``LabelSmoothingCrossEntropy``)."""

    def __init__(self, base: LossFn | None = None, smoothing: float = 0.1) -> None:
        self.base = base or cross_entropy
        self.smoothing = smoothing

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return label_smoothing_loss(outputs, targets, self.smoothing, self.base)


class LabelSmoothing(Algorithm):
    """Wraps ``state.loss_fn`` at INIT, so the closure of SAM-like optimizers smooths too."""

    name = "label_smoothing"
    touches = frozenset({"loss"})

    def __init__(self, smoothing: float = 0.1) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        if not isinstance(state.loss_fn, LabelSmoothedLoss):
            state.loss_fn = LabelSmoothedLoss(state.loss_fn, self.smoothing)


register(
    MethodCard(
        name="label_smoothing",
        summary="Train towards (1 - eps) * one-hot + eps / classes; a linear change of the loss",
        component="data",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Christian Szegedy, Vincent Vanhoucke, Sergey Ioffe, Jonathon Shlens, Zbigniew Wojna",
            2015,
            "Rethinking the Inception Architecture for Computer Vision",
            "1512.00567",
        ),
        not_worth_it=(
            "losses other than mean cross-entropy over class indices (it wraps the run's loss and assumes it "
            "is one); models meant as distillation teachers or needing calibrated confidences (smoothing erases "
            "that information: Mueller, Kornblith and Hinton 2019, arXiv 1906.02629)"
        ),
        effect="no change in step cost; fewer steps to quality "
        "(about 1.5x on ResNet-50/ImageNet in Portes et al.'s released data)",
        applies_to=("any",),
        functional=("smooth_labels", "label_smoothing_loss", "LabelSmoothedLoss"),
    ),
    LabelSmoothing,
)
