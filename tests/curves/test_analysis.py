"""Tradeoff curves, time-to-quality and frontiers against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from hasten.curves.analysis import (
    Point,
    first_crossing,
    mean_ci,
    pareto_frontier,
    quality_at_time,
    resolve_readout,
    seed_points,
    tradeoff_curve,
)
from hasten.errors import ConfigError
from tests.curves.synthetic import run


def test_crossing_interpolates_linearly_in_log_time():
    points = [Point(1.0, 10, 0.5), Point(4.0, 40, 0.7), Point(16.0, 160, 0.9)]
    crossing = first_crossing(points, 0.8)
    # halfway from 0.7 to 0.9 in quality is halfway from log 4 to log 16 in time: sqrt(4 * 16) = 8
    assert crossing.time_s == pytest.approx(8.0)
    assert crossing.steps == pytest.approx(80.0)
    assert crossing.interpolated
    quarter = first_crossing(points, 0.55)  # a quarter of the way from 1 s to 4 s in log-time
    assert quarter.time_s == pytest.approx(4**0.25)


def test_exactly_on_a_point_and_first_point_already_past():
    points = [Point(2.0, 20, 0.6), Point(6.0, 60, 0.8)]
    on = first_crossing(points, 0.8)
    assert on.time_s == pytest.approx(6.0) and on.steps == pytest.approx(60.0)
    early = first_crossing(points, 0.5)
    assert early.time_s == 2.0 and not early.interpolated  # an upper bound, not interpolated


def test_target_never_reached_is_none_and_nothing_is_extrapolated():
    points = [Point(1.0, 10, 0.5), Point(2.0, 20, 0.6)]
    assert first_crossing(points, 0.61) is None
    assert first_crossing([], 0.5) is None
    assert quality_at_time(points, 2.5) is None
    assert quality_at_time(points, 0.5) is None
    assert quality_at_time(points, math.sqrt(2.0)) == pytest.approx(0.55)


def test_first_crossing_not_the_best_point():
    # quality rises past the target, dips, then rises again: the first crossing counts
    points = [Point(1, 1, 0.1), Point(2, 2, 0.9), Point(3, 3, 0.2), Point(4, 4, 0.95)]
    assert first_crossing(points, 0.8).time_s < 2.0


def test_lower_is_better_metric():
    points = [Point(1.0, 10, 3.0), Point(9.0, 90, 1.0)]
    crossing = first_crossing(points, 2.0, higher_is_better=False)
    assert crossing.time_s == pytest.approx(3.0)  # halfway in log-time between 1 and 9
    assert first_crossing(points, 0.5, higher_is_better=False) is None


def test_pareto_frontier_keeps_ties_and_drops_dominated_points():
    a, b, c = Point(1.0, 1, 0.5, "a"), Point(2.0, 2, 0.7, "b"), Point(2.0, 2, 0.7, "b twin")
    d, e, f = Point(3.0, 3, 0.6, "d"), Point(4.0, 4, 0.9, "e"), Point(1.0, 1, 0.4, "f")
    front = pareto_frontier([a, b, c, d, e, f])
    assert [p.label for p in front] == ["a", "b", "b twin", "e"]
    # same time, better quality dominates; same quality, less time dominates
    assert [p.label for p in pareto_frontier([Point(1, 1, 0.5, "x"), Point(1, 1, 0.6, "y")])] == ["y"]
    assert [p.label for p in pareto_frontier([Point(1, 1, 0.5, "x"), Point(2, 2, 0.5, "y")])] == ["x"]
    # lower is better flips the quality axis
    loss = pareto_frontier([Point(1, 1, 2.0, "x"), Point(2, 2, 1.0, "y"), Point(3, 3, 1.5, "z")], False)
    assert [p.label for p in loss] == ["x", "y"]


def test_mean_ci_by_hand():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.302653; sd = 1; half = 4.302653 / sqrt(3)
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert low == pytest.approx(2 * mean - high)
    single = mean_ci([5.0])
    assert single[0] == 5.0 and math.isnan(single[1])


def _budget_runs(recipe="baseline"):
    runs = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for duration, (t, s, q) in {"1ep": (1.0, 10, 0.6), "2ep": (2.0, 20, 0.7), "4ep": (4.0, 40, 0.8)}.items():
            runs.append(run(recipe, seed, [(t / 2, s // 2, q - 0.1), (t + shift, s, q + shift)], duration=duration))
    return runs


def test_budget_readout_uses_final_points_and_curve_averages_seeds():
    runs = _budget_runs()
    points = seed_points(runs, "budgets")
    assert [p.quality for p in points[0]] == [0.6, 0.7, 0.8]
    curve = tradeoff_curve("baseline", runs, "budgets")
    assert [p.label for p in curve.points] == ["1ep", "2ep", "4ep"]
    assert curve.points[0].quality == pytest.approx(0.61)
    assert curve.points[0].n == 2
    assert curve.points[2].time_s == pytest.approx(4.01)
    # the interval of two values a, b: mean +- t(0.975, 1) * |a - b| / 2
    assert curve.points[0].quality_high - 0.61 == pytest.approx(12.7062 * 0.01, rel=1e-4)


def test_eval_readout_uses_each_runs_time_series():
    runs = [
        run("baseline", 0, [(1.0, 10, 0.5), (2.0, 20, 0.7)]),
        run("baseline", 1, [(1.2, 10, 0.55), (2.4, 20, 0.75)]),
    ]
    points = seed_points(runs, "evals")
    assert [p.time_s for p in points[1]] == [1.2, 2.4]
    curve = tradeoff_curve("baseline", runs, "evals")
    assert [p.steps for p in curve.points] == [10, 20]
    assert curve.points[1].quality == pytest.approx(0.725)


def test_auto_readout_and_unusable_runs():
    budgets = {"a": _budget_runs("a"), "b": _budget_runs("b")}
    assert resolve_readout("auto", budgets) == "budgets"
    single = {"a": [run("a", 0, [(1, 1, 0.5)])], "b": _budget_runs("b")}
    assert resolve_readout("auto", single) == "evals"
    with pytest.raises(ConfigError):
        resolve_readout("sideways", single)
    failed = run("a", 0, [(1, 1, 0.5)], status="failed")
    assert seed_points([failed], "evals") == {}
    # a diverged run's evaluations before it blew up still count; it has no final point
    diverged = run("a", 0, [(1, 1, 0.5), (2, 2, 0.6)], status="diverged")
    assert len(seed_points([diverged], "evals")[0]) == 2
    assert seed_points([diverged], "budgets") == {}
