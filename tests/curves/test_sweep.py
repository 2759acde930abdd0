"""Sweeps on the toy workload: planning, skipping finished points, continuing after an interruption."""

from __future__ import annotations

import io

import pytest

from hasten.core.callback import Callback
from hasten.curves.sweep import (
    SweepProgress,
    check_recipes,
    cyclic_layout,
    default_budgets,
    find_done,
    interleave_schedules,
    parse_budgets,
    plan_sweep,
    run_sweep,
)
from hasten.errors import ConfigError, ConflictError
from hasten.optim.schedules import MultiplicativeCyclic
from hasten.store.store import RunStore

BUDGETS = ["6ba", "12ba", "24ba"]


def quiet() -> SweepProgress:
    return SweepProgress(io.StringIO())


def test_budgets_are_parsed_sorted_and_in_one_unit():
    assert parse_budgets("8ep, 2ep,4ep,4ep") == ["2ep", "4ep", "8ep"]
    assert default_budgets("10ep") == ["2.5ep", "5ep", "10ep"]
    with pytest.raises(ConfigError, match="mix units"):
        parse_budgets("2ep,400ba")
    with pytest.raises(ConfigError, match="malformed"):
        parse_budgets("2ep,lots")


def test_recipes_are_normalized_and_checked_before_training():
    assert check_recipes(["baseline", " label_smoothing ", "baseline"]) == ["baseline", "label_smoothing"]
    with pytest.raises(ConflictError, match="twice"):
        check_recipes(["label_smoothing+label_smoothing"])
    with pytest.raises(ConfigError, match="unknown method"):
        check_recipes(["no_such_method"])


def test_cyclic_layout_puts_cycle_ends_on_the_budgets():
    cycles, warmup = cyclic_layout(["2ep", "4ep", "8ep"])
    assert (cycles, warmup) == (3, pytest.approx(1 / 8))  # Paper B: warm-up as long as the first cycle
    schedule = MultiplicativeCyclic(cycles=cycles, t_mult=2.0, warmup=warmup)
    assert schedule.cycle_ends(800) == [200, 400, 800]
    cycles, warmup = cyclic_layout(["1ep", "2ep", "4ep", "8ep"])
    assert MultiplicativeCyclic(cycles=cycles, warmup=warmup).cycle_ends(1600) == [200, 400, 800, 1600]
    cycles, warmup = cyclic_layout(["1ep", "3ep", "9ep"], t_mult=3.0)
    assert MultiplicativeCyclic(cycles=cycles, t_mult=3.0, warmup=warmup).cycle_ends(900) == [100, 300, 900]


def test_plan_orders_seeds_outermost():
    points = plan_sweep("toy", ["baseline", "label_smoothing"], BUDGETS, range(2))
    assert len(points) == 12
    assert {p.seed for p in points[:6]} == {0}
    cyclic = plan_sweep("toy", ["baseline"], BUDGETS, range(2), cyclic=True)
    assert [(p.duration, p.schedule, p.cycles) for p in cyclic] == [("24ba", "cyclic", 3)] * 2


def test_interleaved_order_lets_recipes_take_turns_and_grouped_runs_one_recipe_at_a_time():
    recipes = ["baseline", "a", "b"]
    points = plan_sweep("toy", recipes, BUDGETS, range(2))
    assert [p.recipe for p in points[:9]] == ["baseline", "a", "b", "a", "b", "baseline", "b", "baseline", "a"]
    assert sorted((p.recipe, p.duration, p.seed) for p in points) == sorted(
        (r, b, s) for r in recipes for b in BUDGETS for s in range(2)
    )
    grouped = plan_sweep("toy", recipes, BUDGETS, range(2), order="grouped")
    assert [p.recipe for p in grouped] == [r for r in recipes for _ in range(6)]
    assert sorted(grouped, key=lambda p: (p.recipe, p.seed, p.duration)) == sorted(
        points, key=lambda p: (p.recipe, p.seed, p.duration)
    )
    with pytest.raises(ConfigError, match="unknown sweep order"):
        plan_sweep("toy", recipes, BUDGETS, range(2), order="random")


def test_a_sweep_and_its_cyclic_runs_are_merged_seed_by_seed():
    scaled = plan_sweep("toy", ["baseline"], BUDGETS, range(2))
    cyclic = plan_sweep("toy", ["baseline"], BUDGETS, range(2), cyclic=True)
    merged = interleave_schedules(scaled, cyclic)
    assert [(p.seed, p.schedule) for p in merged] == [(0, "scaled")] * 3 + [(0, "cyclic")] + [(1, "scaled")] * 3 + [
        (1, "cyclic")
    ]


class _Interrupt(Callback):
    """Stands in for Ctrl-C in the middle of one run."""

    def on_batch_end(self, state) -> None:  # type: ignore[no-untyped-def]
        if state.timestamp.batch == 3:
            raise KeyboardInterrupt


def test_an_interrupted_sweep_continues_where_it_stopped(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    points = plan_sweep("toy", ["baseline"], BUDGETS, range(2))
    victim = points[2]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(
            points, store, device="cpu", progress=quiet(), callbacks_for=lambda p: [_Interrupt()] if p == victim else []
        )
    runs = store.list_runs("toy")
    assert sorted(r.status for r in runs) == ["completed", "completed", "interrupted"]
    assert find_done(store, victim) is None

    log = io.StringIO()
    summary = run_sweep(points, store, device="cpu", progress=SweepProgress(log))
    assert (summary.skipped, summary.ran) == (2, 4)
    assert "[1/6]" in log.getvalue() and "already in the store" in log.getvalue()
    finished = [r for r in store.list_runs("toy") if r.status == "completed"]
    assert sorted((r.duration, r.seed) for r in finished) == sorted((p.duration, p.seed) for p in points)
    again = run_sweep(points, store, device="cpu", progress=quiet())
    assert (again.skipped, again.ran) == (6, 0)


def test_cyclic_point_must_match_its_layout(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    point = plan_sweep("toy", ["baseline"], BUDGETS, [0], cyclic=True)[0]
    run_sweep([point], store, device="cpu", progress=quiet())
    assert find_done(store, point) is not None
    other = plan_sweep("toy", ["baseline"], ["3ba", "24ba"], [0], cyclic=True)[0]
    assert other.duration == point.duration and find_done(store, other) is None


def test_parallel_jobs_write_to_one_store(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    points = plan_sweep("toy", ["baseline"], ["6ba", "12ba"], [0])
    summary = run_sweep(points, store, jobs=2, device="cpu", progress=quiet())
    assert summary.ran == 2
    assert sorted(r.duration for r in store.list_runs("toy", status="completed")) == ["12ba", "6ba"]
    with pytest.raises(ConfigError):
        run_sweep(points, store, jobs=0, progress=quiet())
