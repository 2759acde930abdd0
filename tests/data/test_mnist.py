"""MNIST IDX reader on the real files, and its errors on damaged ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from hasten.data.mnist import load_mnist, read_idx
from hasten.errors import DataError

# Published per-class counts (README of the shared data, matching the official distribution).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(("split", "counts", "mean"), [("train", TRAIN_COUNTS, 33.32), ("test", TEST_COUNTS, 33.79)])
def test_real_mnist_counts_shapes_and_label_histogram(
    data_dir: Path, split: str, counts: list[int], mean: float
) -> None:
    data = load_mnist(split, data_dir)
    assert data.images.shape == (sum(counts), 1, 28, 28)
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    assert np.bincount(data.labels, minlength=10).tolist() == counts
    assert data.images.mean() == pytest.approx(mean, abs=0.005)
    assert data.images.min() == 0 and data.images.max() == 255
    images, labels = data.tensors()
    assert tuple(images.shape) == (sum(counts), 1, 28, 28) and labels[:5].tolist() == data.labels[:5].tolist()


def test_first_training_labels_are_in_the_official_order(data_dir: Path) -> None:
    assert load_mnist("train", data_dir).labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def idx_bytes(values: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, values.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in values.shape)
    return header + values.astype(np.uint8).tobytes()


def test_read_idx_round_trips_plain_and_gzip(tmp_path: Path) -> None:
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "plain.idx").write_bytes(idx_bytes(values))
    (tmp_path / "packed.idx.gz").write_bytes(gzip.compress(idx_bytes(values)))
    assert np.array_equal(read_idx(tmp_path / "plain.idx"), values)
    assert np.array_equal(read_idx(tmp_path / "packed.idx.gz"), values)


def test_truncated_idx_says_truncated(tmp_path: Path) -> None:
    values = np.zeros((10, 28, 28), dtype=np.uint8)
    (tmp_path / "short.gz").write_bytes(gzip.compress(idx_bytes(values)[:-100]))
    with pytest.raises(DataError, match="header promises 7,840.*truncated"):
        read_idx(tmp_path / "short.gz")


def test_cut_gzip_stream_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    raw = (data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(tmp_path / "cut.gz")


def test_wrong_magic_is_not_an_idx_file(tmp_path: Path) -> None:
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"hello, this is not IDX"))
    with pytest.raises(DataError, match="is not an IDX file"):
        read_idx(tmp_path / "text.gz")


def test_unknown_split_is_refused(data_dir: Path) -> None:
    with pytest.raises(DataError, match="no split 'valid'"):
        load_mnist("valid", data_dir)
