"""Resume policy: which run ``--resume latest|RUN_ID`` continues, and with what settings.

The CLI only parses; the rules (same workload, not completed, same methods, a checkpoint on
disk, the run's own budget, seed, precision and schedule) live here so every tool that
continues a run applies them the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hasten.core.time import Duration
from hasten.errors import CheckpointError, ConfigError, StoreError
from hasten.methods.registry import split_recipe
from hasten.store.liveness import is_alive
from hasten.trainer.checkpoint import latest_checkpoint


@dataclass(frozen=True)
class RunPlacement:
    """Where a run's id and checkpoints come from: a new run, or the one being resumed.

    ``resume_from`` is the checkpoint directory to load (None for a new run). For a resumed
    run the recipe, budget, seed, precision, schedule and data come from its record.
    """

    run_id: str
    checkpoint_dir: str | None
    resume_from: str | None = None
    methods: tuple[str, ...] = ()
    duration: str | None = None
    seed: int = 0
    precision: str = "fp32"
    schedule: str = "scaled"
    data_dir: str | None = None
    deterministic: bool = False
    recipe: str | None = None  # the recorded recipe reference, when the run was started from one


def new_run(store: Any, *, checkpoints: bool = True) -> RunPlacement:
    """A fresh run id; its checkpoints go beside the store (``checkpoints/<run_id>``), recorded as an
    absolute path so the run can be resumed from any working directory."""
    run_id = uuid.uuid4().hex[:10]
    checkpoint_dir = str(Path(store.path).parent.resolve() / "checkpoints" / run_id) if checkpoints else None
    return RunPlacement(run_id=run_id, checkpoint_dir=checkpoint_dir)


def find_checkpoints(store: Any, record: Any) -> str | None:
    """The run's checkpoint folder: as recorded, else beside the store (records written before
    paths were stored absolute hold one relative to the directory the run was started in)."""
    recorded = record.config.get("checkpoint_dir")
    if not recorded:
        return None
    candidates = [Path(recorded), Path(store.path).parent / "checkpoints" / record.run_id]
    if not Path(recorded).is_absolute():
        candidates.insert(1, Path(store.path).parent.parent / recorded)
    for candidate in candidates:
        if latest_checkpoint(candidate) is not None:
            return str(candidate.resolve())
    return recorded


def refuse_changed_settings(placed: RunPlacement, given: dict[str, Any]) -> None:
    """A resumed run continues with its own budget, seed and precision; a different value asked
    for on the command line is refused, never silently ignored."""
    recorded = {
        "duration": placed.duration,
        "seed": placed.seed,
        "precision": placed.precision,
        "schedule": placed.schedule,
    }
    for name, value in given.items():
        if name == "duration" and value is not None:
            value = str(Duration(value))
        if name in recorded and value != recorded[name]:
            option = f"--{name}"
            raise ConfigError(
                f"run {placed.run_id} was recorded with {option} {recorded[name]}, not {value}: a resumed run"
                " continues with its own settings",
                f"leave out {option} to continue it, or start a new run without --resume to use {option} {value}",
            )


def resolve_resume(
    store: Any,
    target: str,
    workload: str,
    methods: Sequence[str] = (),
    *,
    precision: str = "fp32",
    data_dir: str | None = None,
    deterministic: bool = False,
) -> RunPlacement:
    """The run ``target`` (a run id or ``"latest"``) names, checked to be resumable as ``workload``.

    Bad input raises ConfigError (exit 2); a run without a checkpoint raises CheckpointError.
    ``methods`` given on the command line must equal the run's own; the run's recorded
    settings win over ``precision``/``data_dir`` defaults, and ``deterministic`` is kept if
    either the run or the caller asked for it.
    """
    try:
        record = store.get_run(target, with_evals=False)
    except StoreError as exc:
        raise ConfigError(exc.problem, exc.hint) from exc
    if record.workload != workload:
        raise ConfigError(
            f"run {record.run_id} is a {record.workload!r} run, not {workload!r}",
            f"use 'hasten train {record.workload} --resume {record.run_id}'",
        )
    if record.status == "completed":
        raise ConfigError(f"run {record.run_id} already completed", "start a new run instead")
    if record.status == "running" and is_alive(record.env):
        raise ConfigError(
            f"run {record.run_id} is still running (process {record.env['pid']})",
            "wait for it to end, or stop it first; two processes must not train one run",
        )
    from hasten.recipes.recipe import is_recipe_reference

    from_recipe = is_recipe_reference(record.recipe)
    if methods and not from_recipe and list(methods) != split_recipe(record.recipe):
        raise ConfigError(
            f"run {record.run_id} used methods {record.recipe!r}, not {'+'.join(methods)!r}",
            "leave out --method when resuming; the run's own methods are used",
        )
    checkpoint_dir = find_checkpoints(store, record)
    if not checkpoint_dir or latest_checkpoint(checkpoint_dir) is None:
        raise CheckpointError(
            f"run {record.run_id} has no checkpoint to resume from",
            "start a new run (checkpoints are written every --checkpoint-interval)",
        )
    return RunPlacement(
        run_id=record.run_id,
        checkpoint_dir=checkpoint_dir,
        resume_from=checkpoint_dir,
        methods=() if from_recipe else tuple(split_recipe(record.recipe)),
        recipe=record.recipe if from_recipe else None,
        duration=record.duration,
        seed=record.seed,
        precision=record.config.get("precision", precision),
        schedule=record.schedule,
        data_dir=data_dir or record.config.get("data_dir"),
        deterministic=deterministic or bool(record.config.get("deterministic")),
    )
