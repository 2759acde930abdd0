"""precision: bf16 autocast for training and evaluation, fp32 weights and optimizer state.

An implementation-level switch (Lightning's ``precision="bf16-mixed"``): under
``torch.autocast(dtype=torch.bfloat16)`` matmuls and convolutions run in bfloat16 while
reductions that need range stay fp32. bf16 keeps fp32's exponent range, so unlike fp16 it
needs no loss scaling. The method sets ``state.precision`` at INIT; the Trainer then wraps
every forward, loss, closure and eval in ``state.autocast()``.
"""

from __future__ import annotations

import contextlib

import torch

from hasten.core.algorithm import Algorithm
from hasten.core.event import Event
from hasten.core.state import State
from hasten.methods.card import MethodCard, Paper
from hasten.methods.registry import register

__all__ = ["Precision", "bf16_autocast"]


def bf16_autocast(device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The same autocast the Trainer uses, for a plain loop: ``with bf16_autocast(x.device): ...``."""
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


class Precision(Algorithm):
    """Train and evaluate under bf16 autocast."""

    name = "precision"
    touches = frozenset({"model"})
    data_parallel = True
    priority = -90  # before any INIT surgery that may check the precision

    def match(self, event: Event, state: State) -> bool:
        return event is Event.INIT

    def apply(self, event: Event, state: State) -> None:
        state.precision = "bf16"
        state.run_info.setdefault("config", {})["precision"] = "bf16"


register(
    MethodCard(
        name="precision",
        summary="bf16 autocast: matmuls and convolutions in bfloat16, weights and optimizer state in fp32",
        component="optimization",
        action="restrict",
        mechanism="step-cost",
        bottleneck=("compute", "memory"),
        paper=Paper("Kalamkar et al.", 2019, "A Study of BFLOAT16 for Deep Learning Training", "1905.12322"),
        implementation_level=True,
        functional=("bf16_autocast",),
        effect="Cheaper steps where the hardware has bf16 matrix units (tensor cores, AMX): matmul and conv "
        "throughput up and activation memory roughly halved; step count usually unchanged",
        not_worth_it="Hardware without bf16 units (autocast then adds casts and can be slower, common on CPUs); "
        "small models bound by data loading or kernel launches; losses that need fp32 precision "
        "in the forward (keep those ops out of autocast)",
        export="unchanged: weights stay fp32; run inference in fp32 or under the same autocast",
    ),
    Precision,
)
