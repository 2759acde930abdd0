"""Alternating flip (Jordan 2024, cifar10-airbench): derandomized horizontal flipping.

Random flipping shows some images the same way several epochs running. Alternating flip
draws one random choice per image for the first epoch and then flips each image on every
other epoch, so every pair of consecutive epochs shows both orientations:
``flipped(i, epoch) = first_flip[i] XOR (epoch is odd)``. The first-epoch choices come from
the run's seed, so the method holds no state and resumes exactly.

It replaces, not adds to, the random flip of hasten's own batch augmentation (``ImageAugment``),
which it switches off. It must know which dataset samples are in each batch: the batch source provides
``sample_indices(epoch, index)`` (hasten's ``TensorBatches`` does through its per-epoch
order, and ``data_echoing`` passes it through).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

SEED_OFFSET = 7_919  # keeps the flip draws apart from the data order's generator for the same seed


def first_epoch_flips(num_samples: int, seed: int = 0) -> torch.Tensor:
    """One fair coin per sample (bool, True = flipped in epoch 0), reproducible from ``seed``."""
    generator = torch.Generator().manual_seed(seed + SEED_OFFSET)
    return torch.rand(num_samples, generator=generator) < 0.5


def alternating_flip_batch(
    images: torch.Tensor, indices: torch.Tensor, epoch: int, first_flips: torch.Tensor
) -> torch.Tensor:
    """Flip (along the last axis) the images whose sample is due a flip in ``epoch``."""
    if images.ndim < 3:
        raise ConfigError(
            f"alternating flip needs image batches (N, C, H, W); got shape {tuple(images.shape)}",
            "use it on image workloads",
        )
    due = first_flips.to(images.device)[indices.to(images.device)] ^ bool(epoch % 2)
    mask = due.view(-1, *([1] * (images.ndim - 1)))
    return torch.where(mask, images.flip(-1), images)


def sample_indices(source: Any, epoch: int, index: int) -> torch.Tensor | None:
    """Dataset indices of batch ``index`` of ``epoch``, or None if the source cannot say."""
    if hasattr(source, "sample_indices"):
        return source.sample_indices(epoch, index)
    if hasattr(source, "order") and hasattr(source, "batch_size"):  # TensorBatches
        size = source.batch_size
        return source.order(epoch)[index * size : (index + 1) * size]
    return None


def num_samples(source: Any) -> int | None:
    """How many samples the source draws batches from, or None if it cannot say."""
    if hasattr(source, "num_samples"):
        return int(source.num_samples)
    inputs = getattr(source, "inputs", None)
    return len(inputs) if inputs is not None else None


def disable_random_flip(source: Any) -> bool:
    """Switch off the random flip in a source's own augmentation (a dataclass transform with
    ``flip=True``, such as hasten's ``ImageAugment``), so alternating flip replaces it rather than
    stacking on it. Looks through wrapping sources (``.inner``). True if one was switched off."""
    while source is not None:
        transform = getattr(source, "transform", None)
        if dataclasses.is_dataclass(transform) and getattr(transform, "flip", None) is True:
            source.transform = dataclasses.replace(transform, flip=False)  # type: ignore[type-var]  # an instance
            return True
        source = getattr(source, "inner", None)
    return False


class AlternatingFlip(Algorithm):
    """Flips at BATCH_START, first of the batch transforms (priority -30): it needs the batch in
    the order the source produced it, before selective_backprop subsets it."""

    name = "alternating_flip"
    touches = frozenset({"batch"})
    data_parallel = True
    priority = -30

    def __init__(self) -> None:
        self._first_flips: torch.Tensor | None = None

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.BATCH_START)

    def apply(self, event: Event, state: State) -> None:
        source = state.train_data
        if event is Event.INIT:  # fail at Trainer construction, not mid-run
            count = num_samples(source)
            if count is None or sample_indices(source, 0, 0) is None:
                raise ConfigError(
                    "alternating_flip needs to know which samples are in each batch, and this data source cannot say",
                    "use hasten's TensorBatches, or give the source sample_indices(epoch, index) and num_samples",
                )
            self._first_flips = first_epoch_flips(count, state.seed).to(state.device)
            state.extra[self.name] = {"replaced_random_flip": disable_random_flip(source)}
            return
        epoch, index = state.timestamp.epoch, state.timestamp.batch_in_epoch
        indices = sample_indices(source, epoch, index)
        if indices is None or len(indices) != state.inputs.shape[0]:
            raise ConfigError(
                f"alternating_flip: the source's sample indices do not match batch {index} of epoch {epoch}",
                "apply alternating_flip to the batches exactly as the source yields them",
            )
        state.inputs = alternating_flip_batch(state.inputs, indices, epoch, self._first_flips)  # type: ignore[arg-type]  # set at the first batch


register(
    MethodCard(
        name="alternating_flip",
        summary="Flip each image on alternate epochs (random first choice) instead of at random",
        component="data",
        action="replace",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper("Keller Jordan", 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", "2404.00498"),
        not_worth_it=(
            "data without left-right symmetry (digits, text); custom sources that flip at random themselves "
            "(the two stack; hasten's ImageAugment flip is switched off); single-epoch runs (it equals random flipping until the second epoch); the paper's gains "
            "are for short CIFAR-10 runs, expect less on long ones"
        ),
        effect="no change in step cost; fewer epochs to the same accuracy on short multi-epoch image runs",
        applies_to=("image",),
        functional=("alternating_flip_batch", "first_epoch_flips"),
    ),
    AlternatingFlip,
)
