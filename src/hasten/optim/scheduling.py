"""The one interface between a run and its learning-rate schedule.

A run's ``scheduler`` takes one of three shapes: a hasten schedule ``(step, total_steps) ->
multiplier`` (``hasten.optim.schedules``), a torch LR scheduler (stepped after every optimizer
step), or a factory ``optimizer -> scheduler``. These functions are all the Trainer (and the
methods that step inside backward) need to drive any of them, so the Trainer never inspects
the shape itself.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    from hasten.core.state import State


def is_torch_scheduler(obj: Any) -> bool:
    """A torch LR scheduler (or anything that steps and saves state like one)."""
    return isinstance(obj, torch.optim.lr_scheduler.LRScheduler) or hasattr(obj, "step") and hasattr(obj, "state_dict")


def takes_optimizer(fn: Callable) -> bool:
    """A scheduler factory takes one argument (the optimizer); a hasten schedule takes two."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
    except (TypeError, ValueError):
        return False
    return len(params) == 1


def bind_scheduler(scheduler: Any, optimizer: torch.optim.Optimizer) -> Any:
    """Build a scheduler factory against the run's optimizer; other shapes pass through.
    Records each group's peak lr as ``initial_lr``, the value hasten schedules multiply."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    if callable(scheduler) and not is_torch_scheduler(scheduler) and takes_optimizer(scheduler):
        return scheduler(optimizer)
    return scheduler


def apply_schedule(state: "State") -> None:
    """Set every group's lr for the step about to be taken from a hasten schedule
    (a no-op for torch schedulers, for no schedule, and before the run is planned)."""
    schedule = state.scheduler
    if schedule is None or is_torch_scheduler(schedule) or state.plan is None:
        return
    factor = schedule(state.timestamp.batch, state.plan.total_steps)
    for group in state.optimizer.param_groups:  # type: ignore[union-attr]  # built before the first step
        group["lr"] = group["initial_lr"] * factor


def step_scheduler(scheduler: Any) -> None:
    """After an optimizer step: torch schedulers advance; hasten schedules need nothing."""
    if is_torch_scheduler(scheduler):
        scheduler.step()


def scheduler_state(scheduler: Any) -> dict[str, Any] | None:
    """What a checkpoint keeps: a torch scheduler's state; hasten schedules are stateless."""
    return scheduler.state_dict() if is_torch_scheduler(scheduler) else None


def load_scheduler_state(scheduler: Any, saved: dict[str, Any] | None) -> None:
    if saved is not None and is_torch_scheduler(scheduler):
        scheduler.load_state_dict(saved)
