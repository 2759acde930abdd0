"""Whole data splits held in memory (on the training device), batched by indexing.

For data that fits: no per-sample Python, no worker processes. Each epoch's order
comes from a generator seeded by (seed, epoch), so any batch can be reproduced from
its position alone, which is what exact resume needs.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterator

import torch

BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def rank_part(picked: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous part of one global batch's sample indices (data-parallel runs)."""
    return torch.tensor_split(picked, world_size)[rank] if world_size > 1 else picked


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The sample order of ``epoch``: a permutation drawn from (seed, epoch) alone."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


class TensorBatches:
    """A batch source over ``inputs[i], targets[i]``.

    ``transform(x, y)`` runs on each whole batch (batch-wise augmentation); it may use
    torch's global RNG, which the Trainer checkpoints. ``tokens_per_sample`` lets
    token-based durations work for sequence data. ``shard(rank, world_size)`` gives one
    data-parallel process its part of every (global) batch: the same epoch order on every rank.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        transform: BatchTransform | None = None,
        device: torch.device | str | None = None,
        tokens_per_sample: int = 0,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        device = torch.device(device) if device is not None else inputs.device
        self.inputs = inputs.to(device)
        self.targets = targets.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last and len(inputs) >= batch_size
        self.seed = seed
        self.transform = transform
        self.tokens_per_batch = tokens_per_sample * batch_size
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> "TensorBatches":
        """This source for process ``rank`` of ``world_size``: ``batch_size`` stays the global batch."""
        part = copy.copy(self)
        part.rank, part.world_size = rank, world_size
        return part

    def __len__(self) -> int:
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        return epoch_order(len(self.inputs), self.seed, epoch, self.shuffle)

    def sample_indices(self, epoch: int, index: int) -> torch.Tensor:
        """Dataset indices of batch ``index`` of ``epoch`` (this rank's part of it)."""
        picked = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        return rank_part(picked, self.rank, self.world_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order(epoch).to(self.inputs.device)
        for index in range(start, len(self)):
            picked = order[index * self.batch_size : (index + 1) * self.batch_size]
            picked = rank_part(picked, self.rank, self.world_size)
            x, y = self.inputs[picked], self.targets[picked]
            if self.transform is not None:
                x, y = self.transform(x, y)
            yield x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(0)
