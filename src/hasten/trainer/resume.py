"""What a checkpoint holds and how a Trainer continues from one, bit for bit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hasten.errors import CheckpointError
from hasten.store.records import EvalPoint
from hasten.trainer import checkpoint as ckpt
from hasten.trainer.recording import plain

if TYPE_CHECKING:
    from hasten.trainer.trainer import Trainer


def capture(trainer: "Trainer") -> dict[str, Any]:
    """Model, optimizer, scheduler, algorithm states, every RNG, data position, time counters."""
    from hasten.trainer.trainer import is_torch_scheduler

    state = trainer.state
    return {
        "run_id": trainer.run_id,
        "run_info": plain(state.run_info),
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if is_torch_scheduler(state.scheduler) else None,
        "algorithms": [{"name": a.name, "state": a.state_dict()} for a in trainer.engine.algorithms],
        "rng": ckpt.capture_rng(),
        "timestamp": state.timestamp.state_dict(),
        "timer": state.timer.state_dict(),
        "evals": [e.to_dict() for e in trainer.evals],
        "warmup_steps_remaining": state.warmup_steps_remaining,
    }


def restore(trainer: "Trainer", payload: dict[str, Any]) -> None:
    """Load a checkpoint into a freshly built Trainer (surgery already redone at INIT)."""
    from hasten.trainer.trainer import is_torch_scheduler

    state, algorithms = trainer.state, trainer.engine.algorithms
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
    ckpt.validate_timestamp(payload.get("timestamp"), trainer.state.extra["total_steps"], state.batches_per_epoch)
    try:
        state.model.load_state_dict(payload["model"])
        state.optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint does not fit this model or optimizer: {str(exc).splitlines()[0][:200]}",
            "resume with the same workload, model and methods",
        ) from exc
    if payload["scheduler"] is not None and is_torch_scheduler(state.scheduler):
        state.scheduler.load_state_dict(payload["scheduler"])
    for algorithm, saved_state in zip(algorithms, payload["algorithms"]):
        algorithm.load_state_dict(saved_state["state"])
    state.timestamp.load_state_dict(payload["timestamp"])
    state.timer.load_state_dict(payload["timer"])
    state.warmup_steps_remaining = int(payload.get("warmup_steps_remaining", 0))
    trainer.evals = [EvalPoint.from_dict(e) for e in payload["evals"]]
    ckpt.restore_rng(payload["rng"])
    trainer.run_id = payload.get("run_id", trainer.run_id)
