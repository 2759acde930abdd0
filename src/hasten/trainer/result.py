"""What ``Trainer.fit()`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hasten.store.records import EvalPoint


@dataclass
class FitResult:
    """Eval time series and timing buckets of one run.

    ``train_time_s`` holds only training (data wait, forward, backward, optimizer and
    algorithm hooks); evaluation, checkpointing and marked warm-up have their own buckets.
    """

    run_id: str
    status: str
    steps: int
    samples: int
    tokens: int
    epochs: float
    timing: dict[str, float]
    evals: list[EvalPoint]
    final: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    run_info: dict[str, Any] = field(default_factory=dict)

    @property
    def train_time_s(self) -> float:
        return self.timing["train"]

    @property
    def eval_time_s(self) -> float:
        return self.timing["eval"]

    @property
    def data_wait_s(self) -> float:
        return self.timing["data_wait"]

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def summary(self) -> dict[str, Any]:
        """The ``--json`` shape of the CLI (minus ``env``)."""
        info = self.run_info
        return {
            "run_id": self.run_id,
            "workload": info.get("workload"),
            "recipe": info.get("recipe"),
            "methods": info.get("methods", []),
            "seed": info.get("seed"),
            "duration": info.get("duration"),
            "status": self.status,
            "steps": self.steps,
            "samples": self.samples,
            "tokens": self.tokens,
            "train_time_s": self.train_time_s,
            "eval_time_s": self.eval_time_s,
            "data_wait_s": self.data_wait_s,
            "checkpoint_time_s": self.timing["checkpoint"],
            "warmup_time_s": self.timing["warmup"],
            "final": self.final,
            "evals": [
                {"step": e.step, "samples": e.samples, "train_time_s": e.train_time_s, "metrics": e.metrics}
                for e in self.evals
            ],
            "error": self.error,
        }
