"""CIFAR-10: the JPEG copy (real files), the python-batch reader on a written fixture, the
official-archive path through a local server, and errors on damaged or tampered files."""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hasten.data import cifar, files
from hasten.data.cache import cache_path
from hasten.data.files import DataFile
from hasten.errors import DataError


@pytest.fixture(scope="module")
def jpeg_copy(data_dir: Path, session_cache: Path) -> dict[str, cifar.ImageSet]:
    return {split: cifar.load_cifar10(split, data_dir) for split in ("train", "test")}


@pytest.mark.parametrize(("split", "per_class"), [("train", 5000), ("test", 1000)])
def test_jpeg_copy_has_every_image_of_every_class(jpeg_copy: dict, split: str, per_class: int) -> None:
    data = jpeg_copy[split]
    assert data.images.shape == (10 * per_class, 3, 32, 32) and data.images.dtype == np.uint8
    assert np.bincount(data.labels, minlength=10).tolist() == [per_class] * 10
    assert data.classes == cifar.CLASSES
    assert data.source.startswith("cifar10-jpeg:")


def test_jpeg_copy_pixels_look_like_cifar(jpeg_copy: dict) -> None:
    train = jpeg_copy["train"].images
    assert train.mean() == pytest.approx(120.69, abs=0.05)  # the measured anchors' figure
    channel_means = train.mean(axis=(0, 2, 3))
    assert np.allclose(channel_means, cifar.MEAN, atol=1.5)  # the published means of the original release


def test_decoded_copy_is_cached_and_not_decoded_again(
    jpeg_copy: dict, data_dir: Path, session_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = cache_path("cifar10-jpeg-test", cifar.JPEG_FILES["test"].sha256 or "")
    assert cached.is_relative_to(session_cache) and cached.exists()

    def no_decoding(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the cached copy was decoded again")

    monkeypatch.setattr(cifar, "decode_image_folder", no_decoding)
    monkeypatch.setattr(cifar, "index_image_folder", no_decoding)
    again = cifar.load_cifar10("test", data_dir)
    assert np.array_equal(again.images, jpeg_copy["test"].images)
    assert np.array_equal(again.labels, jpeg_copy["test"].labels)


def test_unreadable_cache_is_decoded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hasten.data.cache import cached_arrays

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    build = lambda: {"a": np.arange(5, dtype=np.uint8)}  # noqa: E731
    path = cache_path("thing", "abc")
    assert cached_arrays("thing", "abc", build)["a"].tolist() == [0, 1, 2, 3, 4]
    path.write_bytes(path.read_bytes()[:30])
    with pytest.warns(UserWarning, match="unreadable"):
        assert cached_arrays("thing", "abc", build)["a"].tolist() == [0, 1, 2, 3, 4]


# ------------------------------------------------------- python batches fixture
# The official batches were written by Python 2's cPickle, protocol 2: str keys and values are
# BINSTRING opcodes (read back as bytes with encoding="bytes"), the array is numpy's
# ``_reconstruct`` + ``__setstate__``. ``py2_pickle`` writes exactly that opcode stream.
def _str(value: bytes) -> bytes:
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(value)) + value  # BINSTRING


def _int(value: int) -> bytes:
    return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)


def _array(a: np.ndarray) -> bytes:
    new = b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _int(0) + b"\x85" + _str(b"b") + b"\x87R"
    dtype = b"cnumpy\ndtype\n" + _str(b"u1") + _int(0) + _int(1) + b"\x87R"
    dtype += b"(" + _int(3) + _str(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb"
    shape = b"(" + b"".join(_int(d) for d in a.shape) + b"t"
    return new + b"(" + _int(1) + shape + dtype + b"\x89" + _str(a.tobytes()) + b"tb"


def py2_pickle(batch: dict[bytes, object]) -> bytes:
    body = b""
    for key, value in batch.items():
        if isinstance(value, np.ndarray):
            encoded = _array(value)
        elif isinstance(value, list):
            encoded = b"](" + b"".join(_str(v) if isinstance(v, bytes) else _int(v) for v in value) + b"e"
        else:
            encoded = _str(value)  # type: ignore[arg-type]
        body += _str(key) + encoded
    return b"\x80\x02}(" + body + b"u."


def batch_dict(n: int, seed: int, label_offset: int = 0) -> dict[bytes, object]:
    """A batch in the official layout: (N, 3072) uint8 rows (R, G, B planes), list labels, names."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": f"training batch {seed} of 5".encode(),
        b"labels": [(i + label_offset) % 10 for i in range(n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def write_batches(folder: Path, n: int = 20) -> dict[str, list[dict]]:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[dict]] = {"train": [], "test": []}
    for split, names in cifar.PYTHON_BATCHES.items():
        for k, (name, _md5) in enumerate(names):
            batch = batch_dict(n, seed=k + (10 if split == "test" else 0), label_offset=k)
            (folder / name).write_bytes(py2_pickle(batch))
            written[split].append(batch)
    (folder / "batches.meta").write_bytes(py2_pickle({b"label_names": [c.encode() for c in cifar.CLASSES]}))
    return written


def test_python_batch_reader_on_a_written_fixture(tmp_path: Path) -> None:
    batch = batch_dict(7, seed=3)
    (tmp_path / "data_batch_1").write_bytes(py2_pickle(batch))
    assert pickle.loads(py2_pickle(batch), encoding="bytes")[b"labels"] == batch[b"labels"]  # a valid pickle
    read = cifar.read_python_batch(tmp_path / "data_batch_1")
    assert read["images"].shape == (7, 3, 32, 32) and read["images"].dtype == np.uint8
    assert read["labels"].tolist() == batch[b"labels"]
    row = batch[b"data"][4]  # type: ignore[index]
    assert np.array_equal(read["images"][4, 0].ravel(), row[:1024])  # red plane first
    assert np.array_equal(read["images"][4, 2].ravel(), row[2048:])  # blue plane last


def test_python_split_concatenates_batches_in_order(tmp_path: Path) -> None:
    written = write_batches(tmp_path / "cifar-10-batches-py")
    train = cifar.read_python_split(tmp_path / "cifar-10-batches-py", "train", check=False)
    assert train.images.shape == (100, 3, 32, 32)
    expected = np.concatenate([b[b"data"] for b in written["train"]]).reshape(-1, 3, 32, 32)
    assert np.array_equal(train.images, expected)
    with pytest.raises(DataError, match="fails its md5 check"):  # the fixture is not the official file
        cifar.read_python_split(tmp_path / "cifar-10-batches-py", "train", check=True)


class _Boom:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned > /dev/null",))


def test_tampered_pickle_cannot_run_code(tmp_path: Path) -> None:
    evil = batch_dict(2, seed=0)
    evil[b"labels"] = _Boom()
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(evil, protocol=4))
    with pytest.raises(DataError, match=r"not a CIFAR-10 python batch .*refusing to load (posix|os)\.system"):
        cifar.read_python_batch(tmp_path / "data_batch_1")


@pytest.mark.parametrize("damage", ["truncated", "wrong_width", "bad_labels"])
def test_damaged_python_batch_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    batch = batch_dict(4, seed=1)
    if damage == "wrong_width":
        batch[b"data"] = np.zeros((4, 1000), dtype=np.uint8)
    if damage == "bad_labels":
        batch[b"labels"] = [0, 1, 2, 11]
    raw = py2_pickle(batch)
    (tmp_path / "batch").write_bytes(raw[: len(raw) // 2] if damage == "truncated" else raw)
    with pytest.raises(DataError, match="batch"):
        cifar.read_python_batch(tmp_path / "batch")


def test_official_archive_is_downloaded_verified_and_extracted(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the JPEG copy, cifar10 falls back to the official python archive: downloaded from
    (here) a local server, checked, extracted safely into the cache and read."""
    base, served = server
    written = write_batches(tmp_path / "build" / "cifar-10-batches-py")
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = archive.read_bytes()
    fake = DataFile(
        "cifar10/cifar-10-python.tar.gz",
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        urls=(f"{base}/cifar-10-python.tar.gz",),
    )
    monkeypatch.setattr(cifar, "PYTHON_ARCHIVE", fake)
    monkeypatch.setattr(
        cifar, "PYTHON_BATCHES", {s: tuple((n, None) for n, _ in b) for s, b in cifar.PYTHON_BATCHES.items()}
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HASTEN_DATA", raising=False)
    monkeypatch.delenv(files.OFFLINE_ENV, raising=False)
    test = cifar.load_cifar10("test", tmp_path / "empty")
    assert test.source.startswith("cifar-10-python:")
    assert np.array_equal(test.images, written["test"][0][b"data"].reshape(-1, 3, 32, 32))  # type: ignore[union-attr]
    assert (tmp_path / "xdg" / "hasten" / "cifar10" / "cifar-10-batches-py" / "data_batch_5").exists()
    archive.unlink()  # later loads read the extracted folder, no network
    assert len(cifar.load_cifar10("train", tmp_path / "empty")) == 100


def test_tampered_official_archive_is_refused(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, served = server
    (served / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    spec = DataFile("cifar10/cifar-10-python.tar.gz", sha256="0" * 64, urls=(f"{base}/cifar-10-python.tar.gz",))
    monkeypatch.setattr(cifar, "PYTHON_ARCHIVE", spec)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HASTEN_DATA", raising=False)
    monkeypatch.delenv(files.OFFLINE_ENV, raising=False)
    with pytest.raises(DataError, match="fails its sha256 check"):
        cifar.load_cifar10("test", tmp_path / "empty")
    assert not (tmp_path / "xdg" / "hasten" / "cifar10").exists() or not any(
        (tmp_path / "xdg" / "hasten" / "cifar10").iterdir()
    )


def test_corrupt_jpeg_copy_fails_its_checksum(tmp_path: Path, data_dir: Path) -> None:
    raw = (data_dir / "cifar10-jpeg" / "test.tar").read_bytes()
    (tmp_path / "cifar10-jpeg").mkdir()
    damaged = bytearray(raw)
    damaged[5_000_000] ^= 0xFF  # one flipped byte inside an image
    (tmp_path / "cifar10-jpeg" / "test.tar").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="test.tar fails its sha256 check"):
        cifar.load_cifar10("test", tmp_path)
    (tmp_path / "cifar10-jpeg" / "test.tar").write_bytes(raw[:1_000_000])
    with pytest.raises(DataError, match="it is truncated"):
        cifar.load_cifar10("test", tmp_path)
