"""State: everything the loop knows, handed to every algorithm and callback."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from hasten.core.metrics import Metric
from hasten.core.plan import RunPlan
from hasten.core.time import Time, Timestamp, TimeUnit


def default_eval_forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return model(inputs)


@dataclass
class State:
    """Mutable training state. Algorithms may change it; callbacks only read it.

    ``batch`` is ``(inputs, targets)``: during forward/loss/backward events it is the
    current micro-batch. ``plan`` (total steps, time-unit rates, eval and checkpoint steps) is
    set once when ``fit`` starts. ``extra`` is scratch space for reports, keyed by method name:
    no other module may depend on what is there.
    """

    model: nn.Module
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor]
    max_duration: Time
    train_data: Any
    device: torch.device
    eval_data: Iterable | None = None
    optimizer: torch.optim.Optimizer | None = None
    optimizer_factory: Callable[[nn.Module], torch.optim.Optimizer] | None = None
    scheduler: Any = None
    precision: str = "fp32"
    grad_accum: int = 1
    grad_clip_norm: float | None = None
    seed: int = 0
    metrics: dict[str, Metric] = field(default_factory=dict)
    batch: Any = None
    outputs: Any = None
    loss: torch.Tensor | None = None
    train_loss: float = float("nan")
    timestamp: Timestamp = field(default_factory=Timestamp)
    plan: RunPlan | None = None
    batches_per_epoch: int = 0
    eval_forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] = default_eval_forward
    eval_batch: Any = None
    eval_outputs: Any = None
    eval_results: dict[str, float] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    timer: Any = None
    warmup_steps_remaining: int = 0
    stop_requested: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    # batch access -----------------------------------------------------------
    @property
    def inputs(self) -> Any:
        return self.batch[0]

    @inputs.setter
    def inputs(self, value: Any) -> None:
        self.batch = (value, self.batch[1])

    @property
    def targets(self) -> Any:
        return self.batch[1]

    @targets.setter
    def targets(self, value: Any) -> None:
        self.batch = (self.batch[0], value)

    # time ---------------------------------------------------------------------
    def elapsed(self, unit: TimeUnit) -> float:
        return self.timestamp.get(unit, self.batches_per_epoch)

    @property
    def progress(self) -> float:
        """Fraction of ``max_duration`` done, in [0, 1]: what schedules and 'dur' windows read."""
        done = self.elapsed(self.max_duration.unit) / self.max_duration.value
        return min(max(done, 0.0), 1.0)

    def resolve(self, time: "Time | str") -> Time:
        """Express a time in ``max_duration``'s unit when it is a fraction of the run."""
        return Time.parse(time).resolve(self.max_duration)

    def reached(self, time: "Time | str") -> bool:
        time = self.resolve(time)
        return self.elapsed(time.unit) >= time.value

    # numerics -----------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when ``precision == "bf16"``; a no-op for fp32."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def param_groups(self) -> Iterator[dict]:
        if self.optimizer is not None:
            yield from self.optimizer.param_groups

    def stop_training(self) -> None:
        self.stop_requested = True
