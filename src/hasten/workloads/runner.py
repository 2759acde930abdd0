"""Run a recipe (workload baseline + methods) for a budget: the one path the CLI, sweeps,
the demo, the profiler and the benchmarks all use, so their runs are comparable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from hasten.core.callback import Callback
from hasten.core.plan import RunPlan
from hasten.core.time import Duration, Interval
from hasten.errors import ConfigError
from hasten.methods.registry import build_methods, recipe_name
from hasten.optim.schedules import MultiplicativeCyclic
from hasten.trainer.sources import as_source, measure_rates
from hasten.trainer.trainer import Trainer, resolve_device, seed_everything
from hasten.workloads.base import Workload, get_workload

SCHEDULES = ("scaled", "cyclic")
MAX_SEED = 2**63 - 1  # the store's INTEGER; torch takes 64 bits, numpy folds it to 32


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed {str(seed)[:30]} is out of range", "give a whole number from 0 to 2**63-1")


def build_trainer(
    workload: str | Workload,
    methods: Sequence[str] = (),
    *,
    duration: str | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    data_dir: str | os.PathLike | None = None,
    store: Any = None,
    callbacks: Sequence[Callback] = (),
    schedule: str = "scaled",
    cycles: int = 4,
    t_mult: float = 2.0,
    cycle_warmup: float | None = None,
    eval_interval: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_interval: str | None = None,
    resume_from: str | os.PathLike | None = None,
    run_id: str | None = None,
    deterministic: bool = False,
    grad_accum: int = 1,
    config: dict[str, Any] | None = None,
    workload_params: dict[str, Any] | None = None,
    recipe: str | None = None,
) -> Trainer:
    """A Trainer for ``workload``'s baseline with ``methods`` (CLI specs) added.

    ``schedule="scaled"`` decays the baseline's schedule over this run's budget;
    ``"cyclic"`` replaces it with ``cycles`` multiplicative cosine cycles and evaluates at
    each cycle's end, so one run yields one tradeoff-curve point per cycle. ``t_mult`` is
    each cycle's length over the last one's; ``cycle_warmup`` (a fraction of the run, or
    steps) overrides the baseline's warm-up so cycle ends can be placed on chosen budgets.
    ``workload_params`` change the baseline's settings (``Workload.parameters``); ``recipe``
    names the run's recipe in the store (default: the methods joined by '+').
    """
    workload = get_workload(workload).with_params(workload_params)
    check_seed(seed)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(
            f"data folder {str(data_dir)!r} does not exist",
            "give --data-dir the folder holding the data files, or leave it out",
        )
    if checkpoint_interval is not None:
        Interval(checkpoint_interval)
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}", f"use one of {', '.join(SCHEDULES)}")
    duration = str(Duration(duration or workload.default_duration))
    algorithms = build_methods(list(methods))  # before building: bad specs fail before any work
    if schedule == "cyclic" and any(a.name == "scale_schedule" for a in algorithms):
        raise ConfigError(
            "scale_schedule cannot be used in a cyclic run: the cycle ends are planned for the unscaled duration",
            "a cyclic run already covers every budget; drop scale_schedule, or use the scaled schedule",
        )
    device = resolve_device(device)
    chosen: dict[str, Any] = {}
    if precision == "auto":
        from hasten.trainer.precision_choice import choose_precision

        choice = choose_precision(device)
        precision, chosen = choice.precision, choice.to_config()
    seed_everything(seed)
    parts = workload.build(seed=seed, device=device, data_dir=str(data_dir) if data_dir else None)
    scheduler, evals = parts.scheduler, eval_interval or workload.eval_interval
    if schedule == "cyclic":
        warmup = getattr(parts.scheduler, "warmup", 0.0) if cycle_warmup is None else cycle_warmup
        scheduler = MultiplicativeCyclic(cycles=cycles, t_mult=t_mult, warmup=warmup)
        total = RunPlan.make(measure_rates(as_source(parts.train_data)), Duration(duration)).total_steps
        evals = eval_interval or [f"{end}ba" for end in scheduler.cycle_ends(total)]
    run_config = {
        "precision": precision,
        "data_dir": str(data_dir) if data_dir else None,
        "cycles": cycles if schedule == "cyclic" else None,
        "data_source": parts.extra.get("data_source"),  # which files the run trained on
        **({"settings": workload.changed_params()} if workload.changed_params() else {}),
        **({"t_mult": t_mult, "cycle_warmup": cycle_warmup} if schedule == "cyclic" else {}),
        **chosen,
        **(config or {}),
    }
    return Trainer(
        model=parts.model,
        train_data=parts.train_data,
        eval_data=parts.eval_data,
        optimizer=parts.optimizer,
        scheduler=scheduler,
        loss_fn=parts.loss_fn,
        max_duration=duration,
        eval_interval=evals,
        algorithms=algorithms,
        callbacks=callbacks,
        precision=precision,
        device=device,
        grad_accum=grad_accum,
        seed=seed,
        deterministic=deterministic,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        checkpoint_interval=checkpoint_interval,
        store=store,
        metrics=parts.metrics,
        grad_clip_norm=parts.grad_clip_norm,
        run_id=run_id,
        resume_from=resume_from,
        run_info={
            "workload": workload.name,
            "recipe": recipe or recipe_name(list(methods)),
            "methods": [{"name": a.name, "params": a.params} for a in algorithms],
            "duration": duration,
            "schedule": schedule,
            "seed": seed,
            "metric": workload.metric,
            "higher_is_better": workload.higher_is_better,
            "config": run_config,
        },
    )
