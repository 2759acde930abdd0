"""A workload binds data, model, loss, metric, a target and a tuned baseline recipe."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from hasten.core.metrics import Metric
from hasten.discovery import import_submodules
from hasten.errors import ConfigError


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
        raise ConfigError(f"workload {workload!r}: {key}={value!r} is not {expected.__name__}",
                          f"give {key} as {expected.__name__}, like the baseline's {default!r}")
    return value


_REGISTRY: dict[str, Workload] = {}
_loaded = False
_INFRASTRUCTURE = {"base", "runner"}


def register_workload(workload: type[Workload]) -> type[Workload]:
    """Class decorator: add a workload to the registry under ``workload.name``."""
    _REGISTRY[workload.name] = workload()
    return workload


def _load_all() -> None:
    global _loaded
    if not _loaded:
        import_submodules("hasten.workloads", _INFRASTRUCTURE)
        _loaded = True


def list_workloads() -> list[Workload]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda w: w.name)


def get_workload(name: str | Workload) -> Workload:
    if isinstance(name, Workload):
        return name
    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        names = ", ".join(sorted(_REGISTRY))
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown workload {name!r}", f"{hint}known workloads: {names}")
    return _REGISTRY[name]
