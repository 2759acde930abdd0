"""Signs that a run was timed on a busy machine: found in the records, said next to the numbers.

Other processes on the machine make training slower without changing what it learns, so a
tradeoff curve drawn from such runs moves points sideways for no reason the recipe can
answer for (a 100-step run that took longer than its 200-step run). Four signs are read from
the run records, none of which needs the runs to be repeated:

- **dispersion**: runs of one recipe at one budget (seeds) do the same work per step, so their
  time per step should agree; one more than ``DISPERSION_LIMIT`` x away from the group's
  median (or, with two runs, two that far apart) was slowed by something else;
- **not increasing**: a run of more steps that took no more training time than a run of the same
  recipe and seed with fewer steps;
- **CPU far below wall**: on a CPU run, the process's CPU seconds per training second (data
  waits left out) under ``CPU_WALL_LIMIT``: its threads were waiting for cores, not working;
- **load**: the 1-minute load average at the run's start or end above ``LOAD_PER_CORE_LIMIT``
  per core: more threads wanted to run than the machine has cores.

The limits are wide on purpose: a flag should mean "these seconds are not the recipe's", not
"timing is a little noisy". Runs recorded before CPU time and load were recorded are judged by
the first two signs only.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from hasten.store.records import RunRecord

DISPERSION_LIMIT = 1.5
CPU_WALL_LIMIT = 0.5
LOAD_PER_CORE_LIMIT = 1.5
# Runs shorter than this say little about CPU use (clock granularity, start-up).
MIN_TRAIN_S_FOR_CPU = 0.5


@dataclass(frozen=True)
class ContentionFlag:
    """One run whose training time looks disturbed, and every reason why."""

    run_id: str
    recipe: str
    duration: str
    seed: int
    schedule: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "recipe": self.recipe,
            "budget": self.duration,
            "seed": self.seed,
            "schedule": self.schedule,
            "reasons": list(self.reasons),
        }


def time_per_step(record: RunRecord) -> float | None:
    if record.steps <= 0 or not (record.train_time_s > 0 and math.isfinite(record.train_time_s)):
        return None
    return record.train_time_s / record.steps


def _timed(records: Iterable[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.status == "completed" and time_per_step(r) is not None]


def _dispersion(records: Sequence[RunRecord], out: dict[str, list[str]]) -> None:
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.workload, record.recipe, record.duration, record.schedule)].append(record)
    for runs in groups.values():
        if len(runs) < 2:
            continue
        per_step = {r.run_id: time_per_step(r) or 0.0 for r in runs}
        if len(runs) == 2:
            (a, ta), (b, tb) = per_step.items()
            spread = max(ta, tb) / min(ta, tb)
            if spread > DISPERSION_LIMIT:
                for run_id, other in ((a, b), (b, a)):
                    out[run_id].append(
                        f"time per step {spread:.1f}x apart from run {other} of the same recipe and budget"
                    )
            continue
        median = statistics.median(per_step.values())
        for run_id, value in per_step.items():
            ratio = value / median
            if max(ratio, 1 / ratio) > DISPERSION_LIMIT:
                side = "above" if ratio > 1 else "below"
                factor = ratio if ratio > 1 else 1 / ratio
                out[run_id].append(
                    f"time per step {factor:.1f}x {side} the median of the {len(runs)} runs of "
                    "the same recipe and budget"
                )


def _not_increasing(records: Sequence[RunRecord], out: dict[str, list[str]]) -> None:
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.schedule == "scaled":
            groups[(record.workload, record.recipe, record.seed)].append(record)
    for runs in groups.values():
        ordered = sorted(runs, key=lambda r: r.steps)
        for shorter, longer in zip(ordered, ordered[1:]):
            if longer.steps > shorter.steps and longer.train_time_s <= shorter.train_time_s:
                out[longer.run_id].append(
                    f"{longer.steps} steps took {longer.train_time_s:.2f} s, no longer than the {shorter.steps} "
                    f"steps of run {shorter.run_id} ({shorter.train_time_s:.2f} s)"
                )
                out[shorter.run_id].append(
                    f"{shorter.steps} steps took {shorter.train_time_s:.2f} s, as long as or longer than the "
                    f"{longer.steps} steps of run {longer.run_id} ({longer.train_time_s:.2f} s)"
                )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _cpu_and_load(record: RunRecord, out: dict[str, list[str]]) -> None:
    env = record.env or {}
    cpu = _number(env.get("train_cpu_s"))
    busy_wall = record.train_time_s - max(record.data_wait_s, 0.0)
    on_cpu = str(env.get("device", "cpu")).startswith("cpu")
    if on_cpu and cpu is not None and busy_wall >= MIN_TRAIN_S_FOR_CPU:
        ratio = cpu / busy_wall
        if ratio < CPU_WALL_LIMIT:
            out[record.run_id].append(
                f"used {ratio:.2f} CPU seconds per second of training: its threads waited for cores"
            )
    cores = _number(env.get("cpu_count"))
    if cores:
        for moment in ("start", "end"):
            load = _number(env.get(f"load_{moment}"))
            if load is not None and load / cores > LOAD_PER_CORE_LIMIT:
                out[record.run_id].append(f"load average {load:.1f} on {cores:.0f} cores at its {moment}")


def contention_flags(records: Iterable[RunRecord]) -> list[ContentionFlag]:
    """Every completed run with at least one sign of a busy machine, in the records' order."""
    runs = _timed(records)
    reasons: dict[str, list[str]] = defaultdict(list)
    _dispersion(runs, reasons)
    _not_increasing(runs, reasons)
    for record in runs:
        _cpu_and_load(record, reasons)
    return [
        ContentionFlag(r.run_id, r.recipe, r.duration, r.seed, r.schedule, tuple(reasons[r.run_id]))
        for r in runs
        if reasons.get(r.run_id)
    ]


def contention_note(flags: Sequence[ContentionFlag], total: int) -> str | None:
    """One line for a report's notes, or None when no run is flagged."""
    if not flags:
        return None
    recipes = sorted({f.recipe for f in flags})
    return (
        f"{len(flags)} of {total} runs show signs of a busy machine (listed under 'contention'; recipes: "
        f"{', '.join(recipes)}): their training times, and speedups read from them, are provisional; rerun "
        "those points on an idle machine, interleaving recipes (hasten curve --order interleaved)"
    )
