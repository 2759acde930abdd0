"""Rules V1-V4 (docs/profiler.md)."""

from __future__ import annotations

import pytest

from hasten.profile.verdict import PRIORITY, SECONDARY_MIN, TIE_MARGIN, WATCH, decide, explain


def test_v1_the_largest_share_wins():
    d = decide({"data": 0.1, "host": 0.2, "memory": 0.1, "compute": 0.6})
    assert (d.verdict, d.rule) == ("compute", "V1")


@pytest.mark.parametrize("bottleneck", PRIORITY)
def test_v1_every_bottleneck_can_be_the_verdict(bottleneck):
    shares = dict.fromkeys(PRIORITY, 0.1)
    shares[bottleneck] = 0.6
    assert decide(shares).verdict == bottleneck


def test_v2_near_ties_go_upstream():
    close = 0.40 + TIE_MARGIN / 2
    d = decide({"data": 0.40, "compute": close, "host": 0.2 - TIE_MARGIN / 2})
    assert (d.verdict, d.rule) == ("data", "V2")
    assert d.secondary == "compute"
    # a clear lead is not a tie
    d = decide({"data": 0.30, "compute": 0.30 + 2 * TIE_MARGIN})
    assert (d.verdict, d.rule) == ("compute", "V1")
    # a tie with a *downstream* runner-up keeps the upstream leader
    d = decide({"host": 0.42, "memory": 0.40})
    assert (d.verdict, d.rule) == ("host", "V1")


def test_v3_secondary_needs_a_real_share():
    assert decide({"compute": 0.6, "memory": SECONDARY_MIN + 0.01}).secondary == "memory"
    assert decide({"compute": 0.8, "memory": SECONDARY_MIN - 0.01}).secondary is None


def test_unknown_bottleneck_is_rejected():
    with pytest.raises(ValueError, match="unknown bottlenecks"):
        decide({"disk": 1.0})


def test_v4_every_verdict_watches_a_number_the_evidence_has():
    from hasten.profile.evidence import gather_evidence
    from tests.profile.test_evidence import PEAKS, times, trace

    evidence = gather_evidence(times(), trace({}), None, PEAKS)
    assert set(WATCH) == set(PRIORITY)
    for key in WATCH.values():
        assert isinstance(evidence[key], float)


@pytest.mark.parametrize(
    "verdict, words",
    [
        ("data", "waiting for the next batch"),
        ("host", "host overhead"),
        ("memory", "ridge point"),
        ("compute", "measured"),
        ("communication", "communication"),
    ],
)
def test_explanations_quote_the_numbers(verdict, words):
    evidence = {
        "shares": dict.fromkeys(PRIORITY, 0.25) | {verdict: 0.5},
        "step_time_s": 0.02,
        "ops_per_step": 12,
        "mean_op_time_s": 1e-4,
        "ridge_point": 9.5,
        "mfu": 0.3,
        "matmul_dtype": "float32",
        "device_idle_fraction": None,
    }
    text = explain(verdict, evidence)
    assert words in text and "50%" in text and "10.0 ms of 20.0 ms" in text
