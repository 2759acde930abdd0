"""A workload binds data, model, loss, metric, a target and a tuned baseline recipe."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from hasten.core.metrics import Metric
from hasten.errors import ConfigError
from hasten.registry import Registry


@dataclass
class Components:
    """What ``Workload.build`` returns: everything the Trainer needs for the baseline recipe."""

    model: nn.Module
    train_data: Any
    eval_data: Any
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor]
    metrics: dict[str, Metric]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    scheduler: Any
    grad_clip_norm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Workload:
    """Subclass and set the class attributes; ``build`` makes fresh components for one run.

    ``target`` is what the baseline reaches reliably (mean over seeds minus the spread);
    ``target_note`` says how and where it was measured.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    modality: ClassVar[str] = "any"  # "image", "text", "tabular": which methods apply
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    target: ClassVar[float]
    default_duration: ClassVar[str]
    eval_interval: ClassVar[str] = "1ep"
    baseline: ClassVar[str]
    target_note: ClassVar[str] = ""
    # Settings the baseline fixes that a recipe may change (model shape, optimizer, batch, ...),
    # name -> baseline value. ``with_params`` returns a copy that ``build`` reads them from.
    parameters: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.params: dict[str, Any] = dict(self.parameters)

    def with_params(self, params: dict[str, Any] | None = None) -> Workload:
        """A copy of this workload with some baseline settings changed; unknown names and values
        of the wrong type are a ConfigError naming the accepted settings."""
        params = params or {}
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            accepted = ", ".join(sorted(self.parameters)) or "none"
            raise ConfigError(f"workload {self.name!r} has no setting {', '.join(unknown)}", f"accepted: {accepted}")
        checked = {key: _check_type(self.name, key, value, self.parameters[key]) for key, value in params.items()}
        clone = copy.copy(self)
        clone.params = {**self.params, **checked}
        return clone

    def changed_params(self) -> dict[str, Any]:
        """The settings that differ from the baseline's."""
        return {k: v for k, v in self.params.items() if self.parameters.get(k) != v}

    def build(self, *, seed: int, device: torch.device, data_dir: str | None = None) -> Components:
        raise NotImplementedError

    def reached(self, value: float) -> bool:
        return value >= self.target if self.higher_is_better else value <= self.target


def _check_type(workload: str, key: str, value: Any, default: Any) -> Any:
    """Accept ``value`` if it has the default's type (ints where floats are expected too)."""
    expected = type(default)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif default is None:
        ok = True
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(
            f"workload {workload!r}: {key}={value!r} is not {expected.__name__}",
            f"give {key} as {expected.__name__}, like the baseline's {default!r}",
        )
    return value


def _unknown_hint(close: list[str], names: list[str]) -> str:
    return (f"did you mean {', '.join(close)}? " if close else "") + f"known workloads: {', '.join(names)}"


WORKLOADS: Registry[Workload] = Registry("workload", "hasten.workloads", _unknown_hint)


def register_workload(workload: type[Workload]) -> type[Workload]:
    """Class decorator: add a workload under ``workload.name`` (list its module in ``hasten.workloads.MODULES``)."""
    WORKLOADS.add(workload.name, workload(), same=lambda old, new: type(old) is type(new))
    return workload


def list_workloads() -> list[Workload]:
    return WORKLOADS.entries()


def get_workload(name: str | Workload) -> Workload:
    if isinstance(name, Workload):
        return name
    return WORKLOADS.get(name)
