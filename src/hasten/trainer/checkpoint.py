"""Checkpoints that restore a run exactly: weights, optimizer, schedule, algorithms, every
RNG, the data position and the time counters. Written atomically, read with
``weights_only=True`` so a checkpoint cannot run code."""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hasten.errors import CheckpointError

FORMAT = "hasten-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step-(\d+)\.pt$")


def capture_rng() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write atomically: a run killed mid-save leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
    os.replace(tmp, path)
    return path


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    return Path(directory) / f"step-{step:09d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def prune_checkpoints(directory: str | os.PathLike, keep: int) -> None:
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a checkpoint file, or the newest intact one in a directory; one clear error if none is usable.

    In a directory a damaged newest file (a disk error, a copy cut short) falls back to the
    one before it, with a warning: the run repeats a few steps instead of being lost.
    ``required`` names keys the payload must hold.
    """
    path = Path(path)
    if not path.is_dir():
        return _load_file(path, required)
    found = list_checkpoints(path)
    if not found:
        raise CheckpointError(f"no checkpoints in {path}", "check --checkpoint-dir, or start a new run")
    problems = []
    for candidate in reversed(found):
        try:
            payload = _load_file(candidate, required)
        except CheckpointError as exc:
            problems.append(exc)
            continue
        if problems:
            warnings.warn(
                f"{len(problems)} newer checkpoint(s) in {path} cannot be used ({problems[0].problem});"
                f" continuing from {candidate.name}",
                stacklevel=2,
            )
        return payload
    raise CheckpointError(
        f"none of the {len(found)} checkpoints in {path} can be used; the newest: {problems[0].problem}",
        "start a new run (the damaged files stay where they are for inspection)",
    )


def _load_file(path: Path, required: tuple[str, ...]) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist", "check the path, or start a new run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises many types on damaged bytes (IndexError, KeyError...)
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: truncated, corrupt or not a PyTorch file ({reason})",
            "resume from its run (an older intact checkpoint is used automatically) or start a new run",
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a hasten checkpoint",
            "resume only from checkpoints written by hasten's Trainer",
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, this hasten reads {VERSION}")
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: damaged or not written by a Trainer",
            "resume from its run (an older intact checkpoint is used automatically) or start a new run",
        )
    return payload


_COUNTERS = ("epoch", "batch", "batch_in_epoch", "sample", "token")


def validate_timestamp(saved: Any, total_steps: int, batches_per_epoch: int) -> None:
    """Refuse a checkpoint whose position cannot belong to this run (a damaged or forged file):
    counters must be non-negative integers, the step at most the run's ``total_steps``, the
    position in the epoch within an epoch, and no more epochs or in-epoch steps than steps."""
    if not isinstance(saved, dict) or any(key not in saved for key in _COUNTERS):
        raise CheckpointError(
            "checkpoint has no valid training position (timestamp)",
            "resume from a checkpoint written by hasten's Trainer",
        )
    values = {}
    for key in _COUNTERS:
        value = saved[key]
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = int(value.item())
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(
                f"checkpoint's {key} count is {value!r}, not a non-negative integer",
                "resume from an intact checkpoint written by hasten's Trainer",
            )
        values[key] = value
    step = values["batch"]
    problem = None
    if step > total_steps:
        problem = f"checkpoint is at step {step}, beyond this run's {total_steps} steps"
    elif values["batch_in_epoch"] > min(step, batches_per_epoch if batches_per_epoch > 0 else step):
        problem = (
            f"checkpoint is at step {values['batch_in_epoch']} of an epoch of {batches_per_epoch} steps "
            f"after {step} steps in all"
        )
    elif values["epoch"] > step:
        problem = f"checkpoint counts {values['epoch']} epochs in {step} steps"
    if problem is not None:
        raise CheckpointError(
            problem, "resume with the duration the checkpoint was written for, or from an intact checkpoint"
        )
