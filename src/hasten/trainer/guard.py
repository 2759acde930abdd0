"""The NaN/Inf guard: catch a diverged run without synchronizing the device every step.

Reading a GPU loss as a Python float (``float(loss)``) waits for every queued kernel, so a
guard that checks each step keeps the GPU idle while the host catches up. Here the loss stays
on the device: each step folds "is it finite?" into a device-side record of the first bad step
(a few tiny kernels, no wait), and the host reads that record every ``every`` steps, before
every checkpoint and evaluation, and at the end of the run. A diverged run is still reported
at the step where its loss first became non-finite; it just stops up to ``every - 1`` steps
later (those steps update weights that are already lost).

On a CPU nothing runs ahead of the host, so reading the float costs nothing: the guard checks
every step and stops before the bad step's update, as before.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

#: steps between host reads on an asynchronous device (CUDA and the like)
ASYNC_CHECK_EVERY = 32


class Diverged(Exception):
    """Raised inside the loop when the loss (or, after the last step, a weight) is NaN or infinite."""


class LossGuard:
    """Watches each step's loss; ``check()`` raises ``Diverged`` naming the first bad step."""

    def __init__(self, device: torch.device, every: int | None = None) -> None:
        if every is None:
            every = 1 if device.type == "cpu" else ASYNC_CHECK_EVERY
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.device = device
        self.last_loss = float("nan")  # the newest loss the host has read
        self._latest: torch.Tensor | None = None
        self._first_bad = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet
        self._bad_value = torch.zeros((), device=device)
        self._pending = 0

    def observe(self, loss: torch.Tensor, step: int) -> None:
        """Record step ``step``'s (1-based) loss, a 0-d tensor; read it on the host when due."""
        if self.every == 1:
            self.last_loss = float(loss)
            if not math.isfinite(self.last_loss):
                raise Diverged(f"loss became {self.last_loss} at step {step}")
            return
        loss = loss.detach().float()
        newly_bad = torch.logical_not(torch.isfinite(loss)) & (self._first_bad == 0)
        self._first_bad = torch.where(newly_bad, torch.full_like(self._first_bad, step), self._first_bad)
        self._bad_value = torch.where(newly_bad, loss, self._bad_value)
        self._latest = loss
        self._pending += 1
        if self._pending >= self.every:
            self.check()

    def check(self) -> None:
        """Read what is pending (one device sync); raise ``Diverged`` if a loss was non-finite."""
        if self._latest is None:
            return
        bad_value, latest = torch.stack([self._bad_value, self._latest]).tolist()
        first_bad = int(self._first_bad)
        self._latest, self._pending = None, 0
        self.last_loss = latest
        if first_bad:
            raise Diverged(f"loss became {bad_value} at step {first_bad}")


def check_weights(parameters: Iterable[torch.Tensor], step: int) -> None:
    """Raise ``Diverged`` if an update left a non-finite weight (the loss guard cannot see the
    last step's update: no later loss is computed from it). One device sync."""
    flags = [torch.isfinite(p.detach()).all() for p in parameters if p.is_floating_point()]
    if flags and not bool(torch.stack(flags).all()):
        raise Diverged(f"a weight became non-finite in the update of step {step}")
