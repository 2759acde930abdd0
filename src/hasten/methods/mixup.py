"""MixUp (Zhang et al. 2017): train on convex combinations of pairs of examples and of their labels.

With ``lam ~ Beta(alpha, alpha)`` and a random pairing ``perm`` of the batch, the model sees
``lam * x + (1 - lam) * x[perm]`` and the target distribution ``lam * y + (1 - lam) * y[perm]``.
Cross-entropy is linear in the target distribution, so the loss on the mixed target equals
``lam * loss(y) + (1 - lam) * loss(y[perm])``: hasten interpolates the *loss* and keeps index
targets. That keeps any loss that is linear in its target correct (label smoothing included),
and needs no soft-target loss.

``LabelMixing`` here is shared with CutMix, which differs only in how it mixes the inputs.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]


def sample_mixing(alpha: float) -> float:
    """Draw ``lam ~ Beta(alpha, alpha)`` from torch's global RNG (which checkpoints capture)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    concentration = torch.tensor(float(alpha))
    return float(torch.distributions.Beta(concentration, concentration).sample())


def mixup_batch(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.2,
    *,
    mixing: float | None = None,
    permutation: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix a batch with a shuffled copy of itself.

    Returns ``(mixed_inputs, targets[perm], lam)``: train with
    ``mixed_loss(loss_fn, model(mixed_inputs), targets, targets_perm, lam)``. ``mixing`` and
    ``permutation`` fix ``lam`` and the pairing; otherwise they are drawn (``lam`` first).
    """
    if not torch.is_floating_point(inputs):
        raise ConfigError(
            f"mixup mixes input values, but the inputs are {inputs.dtype} (token ids?)",
            "use mixup on image or feature inputs; for text use label_smoothing instead",
        )
    lam = sample_mixing(alpha) if mixing is None else float(mixing)
    if permutation is None:
        permutation = torch.randperm(inputs.shape[0], device=inputs.device)
    mixed = lam * inputs + (1.0 - lam) * inputs[permutation]
    return mixed, targets[permutation], lam


def mixed_loss(
    loss_fn: LossFn, outputs: Any, targets: torch.Tensor, targets_perm: torch.Tensor, mixing: float
) -> torch.Tensor:
    """``lam * loss_fn(outputs, targets) + (1 - lam) * loss_fn(outputs, targets_perm)``: the loss on the
    mixed target distribution for any ``loss_fn`` linear in its target (cross-entropy, smoothed or not)."""
    return mixing * loss_fn(outputs, targets) + (1.0 - mixing) * loss_fn(outputs, targets_perm)


def mixup_targets(targets: torch.Tensor, targets_perm: torch.Tensor, mixing: float, num_classes: int) -> torch.Tensor:
    """The mixed target distribution as soft labels, for losses that take probabilities."""
    one_hot = F.one_hot(targets, num_classes).float()
    return mixing * one_hot + (1.0 - mixing) * F.one_hot(targets_perm, num_classes).float()


class MixedLoss:
    """A loss function for one micro-batch whose targets were mixed: see ``mixed_loss``."""

    def __init__(self, base: LossFn, targets_perm: torch.Tensor, mixing: float) -> None:
        self.base = base
        self.targets_perm = targets_perm
        self.mixing = mixing

    def __call__(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        return mixed_loss(self.base, outputs, targets, self.targets_perm, self.mixing)


class LabelMixing(Algorithm):
    """Shared event logic of MixUp and CutMix, per micro-batch.

    BEFORE_FORWARD mixes the inputs; BEFORE_LOSS swaps ``state.loss_fn`` for a ``MixedLoss``
    around the user's loss (so the loss is computed once, under autocast, and anything added
    to ``state.loss`` later is not rescaled); AFTER_LOSS puts the user's loss back.
    """

    touches = frozenset({"batch", "targets", "loss"})
    data_parallel = True

    def __init__(self) -> None:
        self._pending: tuple[torch.Tensor, float] | None = None
        self._base_loss: LossFn | None = None

    def _mix(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        raise NotImplementedError

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.BEFORE_FORWARD, Event.BEFORE_LOSS, Event.AFTER_LOSS)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.BEFORE_FORWARD:
            mixed, targets_perm, lam = self._mix(state.inputs, state.targets)
            state.inputs = mixed
            self._pending = (targets_perm, lam)
            state.extra[self.name] = {"mixing": lam}
        elif event is Event.BEFORE_LOSS and self._pending is not None:
            self._base_loss = state.loss_fn
            state.loss_fn = MixedLoss(state.loss_fn, *self._pending)
        elif event is Event.AFTER_LOSS and self._base_loss is not None:
            state.loss_fn = self._base_loss
            self._base_loss, self._pending = None, None


class MixUp(LabelMixing):
    name = "mixup"

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def _mix(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        return mixup_batch(inputs, targets, self.alpha)


register(
    MethodCard(
        name="mixup",
        summary="Train on convex combinations of example pairs and their labels (loss interpolated)",
        component="data",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Hongyi Zhang, Moustapha Cisse, Yann N. Dauphin, David Lopez-Paz",
            2017,
            "mixup: Beyond Empirical Risk Minimization",
            "1710.09412",
        ),
        not_worth_it=(
            "short runs: it regularizes, so early progress is slower (ResNet-50/ImageNet in Portes et al.'s "
            "released data: below baseline at 16 and 32 epochs, above from 64); token inputs (nothing to mix)"
        ),
        effect="no change in step cost; fewer steps to a given quality on long, overfitting-prone runs",
        applies_to=("image",),
        functional=("mixup_batch", "mixed_loss", "mixup_targets"),
    ),
    MixUp,
)
