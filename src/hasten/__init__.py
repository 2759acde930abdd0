"""hasten: make neural-network training faster, and prove it.

The public API is importable from here (``from hasten import Trainer, build_method``); each
name is imported on first use, so ``import hasten`` stays as fast as importing nothing.
"""

# No `from __future__` or `typing` import at run time: either would make `import hasten` slower.
TYPE_CHECKING = False

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Trainer": "hasten.trainer.trainer",
    "FitResult": "hasten.trainer.result",
    "State": "hasten.core.state",
    "Event": "hasten.core.event",
    "Algorithm": "hasten.core.algorithm",
    "Callback": "hasten.core.callback",
    "RunPlan": "hasten.core.plan",
    "Workload": "hasten.workloads.base",
    "get_workload": "hasten.workloads.base",
    "build_trainer": "hasten.workloads.runner",
    "build_method": "hasten.methods.registry",
    "build_methods": "hasten.methods.registry",
    "Profiler": "hasten.profile.profiler",
    "RunStore": "hasten.store.store",
    "Muon": "hasten.optim.muon",
    "build_muon": "hasten.optim.muon",
    "FlashAdam": "hasten.optim.flash",
    "FlashAdamW": "hasten.optim.flash",
    "FlashLion": "hasten.optim.flash",
    "FlashSGD": "hasten.optim.flash",
    "FlashSGDW": "hasten.optim.flash",
}

__all__ = [
    "__version__",
    "Trainer",
    "FitResult",
    "State",
    "Event",
    "Algorithm",
    "Callback",
    "RunPlan",
    "Workload",
    "get_workload",
    "build_trainer",
    "build_method",
    "build_methods",
    "Profiler",
    "RunStore",
    "Muon",
    "build_muon",
    "FlashAdam",
    "FlashAdamW",
    "FlashLion",
    "FlashSGD",
    "FlashSGDW",
]

if TYPE_CHECKING:
    from typing import Any

    from hasten.core.algorithm import Algorithm
    from hasten.core.callback import Callback
    from hasten.core.event import Event
    from hasten.core.plan import RunPlan
    from hasten.core.state import State
    from hasten.methods.registry import build_method, build_methods
    from hasten.optim.flash import FlashAdam, FlashAdamW, FlashLion, FlashSGD, FlashSGDW
    from hasten.optim.muon import Muon, build_muon
    from hasten.profile.profiler import Profiler
    from hasten.store.store import RunStore
    from hasten.trainer.result import FitResult
    from hasten.trainer.trainer import Trainer
    from hasten.workloads.base import Workload, get_workload
    from hasten.workloads.runner import build_trainer


def __getattr__(name: str) -> "Any":
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hasten' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
