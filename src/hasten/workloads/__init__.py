"""Workloads: real data sets bound to a model, a metric, a target and a tuned baseline.

Each module in ``MODULES`` defines and registers (``@register_workload``) one workload.
To add one: write its module, decorate the class, add its name here.
"""

from hasten.workloads.base import Components, Workload, get_workload, list_workloads, register_workload
from hasten.workloads.runner import build_trainer

MODULES: tuple[str, ...] = ("cifar10", "mnist", "shakespeare", "toy")

__all__ = ["MODULES", "Components", "Workload", "build_trainer", "get_workload", "list_workloads", "register_workload"]
