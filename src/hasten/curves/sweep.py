"""Sweeps: recipes x budgets x seeds into the run store, skipping points already finished.

Each point is one ``build_trainer`` run: with ``schedule="scaled"`` its learning-rate schedule
decays over its own budget; with ``"cyclic"`` one run per recipe and seed covers every budget
(Portes et al. 2022), its cycle ends placed on the budgets. A point whose finished run is
already in the store is skipped, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.core.time import Duration
from hasten.errors import ConfigError
from hasten.methods.registry import build_methods, recipe_name, split_recipe
from hasten.recipes.recipe import is_recipe_reference, run_arguments
from hasten.store.records import RunRecord
from hasten.store.store import RunStore

MIN_BUDGETS = 3  # DESIGN.md rule 3


@dataclass(frozen=True)
class SweepPoint:
    """One run to make. For a cyclic point ``duration`` is the largest budget and the run's
    ``cycles`` cycle ends sit on the budgets."""

    workload: str
    recipe: str
    duration: str
    seed: int
    schedule: str = "scaled"
    cycles: int = 0
    t_mult: float = 2.0
    cycle_warmup: float | None = None

    def describe(self) -> str:
        kind = f" cyclic x{self.cycles}" if self.schedule == "cyclic" else ""
        return f"{self.workload} {self.recipe} {self.duration}{kind} seed {self.seed}"


@dataclass(frozen=True)
class Outcome:
    point: SweepPoint
    status: str  # completed | diverged | skipped
    run_id: str
    quality: float | None
    train_time_s: float
    metric: str = ""


@dataclass
class SweepSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return sum(o.status != "skipped" for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.status == "skipped" for o in self.outcomes)

    @property
    def diverged(self) -> int:
        return sum(o.status == "diverged" for o in self.outcomes)


# --------------------------------------------------------------------------- planning
def parse_budgets(budgets: str | Sequence[str]) -> list[str]:
    """``"2ep,4ep,8ep"`` -> sorted, distinct durations, all in one unit (so they can be ordered)."""
    items = [b for b in (budgets.split(",") if isinstance(budgets, str) else budgets)]
    parsed = [Duration(b.strip()) for b in items if str(b).strip()]
    if not parsed:
        raise ConfigError("no budgets given", "pass --budgets like 2ep,4ep,8ep")
    units = {t.unit for t in parsed}
    if len(units) > 1:
        raise ConfigError(
            f"budgets mix units ({', '.join(sorted(u.value for u in units))})",
            "give every budget in one unit, e.g. 2ep,4ep,8ep",
        )
    return [str(t) for t in sorted(set(parsed), key=lambda t: t.value)]


def default_budgets(default_duration: str, count: int = MIN_BUDGETS) -> list[str]:
    """Log-spaced budgets ending at the workload's default duration: 1/4, 1/2, 1 of it."""
    full = Duration(default_duration)
    out = []
    for k in range(count - 1, -1, -1):
        value = full.value / 2**k
        number = int(value) if float(value).is_integer() else round(value, 4)
        out.append(f"{number}{full.unit.value}")
    return parse_budgets(out)


def normalize_recipe(recipe: str) -> str:
    """The stored name of a recipe as typed: ``"mixup + label_smoothing"`` -> ``mixup+label_smoothing``."""
    return recipe_name(split_recipe(recipe))


def check_recipes(recipes: Sequence[str], workload: str | None = None) -> list[str]:
    """Normalize and validate every recipe before any training: bad specs and conflicting
    methods fail here with one line, not an hour into a sweep. A recipe reference
    (``@NAME``, a packaged recipe's name, a YAML file) becomes its label, checked against
    ``workload``."""
    names = []
    for recipe in recipes:
        if is_recipe_reference(recipe):
            arguments = run_arguments(recipe, workload)
            check_composition(build_methods(arguments["methods"]))
            name = arguments["recipe"]
        else:
            specs = split_recipe(recipe)
            check_composition(build_methods(specs))
            name = recipe_name(specs)
        if name not in names:
            names.append(name)
    return names


def cyclic_layout(budgets: Sequence[str], t_mult: float = 2.0) -> tuple[int, float | None]:
    """Cycles and warm-up (a fraction of the run) that put the first and last cycle ends on
    the smallest and largest budgets; with budgets spaced by ``t_mult`` every end matches.

    Cycle k ends at ``w + c * (t^(k+1) - 1) / (t - 1)``: two equations give the first
    cycle's length ``c`` and the warm-up ``w`` (Paper B's 8-epoch warm-up before its first
    8-epoch cycle is this rule for 16, 32, ... 512 epochs)."""
    values = [Duration(b).value for b in budgets]
    cycles = len(values)
    if cycles == 1:
        return 1, None
    units = cycles if t_mult == 1 else (t_mult**cycles - 1) / (t_mult - 1)
    first = (values[-1] - values[0]) / (units - 1)
    warmup = max(values[0] - first, 0.0)
    return cycles, warmup / values[-1]


ORDERS = ("interleaved", "grouped")


def plan_sweep(
    workload: str,
    recipes: Sequence[str],
    budgets: Sequence[str],
    seeds: Sequence[int],
    *,
    cyclic: bool = False,
    t_mult: float = 2.0,
    order: str = "interleaved",
) -> list[SweepPoint]:
    """Every point of the sweep, in the order they are run.

    ``interleaved`` (the default): seeds outermost, then budgets, with the recipes taking turns
    inside (A B C, then B C A, ...): a machine that gets busier or quieter during the sweep
    slows every recipe alike instead of the ones that happened to run late, no recipe always
    runs first, and a stopped sweep has whole seeds of every recipe. ``grouped``: one recipe's
    runs after another's (a recipe's curve is complete sooner, but drift lands on recipes
    unequally: compare its times with care)."""
    if order not in ORDERS:
        raise ConfigError(f"unknown sweep order {order!r}", f"use one of {', '.join(ORDERS)}")
    if cyclic:
        cycles, warmup = cyclic_layout(budgets, t_mult)
        blocks = [
            [SweepPoint(workload, r, budgets[-1], s, "cyclic", cycles, t_mult, warmup) for r in recipes] for s in seeds
        ]
    else:
        blocks = [[SweepPoint(workload, r, b, s) for r in recipes] for s in seeds for b in budgets]
    if order == "grouped":
        return [block[i] for i in range(len(recipes)) for block in blocks]
    points = []
    for k, block in enumerate(blocks):
        turn = k % len(block) if block else 0
        points += block[turn:] + block[:turn]
    return points


def interleave_schedules(*plans: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Several plans (a sweep and its cyclic runs) merged seed by seed, so both see the same
    machine over time; the order inside each seed is kept."""
    merged = [p for plan in plans for p in plan]
    seeds = list(dict.fromkeys(p.seed for p in merged))
    return sorted(merged, key=lambda p: seeds.index(p.seed))


def find_done(store: RunStore, point: SweepPoint) -> RunRecord | None:
    """The finished run of this point, if the store has one (a cyclic run must also have the
    same cycle layout)."""
    record = store.find_completed(point.workload, point.recipe, point.duration, point.seed, point.schedule)
    if record is None or point.schedule != "cyclic":
        return record
    config = record.config or {}
    same = config.get("cycles") == point.cycles and config.get("t_mult", 2.0) == point.t_mult
    warmup = config.get("cycle_warmup")
    if point.cycle_warmup is None or warmup is None:
        same = same and warmup == point.cycle_warmup
    else:
        same = same and math.isclose(warmup, point.cycle_warmup, rel_tol=1e-9, abs_tol=1e-12)
    return record if same else None


# ---------------------------------------------------------------------------- running
def run_point(
    point: SweepPoint,
    store: RunStore,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    callbacks: Sequence[Callback] = (),
    eval_interval: Any = None,
) -> Outcome:
    """Train one point into ``store`` (the one path: ``build_trainer``)."""
    from hasten.workloads.runner import build_trainer

    options: dict[str, Any] = {}
    if point.schedule == "cyclic":
        options = dict(cycles=point.cycles, t_mult=point.t_mult, cycle_warmup=point.cycle_warmup)
    if is_recipe_reference(point.recipe):  # a recipe file: its methods, settings and precision; the sweep's budget
        arguments = run_arguments(point.recipe, point.workload)
        arguments.pop("duration")
        options.update(arguments)
    else:
        options["methods"] = split_recipe(point.recipe)
    trainer = build_trainer(
        point.workload,
        duration=point.duration,
        seed=point.seed,
        device=device,
        data_dir=data_dir,
        store=store,
        callbacks=list(callbacks),
        schedule=point.schedule,
        eval_interval=eval_interval,
        **options,
    )
    result = trainer.fit()
    metric = trainer.state.run_info.get("metric", "")
    return Outcome(point, result.status, result.run_id, result.final.get(metric), result.train_time_s, metric)


def _worker(point: SweepPoint, store_path: str, device: str, data_dir: str | None, threads: int) -> Outcome:
    import torch

    torch.set_num_threads(threads)
    return run_point(point, RunStore(store_path), device=device, data_dir=data_dir)


class SweepProgress:
    """Overall progress: a rich bar on a terminal, one line per point elsewhere (``stream``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar: Any = None
        self._task: Any = None
        self.total = self.done = 0
        self._start = time.perf_counter()

    def start(self, total: int) -> None:
        self.total, self._start = total, time.perf_counter()
        if self._tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task("sweep", total=total, info="")

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        quality = "" if outcome.quality is None else f" {outcome.metric} {outcome.quality:.4f}"
        verb = (
            "already in the store"
            if outcome.status == "skipped"
            else f"{outcome.status} in {outcome.train_time_s:.1f}s"
        )
        line = f"[{self.done}/{self.total}] {outcome.point.describe()}: {verb}{quality}"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, info=line.split("] ", 1)[1])
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def run_sweep(
    points: Sequence[SweepPoint],
    store: RunStore,
    *,
    jobs: int = 1,
    device: str = "auto",
    data_dir: str | None = None,
    progress: SweepProgress | None = None,
    callbacks_for: Callable[[SweepPoint], Sequence[Callback]] | None = None,
) -> SweepSummary:
    """Run every point not already finished; ``jobs`` > 1 runs that many processes at once
    (the store is safe for several writers), each with its share of the CPU threads."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}", "use --jobs 1 to run one point at a time")
    progress = progress or SweepProgress()
    summary = SweepSummary()
    todo = []
    progress.start(len(points))
    try:
        for point in points:
            done = find_done(store, point)
            if done is None:
                todo.append(point)
                continue
            outcome = Outcome(point, "skipped", done.run_id, done.quality, done.train_time_s, done.metric)
            summary.outcomes.append(outcome)
            progress.advance(outcome)
        if jobs == 1 or len(todo) <= 1:
            for point in todo:
                callbacks = callbacks_for(point) if callbacks_for else ()
                outcome = run_point(point, store, device=device, data_dir=data_dir, callbacks=callbacks)
                summary.outcomes.append(outcome)
                progress.advance(outcome)
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = [
                    pool.submit(_worker, p, str(Path(store.path).resolve()), device, data_dir, threads) for p in todo
                ]
                try:
                    for future in as_completed(futures):
                        outcome = future.result()
                        summary.outcomes.append(outcome)
                        progress.advance(outcome)
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        progress.close()
    return summary
