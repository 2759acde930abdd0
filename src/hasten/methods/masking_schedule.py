"""Dynamic masking rates (Ankner, Saphra, Blalock, Frankle, Leavitt 2023): schedule the MLM masking rate.

Masked-LM pretraining usually corrupts a fixed 15% of positions. Ankner et al. decay the rate over
the whole run instead, ``p(t) = p_start + t (p_end - p_start)`` with ``t`` the fraction of training
done; ``linear-0.3-0.15`` reached fixed-15% BERT-base quality in 1.89x fewer steps. Cosine and a
single halfway step worked about as well; increasing the rate (15% -> 30%) was worse. A schedule
is written ``KIND-START-END``: ``constant-0.15``, ``linear-0.3-0.15``, ``cosine-0.3-0.15``,
``step-0.3-0.15`` (switch halfway; ``step-0.3-0.15-0.25`` switches at 25%).

The functional form is ``masking_rate(schedule, progress)``: any collator calls it with its own
progress and corrupts at that rate (``hasten.data.masked_lm.mask_tokens``). The Algorithm sets
``mask_rate`` on the training batch source before each batch is fetched; the rate depends only on
the run's progress, so a resumed run sees the same rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

KINDS = ("constant", "linear", "cosine", "step")


@dataclass(frozen=True)
class MaskingRateSchedule:
    """``rate(progress)`` for progress in [0, 1]: from ``start`` to ``end`` by ``kind``."""

    kind: str
    start: float
    end: float
    switch_at: float = 0.5  # for "step": the fraction of the run at which the rate becomes ``end``

    def __call__(self, progress: float) -> float:
        t = min(max(progress, 0.0), 1.0)
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            return self.start + t * (self.end - self.start)
        if self.kind == "cosine":
            return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * t))
        return self.start if t < self.switch_at else self.end

    def __str__(self) -> str:
        if self.kind == "constant":
            return f"constant-{self.start:g}"
        tail = f"-{self.switch_at:g}" if self.kind == "step" and self.switch_at != 0.5 else ""
        return f"{self.kind}-{self.start:g}-{self.end:g}{tail}"


def parse_masking_schedule(spec: str) -> MaskingRateSchedule:
    """``"linear-0.3-0.15"`` -> a schedule; a bad spec or a rate outside [0, 1] is one ConfigError."""
    kind, *numbers = spec.strip().split("-")
    usage = "write constant-R, linear-START-END, cosine-START-END or step-START-END[-SWITCH], e.g. linear-0.3-0.15"
    if kind not in KINDS:
        raise ConfigError(f"unknown masking schedule {spec!r}", usage)
    expected = {"constant": (1,), "linear": (2,), "cosine": (2,), "step": (2, 3)}[kind]
    if len(numbers) not in expected:
        raise ConfigError(f"masking schedule {spec!r} has {len(numbers)} number(s)", usage)
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        raise ConfigError(f"masking schedule {spec!r} has a value that is not a number", usage) from None
    rates = values[:2]
    if any(not 0.0 <= r <= 1.0 for r in rates):
        raise ConfigError(
            f"masking schedule {spec!r} has a rate outside [0, 1]",
            "rates are fractions of positions, e.g. linear-0.3-0.15",
        )
    if kind == "step" and len(values) == 3 and not 0.0 <= values[2] <= 1.0:
        raise ConfigError(f"masking schedule {spec!r} switches outside the run", "give a fraction in [0, 1], e.g. 0.5")
    start = rates[0]
    end = rates[1] if len(rates) > 1 else start
    return MaskingRateSchedule(kind, start, end, values[2] if len(values) == 3 else 0.5)


def masking_rate(schedule: str | MaskingRateSchedule, progress: float) -> float:
    """The masking rate at ``progress`` (fraction of training done) under ``schedule``."""
    if isinstance(schedule, str):
        schedule = parse_masking_schedule(schedule)
    return schedule(progress)


class MaskingSchedule(Algorithm):
    """Sets ``state.train_data.mask_rate`` before every batch is fetched."""

    name = "masking_schedule"
    touches = frozenset({"batch"})
    data_parallel = True

    def __init__(self, schedule: str = "linear-0.3-0.15") -> None:
        self.schedule = parse_masking_schedule(schedule)

    def match(self, event: Event, state: State) -> bool:
        return event in (Event.INIT, Event.BEFORE_DATALOADER)

    def apply(self, event: Event, state: State) -> None:
        if event is Event.INIT:
            if not hasattr(state.train_data, "mask_rate"):
                raise ConfigError(
                    "masking_schedule needs a masked-LM training source with a settable mask_rate",
                    "use it on the mlm workload, or call masking_rate() from your own collator",
                )
            return
        rate = self.schedule(state.progress)
        state.train_data.mask_rate = rate
        state.extra[self.name] = {"mask_rate": rate}


register(
    MethodCard(
        name="masking_schedule",
        summary="Schedule the masked-LM masking rate over the run (default: linear from 30% down to 15%)",
        component="data",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Zachary Ankner, Naomi Saphra, Davis Blalock, Jonathan Frankle, Matthew L. Leavitt",
            2023,
            "Dynamic Masking Rate Schedules for MLM Pretraining",
            "2305.15096",
        ),
        not_worth_it=(
            "anything but masked-LM pretraining; an increasing schedule (15% -> 30%) is worse than a fixed 15% in "
            "the paper; the gain needs the extra prediction targets (corrupting more but scoring only 15% lost it)"
        ),
        effect="no change in step cost (only the collator's rate changes); the paper reports 1.89x fewer steps to "
        "fixed-15% BERT-base GLUE quality",
        applies_to=("text",),
        functional=("masking_rate", "parse_masking_schedule", "hasten.data.masked_lm.mask_tokens"),
        resume_note="the rate is a function of the run's progress only",
    ),
    MaskingSchedule,
)
