"""AlgoPerf-style performance profiles: how often is a recipe within a factor tau of the fastest?

For recipes s and workloads w with time-to-target t[s][w] (infinity when not reached):

    r[s][w]   = t[s][w] / min over s' of t[s'][w]                    (>= 1)
    rho_s(tau) = fraction of workloads with r[s][w] <= tau
    score_s   = 1/(r_max - 1) * integral from 1 to r_max of rho_s(tau) dtau    (in [0, 1])

with r_max = 4, as in the AlgoPerf benchmark (Dahl et al. 2023; MLCommons scoring code):
a recipe more than 4x slower than the best on a workload earns nothing there. Because rho is a
step function the integral is exact: each workload adds (r_max - r) / (r_max - 1) when r < r_max.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

R_MAX = 4.0


def performance_ratios(times: Mapping[str, Mapping[str, float | None]]) -> dict[str, dict[str, float]]:
    """``times[workload][recipe]`` (None or inf = not reached) -> ``ratios[recipe][workload]``.

    A recipe missing from a workload counts as not reached there; a workload no recipe
    reached gives every recipe an infinite ratio."""
    recipes = sorted({recipe for per in times.values() for recipe in per})
    ratios: dict[str, dict[str, float]] = {recipe: {} for recipe in recipes}
    for workload, per in times.items():
        clean = {r: (float(t) if t is not None and math.isfinite(t) and t > 0 else math.inf) for r, t in per.items()}
        best = min(clean.values(), default=math.inf)
        for recipe in recipes:
            t = clean.get(recipe, math.inf)
            ratios[recipe][workload] = t / best if math.isfinite(best) and math.isfinite(t) else math.inf
    return ratios


def profile(ratios: Mapping[str, float], taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """rho(tau) for one recipe: the fraction of its workloads with ratio <= tau."""
    values = np.array(list(ratios.values()), dtype=float)
    taus = np.asarray(taus, dtype=float)
    if values.size == 0:
        return np.zeros_like(taus)
    return (values[None, :] <= taus[:, None]).mean(axis=1)


def profile_score(ratios: Mapping[str, float], r_max: float = R_MAX) -> float:
    """Normalized area under rho from 1 to ``r_max``: 1 = fastest everywhere, 0 = never within r_max."""
    values = [r for r in ratios.values()]
    if not values:
        return 0.0
    credit = [max(0.0, r_max - max(r, 1.0)) / (r_max - 1.0) if math.isfinite(r) else 0.0 for r in values]
    return float(np.mean(credit))


def profile_scores(times: Mapping[str, Mapping[str, float | None]], r_max: float = R_MAX) -> dict[str, float]:
    """Score of every recipe across the workloads in ``times``."""
    return {recipe: profile_score(per, r_max) for recipe, per in performance_ratios(times).items()}
