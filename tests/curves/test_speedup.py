"""Iso-quality speedups: hand-computed values, the factor split, and bootstrap interval coverage."""

from __future__ import annotations

import numpy as np
import pytest

from hasten.curves.analysis import Crossing, Point
from hasten.curves.speedup import classify, expanded_tail, iso_quality_speedup, quality_gain_at_time


def _crossings(times, steps):
    return [Crossing(t, s) for t, s in zip(times, steps)]


def test_speedup_and_factors_by_hand():
    base = _crossings([10.0, 12.0], [100, 120])
    rec = _crossings([5.0, 7.0], [60, 70])
    s = iso_quality_speedup("fast", "baseline", 0.9, base, rec)
    assert s.speedup == pytest.approx(11.0 / 6.0)
    assert s.steps_factor == pytest.approx(110.0 / 65.0)
    assert s.time_per_step_factor == pytest.approx((11.0 / 110.0) / (6.0 / 65.0))
    assert s.steps_factor * s.time_per_step_factor == pytest.approx(s.speedup)  # DESIGN.md section 1
    assert s.ci_low <= s.speedup <= s.ci_high
    assert s.baseline_reached == s.recipe_reached == "2/2"
    assert s.note.startswith("2 seeds")
    # with 2 seeds a side the expanded interval is the range over seed pairs
    assert (s.ci_low, s.ci_high) == (pytest.approx(10.0 / 7.0), pytest.approx(12.0 / 5.0))


def test_expanded_tail():
    assert expanded_tail(10) == pytest.approx(0.0171, abs=2e-4)  # 2 * Phi(-sqrt(10/9) * t(0.975, 9))
    assert expanded_tail(2) < 1e-10 and expanded_tail(1) == pytest.approx(0.05)
    assert expanded_tail(1000) == pytest.approx(0.05, abs=1e-3)


def test_factors_multiply_on_random_inputs():
    rng = np.random.default_rng(3)
    for _ in range(20):
        base = _crossings(rng.uniform(1, 10, 4), rng.uniform(10, 100, 4))
        rec = _crossings(rng.uniform(1, 10, 3), rng.uniform(10, 100, 3))
        s = iso_quality_speedup("r", "b", 0.5, base, rec, samples=200)
        assert s.steps_factor * s.time_per_step_factor == pytest.approx(s.speedup, rel=1e-12)


def test_bootstrap_is_reproducible():
    base, rec = _crossings([10, 11, 13], [1, 1, 1]), _crossings([6, 9, 7], [1, 1, 1])
    first = iso_quality_speedup("r", "b", 0.5, base, rec)
    again = iso_quality_speedup("r", "b", 0.5, base, rec)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)


def test_statuses():
    assert classify(1.1, 1.5) == "speedup"
    assert classify(0.9, 1.5) == "no measurable speedup"
    assert classify(0.5, 0.8) == "slower"
    assert classify(None, None) == "no measurable speedup"
    base = _crossings([10, 10.5, 9.5], [1, 1, 1])
    assert iso_quality_speedup("r", "b", 0.5, base, _crossings([5, 5.2, 4.9], [1, 1, 1])).status == "speedup"
    assert iso_quality_speedup("r", "b", 0.5, base, _crossings([20, 21, 19], [1, 1, 1])).status == "slower"
    noisy = iso_quality_speedup("r", "b", 0.5, base, _crossings([5, 15, 10], [1, 1, 1]))
    assert noisy.status == "no measurable speedup" and noisy.ci_low < 1 < noisy.ci_high


def test_unreached_targets_claim_nothing():
    base = _crossings([10, 11], [1, 1])
    partial = iso_quality_speedup("r", "b", 0.5, base, [Crossing(5, 1), None])
    assert partial.status == "not reached" and partial.speedup is None and partial.recipe_reached == "1/2"
    no_base = iso_quality_speedup("r", "b", 0.5, [None, Crossing(3, 1)], base)
    assert no_base.status == "not reached" and "baseline" in no_base.note


def test_one_seed_gives_no_interval():
    s = iso_quality_speedup("r", "b", 0.5, _crossings([10], [1]), _crossings([2], [1]))
    assert s.speedup == pytest.approx(5.0)
    assert s.ci_low is None and s.status == "no measurable speedup"


def test_bootstrap_interval_covers_the_true_speedup():
    """Synthetic seeds with known truth: lognormal noise around 12 s (baseline) and 8 s (recipe),
    so the true ratio of mean times is 1.5. A 95% interval should hold it in most trials."""
    rng = np.random.default_rng(0)
    trials, seeds, covered, claimed = 150, 10, 0, 0
    for _ in range(trials):
        base = _crossings(12.0 * rng.lognormal(0, 0.15, seeds), np.full(seeds, 100.0))
        rec = _crossings(8.0 * rng.lognormal(0, 0.15, seeds), np.full(seeds, 100.0))
        s = iso_quality_speedup("r", "b", 0.5, base, rec, samples=500)
        covered += s.ci_low <= 1.5 <= s.ci_high
        claimed += s.status == "speedup"
    assert 0.85 <= covered / trials <= 0.995
    assert claimed / trials > 0.95  # a real 1.5x with 15% noise is found
    false_claims = 0
    for _ in range(trials):  # no true speedup: a "speedup" verdict should be rare
        base = _crossings(10.0 * rng.lognormal(0, 0.15, seeds), np.full(seeds, 100.0))
        rec = _crossings(10.0 * rng.lognormal(0, 0.15, seeds), np.full(seeds, 100.0))
        false_claims += iso_quality_speedup("r", "b", 0.5, base, rec, samples=500).status == "speedup"
    assert false_claims / trials < 0.1


def test_quality_gain_at_equal_time():
    base = {0: [Point(1, 1, 0.5), Point(4, 4, 0.7)], 1: [Point(1, 1, 0.6), Point(4, 4, 0.8)]}
    rec = {0: [Point(1, 1, 0.6), Point(4, 4, 0.9)], 1: [Point(1, 1, 0.7), Point(4, 4, 1.0)]}
    gain = quality_gain_at_time(base, rec, 2.0)  # halfway in log-time: base 0.6, 0.7; recipe 0.75, 0.85
    assert gain.gain == pytest.approx(0.15)
    assert gain.ci_low <= 0.15 <= gain.ci_high
    assert quality_gain_at_time(base, rec, 8.0).gain is None  # past the curves: no extrapolation
    loss = quality_gain_at_time(base, rec, 4.0, higher_is_better=False)
    assert loss.gain == pytest.approx(-0.2)  # for a lower-is-better metric higher values are worse
