"""``hasten curve``: tradeoff curves from a sweep of recipes x budgets x seeds (or single cyclic runs)."""

from __future__ import annotations

import math
import sys

import click

from hasten.cli.common import echo_json, fmt_seconds, open_store, print_table, store_option
from hasten.curves.analysis import tradeoff_curve
from hasten.curves.contention import ContentionFlag, contention_flags, contention_note
from hasten.curves.cyclic import CyclicValidation
from hasten.curves.cyclic import validate_cyclic as agreement_of
from hasten.curves.sweep import (
    MIN_BUDGETS,
    ORDERS,
    SweepProgress,
    check_recipes,
    default_budgets,
    find_done,
    interleave_schedules,
    parse_budgets,
    plan_sweep,
    run_sweep,
)
from hasten.store.records import RunRecord
from hasten.workloads.base import get_workload


def _curve_rows(
    records: list[RunRecord], recipes: list[str], schedule: str, flags: list[ContentionFlag]
) -> tuple[list, list[dict]]:
    rows, data = [], []
    for recipe in recipes:
        curve = tradeoff_curve(recipe, [r for r in records if r.recipe == recipe], "budgets")
        for p in curve.points:
            interval = "-" if not math.isfinite(p.quality_low) else f"[{p.quality_low:.4f}, {p.quality_high:.4f}]"
            busy = [f.run_id for f in flags if f.recipe == recipe and f.schedule == schedule and f.duration == p.label]
            rows.append(
                (
                    recipe,
                    p.label,
                    p.n,
                    fmt_seconds(p.time_s),
                    f"{p.quality:.4f}",
                    interval,
                    f"{len(busy)} flagged" if busy else "-",
                )
            )
            data.append(
                {
                    "recipe": recipe,
                    "schedule": schedule,
                    "budget": p.label,
                    "seeds": p.n,
                    "train_time_s": p.time_s,
                    "quality": p.quality,
                    "quality_low": p.quality_low,
                    "quality_high": p.quality_high,
                    "steps": p.steps,
                    "contended_runs": busy,
                }
            )
    return rows, data


def _print_validation(result: CyclicValidation) -> None:
    rows = [
        (
            b.budget,
            b.recipes,
            "-" if b.kendall_tau is None else f"{b.kendall_tau:.2f}",
            b.best_sweep,
            b.best_cyclic,
            "-" if b.max_abs_difference is None else f"{b.max_abs_difference:.4f}",
        )
        for b in result.budgets
    ]
    print_table(
        ("budget", "recipes", "Kendall tau", "best (sweep)", "best (cyclic)", "max |difference|"),
        rows,
        title="cyclic single runs vs the sweep",
    )
    worst = f" ({result.worst[0]} at {result.worst[1]})" if result.worst else ""
    largest = "-" if result.max_abs_difference is None else f"{result.max_abs_difference:.4f}"
    ratio = "-" if result.cost_ratio is None else f"{result.cost_ratio:.2f}"
    click.echo(
        f"largest quality difference {largest}{worst}; one cyclic run costs {ratio}x the sweep's training "
        f"time per recipe and seed ({fmt_seconds(result.cyclic_time_s)} vs {fmt_seconds(result.sweep_time_s)})"
    )


@click.command()
@click.argument("workload")
@click.option(
    "--recipe",
    "-r",
    "recipes",
    multiple=True,
    metavar="RECIPE",
    help='"baseline", method specs joined by "+", e.g. "mixup+label_smoothing", or a recipe '
    '(@NAME, @FILE, @NAME~COMPONENT for one component removed; see "hasten recipes"; repeatable). '
    "The baseline is always included.",
)
@click.option(
    "--budgets",
    "-b",
    default=None,
    metavar="B1,B2,...",
    help="Budgets, e.g. 2ep,4ep,8ep (log-spaced, >= 3). Default: 1/4, 1/2 and all of the workload's duration.",
)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds 0..N-1 per point.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs to train at once, each in its own process.",
)
@click.option(
    "--cyclic",
    is_flag=True,
    help="One run per recipe and seed with the multiplicative cyclic schedule; "
    "a curve point at each cycle end (Portes et al. 2022).",
)
@click.option(
    "--validate-cyclic", is_flag=True, help="Run both the sweep and the cyclic runs and report how well they agree."
)
@click.option(
    "--t-mult",
    type=click.FloatRange(min=1.0),
    default=2.0,
    show_default=True,
    help="Cyclic: each cycle's length over the last one's.",
)
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="interleaved",
    show_default=True,
    help="interleaved: recipes take turns (A B A B) so a machine's drift hits them alike; "
    "grouped: one recipe's runs after another's.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Where the data files are.")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the curves (and agreement) as JSON at the end.")
def curve(
    workload: str,
    recipes: tuple[str, ...],
    budgets: str | None,
    seeds: int,
    jobs: int,
    cyclic: bool,
    validate_cyclic: bool,
    t_mult: float,
    order: str,
    device: str,
    data_dir: str | None,
    store_path: str | None,
    as_json: bool,
) -> None:
    """Sweep recipes x budgets x seeds on WORKLOAD into the run store; finished points are skipped,
    so an interrupted sweep continues where it stopped. Then print each recipe's tradeoff curve."""
    spec = get_workload(workload)
    names = check_recipes(["baseline", *recipes], workload=spec.name)
    budget_list = parse_budgets(budgets) if budgets else default_budgets(spec.default_duration)
    if len(budget_list) < MIN_BUDGETS:
        click.echo(
            f"warning: {len(budget_list)} budget(s); a tradeoff curve needs at least {MIN_BUDGETS}, "
            "log-spaced (DESIGN.md rule 3)",
            err=True,
        )
    if seeds < 2:
        click.echo("warning: one seed gives no confidence interval; use --seeds 2 or more", err=True)
    store = open_store(store_path)
    kinds = ["scaled", "cyclic"] if validate_cyclic else ["cyclic" if cyclic else "scaled"]
    plans = [
        plan_sweep(spec.name, names, budget_list, range(seeds), cyclic=kind == "cyclic", t_mult=t_mult, order=order)
        for kind in kinds
    ]
    points = interleave_schedules(*plans) if order == "interleaved" else [p for plan in plans for p in plan]
    try:
        summary = run_sweep(points, store, jobs=jobs, device=device, data_dir=data_dir, progress=SweepProgress())
    except KeyboardInterrupt:
        done = sum(1 for p in points if store.find_completed(p.workload, p.recipe, p.duration, p.seed, p.schedule))
        click.echo(
            f"\nsweep interrupted with {done} of {len(points)} points finished; run the same command again to continue",
            err=True,
        )
        sys.exit(130)
    click.echo(
        f"{summary.ran} runs trained, {summary.skipped} already in {store.path}"
        + (f", {summary.diverged} diverged" if summary.diverged else ""),
        err=True,
    )

    output: dict = {"workload": spec.name, "metric": spec.metric, "budgets": budget_list, "curves": []}
    records = [r for r in (find_done(store, p) for p in points) if r is not None]  # this sweep's runs only
    flags = contention_flags(records)
    output["contention"] = [f.to_dict() for f in flags]
    for kind in kinds:
        rows, data = _curve_rows([r for r in records if r.schedule == kind], names, kind, flags)
        output["curves"] += data
        if not as_json:
            print_table(
                ("recipe", "budget", "seeds", "train time", spec.metric, "95% CI", "busy machine"),
                rows,
                title=f"{spec.name} tradeoff curves ({kind})",
            )
    note = contention_note(flags, len(records))
    if note:
        click.echo(f"warning: {note}", err=True)
        for flag in flags:
            click.echo(
                f"contention: run {flag.run_id} ({flag.recipe}, {flag.duration}, seed {flag.seed}): "
                + "; ".join(flag.reasons),
                err=True,
            )
    if validate_cyclic:
        result = agreement_of(records, records, budget_list)
        output["validation"] = result.to_dict()
        if not as_json:
            _print_validation(result)
    if as_json:
        echo_json(output)


COMMANDS = [curve]
