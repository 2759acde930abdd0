"""Learning-rate schedules as pure functions of (step, total_steps).

A schedule returns a multiplier of each parameter group's peak ``lr``. Because it
reads only the step and the run's length, scaling a schedule to a budget is free
(change ``max_duration``) and resume needs no scheduler state.

``warmup`` below is a fraction of the run when < 1 and a number of steps when >= 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class Schedule(Protocol):
    def __call__(self, step: int, total_steps: int) -> float: ...


def _warmup_steps(warmup: float, total_steps: int) -> float:
    return warmup * total_steps if warmup < 1 else float(warmup)


@dataclass(frozen=True)
class Constant:
    """Constant multiplier after an optional linear warm-up."""

    warmup: float = 0.0

    def __call__(self, step: int, total_steps: int) -> float:
        w = _warmup_steps(self.warmup, total_steps)
        return min(1.0, (step + 1) / w) if w > 0 else 1.0


def _warmup_then_decay(step: int, total_steps: int, warmup: float, final: float, shape: str) -> float:
    """Linear warm-up to 1, then decay to ``final`` by ``shape`` so the last step runs at ``final``."""
    w = _warmup_steps(warmup, total_steps)
    if step < w:
        return (step + 1) / w
    span = max(total_steps - 1 - w, 1.0)
    t = min(max((step - w) / span, 0.0), 1.0)
    remaining = 0.5 * (1 + math.cos(math.pi * t)) if shape == "cosine" else 1.0 - t
    return final + (1 - final) * remaining


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up to 1, then cosine decay to ``final`` at the last step (nanoGPT's shape)."""

    warmup: float = 0.0
    final: float = 0.0

    def __call__(self, step: int, total_steps: int) -> float:
        return _warmup_then_decay(step, total_steps, self.warmup, self.final, "cosine")


@dataclass(frozen=True)
class WarmupLinear:
    """Linear warm-up to 1, then linear decay to ``final`` at the last step."""

    warmup: float = 0.0
    final: float = 0.0

    def __call__(self, step: int, total_steps: int) -> float:
        return _warmup_then_decay(step, total_steps, self.warmup, self.final, "linear")


@dataclass(frozen=True)
class WarmupTrapezoid:
    """Warm-up, hold at 1, then a linear cool-down to ``final`` over the last ``cooldown`` of
    the run (warmup-stable-decay): the speedrun records' shape. The long flat stretch trains
    at the full rate; the cool-down collects the gain that a decay gives.
    ``cooldown`` is a fraction of the run when < 1, steps when >= 1."""

    warmup: float = 0.0
    cooldown: float = 0.4
    final: float = 0.0

    def __call__(self, step: int, total_steps: int) -> float:
        w = _warmup_steps(self.warmup, total_steps)
        if step < w:
            return (step + 1) / w
        c = max(_warmup_steps(self.cooldown, total_steps), 1.0)
        start = total_steps - c
        if step < start:
            return 1.0
        t = min((step + 1 - start) / c, 1.0)
        return 1.0 + (self.final - 1.0) * t


@dataclass(frozen=True)
class MultiplicativeCyclic:
    """Portes et al. (2022): cosine cycles, each ``t_mult`` times longer than the last.

    After a linear warm-up, ``cycles`` cosine cycles that each restart at the peak and
    decay to ``final``; the last one ends at ``total_steps``. Evaluating at each cycle's
    end (an lr minimum) gives one tradeoff-curve point per cycle from a single run, at
    log-spaced budgets when ``t_mult`` = 2.
    """

    cycles: int = 4
    t_mult: float = 2.0
    warmup: float = 0.0
    final: float = 0.0

    def __post_init__(self) -> None:
        if self.cycles < 1:
            raise ValueError("a cyclic schedule needs at least one cycle")
        if self.t_mult < 1:
            raise ValueError("t_mult must be >= 1")

    def _first_cycle(self, total_steps: int) -> tuple[float, float]:
        w = _warmup_steps(self.warmup, total_steps)
        units = self.cycles if self.t_mult == 1 else (self.t_mult**self.cycles - 1) / (self.t_mult - 1)
        return w, (total_steps - w) / units

    def cycle_ends(self, total_steps: int) -> list[int]:
        """Steps after which each cycle has finished (the readout points), last == total_steps."""
        w, first = self._first_cycle(total_steps)
        ends, length, edge = [], first, w
        for _ in range(self.cycles):
            edge += length
            ends.append(int(round(edge)))
            length *= self.t_mult
        ends[-1] = total_steps
        return ends

    def __call__(self, step: int, total_steps: int) -> float:
        w, length = self._first_cycle(total_steps)
        if step < w:
            return (step + 1) / w
        t = step + 1 - w
        for _ in range(self.cycles - 1):
            if t <= length:
                break
            t -= length
            length *= self.t_mult
        frac = min(t / length, 1.0)
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * frac))
