"""Optimizers and schedules that are speedup methods in their own right."""

from hasten.optim.schedules import Constant, MultiplicativeCyclic, Schedule, WarmupCosine, WarmupLinear

__all__ = ["Constant", "MultiplicativeCyclic", "Schedule", "WarmupCosine", "WarmupLinear"]
