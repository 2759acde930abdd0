"""Test helpers shared across the suite: small slices of the real data sets, a tiny conv net,
and the resume-equivalence check every speedup method must pass.

Usage in a method test::

    from tests.harness import assert_resumes_exactly, image_trainer_factory

    def test_mixup_resumes(tmp_path, data_dir):
        make = image_trainer_factory(data_dir, algorithms=lambda: [MixUp(alpha=0.2)])
        assert_resumes_exactly(make, tmp_path)
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.core.metrics import Accuracy
from hasten.data.memory import TensorBatches
from hasten.trainer.trainer import Trainer

CIFAR_MEAN = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1)
CIFAR_STD = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1)


@functools.lru_cache(maxsize=4)
def cifar_slice(data_dir: str, n: int = 512, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real CIFAR-10 images (uint8, N x 3 x 32 x 32) spread over all ten classes, and labels."""
    from hasten.data.cifar import JPEG_FILES
    from hasten.data.files import verify
    from hasten.data.images import decode_image_folder, index_image_folder

    archive = verify(Path(data_dir) / "cifar10-jpeg" / f"{split}.tar", JPEG_FILES[split])
    index = index_image_folder(archive, split)
    picked = index.entries[:: max(1, len(index.entries) // n)][:n]
    arrays = decode_image_folder(dataclasses.replace(index, entries=picked))
    return torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"])


def normalize_images(x: torch.Tensor) -> torch.Tensor:
    return (x.float() - CIFAR_MEAN) / CIFAR_STD


@functools.lru_cache(maxsize=2)
def shakespeare_tokens(data_dir: str, n_chars: int = 20_000) -> tuple[torch.Tensor, int]:
    """The first ``n_chars`` characters of Tiny Shakespeare as token ids, and the vocabulary size."""
    from hasten.data.text import load_tiny_shakespeare

    corpus = load_tiny_shakespeare(data_dir)
    return torch.cat([corpus.train, corpus.val])[:n_chars], len(corpus.vocab)


def text_windows(tokens: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping (input, next-token target) windows."""
    n = (len(tokens) - 1) // context
    x = tokens[: n * context].view(n, context)
    y = tokens[1 : n * context + 1].view(n, context)
    return x, y


class TinyConvNet(nn.Module):
    """Conv-BN-ReLU stem, a strided conv, a max-pool and a residual block: enough parts for
    surgery methods to find (strided convs, pools, norms, residual adds)."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.block = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU()
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stem(x))
        x = x + self.block(x)
        return self.head(x.mean(dim=(2, 3)))


def seeded_trainer_factory(parts: Callable[[], dict], **trainer_kwargs) -> Callable[..., Trainer]:
    """A function building a fresh Trainer (seed 0, deterministic, CPU) from ``parts()``; keyword overrides win."""

    def make(**overrides) -> Trainer:
        torch.manual_seed(0)
        kwargs = dict(device="cpu", seed=0, deterministic=True, **parts())
        kwargs.update(trainer_kwargs)
        kwargs.update(overrides)
        return Trainer(**kwargs)

    return make


def image_trainer_factory(
    data_dir: str | Path,
    algorithms: Callable[[], list] = list,
    *,
    model: Callable[[], nn.Module] = TinyConvNet,
    n: int = 256,
    batch_size: int = 32,
    transform: Callable | None = None,
    **trainer_kwargs,
) -> Callable[..., Trainer]:
    """A function building a fresh, seeded Trainer on a real CIFAR-10 slice; keyword overrides win."""

    def parts() -> dict:
        x, y = cifar_slice(str(data_dir), n)
        return dict(
            model=model(),
            train_data=TensorBatches(normalize_images(x), y, batch_size, seed=0, transform=transform),
            eval_data=TensorBatches(normalize_images(x[:128]), y[:128], 64, shuffle=False, drop_last=False),
            optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
            max_duration="8ba",
            algorithms=algorithms(),
            metrics=[Accuracy()],
        )

    return seeded_trainer_factory(parts, **trainer_kwargs)


class SimulatedKill(BaseException):
    """Stands in for a killed process inside one test (the core suite also kills a real one)."""


class _KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, state) -> None:  # type: ignore[no-untyped-def]
        if state.timestamp.batch == self.step:
            raise SimulatedKill(f"killed after step {self.step}")


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.state.model.state_dict().items()}


def assert_resumes_exactly(
    make_trainer: Callable[..., Trainer], tmp_path: Path, steps: int = 8, checkpoint_at: int = 4
) -> None:
    """Train ``steps`` uninterrupted; then train with a checkpoint at ``checkpoint_at``, die one
    step later, resume in a fresh Trainer and finish. Final weights must match bit for bit."""
    reference = make_trainer(max_duration=f"{steps}ba")
    reference.fit()
    expected = weights(reference)

    directory = tmp_path / "ckpt"
    interrupted = make_trainer(
        max_duration=f"{steps}ba",
        checkpoint_dir=directory,
        checkpoint_interval=f"{checkpoint_at}ba",
        callbacks=[_KillAt(checkpoint_at + 1)],
    )
    try:
        interrupted.fit()
    except SimulatedKill:
        pass
    else:  # pragma: no cover - the callback always fires
        raise AssertionError("the simulated kill did not happen")

    resumed = make_trainer(max_duration=f"{steps}ba", checkpoint_dir=directory, resume_from=directory)
    result = resumed.fit()
    assert result.status == "completed"
    assert result.steps == steps
    got = weights(resumed)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), f"{name} differs after resume"
