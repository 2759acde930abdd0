"""The ``DataLoader`` path, for image sets that do not fit in memory.

``ImageFileDataset`` decodes one image per item straight from a folder or tar archive
(each worker process opens its own file handle). ``LoaderBatches`` feeds it through a
``torch.utils.data.DataLoader`` but keeps ``TensorBatches``' contract: the epoch's order
comes from (seed, epoch), a resumed epoch starts at any batch, and the same batch-wise
``transform`` (crop, flip, normalize) runs on the collated batch on the device.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hasten.data.images import ImageEntry, decode_image, index_image_folder
from hasten.data.memory import BatchTransform, epoch_order, rank_part
from hasten.errors import DataError


class ImageFileDataset(Dataset):
    """``split/class/file`` images of a folder or tar, decoded on access to uint8 (C, H, W)."""

    def __init__(self, source: str | os.PathLike, split: str, mode: str = "RGB") -> None:
        self.index = index_image_folder(source, split)
        self.classes = self.index.classes
        self.mode = mode
        self._handle: Any = None
        self._owner = -1

    def __len__(self) -> int:
        return len(self.index.entries)

    def _read(self, entry: ImageEntry) -> bytes:
        if not self.index.is_tar:
            return (self.index.source / entry.name).read_bytes()
        if self._owner != os.getpid():  # a forked worker must not share the parent's file position
            self._handle, self._owner = open(self.index.source, "rb"), os.getpid()
        self._handle.seek(entry.offset)
        data = self._handle.read(entry.size)
        if len(data) != entry.size:
            raise DataError(f"{self.index.source} is truncated at {entry.name}", "fetch the archive again")
        return data

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        entry = self.index.entries[i]
        image = decode_image(self._read(entry), f"{self.index.source}:{entry.name}", self.mode)
        return torch.from_numpy(np.array(image)), entry.label  # np.array: a writable copy

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"], state["_owner"] = None, -1
        return state


class LoaderBatches:
    """A batch source over any map-style dataset, loaded by ``num_workers`` processes."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        transform: BatchTransform | None = None,
        num_workers: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last and len(dataset) >= batch_size  # type: ignore[arg-type]
        self.seed = seed
        self.transform = transform
        self.num_workers = num_workers
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> "LoaderBatches":
        """This source for process ``rank`` of ``world_size``: each rank decodes only its part of every
        global batch (``batch_size`` stays the global batch)."""
        part = copy.copy(self)
        part.rank, part.world_size = rank, world_size
        return part

    def __len__(self) -> int:
        n = len(self.dataset)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = epoch_order(len(self.dataset), self.seed, epoch, self.shuffle)  # type: ignore[arg-type]
        plan = [
            rank_part(order[i * self.batch_size : (i + 1) * self.batch_size], self.rank, self.world_size).tolist()
            for i in range(start, len(self))
        ]
        if not plan:
            return
        loader = DataLoader(
            self.dataset, batch_sampler=plan, num_workers=self.num_workers, pin_memory=self.device.type == "cuda"
        )
        for x, y in loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.transform is not None:
                x, y = self.transform(x, y)
            yield x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(0)
