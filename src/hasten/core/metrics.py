"""Evaluation metrics, accumulated over a whole eval set so results are exact, not batch averages."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F


class Metric:
    """Accumulate with ``update(outputs, targets)``; read with ``compute()``.

    ``sums`` names the accumulator attributes that add up over disjoint parts of the eval set;
    a data-parallel run evaluates a shard per process and sums them. A metric without ``sums``
    is computed on the whole eval set by every process instead."""

    name: str = "metric"
    higher_is_better: bool = True
    sums: ClassVar[tuple[str, ...]] = ()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError


def _flatten(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) or (N, T, C) logits with (N,) or (N, T) class targets -> (M, C), (M,)."""
    return outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1)


class Accuracy(Metric):
    """Top-1 accuracy over every target element."""

    name = "accuracy"
    higher_is_better = True
    sums = ("_correct", "_total")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._correct = 0
        self._total = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits, labels = _flatten(outputs, targets)
        self._correct += int((logits.argmax(dim=-1) == labels).sum())
        self._total += labels.numel()

    def compute(self) -> float:
        return self._correct / self._total if self._total else float("nan")


class CrossEntropy(Metric):
    """Mean cross-entropy (nats) over every target element: the LM validation loss."""

    name = "loss"
    higher_is_better = False
    sums = ("_sum", "_total")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sum = 0.0
        self._total = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits, labels = _flatten(outputs, targets)
        self._sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
        self._total += labels.numel()

    def compute(self) -> float:
        return self._sum / self._total if self._total else float("nan")


class MaskedCrossEntropy(CrossEntropy):
    """Mean cross-entropy over the positions whose target is not ``ignore_index`` (masked-LM loss)."""

    def __init__(self, ignore_index: int = -100) -> None:
        self.ignore_index = ignore_index
        super().__init__()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits, labels = _flatten(outputs, targets)
        keep = labels != self.ignore_index
        self._sum += float(F.cross_entropy(logits[keep].float(), labels[keep], reduction="sum"))
        self._total += int(keep.sum())


class MaskedAccuracy(Accuracy):
    """Top-1 accuracy over the positions whose target is not ``ignore_index``."""

    def __init__(self, ignore_index: int = -100) -> None:
        self.ignore_index = ignore_index
        super().__init__()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits, labels = _flatten(outputs, targets)
        keep = labels != self.ignore_index
        self._correct += int((logits[keep].argmax(dim=-1) == labels[keep]).sum())
        self._total += int(keep.sum())
