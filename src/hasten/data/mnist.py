"""MNIST in its original format: four gzip-compressed IDX files.

IDX is a big-endian header (two zero bytes, a type code, the number of dimensions, then
each dimension as a 32-bit integer) followed by the raw values. The official files'
sha256 are checked before reading; the reader still checks the header and the length,
so a file from elsewhere fails with a clear message rather than a reshape error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hasten.data import files
from hasten.data.files import DataFile
from hasten.data.images import ImageSet
from hasten.errors import DataError

# Official address first; the two mirrors serve byte-identical files (same sha256).
_BASES = (
    "http://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _file(name: str, size: int, sha256: str) -> DataFile:
    return DataFile(f"mnist/{name}", sha256=sha256, size=size, urls=tuple(base + name for base in _BASES))


FILES = {
    "train": (
        _file(
            "train-images-idx3-ubyte.gz", 9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        _file("train-labels-idx1-ubyte.gz", 28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ),
    "test": (
        _file(
            "t10k-images-idx3-ubyte.gz", 1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        _file("t10k-labels-idx1-ubyte.gz", 4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
}
CLASSES = tuple(str(digit) for digit in range(10))
# Pixel mean and std of the training images (0-255 scale).
MEAN = (33.32,)
STD = (78.57,)

_IDX_TYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip-compressed or not) as a numpy array of its declared type and shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc})", "it is damaged; fetch it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad header {raw[:4].hex()})", "fetch the official MNIST files")
    dims = raw[3]
    header = 4 + 4 * dims
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    if len(shape) != dims:
        raise DataError(f"{path} is truncated inside its header", "fetch it again")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} holds {len(raw) - header:,} bytes of values, its header promises {expected:,}",
            "it is truncated or damaged; fetch it again",
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_mnist(split: str, data_dir: str | os.PathLike | None = None) -> ImageSet:
    """MNIST ``split`` ("train" or "test"): uint8 images (N, 1, 28, 28) and int64 labels."""
    if split not in FILES:
        raise DataError(f"MNIST has no split {split!r}", "use 'train' or 'test'")
    image_file, label_file = (files.fetch(spec, data_dir, dataset="MNIST") for spec in FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{image_file} and {label_file} do not match ({images.shape} images, {labels.shape} labels)",
            "fetch the official MNIST files",
        )
    return ImageSet(images[:, None].copy(), labels.astype(np.int64), CLASSES, f"mnist:{image_file.parent}")
