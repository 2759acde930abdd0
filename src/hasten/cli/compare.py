"""``hasten compare``: every recipe's iso-quality speedup over a baseline, with its interval and factors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from hasten.cli.common import (
    echo_json,
    fmt_seconds,
    open_store,
    print_table,
    store_option,
)
from hasten.curves.analysis import READOUTS
from hasten.curves.compare import (
    SCHEDULE_CHOICES,
    Comparison,
    compare_runs,
    default_target,
)
from hasten.errors import ConfigError
from hasten.recipes.recipe import is_recipe_reference, load_recipe
from hasten.store.store import RunStore


def comparison_options(fn: Callable) -> Callable:
    """Options shared by ``compare`` and ``report``."""
    options: list[Callable[[Callable], Callable]] = [
        click.option(
            "--baseline",
            default="baseline",
            show_default=True,
            help="Recipe to measure speedups against: method specs or a recipe (@NAME).",
        ),
        click.option(
            "--target", type=float, default=None, help="Quality to reach. Default: the workload's registered target."
        ),
        click.option(
            "--schedule",
            type=click.Choice(SCHEDULE_CHOICES),
            default="auto",
            show_default=True,
            help="Which runs: scaled (a sweep), cyclic, or auto (scaled when the baseline has any).",
        ),
        click.option(
            "--readout",
            type=click.Choice(READOUTS),
            default="auto",
            show_default=True,
            help="evals: each run's eval time series; budgets: final quality per budget; "
            "auto: budgets when every recipe has >= 2.",
        ),
        store_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def load_comparison(
    workload: str, baseline: str, target: float | None, schedule: str, readout: str, store: RunStore
) -> Comparison:
    """The workload's runs from ``store``, compared. Imported runs of unknown workloads work too."""
    if is_recipe_reference(baseline):  # a recipe's runs are stored under its label (@NAME)
        baseline = load_recipe(baseline).label
    records = store.list_runs(workload, with_evals=True)
    if not records:
        raise ConfigError(
            f"no runs of {workload!r} in {store.path}",
            f"run 'hasten curve {workload}' first, or import runs with 'hasten runs import'",
        )
    return compare_runs(
        records, target=default_target(workload, target), baseline=baseline, readout=readout, schedule=schedule
    )


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


@click.command()
@click.argument("workload")
@comparison_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def compare(
    workload: str,
    baseline: str,
    target: float | None,
    schedule: str,
    readout: str,
    store_path: str | None,
    as_json: bool,
) -> None:
    """Speedup of every recipe of WORKLOAD over the baseline at a target quality, with a bootstrap
    95% interval over seeds and its two factors (steps-to-quality x time-per-step).

    Status: speedup | no measurable speedup (interval holds 1.0) | slower | not reached."""
    result = load_comparison(workload, baseline, target, schedule, readout, open_store(store_path))
    rows = result.speedup_rows()
    if as_json:
        payload: dict[str, Any] = {
            "workload": result.workload,
            "metric": result.metric,
            "higher_is_better": result.higher_is_better,
            "target": result.target,
            "baseline": result.baseline,
            "schedule": result.schedule,
            "readout": result.readout,
            "baseline_time_to_target_s": result.time_to_target(baseline)[0],
            "machines": result.machines,
            "notes": result.notes,
            "recipes": rows,
            "contention": [f.to_dict() for f in result.contention],
        }
        echo_json(payload)
        return
    base_time = result.time_to_target(baseline)[0]
    click.echo(
        f"{result.workload}: time to {result.metric} {result.target:g}; baseline {baseline!r} "
        f"{'not reached' if base_time is None else fmt_seconds(base_time)} ({result.readout} readout)"
    )
    table: list[tuple[str, ...]] = [
        (
            r["recipe"],
            "not reached" if r["time_to_target_s"] is None else fmt_seconds(r["time_to_target_s"]),
            _x(r["speedup"]),
            "-" if r["ci_low"] is None else f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
            _x(r["steps_factor"]),
            _x(r["time_per_step_factor"]),
            r["status"],
        )
        for r in rows
    ]
    columns: tuple[str, ...] = (
        "recipe",
        "time to target",
        "speedup",
        "95% CI",
        "steps-to-quality",
        "time-per-step",
        "status",
    )
    if result.contention:
        columns += ("busy-machine runs",)
        table = [(*row, _busy(result, r["recipe"], baseline)) for row, r in zip(table, rows)]
    print_table(columns, table)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for flag in result.contention:
        click.echo(
            f"contention: run {flag.run_id} ({flag.recipe}, {flag.duration}, seed {flag.seed}): "
            + "; ".join(flag.reasons),
            err=True,
        )


def _busy(result: Comparison, recipe: str, baseline: str) -> str:
    """How many of this row's runs (the recipe's and the baseline's) carry a busy-machine flag."""
    mine, base = len(result.contended(recipe)), len(result.contended(baseline))
    if not mine and not base:
        return "-"
    return ", ".join(
        part
        for part in (f"{mine} of the recipe's" if mine else "", f"{base} of the baseline's" if base else "")
        if part
    )


COMMANDS = [compare]
