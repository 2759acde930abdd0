"""Do single-run cyclic curves agree with a sweep of separate runs? (Portes et al. 2022)

The cyclic run is evaluated at each cycle end (a learning-rate minimum); its quality at a
budget is read there -- or, where a cycle end misses the budget, linearly in log-steps
between the cycle ends around it (never beyond them). Agreement is reported the way the
paper's released data support it: Kendall's tau between the recipes' rankings at each
budget, the largest quality difference, and what the single runs cost against the sweep.
Cyclic curves rank methods well but can misstate absolute speedups of regularizers
(label smoothing, mixup): use them to screen, confirm headline numbers with a sweep.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from hasten.core.time import Duration
from hasten.curves.analysis import Point, cycle_end_points, final_point, usable
from hasten.store.records import RunRecord


def quality_at_steps(points: Sequence[Point], steps: float) -> float | None:
    """Quality at ``steps``, linear in log-steps between the points around it; None outside."""
    ordered = sorted(points, key=lambda p: p.steps)
    if not ordered or steps <= 0:
        return None
    for point in ordered:
        if math.isclose(point.steps, steps, rel_tol=1e-6):
            return point.quality
    for left, right in zip(ordered, ordered[1:]):
        if left.steps < steps < right.steps:
            fraction = (math.log(steps) - math.log(left.steps)) / (math.log(right.steps) - math.log(left.steps))
            return left.quality + fraction * (right.quality - left.quality)
    return None


@dataclass(frozen=True)
class BudgetAgreement:
    budget: str
    recipes: int
    kendall_tau: float | None
    p_value: float | None
    best_sweep: str
    best_cyclic: str
    max_abs_difference: float | None


@dataclass(frozen=True)
class CyclicValidation:
    budgets: tuple[BudgetAgreement, ...]
    quality: dict[str, dict[str, tuple[float | None, float | None]]]  # recipe -> budget -> (sweep, cyclic)
    max_abs_difference: float | None
    worst: tuple[str, str] | None  # (recipe, budget) of the largest difference
    sweep_time_s: float
    cyclic_time_s: float

    @property
    def cost_ratio(self) -> float | None:
        """Training time of the single cyclic runs over that of the sweep (per recipe and seed)."""
        return self.cyclic_time_s / self.sweep_time_s if self.sweep_time_s > 0 else None

    def to_dict(self) -> dict:
        return {
            "budgets": [b.__dict__ for b in self.budgets],
            "max_abs_difference": self.max_abs_difference,
            "worst": list(self.worst) if self.worst else None,
            "cost_ratio": self.cost_ratio,
            "sweep_time_s": self.sweep_time_s,
            "cyclic_time_s": self.cyclic_time_s,
            "quality": {r: {b: list(v) for b, v in per.items()} for r, per in self.quality.items()},
        }


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite and len(finite) == len(values) else None


def _best(values: dict[str, float | None], higher_is_better: bool) -> str:
    present = {r: v for r, v in values.items() if v is not None}
    if not present:
        return "-"
    return (max if higher_is_better else min)(present, key=present.__getitem__)


def validate_cyclic(
    sweep_records: Sequence[RunRecord], cyclic_records: Sequence[RunRecord], budgets: Sequence[str]
) -> CyclicValidation:
    """Compare per-recipe mean quality at each budget between a scaled sweep and cyclic runs."""
    sweep = [r for r in usable(sweep_records) if r.schedule == "scaled" and r.status == "completed"]
    cyclic = [r for r in usable(cyclic_records) if r.schedule == "cyclic" and r.status == "completed"]
    hib = (sweep or cyclic)[0].higher_is_better if (sweep or cyclic) else True
    budgets = sorted(budgets, key=lambda b: Duration(b).value)
    recipes = sorted({r.recipe for r in sweep} & {r.recipe for r in cyclic})

    quality: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for recipe in recipes:
        quality[recipe] = {}
        cyclic_runs = [r for r in cyclic if r.recipe == recipe]
        for budget in budgets:
            runs = [r for r in sweep if r.recipe == recipe and Duration(r.duration) == Duration(budget)]
            ends = [final_point(r) for r in runs]
            sweep_q = _mean([p.quality if p else math.nan for p in ends]) if ends else None
            steps = float(np.mean([p.steps for p in ends if p])) if any(ends) else None
            cyc = [quality_at_steps(cycle_end_points(r), steps) for r in cyclic_runs] if steps else []
            quality[recipe][budget] = (sweep_q, _mean(cyc) if cyc else None)

    agreements, worst, largest = [], None, None
    for budget in budgets:
        pairs = {r: quality[r][budget] for r in recipes}
        complete = {r: v for r, v in pairs.items() if v[0] is not None and v[1] is not None}
        tau = p_value = None
        if len(complete) >= 2:
            result = stats.kendalltau([v[0] for v in complete.values()], [v[1] for v in complete.values()])
            if math.isfinite(result.statistic):
                tau, p_value = float(result.statistic), float(result.pvalue)
        differences = {r: abs(v[0] - v[1]) for r, v in complete.items()}  # type: ignore[operator]
        budget_max = max(differences.values()) if differences else None
        if budget_max is not None and (largest is None or budget_max > largest):
            largest, worst = budget_max, (max(differences, key=differences.__getitem__), budget)
        agreements.append(
            BudgetAgreement(
                budget,
                len(complete),
                tau,
                p_value,
                _best({r: v[0] for r, v in complete.items()}, hib),
                _best({r: v[1] for r, v in complete.items()}, hib),
                budget_max,
            )
        )

    per_seed_sweep: dict[tuple[str, int], float] = defaultdict(float)
    for run in sweep:
        if run.recipe in recipes:
            per_seed_sweep[(run.recipe, run.seed)] += run.train_time_s
    cyclic_times = [r.train_time_s for r in cyclic if r.recipe in recipes]
    sweep_time = float(np.mean(list(per_seed_sweep.values()))) if per_seed_sweep else 0.0
    cyclic_time = float(np.mean(cyclic_times)) if cyclic_times else 0.0
    return CyclicValidation(tuple(agreements), quality, largest, worst, sweep_time, cyclic_time)
