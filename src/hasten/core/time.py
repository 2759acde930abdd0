"""Units of training time: parse ``"10ep"``, ``"500ba"``, ``"6e4sp"``, ``"2e5tok"``, ``"0.5dur"``.

``ba`` counts optimizer steps (not micro-batches). ``dur`` is a fraction of the
run's ``max_duration`` and is resolved against it. A ``Timestamp`` holds the
loop's counters in every unit at once so any ``Time`` can be checked against it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum

from hasten.errors import ConfigError


class TimeUnit(str, Enum):
    EPOCH = "ep"
    BATCH = "ba"
    SAMPLE = "sp"
    TOKEN = "tok"
    DURATION = "dur"


UNIT_HELP = "ep (epochs), ba (optimizer steps), sp (samples), tok (tokens), dur (fraction of the run)"
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ep|ba|sp|tok|dur)\s*$")


_WHOLE = {TimeUnit.BATCH: "batch", TimeUnit.SAMPLE: "sample", TimeUnit.TOKEN: "token"}
MAX_STEPS = 10**9  # far beyond any real run (GPT-3: ~1e5 steps); a budget past it never ends


@dataclass(frozen=True)
class Time:
    """An amount of training in one unit. Compare only within the same unit."""

    value: float
    unit: TimeUnit

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise ConfigError(f"time value must be a finite number >= 0, got {self.value!r}")
        if self.unit is TimeUnit.DURATION and self.value > 1:
            raise ConfigError(f"a 'dur' time is a fraction of the run, between 0 and 1; got {self.value}")

    @classmethod
    def parse(cls, text: "str | Time") -> "Time":
        if isinstance(text, Time):
            return text
        match = _PATTERN.match(str(text))
        if not match:
            raise ConfigError(
                f"malformed time {text!r}",
                f"write a number followed by a unit: {UNIT_HELP}; e.g. '10ep', '500ba', '0.5dur'",
            )
        value, unit = float(match.group(1)), TimeUnit(match.group(2))
        if unit in _WHOLE and math.isfinite(value) and not value.is_integer():
            raise ConfigError(
                f"{text!r} is a fraction of a {_WHOLE[unit]}, which cannot be run",
                f"give a whole number of {_WHOLE[unit]}s, e.g. '{max(1, round(value))}{unit.value}' (or use ep)",
            )
        return cls(value, unit)

    def __str__(self) -> str:
        number = int(self.value) if float(self.value).is_integer() else self.value
        return f"{number}{self.unit.value}"

    def _check_same_unit(self, other: "Time") -> None:
        if not isinstance(other, Time):
            raise TypeError(f"cannot compare Time with {type(other).__name__}")
        if other.unit is not self.unit:
            raise TypeError(f"cannot compare {self} with {other}: different units; convert first")

    def __lt__(self, other: "Time") -> bool:
        self._check_same_unit(other)
        return self.value < other.value

    def __le__(self, other: "Time") -> bool:
        self._check_same_unit(other)
        return self.value <= other.value

    def __gt__(self, other: "Time") -> bool:
        self._check_same_unit(other)
        return self.value > other.value

    def __ge__(self, other: "Time") -> bool:
        self._check_same_unit(other)
        return self.value >= other.value

    def __mul__(self, factor: float) -> "Time":
        return Time(self.value * factor, self.unit)

    __rmul__ = __mul__

    def to(self, unit: TimeUnit | str, rates: "Rates", max_duration: "Time | None" = None) -> "Time":
        """Convert using constant per-step rates (batches per epoch, samples and tokens per step)."""
        unit = TimeUnit(unit)
        steps = rates.to_steps(self.resolve(max_duration, rates) if self.unit is TimeUnit.DURATION else self)
        return Time(rates.from_steps(steps, unit), unit)

    def resolve(self, max_duration: "Time | None", rates: "Rates | None" = None) -> "Time":
        """Turn a ``dur`` fraction into an absolute time in ``max_duration``'s unit."""
        if self.unit is not TimeUnit.DURATION:
            return self
        if max_duration is None:
            raise ConfigError(f"{self} is a fraction of the run, but the run has no max_duration")
        return Time(self.value * max_duration.value, max_duration.unit)


def Duration(text: "str | Time") -> Time:
    """Parse a run length: like ``Time.parse`` but a run cannot last a fraction of itself."""
    time = Time.parse(text)
    if time.unit is TimeUnit.DURATION:
        raise ConfigError(f"a run's duration cannot be in 'dur' ({text!r})", "use one of ep, ba, sp, tok")
    if time.value <= 0:
        raise ConfigError(f"a run's duration must be positive, got {text!r}")
    return time


def Interval(text: "str | Time") -> Time:
    """Parse how often something recurs (checkpoints, evaluations): a zero interval would mean never."""
    time = Time.parse(text)
    if time.value <= 0:
        raise ConfigError(
            f"an interval must be positive, got {str(text)!r}",
            "give e.g. '500ba', '1ep' or '0.1dur' (or turn the feature off instead)",
        )
    return time


def check_run_length(steps: float, duration: Time) -> None:
    """Refuse a budget that cannot finish: more optimizer steps than any run could take."""
    if not steps <= MAX_STEPS:
        raise ConfigError(
            f"duration {duration} is {steps:.3g} optimizer steps, more than the {MAX_STEPS:.0e} any run could finish",
            "give a shorter --duration (or a smaller scale_schedule ratio)",
        )


@dataclass(frozen=True)
class Rates:
    """Per-step rates used to convert between units (constant-shape batches assumed)."""

    batches_per_epoch: float
    samples_per_step: float
    tokens_per_step: float = 0.0

    def to_steps(self, time: Time) -> float:
        per = {
            TimeUnit.BATCH: 1.0,
            TimeUnit.EPOCH: 1.0 / self.batches_per_epoch,
            TimeUnit.SAMPLE: self.samples_per_step,
            TimeUnit.TOKEN: self.tokens_per_step,
        }[time.unit]
        if per <= 0:
            raise ConfigError(f"cannot convert {time} to steps: this data has no {time.unit.value} count")
        return time.value / per

    def from_steps(self, steps: float, unit: TimeUnit) -> float:
        return {
            TimeUnit.BATCH: steps,
            TimeUnit.EPOCH: steps / self.batches_per_epoch,
            TimeUnit.SAMPLE: steps * self.samples_per_step,
            TimeUnit.TOKEN: steps * self.tokens_per_step,
        }[unit]


@dataclass
class Timestamp:
    """The loop's counters. ``batch`` counts optimizer steps; ``batch_in_epoch`` restarts each epoch."""

    epoch: int = 0
    batch: int = 0
    batch_in_epoch: int = 0
    sample: int = 0
    token: int = 0
    extra: dict = field(default_factory=dict)

    def get(self, unit: TimeUnit, batches_per_epoch: int | None = None) -> float:
        if unit is TimeUnit.EPOCH:
            fraction = self.batch_in_epoch / batches_per_epoch if batches_per_epoch else 0.0
            return self.epoch + fraction
        if unit is TimeUnit.BATCH:
            return float(self.batch)
        if unit is TimeUnit.SAMPLE:
            return float(self.sample)
        if unit is TimeUnit.TOKEN:
            return float(self.token)
        raise ConfigError("a Timestamp has no 'dur' counter; resolve the time against max_duration first")

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "batch_in_epoch": self.batch_in_epoch,
            "sample": self.sample,
            "token": self.token,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("epoch", "batch", "batch_in_epoch", "sample", "token"):
            setattr(self, key, int(state[key]))
