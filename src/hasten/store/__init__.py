"""Run store: SQLite records of runs, their eval time series and their environment."""

from hasten.store.environment import capture_environment
from hasten.store.records import STATUSES, EvalPoint, RunRecord
from hasten.store.store import RunStore, default_store_path

__all__ = ["STATUSES", "EvalPoint", "RunRecord", "RunStore", "capture_environment", "default_store_path"]
