"""Helpers for the optimization-method tests: a plain PyTorch loop that does exactly what the
Trainer does on the harness's real CIFAR slice (so a functional form used in it must give the
same weights as the method's Algorithm), and a callback that records what each step saw."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.data.memory import TensorBatches
from hasten.trainer.trainer import default_loss
from tests.harness import TinyConvNet, cifar_slice, normalize_images

N_IMAGES, BATCH = 256, 32


def cifar_batches(data_dir, batch_size: int = BATCH) -> TensorBatches:
    """The training source ``image_trainer_factory`` builds, batch for batch."""
    x, y = cifar_slice(str(data_dir), N_IMAGES)
    return TensorBatches(normalize_images(x), y, batch_size, seed=0)


def seeded_model(model: Callable[[], nn.Module] = TinyConvNet) -> nn.Module:
    torch.manual_seed(0)
    return model()


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    """The harness Trainer's optimizer."""
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def plain_fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    source: TensorBatches,
    steps: int,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    before_step: Callable[[int], None] | None = None,
    after_step: Callable[[int], None] | None = None,
) -> None:
    """``steps`` optimizer steps the Trainer's way; ``after_step`` gets the 1-based step count."""
    torch.manual_seed(0)
    step, epoch = 0, 0
    while step < steps:
        for x, y in source.batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = default_loss(model(x), y)
            (loss * 1.0).backward()

            def closure(x=x, y=y) -> torch.Tensor:
                with autocast():
                    again = default_loss(model(x), y) * 1.0
                again.backward()
                return again.detach()

            if before_step is not None:
                before_step(step)
            if getattr(optimizer, "requires_closure", False):
                optimizer.step(closure)
            else:
                optimizer.step()
            step += 1
            if after_step is not None:
                after_step(step)
            if step == steps:
                return
        epoch += 1


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class LrRecorder(Callback):
    """The learning rate of the first group at every optimizer step, as the optimizer sees it."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_optimizer_step(self, state) -> None:  # type: ignore[no-untyped-def]
        self.lrs.append(state.optimizer.param_groups[0]["lr"])
