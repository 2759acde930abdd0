"""Workloads: real data sets bound to a model, a metric, a target and a tuned baseline."""

from hasten.workloads.base import Components, Workload, get_workload, list_workloads, register_workload
from hasten.workloads.runner import build_trainer

__all__ = ["Components", "Workload", "build_trainer", "get_workload", "list_workloads", "register_workload"]
