"""Tradeoff curves, time-to-quality and Pareto frontiers: pure functions over ``RunRecord``s.

Nothing here trains or reads the store, so imported runs are analysed exactly like local ones.

How a recipe's (time, quality) points are read from its runs is the *readout*:

- ``"evals"``: one run per seed; its points are that run's evaluation time series
  (train seconds, metric) -- the single-budget case, e.g. ``hasten demo``.
- ``"budgets"``: one point per budget per seed, each the *final* quality of a run whose
  schedule was scaled to that budget (Portes et al.'s "standard" tradeoff curve); a cyclic
  run gives one point per cycle end instead (its evaluations sit exactly there).
- ``"auto"``: ``"budgets"`` when every recipe compared has runs at two or more budgets (or
  is cyclic), else ``"evals"``.

Time-to-quality on a seed's points is the first crossing of the target, interpolated
linearly in log-time between the last point short of it and the first point at or past it
(DESIGN.md rule 4). Past the last point nothing is extrapolated: the target is "not reached".
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from hasten.store.records import RunRecord

READOUTS = ("auto", "evals", "budgets")
USABLE_STATUSES = ("completed", "diverged")  # a diverged run's evals before it blew up are real


@dataclass(frozen=True)
class Point:
    """One measurement: cumulative training seconds and optimizer steps, and the metric."""

    time_s: float
    steps: float
    quality: float
    label: str = ""


@dataclass(frozen=True)
class Crossing:
    """Where a seed's points first reach the target. ``interpolated`` is False when the first
    measured point already reached it (the time is then an upper bound: evaluate earlier)."""

    time_s: float
    steps: float
    interpolated: bool = True

    @property
    def time_per_step(self) -> float:
        return self.time_s / self.steps if self.steps > 0 else math.nan


def reaches(quality: float, target: float, higher_is_better: bool) -> bool:
    return quality >= target if higher_is_better else quality <= target


def better(a: float, b: float, higher_is_better: bool) -> bool:
    """True when quality ``a`` is strictly better than ``b``."""
    return a > b if higher_is_better else a < b


# ----------------------------------------------------------------------------- reading runs
def usable(records: Iterable[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.status in USABLE_STATUSES]


def eval_points(record: RunRecord) -> list[Point]:
    """The run's eval time series on its own metric, in step order. Points at zero training
    time (an evaluation before the first step) are left out: log-time has no zero."""
    points = [
        Point(e.train_time_s, float(e.step), e.metrics[record.metric], f"step {e.step}")
        for e in sorted(record.evals, key=lambda e: e.step)
        if record.metric in e.metrics and e.train_time_s > 0 and math.isfinite(e.metrics[record.metric])
    ]
    return points


def cycle_end_points(record: RunRecord) -> list[Point]:
    """A cyclic run's readout: its evaluations, which the runner places at each cycle's end."""
    return [Point(p.time_s, p.steps, p.quality, f"cycle {i + 1}") for i, p in enumerate(eval_points(record))]


def final_point(record: RunRecord) -> Point | None:
    """The completed run's end point: all its training time, its final quality."""
    quality = record.quality
    if record.status != "completed" or quality is None or not math.isfinite(quality) or record.train_time_s <= 0:
        return None
    return Point(record.train_time_s, float(record.steps), quality, record.duration)


def budget_count(records: Sequence[RunRecord]) -> int:
    """Distinct budgets a recipe's runs give: durations of scaled runs, or cycles of a cyclic run."""
    scaled = {r.duration for r in records if r.schedule == "scaled"}
    cyclic = max((len(eval_points(r)) for r in records if r.schedule == "cyclic"), default=0)
    return max(len(scaled), cyclic)


def resolve_readout(readout: str, by_recipe: Mapping[str, Sequence[RunRecord]]) -> str:
    if readout not in READOUTS:
        from hasten.errors import ConfigError

        raise ConfigError(f"unknown readout {readout!r}", f"use one of {', '.join(READOUTS)}")
    if readout != "auto":
        return readout
    runs = [r for records in by_recipe.values() for r in records]
    if runs and all(r.schedule == "cyclic" for r in runs):
        return "budgets"
    counts = [budget_count(records) for records in by_recipe.values()]
    return "budgets" if counts and min(counts) >= 2 else "evals"


def seed_points(records: Sequence[RunRecord], readout: str) -> dict[int, list[Point]]:
    """Each seed's (time, quality) points under ``readout``, sorted by time."""
    by_seed: dict[int, list[RunRecord]] = defaultdict(list)
    for record in usable(records):
        by_seed[record.seed].append(record)
    out: dict[int, list[Point]] = {}
    for seed, runs in sorted(by_seed.items()):
        if readout == "evals":
            longest = max(runs, key=lambda r: (r.steps, r.created_at))
            points = eval_points(longest)
        elif readout == "budgets":
            points = []
            for run in runs:
                if run.schedule == "cyclic":
                    points.extend(cycle_end_points(run))
                else:
                    end = final_point(run)
                    if end is not None:
                        points.append(end)
        else:
            raise ValueError(f"readout must be resolved first, got {readout!r}")
        if points:
            out[seed] = sorted(points, key=lambda p: (p.time_s, p.steps))
    return out


# ----------------------------------------------------------------------- time-to-quality
def _log_lerp(a: float, b: float, fraction: float) -> float:
    return math.exp(math.log(a) + fraction * (math.log(b) - math.log(a)))


def first_crossing(points: Sequence[Point], target: float, higher_is_better: bool = True) -> Crossing | None:
    """Least time at which ``points`` (sorted by time) reach ``target``; None if they never do.

    Between the last point short of the target and the first at or past it, quality is taken
    as linear in log-time (so is the step count); nothing is extrapolated beyond the points.
    """
    previous: Point | None = None
    for point in points:
        if reaches(point.quality, target, higher_is_better):
            if previous is None:
                return Crossing(point.time_s, point.steps, interpolated=False)
            gap = point.quality - previous.quality
            fraction = 1.0 if gap == 0 else (target - previous.quality) / gap
            fraction = min(max(fraction, 0.0), 1.0)
            return Crossing(
                _log_lerp(previous.time_s, point.time_s, fraction),
                _log_lerp(max(previous.steps, 1e-12), max(point.steps, 1e-12), fraction),
            )
        previous = point
    return None


def quality_at_time(points: Sequence[Point], time_s: float) -> float | None:
    """Quality at ``time_s``, linear in log-time between the points around it; None outside them."""
    ordered = sorted(points, key=lambda p: p.time_s)
    if not ordered or time_s <= 0 or time_s < ordered[0].time_s or time_s > ordered[-1].time_s:
        return None
    for left, right in zip(ordered, ordered[1:]):
        if left.time_s <= time_s <= right.time_s:
            if right.time_s == left.time_s:
                return right.quality
            fraction = (math.log(time_s) - math.log(left.time_s)) / (math.log(right.time_s) - math.log(left.time_s))
            return left.quality + fraction * (right.quality - left.quality)
    return ordered[-1].quality


# ---------------------------------------------------------------------- tradeoff curves
def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and a Student-t confidence interval; with one value the interval is (nan, nan)."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class CurvePoint:
    """One budget of a recipe's tradeoff curve, over ``n`` seeds: means and 95% intervals."""

    label: str
    n: int
    time_s: float
    time_low: float
    time_high: float
    quality: float
    quality_low: float
    quality_high: float
    steps: float


@dataclass(frozen=True)
class TradeoffCurve:
    recipe: str
    points: tuple[CurvePoint, ...]

    def as_points(self) -> list[Point]:
        return [Point(p.time_s, p.steps, p.quality, p.label) for p in self.points]


def _group_key(point: Point, readout: str) -> tuple[float, str]:
    if readout == "evals":
        return point.steps, point.label
    if point.label.startswith("cycle"):
        return float(point.label.split()[1]), point.label
    return 0.0, point.label  # scaled budgets: grouped by name, ordered by mean time below


def tradeoff_curve(recipe: str, records: Sequence[RunRecord], readout: str, confidence: float = 0.95) -> TradeoffCurve:
    """Mean and confidence interval across seeds at each budget (or eval step, or cycle)."""
    groups: dict[tuple[float, str], list[Point]] = defaultdict(list)
    for points in seed_points(records, readout).values():
        for point in points:
            groups[_group_key(point, readout)].append(point)
    curve = []
    for (_, label), members in groups.items():
        time, time_low, time_high = mean_ci([p.time_s for p in members], confidence)
        quality, quality_low, quality_high = mean_ci([p.quality for p in members], confidence)
        curve.append(
            CurvePoint(
                label,
                len(members),
                time,
                time_low,
                time_high,
                quality,
                quality_low,
                quality_high,
                float(np.mean([p.steps for p in members])),
            )
        )
    curve.sort(key=lambda p: (p.time_s, p.steps))
    return TradeoffCurve(recipe, tuple(curve))


# ------------------------------------------------------------------------ Pareto frontier
def pareto_frontier(points: Sequence[Point], higher_is_better: bool = True) -> list[Point]:
    """Points no other point beats: none is at least as fast and as good, and strictly better
    in one. Exact ties are all kept (neither dominates the other). Sorted by time."""

    def dominates(a: Point, b: Point) -> bool:
        no_worse = a.time_s <= b.time_s and not better(b.quality, a.quality, higher_is_better)
        return no_worse and (a.time_s < b.time_s or better(a.quality, b.quality, higher_is_better))

    front = [p for p in points if not any(dominates(q, p) for q in points if q is not p)]
    return sorted(front, key=lambda p: (p.time_s, -p.quality if higher_is_better else p.quality))
