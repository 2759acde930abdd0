"""Hand-made run records for testing the analysis (pure math: no training involved)."""

from __future__ import annotations

import itertools
from typing import Sequence

from hasten.store.records import EvalPoint, RunRecord

_ids = itertools.count()


def run(
    recipe: str,
    seed: int,
    series: Sequence[tuple[float, int, float]],
    *,
    workload: str = "synthetic",
    duration: str = "10ep",
    schedule: str = "scaled",
    metric: str = "accuracy",
    higher_is_better: bool = True,
    status: str = "completed",
    cpu: str = "test cpu",
) -> RunRecord:
    """A run whose evaluations are ``series`` of (train seconds, step, quality); it ends at the last one."""
    evals = [EvalPoint(step=s, samples=s * 10, tokens=0, train_time_s=t, metrics={metric: q}) for t, s, q in series]
    last = series[-1]
    return RunRecord(
        run_id=f"r{next(_ids)}",
        workload=workload,
        recipe=recipe,
        seed=seed,
        duration=duration,
        schedule=schedule,
        metric=metric,
        higher_is_better=higher_is_better,
        status=status,
        steps=last[1],
        train_time_s=last[0],
        final={metric: last[2]} if status == "completed" else {},
        evals=evals,
        env={"cpu": cpu, "threads": 1, "torch": "test"},
        created_at=f"2024-01-01T00:00:{next(_ids) % 60:02d}",
    )
