"""Image folders and tar archives of them, decoded whole or streamed through a DataLoader."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hasten.data.images import decode_image_folder, index_image_folder
from hasten.data.memory import TensorBatches
from hasten.data.streaming import ImageFileDataset, LoaderBatches
from hasten.errors import DataError

CLASSES = ("cat", "dog", "emu")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """``root/train/<class>/<k>.png`` with distinct lossless images, and the arrays by name."""
    rng = np.random.default_rng(0)
    root, arrays = tmp_path / "images", {}
    for c, name in enumerate(CLASSES):
        (root / "train" / name).mkdir(parents=True)
        for k in range(3 + c):
            array = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
            (root / "train" / name / f"{k}.png").write_bytes(png_bytes(array))
            arrays[f"train/{name}/{k}.png"] = array
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    return root, arrays


def tar_of(root: Path, path: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        archive.add(root / "train", arcname="train")
    return path


def test_folder_decodes_with_sorted_classes_and_labels(folder: tuple[Path, dict]) -> None:
    root, arrays = folder
    index = index_image_folder(root, "train")
    assert index.classes == CLASSES and len(index.entries) == 3 + 4 + 5
    decoded = decode_image_folder(index)
    assert decoded["images"].shape == (12, 3, 8, 6) and decoded["images"].dtype == np.uint8
    assert np.bincount(decoded["labels"]).tolist() == [3, 4, 5]
    for i, entry in enumerate(index.entries):
        assert np.array_equal(decoded["images"][i], arrays[entry.name].transpose(2, 0, 1))


def test_tar_of_the_folder_decodes_identically(folder: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = folder
    from_folder = decode_image_folder(index_image_folder(root, "train"))
    from_tar = decode_image_folder(index_image_folder(tar_of(root, tmp_path / "train.tar"), "train"))
    assert np.array_equal(from_folder["images"], from_tar["images"])
    assert np.array_equal(from_folder["labels"], from_tar["labels"])


def test_grayscale_mode_gives_one_channel(folder: tuple[Path, dict]) -> None:
    root, _ = folder
    assert decode_image_folder(index_image_folder(root, "train"), mode="L")["images"].shape == (12, 1, 8, 6)


def test_mixed_sizes_are_a_clear_error(folder: tuple[Path, dict]) -> None:
    root, _ = folder
    (root / "train" / "emu" / "9.png").write_bytes(png_bytes(np.zeros((5, 5, 3), dtype=np.uint8)))
    with pytest.raises(DataError, match="train/emu/9.png is 5x5, the others are 6x8"):
        decode_image_folder(index_image_folder(root, "train"))


def test_damaged_image_is_named(folder: tuple[Path, dict]) -> None:
    root, _ = folder
    (root / "train" / "cat" / "0.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"cannot decode .*train/cat/0.png"):
        decode_image_folder(index_image_folder(root, "train"))


def test_missing_split_and_empty_layout_are_clear(folder: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = folder
    with pytest.raises(DataError, match="has no test/ folder"):
        index_image_folder(root, "test")
    with pytest.raises(DataError, match="no test/<class>/<image> files"):
        index_image_folder(tar_of(root, tmp_path / "train.tar"), "test")
    with pytest.raises(DataError, match="does not exist"):
        index_image_folder(tmp_path / "nowhere", "train")


def test_truncated_tar_is_a_clear_error(folder: tuple[Path, dict], tmp_path: Path) -> None:
    archive = tar_of(folder[0], tmp_path / "train.tar")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[:3000])
    with pytest.raises(DataError, match="cut.tar"):
        decode_image_folder(index_image_folder(cut, "train"))


@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_batches_match_in_memory_batches(folder: tuple[Path, dict], tmp_path: Path, workers: int) -> None:
    """The DataLoader path yields the same batches, in the same (seed, epoch) order, as TensorBatches."""
    archive = tar_of(folder[0], tmp_path / "train.tar")
    decoded = decode_image_folder(index_image_folder(archive, "train"))
    memory = TensorBatches(torch.from_numpy(decoded["images"]), torch.from_numpy(decoded["labels"]), 5, seed=3)
    streamed = LoaderBatches(ImageFileDataset(archive, "train"), 5, seed=3, num_workers=workers)
    assert len(streamed) == len(memory) == 2
    for epoch in (0, 1):
        for (xs, ys), (xm, ym) in zip(streamed.batches(epoch), memory.batches(epoch), strict=True):
            assert torch.equal(xs, xm) and torch.equal(ys, ym)
    resumed = list(streamed.batches(1, start=1))
    assert len(resumed) == 1 and torch.equal(resumed[0][0], list(memory.batches(1))[1][0])


def test_streaming_applies_the_batch_transform(folder: tuple[Path, dict]) -> None:
    def halve(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.float() / 2, y

    batches = LoaderBatches(ImageFileDataset(folder[0], "train"), 4, shuffle=False, drop_last=False, transform=halve)
    shapes = [tuple(x.shape) for x, _ in batches]
    assert shapes == [(4, 3, 8, 6)] * 3
    x, _ = next(iter(batches))
    assert x.dtype == torch.float32 and float(x.max()) <= 127.5
