"""The run plan: how long a run is in optimizer steps and when it evaluates and checkpoints.

Computed once, when ``fit`` starts (after INIT, which may change ``max_duration``), and kept
on ``State.plan``; schedules, methods (EMA, SWA), the profiler and the progress display read
it instead of converting times themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from hasten.core.time import Rates, Time, TimeUnit, check_run_length


@dataclass(frozen=True)
class RunPlan:
    """``total_steps`` optimizer steps at ``rates``. Evaluation runs every ``eval_every`` steps
    (one interval) or at ``eval_steps`` (a list of times); checkpoints every ``checkpoint_every``."""

    rates: Rates
    total_steps: int
    eval_every: float | None = None
    eval_steps: frozenset[int] = frozenset()
    checkpoint_every: float | None = None

    @classmethod
    def make(
        cls, rates: Rates, max_duration: Time, eval_times: Sequence[Time] = (), checkpoint_interval: Time | None = None
    ) -> "RunPlan":
        """Plan a run of ``max_duration`` (constant batch shape assumed for sample and token budgets)."""
        steps = rates.to_steps(max_duration)
        check_run_length(steps, max_duration)  # before anything is planned over an endless run
        plan = cls(rates, max(1, math.ceil(steps)))
        to_steps = [plan.to_steps(t, max_duration) for t in eval_times]
        return cls(
            rates=rates,
            total_steps=plan.total_steps,
            eval_every=to_steps[0] if len(to_steps) == 1 else None,
            eval_steps=frozenset(max(1, round(s)) for s in to_steps) if len(to_steps) > 1 else frozenset(),
            checkpoint_every=plan.to_steps(checkpoint_interval, max_duration) if checkpoint_interval else None,
        )

    def to_steps(self, time: Time | str, max_duration: Time) -> float:
        """A time (``"0.25dur"``, ``"2ep"``, ``"6e5sp"``...) in optimizer steps of this run."""
        time = Time.parse(time).resolve(max_duration)
        if time.unit is TimeUnit.DURATION:
            return time.value * self.total_steps
        return self.rates.to_steps(time)
