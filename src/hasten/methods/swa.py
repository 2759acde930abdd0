"""SWA: average the weights at regular points of the run's last part, then recompute BatchNorm.

Izmailov et al. (2018): from ``start`` on, take an equal-weight average of the weights at every
``update_interval`` boundary (epoch ends by default), optionally holding the lr at a constant
``swa_lr_factor`` x its peak (the paper's constant SWA schedule). At the last step the model is
replaced by the average and BatchNorm statistics are recomputed with one pass over the training
data, because averaged weights do not match any running statistics seen in training. The
functional form is torch's own: ``torch.optim.swa_utils.AveragedModel`` and ``update_bn``.

Evaluations before the last step see the running weights (the average has no BatchNorm
statistics of its own until then); the final evaluation and the final model are the average.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, update_bn

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.core.time import Time
from hasten.errors import ConfigError
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register
from hasten.trainer.sources import move_to

__all__ = ["SWA", "AveragedModel", "snapshot_steps", "update_bn"]


def snapshot_steps(start_step: int, interval_steps: int, total_steps: int) -> list[int]:
    """Optimizer steps after which SWA takes a snapshot: multiples of the interval from ``start_step``."""
    first = math.ceil(max(start_step, 1) / interval_steps) * interval_steps
    return list(range(first, total_steps + 1, interval_steps))


class SWA(Algorithm):
    """Stochastic weight averaging from ``start`` (a time, ``"0.75dur"`` by default)."""

    name = "swa"
    touches = frozenset({"model", "schedule"})
    data_parallel = False
    data_parallel_note = "its closing BatchNorm pass would average each process's own statistics"
    conflicts = {"ema": "both replace the evaluated and final weights with an average; use one weight average"}

    def __init__(
        self, start: str = "0.75dur", update_interval: str = "1ep", swa_lr_factor: float | None = None
    ) -> None:
        start_time, interval = Time.parse(start), Time.parse(update_interval)
        if interval.unit.value == "dur" or interval.value <= 0:
            raise ValueError(f"update_interval must be a positive ep/ba/sp/tok time, got {update_interval!r}")
        if swa_lr_factor is not None and swa_lr_factor <= 0:
            raise ValueError(f"swa_lr_factor must be > 0, got {swa_lr_factor}")
        self.start, self.update_interval, self.swa_lr_factor = start, update_interval, swa_lr_factor
        self._start_time, self._interval = start_time, interval
        self.average: AveragedModel | None = None
        self._pending: dict[str, Any] | None = None
        self._start_step = 0
        self._snapshots: set[int] = set()

    def match(self, event: Event, state: State) -> bool:
        if event is Event.FIT_START:
            return True
        if event is Event.BEFORE_OPTIMIZER_STEP:
            return self.swa_lr_factor is not None and state.timestamp.batch >= self._start_step
        return event is Event.BATCH_END

    def apply(self, event: Event, state: State) -> None:
        if event is Event.FIT_START:
            self._plan(state)
        elif event is Event.BEFORE_OPTIMIZER_STEP:  # after the Trainer's schedule: hold the SWA lr
            for group in state.param_groups():
                group["lr"] = group["initial_lr"] * self.swa_lr_factor
        else:
            self._after_step(state)

    def _plan(self, state: State) -> None:
        assert state.plan is not None, "the Trainer plans the run before FIT_START"
        rates, total = state.plan.rates, state.plan.total_steps
        start = state.resolve(self._start_time)
        self._start_step = max(1, math.ceil(rates.to_steps(start) - 1e-9))
        interval = max(1, round(rates.to_steps(self._interval)))
        self._snapshots = set(snapshot_steps(self._start_step, interval, total))
        if not self._snapshots:
            raise ConfigError(
                f"swa would average nothing: start={self.start} and update_interval={self.update_interval} "
                f"leave no snapshot in a {total}-step run",
                "start earlier or use a shorter update_interval, e.g. swa:start=0.5dur,update_interval=1ba",
            )
        self.average = AveragedModel(state.model)
        if self._pending is not None:  # resuming: the checkpoint was read before FIT_START
            self.average.load_state_dict(self._pending)
            self._pending = None

    @torch.no_grad()
    def _after_step(self, state: State) -> None:
        step = state.timestamp.batch
        if step in self._snapshots:
            self.average.update_parameters(state.model)  # type: ignore[union-attr]
        done = state.stop_requested or state.elapsed(state.max_duration.unit) >= state.max_duration.value
        if done and self.average is not None and int(self.average.n_averaged) > 0:
            self.finalize(state)

    def finalize(self, state: State) -> None:
        """Put the average into the model and recompute BatchNorm statistics on the training data."""
        with torch.no_grad():
            assert self.average is not None, "built at FIT_START"
            for target, averaged in zip(state.model.parameters(), self.average.module.parameters(), strict=True):
                target.copy_(averaged)
        batches = (move_to(batch, state.device) for batch in state.train_data.batches(0))
        with state.autocast():
            update_bn(batches, state.model)
        self.average = None  # finished; a second call would find nothing to do

    def state_dict(self) -> dict[str, Any]:
        return self.average.state_dict() if self.average is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._pending = state


register(
    MethodCard(
        name="swa",
        summary="Stochastic weight averaging: equal-weight average of the weights at each interval from start, "
        "BatchNorm recomputed at the end",
        component="optimization",
        action="augment",
        mechanism="step-count",
        bottleneck=("compute",),
        paper=Paper(
            "Izmailov, Podoprikhin, Garipov, Vetrov, Wilson",
            2018,
            "Averaging Weights Leads to Wider Optima and Better Generalization",
            "1803.05407",
        ),
        when="0.75-1.0dur",
        functional=("AveragedModel", "update_bn", "snapshot_steps"),
        effect="Better final quality for the same steps (the paper: CIFAR and ImageNet gains with a constant or "
        "cyclic lr during averaging), i.e. fewer steps for a target; adds one BatchNorm pass at the end",
        not_worth_it="Schedules that already anneal to zero with few snapshots left to average (Composer's SWA "
        "card reports no gain); huge data sets where the final BatchNorm pass costs a whole epoch; "
        "models without BatchNorm gain less from the recompute",
        export="the model holds the averaged weights after fit; checkpoints before the end hold the raw weights "
        "plus the running average under the swa method's state",
    ),
    SWA,
)
