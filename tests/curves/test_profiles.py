"""AlgoPerf performance profiles against hand-computed ratios and areas."""

from __future__ import annotations

import math

import pytest

from hasten.curves.profiles import performance_ratios, profile, profile_score, profile_scores

TIMES = {
    "w1": {"a": 10.0, "b": 20.0, "c": 50.0},
    "w2": {"a": 30.0, "b": 15.0, "c": None},  # c did not reach w2's target
    "w3": {"a": 8.0, "b": 8.0},  # c has no run on w3; a and b tie
}


def test_ratios():
    ratios = performance_ratios(TIMES)
    assert ratios["a"] == {"w1": 1.0, "w2": 2.0, "w3": 1.0}
    assert ratios["b"] == {"w1": 2.0, "w2": 1.0, "w3": 1.0}
    assert ratios["c"]["w1"] == 5.0 and math.isinf(ratios["c"]["w2"]) and math.isinf(ratios["c"]["w3"])


def test_profile_steps():
    ratios = performance_ratios(TIMES)
    assert list(profile(ratios["a"], [1.0, 1.5, 2.0, 3.9])) == pytest.approx([2 / 3, 2 / 3, 1.0, 1.0])
    assert list(profile(ratios["c"], [1.0, 4.0, 5.0])) == [0.0, 0.0, 1 / 3]


def test_scores_are_the_exact_area():
    scores = profile_scores(TIMES)
    # a: ratios 1, 2, 1 -> (3 + 2 + 3) / 3 / 3
    assert scores["a"] == pytest.approx((3 + 2 + 3) / 9)
    assert scores["b"] == pytest.approx((2 + 3 + 3) / 9)
    assert scores["c"] == 0.0  # 5x slower than the best and never reached elsewhere: beyond r_max = 4
    numeric = profile(performance_ratios(TIMES)["a"], [1 + 3 * (i + 0.5) / 30000 for i in range(30000)]).mean()
    assert numeric == pytest.approx(scores["a"], abs=1e-3)
    assert profile_score({"w": 1.0}) == 1.0 and profile_score({}) == 0.0
