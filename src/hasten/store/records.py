"""Run records: the plain data every analysis reads, whether the run was made here or imported."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("running", "completed", "diverged", "failed", "interrupted")


@dataclass
class EvalPoint:
    """One evaluation: where in training it happened and what it measured."""

    step: int
    samples: int
    tokens: int
    train_time_s: float
    metrics: dict[str, float]
    epoch: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalPoint":
        return cls(
            step=int(data["step"]),
            samples=int(data.get("samples", 0)),
            tokens=int(data.get("tokens", 0)),
            train_time_s=float(data["train_time_s"]),
            metrics={k: float(v) for k, v in data["metrics"].items()},
            epoch=float(data.get("epoch", 0.0)),
        )


@dataclass
class RunRecord:
    """One training run. ``recipe`` is the method list as written ("baseline" when empty).

    ``schedule`` says how the learning rate was laid out: ``scaled`` (decayed to this
    run's budget) or ``cyclic`` (multiplicative cycles; points are read at cycle ends).
    ``metric``/``higher_is_better`` name the workload's quality measure so imported
    runs can be analysed without the workload at hand.
    """

    run_id: str
    workload: str
    recipe: str = "baseline"
    methods: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    duration: str = ""
    schedule: str = "scaled"
    metric: str = ""
    higher_is_better: bool = True
    status: str = "running"
    steps: int = 0
    samples: int = 0
    tokens: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    data_wait_s: float = 0.0
    checkpoint_time_s: float = 0.0
    warmup_time_s: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    evals: list[EvalPoint] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def quality(self) -> float | None:
        """Final value of the workload's metric, or None if the run has none."""
        return self.final.get(self.metric) if self.metric else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evals"] = [e.to_dict() for e in self.evals]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        known = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "run_id" not in data or "workload" not in data:
            raise ValueError("a run needs at least 'run_id' and 'workload'")
        values = dict(data)
        values["evals"] = [EvalPoint.from_dict(e) for e in data.get("evals", [])]
        if values.get("status", "running") not in STATUSES:
            raise ValueError(f"status {values['status']!r} is not one of {', '.join(STATUSES)}")
        return cls(**values)
