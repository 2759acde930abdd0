"""One workload's runs, compared against a baseline: what ``hasten compare``, ``hasten report``
and ``hasten demo`` all print. Pure: records in, numbers out."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from hasten.curves.analysis import (
    Crossing,
    Point,
    TradeoffCurve,
    first_crossing,
    pareto_frontier,
    resolve_readout,
    seed_points,
    tradeoff_curve,
    usable,
)
from hasten.curves.contention import ContentionFlag, contention_flags, contention_note
from hasten.curves.speedup import QualityGain, Speedup, iso_quality_speedup, quality_gain_at_time
from hasten.errors import ConfigError
from hasten.store.records import RunRecord

SCHEDULE_CHOICES = ("auto", "scaled", "cyclic")


@dataclass
class Comparison:
    """Everything a report shows about one workload at one target."""

    workload: str
    metric: str
    higher_is_better: bool
    baseline: str
    target: float
    readout: str
    schedule: str
    recipes: list[str]
    curves: dict[str, TradeoffCurve]
    seeds: dict[str, dict[int, list[Point]]]
    crossings: dict[str, list[Crossing | None]]
    speedups: dict[str, Speedup]
    frontier: list[Point]
    gains: dict[str, list[QualityGain]]
    machines: list[str]
    runs: int
    notes: list[str] = field(default_factory=list)
    contention: list[ContentionFlag] = field(default_factory=list)

    def contended(self, recipe: str, label: str | None = None) -> list[ContentionFlag]:
        """Flagged runs of ``recipe`` (at the curve point ``label``, a budget, when given)."""
        return [f for f in self.contention if f.recipe == recipe and (label is None or f.duration == label)]

    def speedup_rows(self) -> list[dict[str, Any]]:
        """``hasten compare --json``: one row per recipe (the baseline's own row has speedup 1)."""
        rows = []
        for recipe in self.recipes:
            if recipe == self.baseline:
                continue
            s = self.speedups[recipe]
            rows.append(
                {
                    "recipe": recipe,
                    "status": s.status,
                    "speedup": s.speedup,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "steps_factor": s.steps_factor,
                    "time_per_step_factor": s.time_per_step_factor,
                    "time_to_target_s": self.time_to_target(recipe)[0],
                    "baseline_time_to_target_s": self.time_to_target(self.baseline)[0],
                    "reached": s.recipe_reached,
                    "baseline_reached": s.baseline_reached,
                    "note": s.note,
                    "contended_runs": len(self.contended(recipe)),
                    "baseline_contended_runs": len(self.contended(self.baseline)),
                }
            )
        return rows

    def time_to_target(self, recipe: str) -> tuple[float | None, list[float | None]]:
        """Mean over seeds (None unless every seed reached) and each seed's time."""
        per_seed = [c.time_s if c is not None else None for c in self.crossings.get(recipe, [])]
        reached = [t for t in per_seed if t is not None]
        if not per_seed or len(reached) < len(per_seed):
            return None, per_seed
        return float(np.mean(reached)), per_seed

    def speedups_over_targets(self, targets: Sequence[float]) -> dict[str, list[Speedup]]:
        """Speedup of every recipe at each of ``targets`` (for the speedup-vs-target plot)."""
        out: dict[str, list[Speedup]] = {}
        hib = self.higher_is_better
        base_seeds = self.seeds[self.baseline]
        for recipe in self.recipes:
            if recipe == self.baseline:
                continue
            rows = []
            for target in targets:
                base = [first_crossing(p, target, hib) for p in base_seeds.values()]
                rec = [first_crossing(p, target, hib) for p in self.seeds[recipe].values()]
                rows.append(iso_quality_speedup(recipe, self.baseline, target, base, rec))
            out[recipe] = rows
        return out

    def target_range(self, count: int = 12) -> list[float]:
        """Targets the baseline reaches on every seed, above its first measurement: the range
        over which a speedup can be read at all."""
        firsts, bests = [], []
        for points in self.seeds[self.baseline].values():
            qualities = [p.quality for p in points]
            firsts.append(qualities[0])
            bests.append(max(qualities) if self.higher_is_better else min(qualities))
        if not firsts:
            return [self.target]
        if self.higher_is_better:
            low, high = max(firsts), min(bests)
        else:
            low, high = min(firsts), max(bests)
        if (high - low) * (1 if self.higher_is_better else -1) <= 0:
            return [self.target]
        return [float(v) for v in np.linspace(low, high, count + 1)[1:]]


def _group(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    grouped: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        grouped[record.recipe].append(record)
    return dict(grouped)


def _machine(record: RunRecord) -> str:
    env = record.env or {}
    hardware = env.get("gpu") or env.get("cpu") or "unknown machine"
    return f"{hardware}, {env.get('threads', '?')} threads, torch {env.get('torch', '?')}"


def choose_schedule(records: Sequence[RunRecord], baseline: str, schedule: str = "auto") -> str:
    if schedule not in SCHEDULE_CHOICES:
        raise ConfigError(f"unknown schedule {schedule!r}", f"use one of {', '.join(SCHEDULE_CHOICES)}")
    if schedule != "auto":
        return schedule
    kinds = {r.schedule for r in usable(records) if r.recipe == baseline}
    return "scaled" if "scaled" in kinds or not kinds else "cyclic"


def compare_runs(
    records: Sequence[RunRecord],
    *,
    target: float,
    baseline: str = "baseline",
    readout: str = "auto",
    schedule: str = "auto",
    recipes: Sequence[str] | None = None,
) -> Comparison:
    """Compare every recipe in ``records`` (one workload) with ``baseline`` at ``target``."""
    workloads = sorted({r.workload for r in records})
    if len(workloads) != 1:
        found = ", ".join(workloads) or "none"
        raise ConfigError(
            f"a comparison needs runs of one workload, found: {found}",
            "pass the workload name, e.g. 'hasten compare toy'",
        )
    if not math.isfinite(target):
        raise ConfigError(f"target {target} is not a finite number", "pass --target as a number, e.g. 0.9")
    schedule = choose_schedule(records, baseline, schedule)
    chosen = [r for r in usable(records) if r.schedule == schedule]
    grouped = _group(chosen)
    if recipes:
        wanted = [r for r in recipes if r != baseline]
        missing = [r for r in wanted if r not in grouped]
        if missing:
            raise ConfigError(
                f"no finished {schedule} runs of {', '.join(map(repr, missing))} for {workloads[0]}",
                f"run them first, e.g. hasten curve {workloads[0]} --recipe '{missing[0]}'",
            )
        grouped = {r: grouped[r] for r in [baseline, *wanted] if r in grouped}
    if baseline not in grouped:
        known = ", ".join(sorted(grouped)) or "none"
        raise ConfigError(
            f"no finished {schedule} runs of baseline {baseline!r} for {workloads[0]} (recipes: {known})",
            f"run 'hasten curve {workloads[0]} --recipe {baseline}' or pass --baseline RECIPE",
        )
    first = grouped[baseline][0]
    metric, hib = first.metric, first.higher_is_better
    readout = resolve_readout(readout, grouped)
    order = [baseline] + sorted(r for r in grouped if r != baseline)
    seeds = {r: seed_points(grouped[r], readout) for r in order}
    curves = {r: tradeoff_curve(r, grouped[r], readout) for r in order}
    crossings = {r: [first_crossing(points, target, hib) for points in seeds[r].values()] for r in order}
    speedups = {
        r: iso_quality_speedup(r, baseline, target, crossings[baseline], crossings[r]) for r in order if r != baseline
    }
    labelled = [Point(p.time_s, p.steps, p.quality, f"{r} @ {p.label}") for r in order for p in curves[r].as_points()]
    frontier = pareto_frontier(labelled, hib)
    gain_times = [p.time_s for p in curves[baseline].points if math.isfinite(p.time_s)]
    gains = {
        r: [quality_gain_at_time(seeds[baseline], seeds[r], t, hib) for t in gain_times] for r in order if r != baseline
    }
    machines = sorted({_machine(r) for r in chosen})
    notes = []
    if len(machines) > 1:
        notes.append(f"runs come from {len(machines)} different machines; times are comparable only on one machine")
    counts = {r: len(seeds[r]) for r in order}
    if min(counts.values(), default=0) < 2:
        notes.append("a recipe has fewer than 2 seeds: no confidence interval can be given for it")
    compared = [r for r in chosen if r.recipe in grouped]
    flags = contention_flags(compared)
    busy = contention_note(flags, len(compared))
    if busy:
        notes.append(busy)
    return Comparison(
        workloads[0],
        metric,
        hib,
        baseline,
        float(target),
        readout,
        schedule,
        order,
        curves,
        seeds,
        crossings,
        speedups,
        frontier,
        gains,
        machines,
        len(chosen),
        notes,
        flags,
    )


def default_target(workload: str, target: float | None) -> float:
    """``target`` if given, else the registered workload's; imported runs of unknown workloads need one."""
    if target is not None:
        return float(target)
    from hasten.workloads.base import get_workload

    try:
        return float(get_workload(workload).target)
    except ConfigError as exc:
        raise ConfigError(
            f"no target for workload {workload!r}: {exc.problem}", "pass --target Q (the quality to reach)"
        ) from exc
