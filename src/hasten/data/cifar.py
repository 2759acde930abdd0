"""CIFAR-10: the JPEG copy (image-folder tars) or the official python batches.

``load_cifar10`` prefers the JPEG copy (``cifar10-jpeg/{train,test}.tar``), which the
``cifar10`` workload's target was measured on; without it, it reads the official python
batches (``cifar-10-batches-py/``, torchvision's layout), extracting or downloading the
official archive when needed. The python batches are pickles: they are read with an
unpickler that can build numpy arrays and nothing else, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from hasten.data import files
from hasten.data.cache import cached_arrays
from hasten.data.download import safe_extract
from hasten.data.files import DataFile
from hasten.data.images import ImageSet, decode_image_folder, index_image_folder
from hasten.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of the training images, on the 0-255 scale (the usual published values).
MEAN = (125.3, 123.0, 113.9)
STD = (63.0, 62.1, 66.7)

JPEG_FILES = {
    "train": DataFile(
        "cifar10-jpeg/train.tar",
        size=77_240_320,
        sha256="7a6ca90c4be3f975a4288cb27397b1b68dbb206b78705202043e0a7e610a0cf4",
    ),
    "test": DataFile(
        "cifar10-jpeg/test.tar",
        size=15_462_400,
        sha256="4d3f5584bfe0a58112f8208f07dc99f96810f1c7cbb1a3a01fbc8bcca879d27e",
    ),
}
PYTHON_ARCHIVE = DataFile(
    "cifar10/cifar-10-python.tar.gz",
    size=170_498_071,
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
)
PYTHON_FOLDER = "cifar-10-batches-py"
# md5 of each official batch file (published with torchvision's CIFAR10 loader).
PYTHON_BATCHES = {
    "train": (
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ),
    "test": (("test_batch", "40351d587109b95175f43aff81a1287e"),),
}
SPLITS = ("train", "test")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes, numbers and numpy arrays; refuses every other class."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_python_batch(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One official batch file -> ``images`` (N, 3, 32, 32) uint8 and ``labels`` (N,) int64."""
    path = Path(path)
    try:
        raw = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(raw[b"data"], dtype=np.uint8)
        labels = np.asarray(raw[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(
            f"{path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})",
            "it is damaged or another file; fetch the official archive again",
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(
            f"{path} holds data of shape {data.shape} and {len(labels)} labels, expected (N, 3072) and N",
            "it is damaged or another file; fetch the official archive again",
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path} has labels outside 0-9", "it is damaged or another file")
    return {"images": data.reshape(-1, 3, 32, 32), "labels": labels}


def read_python_split(folder: str | os.PathLike, split: str, *, check: bool = True) -> ImageSet:
    """All batch files of ``split`` in an official ``cifar-10-batches-py`` folder."""
    folder = Path(folder)
    parts = []
    for name, md5 in PYTHON_BATCHES[split]:
        path = folder / name
        if not path.exists():
            raise DataError(f"{folder} has no {name}", "the folder is incomplete; extract the official archive again")
        if check:
            files.verify(path, DataFile(f"{PYTHON_FOLDER}/{name}", md5=md5))
        parts.append(read_python_batch(path))
    images = np.concatenate([p["images"] for p in parts])
    labels = np.concatenate([p["labels"] for p in parts])
    return ImageSet(images, labels, CLASSES, f"cifar-10-python:{folder}")


def _python_folder(data_dir: str | os.PathLike | None) -> Path:
    """The official batches folder: found, extracted from a found archive, or downloaded."""
    for relative in (PYTHON_FOLDER, f"cifar10/{PYTHON_FOLDER}"):
        found = files.find(relative, data_dir)
        if found is not None and found.is_dir():
            return found
    wanted = [JPEG_FILES["train"].path, JPEG_FILES["test"].path, PYTHON_FOLDER + "/", PYTHON_ARCHIVE.path]
    archive = files.find(PYTHON_ARCHIVE.path, data_dir) or files.find(PYTHON_ARCHIVE.name, data_dir)
    if archive is not None:
        files.verify(archive, PYTHON_ARCHIVE)
    elif files.offline():
        raise files.missing_error("CIFAR-10", wanted, data_dir, f"downloads are off ({files.OFFLINE_ENV} is set)")
    else:
        from hasten.data.download import download

        try:
            archive = download(PYTHON_ARCHIVE, files.cache_root() / PYTHON_ARCHIVE.path)
        except DataError as exc:
            raise files.missing_error("CIFAR-10", wanted, data_dir, exc.problem) from exc
    return safe_extract(archive, files.cache_root() / "cifar10") / PYTHON_FOLDER


def decode_jpeg_split(archive: str | os.PathLike, split: str, source_digest: str) -> ImageSet:
    """Decode an image-folder tar once; later calls read the uint8 cache (a second or two)."""

    def decode() -> dict[str, np.ndarray]:
        index = index_image_folder(archive, split)
        if index.classes != CLASSES:
            raise DataError(
                f"{archive} has classes {', '.join(index.classes)}, not the ten CIFAR-10 classes",
                "point --data-dir at the CIFAR-10 JPEG copy",
            )
        return decode_image_folder(index)

    arrays = cached_arrays(f"cifar10-jpeg-{split}", source_digest, decode)
    return ImageSet(arrays["images"], arrays["labels"], CLASSES, f"cifar10-jpeg:{archive}")


def load_cifar10(split: str, data_dir: str | os.PathLike | None = None) -> ImageSet:
    """CIFAR-10 ``split`` ("train" or "test") as uint8 images (N, 3, 32, 32) and labels."""
    if split not in SPLITS:
        raise DataError(f"CIFAR-10 has no split {split!r}", "use 'train' or 'test'")
    spec = JPEG_FILES[split]
    archive = files.find(spec.path, data_dir)
    if archive is not None:
        files.verify(archive, spec)
        return decode_jpeg_split(archive, split, spec.sha256 or "")
    return read_python_split(_python_folder(data_dir), split)
