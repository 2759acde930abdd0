"""Batch-wise augmentation: shapes, dtypes, value ranges, and that each op does exactly its job."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hasten.data import cifar
from hasten.data.augment import ImageAugment, Normalize, normalize, random_crop, random_flip
from tests.harness import cifar_slice


@pytest.fixture(scope="module")
def images(data_dir: Path) -> torch.Tensor:
    return cifar_slice(str(data_dir), 256)[0]


def test_random_crop_keeps_shape_and_dtype_and_cuts_padded_windows(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    cropped = random_crop(images, 4)
    assert cropped.shape == images.shape and cropped.dtype == torch.uint8
    padded = F.pad(images, (4, 4, 4, 4))
    shifts = []
    for i in range(len(images)):  # each output is exactly one 32x32 window of its padded input
        match = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(padded[i, :, dy : dy + 32, dx : dx + 32], cropped[i])
        ]
        assert match, f"image {i} is not a window of its padded input"
        shifts.append(match[0])
    assert {dy for dy, _ in shifts} == set(range(9)) and {dx for _, dx in shifts} == set(range(9))  # every shift


def test_random_crop_pads_with_zeros_only_at_the_border(images: torch.Tensor) -> None:
    torch.manual_seed(1)
    cropped = random_crop(torch.full_like(images, 200), 4)
    assert set(cropped.unique().tolist()) <= {0, 200}
    assert (cropped[:, :, 4:28, 4:28] == 200).all()  # the centre never sees padding


def test_random_flip_mirrors_about_half_of_the_images(images: torch.Tensor) -> None:
    torch.manual_seed(2)
    flipped = random_flip(images)
    mirrored = [not torch.equal(flipped[i], images[i]) for i in range(len(images))]
    for i, was_flipped in enumerate(mirrored):
        assert torch.equal(flipped[i], images[i].flip(-1) if was_flipped else images[i])
    assert 0.35 < sum(mirrored) / len(mirrored) < 0.65
    assert torch.equal(random_flip(images, p=0.0), images)


def test_normalize_gives_float_with_zero_mean_unit_std_per_channel(images: torch.Tensor) -> None:
    out = normalize(images, cifar.MEAN, cifar.STD)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert out.mean(dim=(0, 2, 3)).abs().max() < 0.15
    assert ((out.std(dim=(0, 2, 3)) - 1).abs() < 0.15).all()
    for c, (mean, std) in enumerate(zip(cifar.MEAN, cifar.STD)):
        assert out[:, c].min() >= -mean / std - 1e-5 and out[:, c].max() <= (255 - mean) / std + 1e-5
        assert float(out[7, c, 3, 5]) == pytest.approx((float(images[7, c, 3, 5]) - mean) / std, abs=1e-5)


def test_image_augment_is_a_batch_transform(images: torch.Tensor) -> None:
    labels = torch.arange(len(images))
    augment = ImageAugment(cifar.MEAN, cifar.STD, crop_padding=4)
    torch.manual_seed(3)
    x, y = augment(images, labels)
    assert x.shape == images.shape and x.dtype == torch.float32 and y is labels
    torch.manual_seed(3)
    assert torch.equal(augment(images, labels)[0], x)  # reproducible from the global seed
    lowest = (0 - max(cifar.MEAN)) / min(cifar.STD)
    assert x.min() >= lowest - 1e-5 and x.max() <= (255 - min(cifar.MEAN)) / min(cifar.STD) + 1e-5
    plain, _ = Normalize(cifar.MEAN, cifar.STD)(images, labels)
    assert torch.equal(plain, normalize(images, cifar.MEAN, cifar.STD))


def test_augmentation_runs_on_the_batch_device(images: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(0)
    a = random_crop(images, 2, generator=generator)
    generator.manual_seed(0)
    assert torch.equal(random_crop(images, 2, generator=generator), a)
    assert a.device == images.device
