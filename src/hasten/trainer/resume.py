"""What a checkpoint holds and how a run continues from one, bit for bit.

Functions of the run's parts (state, algorithms, eval series), not of the Trainer, so this
module and the Trainer do not import each other.
"""

from __future__ import annotations

from typing import Any, Sequence

from hasten.core.algorithm import Algorithm
from hasten.core.state import State
from hasten.errors import CheckpointError
from hasten.optim.scheduling import load_scheduler_state, scheduler_state
from hasten.store.records import EvalPoint
from hasten.trainer import checkpoint as ckpt
from hasten.trainer.recording import plain


def capture(run_id: str, state: State, algorithms: Sequence[Algorithm], evals: Sequence[EvalPoint]) -> dict[str, Any]:
    """Model, optimizer, scheduler, algorithm states, every RNG, data position, time counters."""
    return {
        "run_id": run_id,
        "run_info": plain(state.run_info),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),  # type: ignore[union-attr]  # built before any checkpoint
        "scheduler": scheduler_state(state.scheduler),
        "algorithms": [{"name": a.name, "state": a.state_dict()} for a in algorithms],
        "rng": ckpt.capture_rng(),
        "timestamp": state.timestamp.state_dict(),
        "timer": state.timer.state_dict(),
        "evals": [e.to_dict() for e in evals],
        "warmup_steps_remaining": state.warmup_steps_remaining,
    }


REQUIRED = ("model", "optimizer", "scheduler", "algorithms", "rng", "timestamp", "timer", "evals")


def restore(
    state: State, algorithms: Sequence[Algorithm], payload: dict[str, Any], run_id: str
) -> tuple[list[EvalPoint], str]:
    """Load a checkpoint into a freshly built run (surgery already redone at INIT).
    Returns the eval series so far and the run id the checkpoint belongs to.

    A payload that loads but does not hold what a Trainer writes (missing keys, an RNG state
    of the wrong shape, counters of the wrong type) is one CheckpointError, not a traceback."""
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint lacks {', '.join(missing)}: damaged or not written by a Trainer", "start a new run"
        )
    try:
        return _restore(state, algorithms, payload, run_id)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint holds a malformed state ({type(exc).__name__}: {reason})",
            "resume from an intact checkpoint of the same run, or start a new run",
        ) from exc


def _restore(
    state: State, algorithms: Sequence[Algorithm], payload: dict[str, Any], run_id: str
) -> tuple[list[EvalPoint], str]:
    blocked = [a.name for a in algorithms if not a.resumable]
    if blocked:
        raise CheckpointError(
            f"cannot resume: {', '.join(blocked)} cannot continue exactly from a checkpoint (see its card)",
            "start a new run, or drop that method",
        )
    saved = [a["name"] for a in payload["algorithms"]]
    current = [a.name for a in algorithms]
    if saved != current:
        raise CheckpointError(
            f"checkpoint was written with methods {saved or 'none'}, this run has {current or 'none'}",
            "resume with the same --method list",
        )
    assert state.plan is not None, "the run plan is made before a checkpoint is loaded"
    ckpt.validate_timestamp(payload.get("timestamp"), state.plan.total_steps, state.batches_per_epoch)
    try:
        state.model.load_state_dict(payload["model"])
        state.optimizer.load_state_dict(payload["optimizer"])  # type: ignore[union-attr]  # built in fit()
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint does not fit this model or optimizer: {str(exc).splitlines()[0][:200]}",
            "resume with the same workload, model and methods",
        ) from exc
    load_scheduler_state(state.scheduler, payload["scheduler"])
    for algorithm, saved_state in zip(algorithms, payload["algorithms"]):
        algorithm.load_state_dict(saved_state["state"])
    state.timestamp.load_state_dict(payload["timestamp"])
    state.timer.load_state_dict(payload["timer"])
    state.warmup_steps_remaining = int(payload.get("warmup_steps_remaining", 0))
    evals = [EvalPoint.from_dict(e) for e in payload["evals"]]
    ckpt.restore_rng(payload["rng"])
    return evals, payload.get("run_id", run_id)
