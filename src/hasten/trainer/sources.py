"""Training data as the Trainer reads it: batches per epoch, resumable at any position.

A *batch source* has ``__len__`` (batches per epoch) and ``batches(epoch, start)``,
which yields that epoch's batches from index ``start`` on, the same ones every time
for the same seed and epoch. hasten's in-memory loaders implement this directly;
any other iterable (a ``DataLoader``, a list) is wrapped by ``IterableSource``.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

import torch

from hasten.core.time import Rates
from hasten.errors import ConfigError


@runtime_checkable
class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]: ...


class IterableSource:
    """Wrap an iterable of ``(inputs, targets)`` batches.

    Resuming mid-epoch skips ``start`` batches. A ``DataLoader`` with a ``generator``
    is reseeded from (seed, epoch) each epoch so its shuffle order is reproducible,
    which exact resume needs; without one, resume is exact only if the loader does
    not shuffle.
    """

    def __init__(self, data: Iterable, seed: int = 0) -> None:
        self.data = data
        self.seed = seed
        try:
            self._length = len(data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(
                "training data must have a length (batches per epoch)",
                "pass a DataLoader, a list of batches, or a hasten batch source",
            ) from exc
        if self._length == 0:
            raise ConfigError("training data is empty", "check the data set and the batch size")

    def __len__(self) -> int:
        return self._length

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        sampler = getattr(self.data, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        generator = getattr(self.data, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(self.seed * 100_003 + epoch)
        return itertools.islice(iter(self.data), start, None)


def as_source(data: Any, seed: int = 0) -> Any:
    if isinstance(data, BatchSource) and hasattr(data, "batches"):
        return data
    return IterableSource(data, seed)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move an ``(inputs, targets)`` batch (tensors, or tuples/lists/dicts of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True) if batch.device != device else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(b, device) for b in batch) if not hasattr(batch, "_fields") else batch
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    return batch


def batch_size_of(batch: Any) -> int:
    inputs = batch[0]
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    return len(inputs)


def tokens_in(batch: Any, source: Any = None) -> int:
    """Tokens in a batch: the source's count if it has one, else target elements of sequence targets."""
    counter = getattr(source, "tokens_in", None)
    if callable(counter):
        return int(counter(batch))
    targets = batch[1]
    if isinstance(targets, torch.Tensor) and targets.ndim >= 2 and not targets.is_floating_point():
        return int(targets.numel())
    return 0


def measure_rates(source: Any) -> Rates:
    """Batches per epoch, samples and tokens per step: from the source's attributes, else its first batch."""
    samples = getattr(source, "batch_size", None)
    tokens = getattr(source, "tokens_per_batch", None)
    if samples is None or tokens is None:
        first = next(iter(source.batches(0)))
        samples = samples or batch_size_of(first)
        tokens = tokens if tokens is not None else tokens_in(first, source)
    return Rates(len(source), float(samples), float(tokens))


def split_micro_batches(batch: Any, parts: int) -> list[Any]:
    """Split ``(inputs, targets)`` along the first dimension into ``parts`` micro-batches."""
    if parts == 1:
        return [batch]
    size = batch_size_of(batch)
    if size < parts:
        raise ConfigError(f"batch of {size} cannot be split into {parts} micro-batches", "lower grad_accum")
    chunks = [torch.tensor_split(t, parts) if isinstance(t, torch.Tensor) else None for t in batch]
    if any(c is None for c in chunks):
        raise ConfigError("gradient accumulation needs tensor inputs and targets")
    return [tuple(c[i] for c in chunks) for i in range(parts)]  # type: ignore[index]
