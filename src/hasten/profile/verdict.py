"""The verdict rules, written down once (docs/profiler.md explains each; tests check each).

V1. The verdict is the bottleneck with the largest share of step time (shares come from
    rules S1-S5 in ``hasten.profile.evidence`` and add up to 1).
V2. Near-ties go upstream: when the runner-up is within ``TIE_MARGIN`` of the largest share,
    the one earlier in ``PRIORITY`` wins. A stall for data, communication or the host hides any
    saving in device work, so it has to be removed first for other fixes to show.
V3. A runner-up with at least ``SECONDARY_MIN`` of step time is reported as the secondary
    bottleneck, with its own recommendations after the verdict's.
V4. What a fix should move: each verdict names one evidence number (``WATCH``) that a method
    relieving that bottleneck lowers; re-profile after the fix and compare it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hasten.bottlenecks import PRIORITY  # V2's order of the bottleneck vocabulary

TIE_MARGIN = 0.05
SECONDARY_MIN = 0.20
WATCH = {
    "data": "data_wait_fraction",
    "communication": "communication_fraction",
    "host": "host_fraction",
    "memory": "memory_time_s",
    "compute": "compute_time_s",
}


@dataclass(frozen=True)
class Decision:
    verdict: str
    secondary: str | None
    shares: dict[str, float]
    rule: str


def decide(shares: dict[str, float]) -> Decision:
    """Apply V1-V3 to bottleneck shares (missing bottlenecks count as 0)."""
    unknown = set(shares) - set(PRIORITY)
    if unknown:
        raise ValueError(f"unknown bottlenecks {sorted(unknown)}; expected {PRIORITY}")
    full = {b: float(shares.get(b, 0.0)) for b in PRIORITY}
    ranked = sorted(PRIORITY, key=lambda b: (-full[b], PRIORITY.index(b)))
    top, runner_up = ranked[0], ranked[1]
    rule = "V1"
    if full[top] - full[runner_up] < TIE_MARGIN and PRIORITY.index(runner_up) < PRIORITY.index(top):
        top, runner_up, rule = runner_up, top, "V2"
    rest = [b for b in ranked if b != top]
    secondary = rest[0] if full[rest[0]] >= SECONDARY_MIN else None
    return Decision(top, secondary, full, rule)


def explain(verdict: str, evidence: dict[str, Any]) -> str:
    """One sentence a newcomer can read: what the bottleneck is, in this run's numbers."""
    share = evidence["shares"][verdict]
    step_ms = evidence["step_time_s"] * 1e3
    part_ms = share * step_ms
    if verdict == "data":
        return (
            f"waiting for the next batch takes {share:.0%} of each step ({part_ms:.1f} ms of {step_ms:.1f} ms); "
            "the model is idle while the input pipeline works"
        )
    if verdict == "host":
        ops, mean_us = evidence["ops_per_step"], evidence["mean_op_time_s"] * 1e6
        where = (
            "the device sits idle waiting for the host"
            if evidence.get("device_idle_fraction") is not None
            else "time goes to Python, the framework and per-operation overhead rather than arithmetic"
        )
        return (
            f"{share:.0%} of each step is host overhead ({part_ms:.1f} ms of {step_ms:.1f} ms, {ops:.0f} "
            f"operations per step averaging {mean_us:.0f} us); {where}"
        )
    if verdict == "memory":
        return (
            f"{share:.0%} of each step is in memory-bound operations ({part_ms:.1f} ms of {step_ms:.1f} ms): "
            f"they do fewer FLOPs per byte moved than the ridge point ({evidence['ridge_point']:.1f} FLOP/byte), "
            "so bandwidth, not arithmetic, sets their speed"
        )
    if verdict == "compute":
        return (
            f"{share:.0%} of each step is in compute-bound operations ({part_ms:.1f} ms of {step_ms:.1f} ms), "
            f"running at {evidence['mfu']:.0%} of this device's measured {evidence['matmul_dtype']} peak; "
            "only fewer or cheaper FLOPs make steps faster"
        )
    return (
        f"communication not hidden behind compute takes {share:.0%} of each step ({part_ms:.1f} ms of {step_ms:.1f} ms)"
    )
