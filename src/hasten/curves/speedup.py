"""Iso-quality speedup with a bootstrap confidence interval, split into its two factors.

    speedup = T_base(q) / T_recipe(q)
            = (S_base / S_recipe) * ((T_base / S_base) / (T_recipe / S_recipe))
               steps-to-quality       time-per-step
               (convergence) factor   (throughput) factor

T and S are means over seeds of each seed's time and steps at the first crossing of q, so
the two factors multiply to the speedup exactly. The interval resamples seeds with
replacement on both sides (numpy RNG, fixed seed: the same runs give the same interval) and
takes the *expanded* percentile interval (Hesterberg 2015): the plain percentile interval is
too narrow with few seeds, so its tail probability is shrunk to match a Student-t interval of
the smaller side's size. With 2 seeds a side it is the range over seed pairs (a "speedup" then
means every recipe seed beat every baseline seed) and, in simulation, holds the truth only
about two times in three; from 5 seeds on it holds it at least 95% of the time.
A target must be reached on *every* seed of a recipe; otherwise it is "not reached" and no
speedup is claimed (DESIGN.md rules 4 and 5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from hasten.curves.analysis import Crossing, Point, quality_at_time

STATUSES = ("speedup", "no measurable speedup", "slower", "not reached")
BOOTSTRAP_SAMPLES = 4000
CONFIDENCE = 0.95


def expanded_tail(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided tail probability for an expanded percentile interval from ``n`` samples."""
    alpha = 1 - confidence
    if n < 2:
        return alpha
    widened = 2 * stats.norm.cdf(-math.sqrt(n / (n - 1)) * stats.t.ppf(1 - alpha / 2, n - 1))
    return float(min(alpha, widened))


def bootstrap_ratio(
    base: np.ndarray,
    recipe: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Expanded percentile interval of ``statistic(base_rows, recipe_rows)`` over seeds resampled
    with replacement. Each argument is an (n, k) array (one row per seed); ``statistic`` gets
    (samples, n, k) arrays and returns (samples,)."""
    rng = np.random.default_rng(seed)
    pick_base = rng.integers(0, len(base), size=(samples, len(base)))
    pick_recipe = rng.integers(0, len(recipe), size=(samples, len(recipe)))
    values = statistic(base[pick_base], recipe[pick_recipe])
    tail = expanded_tail(min(len(base), len(recipe)), confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _ratio_of_means(column: int, invert: bool = False) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def statistic(base: np.ndarray, recipe: np.ndarray) -> np.ndarray:
        b, r = base[..., column].mean(axis=-1), recipe[..., column].mean(axis=-1)
        return r / b if invert else b / r

    return statistic


def _time_per_step_ratio(base: np.ndarray, recipe: np.ndarray) -> np.ndarray:
    b = base[..., 0].mean(axis=-1) / base[..., 1].mean(axis=-1)
    r = recipe[..., 0].mean(axis=-1) / recipe[..., 1].mean(axis=-1)
    return b / r


@dataclass(frozen=True)
class Speedup:
    """One recipe against the baseline at one target. Fields are None where nothing is claimed."""

    recipe: str
    baseline: str
    target: float
    status: str
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    steps_factor: float | None
    steps_factor_ci: tuple[float, float] | None
    time_per_step_factor: float | None
    time_per_step_factor_ci: tuple[float, float] | None
    baseline_time_s: float | None
    recipe_time_s: float | None
    baseline_steps: float | None
    recipe_steps: float | None
    baseline_reached: str
    recipe_reached: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify(ci_low: float | None, ci_high: float | None) -> str:
    """``speedup`` when the whole interval is above 1, ``slower`` when below, else no claim."""
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "no measurable speedup"
    if ci_low > 1.0:
        return "speedup"
    if ci_high < 1.0:
        return "slower"
    return "no measurable speedup"


def _as_rows(crossings: Sequence[Crossing]) -> np.ndarray:
    return np.array([[c.time_s, c.steps] for c in crossings], dtype=float)


# Speedup's measured fields: all None when the target was not reached.
_FIGURES = (
    "speedup", "ci_low", "ci_high", "steps_factor", "steps_factor_ci", "time_per_step_factor",
    "time_per_step_factor_ci", "baseline_time_s", "recipe_time_s", "baseline_steps", "recipe_steps",
)  # fmt: skip


def _fraction(crossings: Sequence[Crossing | None]) -> str:
    return f"{sum(c is not None for c in crossings)}/{len(crossings)}"


def iso_quality_speedup(
    recipe: str,
    baseline: str,
    target: float,
    baseline_crossings: Sequence[Crossing | None],
    recipe_crossings: Sequence[Crossing | None],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Speedup:
    """Speedup of ``recipe`` over ``baseline`` at ``target`` from each seed's first crossing."""
    reached_b, reached_r = _fraction(baseline_crossings), _fraction(recipe_crossings)

    def not_reached(note: str) -> Speedup:
        return Speedup(
            recipe, baseline, target, "not reached", **dict.fromkeys(_FIGURES),
            baseline_reached=reached_b, recipe_reached=reached_r, note=note,
        )  # fmt: skip

    if not baseline_crossings or not recipe_crossings:
        return not_reached("no runs")
    if any(c is None for c in baseline_crossings):
        return not_reached(f"the baseline reached the target on {reached_b} seeds")
    if any(c is None for c in recipe_crossings):
        return not_reached(f"reached the target on {reached_r} seeds")
    base, rec = _as_rows(baseline_crossings), _as_rows(recipe_crossings)  # type: ignore[arg-type]
    t_b, s_b = base[:, 0].mean(), base[:, 1].mean()
    t_r, s_r = rec[:, 0].mean(), rec[:, 1].mean()
    value = float(t_b / t_r)
    steps_factor = float(s_b / s_r)
    per_step = float((t_b / s_b) / (t_r / s_r))
    note = ""
    if len(base) < 2 or len(rec) < 2:
        return Speedup(
            recipe,
            baseline,
            target,
            "no measurable speedup",
            value,
            None,
            None,
            steps_factor,
            None,
            per_step,
            None,
            float(t_b),
            float(t_r),
            float(s_b),
            float(s_r),
            reached_b,
            reached_r,
            note="one seed on a side: no confidence interval; run 2 or more seeds",
        )
    if min(len(base), len(rec)) < 3:
        note = "2 seeds: the interval is the range over seed pairs and is coarse; run 5 or more seeds for a firm one"
    elif min(len(base), len(rec)) < 5:
        note = "fewer than 5 seeds: the interval is somewhat narrow; run 5 or more for a firm one"

    def interval(statistic: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[float, float]:
        return bootstrap_ratio(base, rec, statistic, samples=samples, confidence=confidence, seed=seed)

    low, high = interval(_ratio_of_means(0))
    steps_ci = interval(_ratio_of_means(1))
    per_step_ci = interval(_time_per_step_ratio)
    return Speedup(
        recipe,
        baseline,
        target,
        classify(low, high),
        value,
        low,
        high,
        steps_factor,
        steps_ci,
        per_step,
        per_step_ci,
        float(t_b),
        float(t_r),
        float(s_b),
        float(s_r),
        reached_b,
        reached_r,
        note=note,
    )


@dataclass(frozen=True)
class QualityGain:
    """Quality of the recipe minus the baseline's at equal training time; positive is better
    (for a lower-is-better metric the sign is flipped). None where a curve does not cover the time."""

    time_s: float
    gain: float | None
    ci_low: float | None
    ci_high: float | None
    seeds: int


def quality_gain_at_time(
    baseline_seeds: dict[int, list[Point]],
    recipe_seeds: dict[int, list[Point]],
    time_s: float,
    higher_is_better: bool = True,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> QualityGain:
    """Per seed, read quality at ``time_s`` (log-time interpolation, never extrapolated), then
    difference of the means with a bootstrap interval over seeds."""
    base = [q for q in (quality_at_time(p, time_s) for p in baseline_seeds.values()) if q is not None]
    rec = [q for q in (quality_at_time(p, time_s) for p in recipe_seeds.values()) if q is not None]
    if len(base) < len(baseline_seeds) or len(rec) < len(recipe_seeds) or not base or not rec:
        return QualityGain(time_s, None, None, None, min(len(base), len(rec)))
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * (float(np.mean(rec)) - float(np.mean(base)))
    if len(base) < 2 or len(rec) < 2:
        return QualityGain(time_s, gain, None, None, min(len(base), len(rec)))

    def difference(b: np.ndarray, r: np.ndarray) -> np.ndarray:
        return sign * (r[..., 0].mean(axis=-1) - b[..., 0].mean(axis=-1))

    low, high = bootstrap_ratio(
        np.array(base)[:, None], np.array(rec)[:, None], difference, samples=samples, confidence=confidence, seed=seed
    )
    return QualityGain(time_s, gain, low, high, min(len(base), len(rec)))
