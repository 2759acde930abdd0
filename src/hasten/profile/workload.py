"""Profile one of hasten's own recipes: a workload's baseline plus methods, as ``hasten train`` runs it."""

from __future__ import annotations

import os
from typing import Sequence

import torch

from hasten.methods.registry import parse_spec
from hasten.profile.callback import ProfilerCallback
from hasten.profile.profiler import Profiler
from hasten.profile.report import Report
from hasten.trainer.trainer import resolve_device
from hasten.workloads.base import get_workload
from hasten.workloads.runner import build_trainer

NEVER = f"{10**12}ba"  # an eval interval no profile reaches


def profile_workload(
    workload: str,
    methods: Sequence[str] = (),
    *,
    steps: int = 10,
    skip: int = 3,
    record: int = 5,
    min_time: float = 1.0,
    duration: str | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    count_ops: bool = True,
) -> Report:
    """Run the recipe just long enough to profile it and return the report.

    The schedule is the one a full run of ``duration`` (default: the workload's) would use;
    the run stops as soon as the profiler has its steps. Evaluation is switched off: its time
    is never training time, and a profile does not need the metric.
    """
    spec = get_workload(workload)
    device = resolve_device(device)
    profiler = Profiler(
        device,
        skip=skip,
        steps=steps,
        record=record,
        min_time=min_time,
        count_ops=count_ops,
        modality=spec.modality,
        exclude=[parse_spec(m)[0] for m in methods],
    )
    trainer = build_trainer(
        spec,
        methods,
        duration=duration,
        seed=seed,
        device=device,
        precision=precision,
        data_dir=data_dir,
        callbacks=[ProfilerCallback(profiler, stop_when_done=True)],
        eval_interval=[NEVER],
    )
    trainer.state.eval_data = None
    result = trainer.fit()
    if result.status != "completed" and result.error:
        from hasten.errors import ConfigError

        raise ConfigError(f"the profiled run stopped early: {result.error}", "check the recipe with 'hasten train'")
    return profiler.report()
