"""What a run record may hold: every field typed and bounded, so a record read from a file
(``hasten runs import``) is refused whole before it can reach the store and break every
later listing or comparison."""

from __future__ import annotations

import math
import re
from typing import Any

from hasten.store.records import STATUSES, EvalPoint, RunRecord

INT64_MAX = 2**63 - 1  # SQLite's INTEGER
MAX_DEPTH = 32  # env/config nesting; deeper is not something hasten writes
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # run ids name checkpoint folders: no '/'

_TEXT = ("workload", "recipe", "duration", "schedule", "metric", "status", "created_at", "updated_at")
_COUNTS = ("seed", "steps", "samples", "tokens")
_SECONDS = ("train_time_s", "eval_time_s", "data_wait_s", "checkpoint_time_s", "warmup_time_s")
_OBJECTS = ("env", "config")
_EVAL_FIELDS = {"step", "samples", "tokens", "train_time_s", "metrics", "epoch"}


class SchemaError(ValueError):
    """A record that does not fit the run schema; the message names the field."""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _walk(value: Any, where: str, depth: int = 0) -> None:
    """Everything storable: UTF-8 text, 64-bit integers, bounded nesting."""
    if depth > MAX_DEPTH:
        raise SchemaError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SchemaError(f"{where} holds text that is not valid UTF-8") from None
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise SchemaError(f"{where} holds an integer beyond 64 bits ({str(value)[:20]}...)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, f"{where} key", depth + 1)
            _walk(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", depth + 1)
    else:
        raise SchemaError(f"{where} is a {_kind(value)}, which a run record cannot hold")


def _count(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{where} must be a whole number, got {_kind(value)}")
    if not low <= value <= INT64_MAX:
        raise SchemaError(f"{where} must be between {low} and 2**63-1, got {str(value)[:24]}")
    return value


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{where} must be a number of seconds, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise SchemaError(f"{where} must be a finite number >= 0, got {value}")
    return value


def _metrics(value: Any, where: str) -> dict[str, float]:
    """Metric values are numbers; NaN/inf are kept (a diverged evaluation is a measurement)."""
    if not isinstance(value, dict):
        raise SchemaError(f"{where} must be an object of metric values, got {_kind(value)}")
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise SchemaError(f"{where}.{name} must be a number, got {_kind(number)} {str(number)[:20]!r}")
        float(number)  # ints are already within 64 bits
    return {name: float(number) for name, number in value.items()}


def _eval(value: Any, where: str) -> EvalPoint:
    if not isinstance(value, dict):
        raise SchemaError(f"{where} must be an object, got {_kind(value)}")
    unknown = set(value) - _EVAL_FIELDS
    missing = {"step", "train_time_s", "metrics"} - set(value)
    if unknown or missing:
        problem = f"unknown fields {sorted(unknown)}" if unknown else f"missing fields {sorted(missing)}"
        raise SchemaError(f"{where} has {problem}")
    epoch = value.get("epoch", 0.0)
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not math.isfinite(epoch) or epoch < 0:
        raise SchemaError(f"{where}.epoch must be a finite number >= 0, got {epoch!r}")
    return EvalPoint(
        step=_count(value["step"], f"{where}.step"),
        samples=_count(value.get("samples", 0), f"{where}.samples"),
        tokens=_count(value.get("tokens", 0), f"{where}.tokens"),
        train_time_s=_seconds(value["train_time_s"], f"{where}.train_time_s"),
        metrics=_metrics(value["metrics"], f"{where}.metrics"),
        epoch=float(epoch),
    )


def check_run(data: Any) -> RunRecord:
    """A ``RunRecord`` from plain data (one exported JSON line), or ``SchemaError`` naming the field."""
    if not isinstance(data, dict):
        raise SchemaError(f"a run is a JSON object, got {_kind(data)}")
    known = set(RunRecord.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = set(data) - known
    if unknown:
        raise SchemaError(f"unknown run fields {sorted(unknown)}")
    if "run_id" not in data or "workload" not in data:
        raise SchemaError("a run needs at least 'run_id' and 'workload'")
    _walk(data, "run")
    values = dict(data)
    if not isinstance(data["run_id"], str) or not RUN_ID.match(data["run_id"]):
        raise SchemaError(f"run_id {str(data['run_id'])[:40]!r} is not a run id (letters, digits, '._:-', no '/')")
    for name in _TEXT:
        if name in data and not isinstance(data[name], str):
            raise SchemaError(f"{name} must be text, got {_kind(data[name])}")
    for name in _COUNTS:
        if name in data:
            _count(data[name], name)
    for name in _SECONDS:
        if name in data:
            values[name] = _seconds(data[name], name)
    for name in _OBJECTS:
        if name in data and not isinstance(data[name], dict):
            raise SchemaError(f"{name} must be an object, got {_kind(data[name])}")
    if "higher_is_better" in data and not isinstance(data["higher_is_better"], bool):
        raise SchemaError(f"higher_is_better must be true or false, got {_kind(data['higher_is_better'])}")
    if "error" in data and data["error"] is not None and not isinstance(data["error"], str):
        raise SchemaError(f"error must be text or null, got {_kind(data['error'])}")
    if values.get("status", "running") not in STATUSES:
        raise SchemaError(f"status {values['status']!r} is not one of {', '.join(STATUSES)}")
    if values.get("duration"):
        from hasten.core.time import Duration

        try:
            Duration(values["duration"])
        except ValueError as exc:
            raise SchemaError(f"duration: {exc}") from None
    methods = data.get("methods", [])
    if not isinstance(methods, list) or not all(
        isinstance(m, dict) and isinstance(m.get("name"), str) and isinstance(m.get("params", {}), dict)
        for m in methods
    ):
        raise SchemaError('methods must be a list of {"name": text, "params": object}')
    values["final"] = _metrics(data.get("final", {}), "final")
    evals = data.get("evals", [])
    if not isinstance(evals, list):
        raise SchemaError(f"evals must be a list, got {_kind(evals)}")
    values["evals"] = [_eval(e, f"evals[{i}]") for i, e in enumerate(evals)]
    record = RunRecord(**values)
    _fill_metric(record, data)
    return record


def _fill_metric(record: RunRecord, data: dict[str, Any]) -> None:
    """A run without its metric would compare as 'not reached': take a known workload's, else refuse."""
    if record.metric:
        return
    from hasten.workloads.base import get_workload

    try:
        workload = get_workload(record.workload)
    except ValueError:
        workload = None
    if workload is not None:
        record.metric = workload.metric
        if "higher_is_better" not in data:
            record.higher_is_better = workload.higher_is_better
        return
    measured = set(record.final) | {name for point in record.evals for name in point.metrics}
    if measured:
        raise SchemaError(
            f"no 'metric' field, and workload {record.workload!r} is not one hasten knows, so its metric cannot "
            f'be inferred (measured: {", ".join(sorted(measured))}); add "metric" and "higher_is_better"'
        )
