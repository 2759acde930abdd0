"""Optimizers and schedules that are speedup methods in their own right."""

from hasten.optim.flash import (
    FlashAdam,
    FlashAdamW,
    FlashLion,
    FlashSGD,
    FlashSGDW,
    cast_model,
    enable_gradient_release,
    memory_report,
)
from hasten.optim.schedules import Constant, MultiplicativeCyclic, Schedule, WarmupCosine, WarmupLinear, WarmupTrapezoid

__all__ = ["Constant", "MultiplicativeCyclic", "Schedule", "WarmupCosine", "WarmupLinear", "WarmupTrapezoid"]
__all__ += [
    "FlashAdam",
    "FlashAdamW",
    "FlashLion",
    "FlashSGD",
    "FlashSGDW",
    "cast_model",
    "enable_gradient_release",
    "memory_report",
]
