"""``hasten demo``: race the baseline against a faster recipe and prove (or refuse) the speedup.

Both recipes train the same workload for the same budget with the same scaled schedule,
alternating runs (baseline seed 0, recipe seed 0, baseline seed 1, ...) so a busy machine
slows both alike. Each run is evaluated every ``DEMO_EVAL_INTERVAL`` and stops the clock at
the first evaluation that reaches the target (as MLPerf does); time-to-target is that run's
first crossing, interpolated in log-time. The speedup, its bootstrap interval over seeds and
its two factors come from the same analysis as ``hasten compare``, and the report is written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hasten.callbacks.progress import ProgressBar
from hasten.core.callback import Callback
from hasten.core.state import State
from hasten.curves.compare import Comparison, compare_runs
from hasten.curves.report import ReportFiles, fmt_ci, fmt_time, fmt_x, verdict_line, write_report
from hasten.curves.sweep import check_recipes
from hasten.methods.registry import split_recipe
from hasten.store.store import RunStore
from hasten.workloads.base import get_workload

DEMO_WORKLOAD = "shakespeare"
# The faster recipe the demo races against the baseline, chosen by measuring candidates'
# time-to-target side by side on shakespeare, runs alternating, clock stopped at the target
# (docs/demo.md, "How the recipe was chosen"; 2-core AMD EPYC, 1 thread, shared machine, so
# provisional): baseline reached loss 1.92 at step ~1840, muon at step ~680 (about 2.7x fewer
# steps, 3.1x less time); bf16 autocast ran each step ~10x slower on this CPU (no native bf16).
DEMO_RECIPE = "muon"
DEMO_SEEDS = 2
DEMO_EVAL_INTERVAL = "250ba"
DEFAULT_OUT = Path("hasten-demo")


class StopAtTarget(Callback):
    """Stops training at the first evaluation that reaches the target: the clock stops there.
    The learning-rate schedule is unchanged (it is laid out over the full budget)."""

    def __init__(self, metric: str, target: float, higher_is_better: bool) -> None:
        self.metric, self.target, self.higher_is_better = metric, target, higher_is_better

    def on_eval_end(self, state: State) -> None:
        value = state.eval_results.get(self.metric)
        if value is None:
            return
        if (value >= self.target) if self.higher_is_better else (value <= self.target):
            state.stop_training()


@dataclass
class DemoResult:
    comparison: Comparison
    files: ReportFiles
    store_path: Path


def _fresh_store(path: Path) -> RunStore:
    """A new run database for this race: a demo re-measures, it never reuses old runs."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return RunStore(path)


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    *,
    workload: str = DEMO_WORKLOAD,
    recipe: str = DEMO_RECIPE,
    seeds: int = DEMO_SEEDS,
    target: float | None = None,
    duration: str | None = None,
    eval_interval: str = DEMO_EVAL_INTERVAL,
    device: str = "auto",
    data_dir: str | None = None,
    stream: IO[str] | None = None,
) -> DemoResult:
    """Train baseline and ``recipe`` for ``seeds`` seeds each, alternating; print and report."""
    from hasten.workloads.runner import build_trainer

    out = stream or sys.stdout
    spec = get_workload(workload)
    names = check_recipes(["baseline", recipe])
    target = spec.target if target is None else float(target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = _fresh_store(out_dir / "runs.db")
    schedule = [(seed, name) for seed in range(seeds) for name in names]
    print(f"hasten demo: {spec.name} ({spec.summary})", file=out)
    print(
        f"racing {' vs '.join(names)} to {spec.metric} {'>=' if spec.higher_is_better else '<='} {target:g}, "
        f"{seeds} seeds each, runs alternating; the clock stops at the target",
        file=out,
        flush=True,
    )
    for index, (seed, name) in enumerate(schedule, start=1):
        label = f"[{index}/{len(schedule)}] {name} seed {seed}"
        trainer = build_trainer(
            spec,
            split_recipe(name),
            duration=duration,
            seed=seed,
            device=device,
            data_dir=data_dir,
            store=store,
            eval_interval=eval_interval,
            config={"stop_at_target": target},
            callbacks=[StopAtTarget(spec.metric, target, spec.higher_is_better), ProgressBar(label=label)],
        )
        result = trainer.fit()
        stopped = result.steps < trainer.total_steps
        print(
            f"{label}: {result.train_time_s:.1f}s training, {result.steps} steps"
            + (" (stopped at the target)" if stopped else " (full budget)"),
            file=out,
            flush=True,
        )
    comparison = compare_runs(store.list_runs(spec.name, with_evals=True), target=target, readout="evals")
    notes = [
        "Times measured here are for this machine only; on a machine shared with other work they are "
        "provisional (the ratio of alternating runs is roughly fair, absolute times are not)."
    ]
    files = write_report(comparison, out_dir, title=f"hasten demo: {spec.name}", notes=notes)
    print_summary(comparison, out)
    print(f"report: {files.html.resolve()} (also report.md and figures in {files.directory})", file=out, flush=True)
    return DemoResult(comparison, files, store.path)


def print_summary(comparison: Comparison, out: IO[str]) -> None:
    """Time-to-target per recipe, then the verdict with its interval and factors."""
    print(f"\ntime to {comparison.metric} {comparison.target:g} (training time only):", file=out)
    for recipe in comparison.recipes:
        mean, per_seed = comparison.time_to_target(recipe)
        seeds = ", ".join(fmt_time(t) for t in per_seed)
        print(f"  {recipe:<28} {fmt_time(mean):>12}   (seeds: {seeds})", file=out)
    for recipe in comparison.recipes:
        if recipe == comparison.baseline:
            continue
        s = comparison.speedups[recipe]
        print(f"\nspeedup {fmt_x(s.speedup)}  95% CI {fmt_ci(s.ci_low, s.ci_high)}  -> {s.status}", file=out)
        print(f"  = steps-to-quality {fmt_x(s.steps_factor)} x time-per-step {fmt_x(s.time_per_step_factor)}", file=out)
        print(f"  {verdict_line(comparison, recipe)}", file=out)
    for note in comparison.notes:
        print(f"note: {note}", file=out)
    out.flush()
