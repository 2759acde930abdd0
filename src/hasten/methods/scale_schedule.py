"""scale_schedule: rescale the whole run, and so its learning-rate schedule, to a budget.

Li, Yumer and Ramanan (2020) show that under a fixed budget the schedule must end (decay) at
the budget, not be cut off early. hasten's schedules are functions of (step, total_steps),
so multiplying ``max_duration`` by ``ratio`` at INIT stretches or shrinks every one of them:
warm-ups given as a fraction scale, warm-ups given in steps do not, and any method window in
``dur`` follows the new length (windows in ``ep`` or ``ba`` do not). This is Composer's
``scale_schedule_ratio`` as a method. A cyclic run (``--cyclic``) refuses it: its cycle ends are
planned for the unscaled budget, and it already covers every budget.

Rounding differs from Composer, which truncates (``int(value * ratio)``, in every unit, so
``3ep`` at 0.5 becomes ``1ep``, a third) and refuses a result of 0: hasten keeps fractional epochs
(``1.5ep``) and rounds step, sample and token counts to the nearest whole number, halves up
(``5ba`` at 0.5 is ``3ba``), never below 1.
"""

from __future__ import annotations

import math

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.core.time import Duration, Time, TimeUnit
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

__all__ = ["ScaleSchedule", "scale_duration"]


def scale_duration(duration: str | Time, ratio: float) -> Time:
    """``ratio`` x ``duration``; counts of steps, samples and tokens round to the nearest whole unit,
    halves up (not Python's round-half-to-even, which sent 2.5 to 2 but 3.5 to 4), at least 1."""
    if ratio <= 0:
        raise ValueError(f"ratio must be > 0, got {ratio}")
    time = Duration(duration)
    value = time.value * ratio
    if time.unit is not TimeUnit.EPOCH:
        value = float(max(1, math.floor(round(value, 9) + 0.5)))  # round(, 9): 10 * 0.15 is 1.4999999999999998
    return Duration(Time(value, time.unit))


class ScaleSchedule(Algorithm):
    """Run for ``ratio`` x the given duration, with every schedule scaled to fit."""

    name = "scale_schedule"
    touches = frozenset({"schedule"})
    data_parallel = True
    priority = -100  # first at INIT: anything else that reads max_duration sees the scaled one

    def __init__(self, ratio: float = 0.5) -> None:
        if ratio <= 0:
            raise ValueError(f"ratio must be > 0, got {ratio}")
        self.ratio = ratio

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        original = state.max_duration
        state.max_duration = scale_duration(original, self.ratio)
        state.run_info["duration"] = str(state.max_duration)
        state.run_info.setdefault("config", {})["scaled_from"] = str(original)


register(
    MethodCard(
        name="scale_schedule",
        summary="Multiply the run's duration by ratio; every (step, total_steps) schedule stretches or shrinks "
        "with it, so it still decays at the new budget",
        component="optimization",
        action="remove",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Li, Yumer, Ramanan",
            2020,
            "Budgeted Training: Rethinking Deep Neural Network Training Under Resource Constraints",
            "1905.04753",
        ),
        functional=("scale_duration",),
        effect="Time falls in proportion to ratio; quality falls much less than when a full-length schedule "
        "is cut off at the same step (Composer: ResNet-50 76.6% at ratio 1.0, 75.6% at 0.5). Rounding "
        "differs from Composer's truncation: fractional epochs are kept and step/sample/token counts round "
        "to the nearest whole number, halves up, at least 1",
        not_worth_it="It is a point on the tradeoff curve, not a free speedup: quality drops once the budget is "
        "too short; windows given in ep or ba (rather than dur) do not scale with it; in "
        "cyclic single-run curves it is refused (a cyclic run already covers every budget)",
        export="unchanged",
    ),
    ScaleSchedule,
)
