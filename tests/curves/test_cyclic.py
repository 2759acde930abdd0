"""Single-run cyclic curves: the schedule's shape, where it evaluates, and agreement with a sweep."""

from __future__ import annotations

import math

import pytest

from hasten.core.callback import Callback
from hasten.curves.analysis import Point
from hasten.curves.cyclic import quality_at_steps, validate_cyclic
from hasten.curves.sweep import cyclic_layout
from hasten.workloads.runner import build_trainer
from tests.curves.synthetic import run


class _RecordLr(Callback):
    def __init__(self) -> None:
        self.multipliers: list[float] = []

    def on_after_optimizer_step(self, state) -> None:  # type: ignore[no-untyped-def]
        group = state.optimizer.param_groups[0]
        self.multipliers.append(group["lr"] / group["initial_lr"])


def test_cyclic_run_has_warmup_restarts_and_evaluates_at_cycle_ends():
    cycles, warmup = cyclic_layout(["8ba", "16ba", "32ba"])
    recorder = _RecordLr()
    trainer = build_trainer(
        "toy",
        [],
        duration="32ba",
        device="cpu",
        schedule="cyclic",
        cycles=cycles,
        cycle_warmup=warmup,
        callbacks=[recorder],
    )
    result = trainer.fit()
    assert [e.step for e in result.evals] == [8, 16, 32]
    m = recorder.multipliers
    assert len(m) == 32
    assert m[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up over 4 steps
    for last in (7, 15, 31):  # the step just before each evaluation runs at the learning-rate minimum
        assert m[last] == pytest.approx(0.0, abs=1e-12)
    assert m[8] == pytest.approx(0.5 * (1 + math.cos(math.pi / 8)))  # restart: cycle 2 is 8 steps long
    assert m[16] > 0.95
    assert all(a >= b for a, b in zip(m[8:16], m[9:16]))  # each cycle decays monotonically
    assert trainer.state.run_info["config"]["cycles"] == 3


def test_quality_at_steps_reads_cycle_ends_and_interpolates_in_log_steps():
    points = [Point(1, 20, 0.6), Point(2, 40, 0.8)]
    assert quality_at_steps(points, 20) == 0.6
    assert quality_at_steps(points, math.sqrt(800)) == pytest.approx(0.7)
    assert quality_at_steps(points, 10) is None and quality_at_steps(points, 41) is None


SWEEP = {"a": [0.50, 0.60, 0.70], "b": [0.55, 0.65, 0.72], "c": [0.45, 0.62, 0.75]}
CYCLIC = {"a": [0.51, 0.60, 0.69], "b": [0.56, 0.63, 0.74], "c": [0.44, 0.64, 0.73]}
BUDGETS = ["1ep", "2ep", "4ep"]


def _records():
    sweep = [
        run(r, 0, [(t / 2, s // 2, q - 0.2), (t, s, q)], duration=b)
        for r, qs in SWEEP.items()
        for b, t, s, q in zip(BUDGETS, (1.0, 2.0, 4.0), (10, 20, 40), qs)
    ]
    cyclic = [
        run(r, 0, [(1.1, 10, qs[0]), (2.2, 20, qs[1]), (4.4, 40, qs[2])], duration="4ep", schedule="cyclic")
        for r, qs in CYCLIC.items()
    ]
    return sweep, cyclic


def test_agreement_by_hand():
    sweep, cyclic = _records()
    result = validate_cyclic(sweep, cyclic, BUDGETS)
    taus = [b.kendall_tau for b in result.budgets]
    # 1ep: b > a > c in both. 2ep: sweep b > c > a, cyclic c > b > a: one of three pairs swapped.
    assert taus == pytest.approx([1.0, 1 / 3, 1 / 3])
    assert [b.best_sweep for b in result.budgets] == ["b", "b", "c"]
    assert [b.best_cyclic for b in result.budgets] == ["b", "c", "b"]
    assert result.max_abs_difference == pytest.approx(0.02)
    assert result.cost_ratio == pytest.approx(4.4 / 7.0)  # one 4ep run against 1 + 2 + 4 epochs of runs
    assert result.quality["a"]["2ep"] == pytest.approx((0.60, 0.60))


def test_agreement_needs_matching_points():
    sweep, _ = _records()
    late = [run("a", 0, [(1.5, 15, 0.5), (4.4, 40, 0.7)], duration="4ep", schedule="cyclic")]
    result = validate_cyclic(sweep, late, BUDGETS)
    assert result.quality["a"]["1ep"][1] is None  # 10 steps lies before the first cycle end: not extrapolated
    assert result.quality["a"]["2ep"][1] == pytest.approx(0.5 + 0.2 * math.log(20 / 15) / math.log(40 / 15))
    assert result.budgets[0].kendall_tau is None  # one recipe: no ranking to compare
