"""How a Trainer run becomes a record in the run store: opened at the start, finished at the end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hasten.core.algorithm import Algorithm
from hasten.core.state import State
from hasten.errors import StoreError
from hasten.store.environment import capture_environment
from hasten.store.liveness import process_identity
from hasten.store.records import RunRecord

if TYPE_CHECKING:
    from hasten.store.store import RunStore
    from hasten.trainer.result import FitResult


def plain(value: Any) -> Any:
    """JSON- and weights_only-safe copy: dicts, lists, numbers, strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def describe_run(
    info: dict[str, Any] | None, state: State, algorithms: Sequence[Algorithm], checkpoint_dir: Path | None
) -> dict[str, Any]:
    """Fill in what a run record needs that the caller did not say (a plain Trainer has no workload)."""
    info = dict(info or {})
    info.setdefault("workload", "custom")
    info.setdefault("methods", [{"name": a.name, "params": a.params} for a in algorithms])
    info.setdefault("recipe", "+".join(a.name for a in algorithms) or "baseline")
    info.setdefault("duration", str(state.max_duration))
    info.setdefault("schedule", "scaled")
    primary = next(iter(state.metrics.values()), None)
    info.setdefault("metric", primary.name if primary else "")
    info.setdefault("higher_is_better", primary.higher_is_better if primary else True)
    config = info.setdefault("config", {})
    config.setdefault("precision", state.precision)
    config.setdefault("device", str(state.device))
    config.setdefault("grad_accum", state.grad_accum)
    if checkpoint_dir is not None:
        config.setdefault("checkpoint_dir", str(Path(checkpoint_dir).resolve()))  # resumable from any directory
    return info


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none): recorded at a run's start and
    end so a sweep can tell a busy machine from a slow recipe."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def open_run(store: "RunStore", run_id: str, state: State) -> None:
    """Create the run's record, or, when resuming, drop eval points past the checkpoint.

    The record names the process and host training it, so a reader can tell a run that
    was killed (SIGKILL leaves no chance to say so) from one still running."""
    try:
        existing = store.get_run(run_id, with_evals=False)
    except StoreError:
        info = state.run_info
        store.create_run(
            RunRecord(
                run_id=run_id,
                workload=info["workload"],
                recipe=info["recipe"],
                methods=plain(info["methods"]),
                seed=state.seed,
                duration=info["duration"],
                schedule=info["schedule"],
                metric=info["metric"],
                higher_is_better=bool(info["higher_is_better"]),
                env={**capture_environment(state.device), **process_identity(), "load_start": load_average()},
                config=plain(info["config"]),
            )
        )
        return
    store.truncate_evals(run_id, state.timestamp.batch)
    store.update_run(run_id, status="running", error=None, env={**existing.env, **process_identity()})


def record_progress(store: "RunStore", run_id: str, state: State, totals: dict[str, float] | None = None) -> None:
    """Counters and times so far, written with each checkpoint: a run that dies later still shows
    how far it got (and the write is its heartbeat). ``totals``: the times to record, if not this
    process's own (a data-parallel run records its slowest rank's)."""
    totals = totals if totals is not None else state.timer.state_dict()
    store.update_run(
        run_id,
        steps=state.timestamp.batch,
        samples=state.timestamp.sample,
        tokens=state.timestamp.token,
        train_time_s=totals["train"],
        eval_time_s=totals["eval"],
        data_wait_s=totals["data_wait"],
        checkpoint_time_s=totals["checkpoint"],
        warmup_time_s=totals["warmup"],
    )


def finish_run(store: "RunStore", result: "FitResult") -> None:
    totals = result.timing
    env = dict(store.get_run(result.run_id, with_evals=False).env or {})
    env.update(load_end=load_average(), train_cpu_s=round(totals.get("train_cpu", 0.0), 4))
    if "communication" in totals:  # data-parallel: seconds in gradient all-reduces (slowest rank)
        env["communication_s"] = round(totals["communication"], 4)
    store.update_run(
        result.run_id,
        status=result.status,
        steps=result.steps,
        samples=result.samples,
        tokens=result.tokens,
        train_time_s=totals["train"],
        eval_time_s=totals["eval"],
        data_wait_s=totals["data_wait"],
        checkpoint_time_s=totals["checkpoint"],
        warmup_time_s=totals["warmup"],
        final=result.final,
        error=result.error,
        config=plain(result.run_info.get("config", {})),
        env=env,
    )
