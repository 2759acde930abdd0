"""Image folders, plain or packed in a tar archive: ``split/class/file.jpg|png``.

This is the layout of torchvision's ``ImageFolder`` with one folder per split, and of the
CIFAR-10 JPEG copy (``train.tar`` holds ``train/airplane/0000.jpg`` ...). Classes are the
sorted folder names, so labels are the same on every machine. ``decode_image_folder``
turns a whole split into one uint8 array (for ``TensorBatches``); ``index_image_folder``
only lists the files (for the streaming ``DataLoader`` path).
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np
import torch

from hasten.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageSet:
    """A decoded split: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64, class names, and
    ``source`` (which files it came from, recorded with runs)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` as torch tensors sharing the arrays' memory."""
        return torch.from_numpy(self.images), torch.from_numpy(self.labels)


@dataclass(frozen=True)
class ImageEntry:
    """One image: its name inside the source, its label and, in a tar, where its bytes are."""

    name: str
    label: int
    offset: int = -1
    size: int = -1


@dataclass(frozen=True)
class ImageIndex:
    source: Path
    split: str
    classes: tuple[str, ...]
    entries: tuple[ImageEntry, ...]

    @property
    def is_tar(self) -> bool:
        return self.source.is_file()


def _split_class(name: str, split: str) -> tuple[str, str] | None:
    """``(class, file)`` if ``name`` is ``split/class/file.<image suffix>``, else None."""
    parts = PurePosixPath(name[2:] if name.startswith("./") else name).parts
    if len(parts) == 3 and parts[0] == split and parts[2].lower().endswith(IMAGE_SUFFIXES):
        return parts[1], parts[2]
    return None


def index_image_folder(source: str | os.PathLike, split: str) -> ImageIndex:
    """List ``split``'s images in a folder or tar archive, sorted by name, labelled by class folder."""
    source = Path(source)
    found: list[tuple[str, str, int, int]] = []  # (class, name, offset, size)
    if source.is_dir():
        base = source / split
        if not base.is_dir():
            raise DataError(f"{source} has no {split}/ folder", f"lay the images out as {split}/<class>/<file>.jpg")
        for class_dir in base.iterdir():
            if class_dir.is_dir():
                found += [
                    (class_dir.name, f"{split}/{class_dir.name}/{f.name}", -1, -1)
                    for f in class_dir.iterdir()
                    if f.name.lower().endswith(IMAGE_SUFFIXES)
                ]
    elif source.is_file():
        try:
            with tarfile.open(source) as archive:
                for member in archive:
                    where = _split_class(member.name, split) if member.isfile() else None
                    if where:
                        found.append((where[0], member.name, member.offset_data, member.size))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"cannot read the tar archive {source}: {exc}", "it is damaged; fetch it again") from exc
    else:
        raise DataError(f"image source {source} does not exist", "pass a folder or a .tar of split/class/file images")
    if not found:
        raise DataError(f"no {split}/<class>/<image> files in {source}", "check the split name and the layout")
    classes = tuple(sorted({c for c, *_ in found}))
    label = {c: i for i, c in enumerate(classes)}
    found.sort(key=lambda item: item[1])
    entries = tuple(ImageEntry(name, label[c], offset, size) for c, name, offset, size in found)
    return ImageIndex(source, split, classes, entries)


def _raw_images(index: ImageIndex) -> Iterator[tuple[ImageEntry, bytes]]:
    if index.is_tar:
        with open(index.source, "rb") as handle:
            for entry in sorted(index.entries, key=lambda e: e.offset):  # one forward pass over the file
                handle.seek(entry.offset)
                data = handle.read(entry.size)
                if len(data) != entry.size:
                    raise DataError(f"{index.source} is truncated at {entry.name}", "fetch the archive again")
                yield entry, data
    else:
        for entry in index.entries:
            yield entry, (index.source / entry.name).read_bytes()


def decode_image(data: bytes, name: str = "image", mode: str = "RGB") -> np.ndarray:
    """Bytes of a JPEG/PNG -> uint8 array (C, H, W)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image if image.mode == mode else image.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode {name}: {exc}", "the file is damaged; fetch the data set again") from exc
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_image_folder(index: ImageIndex, mode: str = "RGB") -> dict[str, np.ndarray]:
    """Decode every image of ``index`` into ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64,
    in the index's (name-sorted) order. All images must have one size."""
    position = {entry.name: i for i, entry in enumerate(index.entries)}
    images: np.ndarray | None = None
    for entry, data in _raw_images(index):
        array = decode_image(data, f"{index.source}:{entry.name}", mode)
        if images is None:
            images = np.empty((len(index.entries), *array.shape), dtype=np.uint8)
        if array.shape != images.shape[1:]:
            raise DataError(
                f"{entry.name} is {array.shape[2]}x{array.shape[1]}, the others are "
                f"{images.shape[3]}x{images.shape[2]}",
                "resize the images to one size, or use the streaming loader with a resize",
            )
        images[position[entry.name]] = array
    labels = np.array([entry.label for entry in index.entries], dtype=np.int64)
    assert images is not None  # index_image_folder never returns an empty index
    return {"images": images, "labels": labels}
