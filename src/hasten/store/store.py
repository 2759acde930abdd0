"""The run store: one SQLite database (WAL mode) of runs and their evaluation time series.

Every call opens its own short-lived connection, so several processes (a sweep with
``--jobs``, two terminals) can write at once; SQLite serialises writers and the busy
timeout makes them wait rather than fail.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from hasten.errors import StoreError
from hasten.store.records import STATUSES, EvalPoint, RunRecord

DEFAULT_STORE = Path("hasten-runs") / "hasten.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workload TEXT NOT NULL,
    recipe TEXT NOT NULL,
    methods TEXT NOT NULL,
    seed INTEGER NOT NULL,
    duration TEXT NOT NULL,
    schedule TEXT NOT NULL,
    metric TEXT NOT NULL,
    higher_is_better INTEGER NOT NULL,
    status TEXT NOT NULL,
    steps INTEGER NOT NULL DEFAULT 0,
    samples INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    train_time_s REAL NOT NULL DEFAULT 0,
    eval_time_s REAL NOT NULL DEFAULT 0,
    data_wait_s REAL NOT NULL DEFAULT 0,
    checkpoint_time_s REAL NOT NULL DEFAULT 0,
    warmup_time_s REAL NOT NULL DEFAULT 0,
    final TEXT NOT NULL DEFAULT '{}',
    env TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_workload ON runs (workload, recipe, duration, seed);
CREATE TABLE IF NOT EXISTS evals (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    epoch REAL NOT NULL DEFAULT 0,
    train_time_s REAL NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
"""

_JSON_FIELDS = ("methods", "final", "env", "config")
_RUN_COLUMNS = (
    "run_id", "workload", "recipe", "methods", "seed", "duration", "schedule", "metric",
    "higher_is_better", "status", "steps", "samples", "tokens", "train_time_s", "eval_time_s",
    "data_wait_s", "checkpoint_time_s", "warmup_time_s", "final", "env", "config", "error",
    "created_at", "updated_at",
)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_store_path() -> Path:
    return Path(os.environ.get("HASTEN_STORE") or DEFAULT_STORE)


class RunStore:
    """Runs and eval points in SQLite. ``path`` defaults to ``$HASTEN_STORE`` or ``./hasten-runs/hasten.db``."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreError(
                f"cannot open run store {self.path}: {exc}",
                "pass --store PATH (or set HASTEN_STORE) to a writable SQLite file",
            ) from exc

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # writing ------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        record.created_at = record.created_at or _now()
        record.updated_at = _now()
        with self._write() as conn:
            self._insert(conn, record)

    def _insert(self, conn: sqlite3.Connection, record: RunRecord) -> None:
        row = self._to_row(record)
        placeholders = ", ".join("?" for _ in _RUN_COLUMNS)
        conn.execute(f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({placeholders})", row)
        for point in record.evals:
            self._insert_eval(conn, record.run_id, point)

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        fields["updated_at"] = _now()
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._write() as conn:
            cursor = conn.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*values, run_id])
            if cursor.rowcount == 0:
                raise StoreError(f"no run {run_id!r} in {self.path}")

    def add_eval(self, run_id: str, point: EvalPoint) -> None:
        with self._write() as conn:
            self._insert_eval(conn, run_id, point)

    @staticmethod
    def _insert_eval(conn: sqlite3.Connection, run_id: str, point: EvalPoint) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO evals (run_id, step, samples, tokens, epoch, train_time_s, metrics)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, point.step, point.samples, point.tokens, point.epoch, point.train_time_s,
             json.dumps(point.metrics)),
        )

    def truncate_evals(self, run_id: str, after_step: int) -> None:
        """Drop eval points past a checkpoint: a resumed run measures them again."""
        with self._write() as conn:
            conn.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", (run_id, after_step))

    # reading ------------------------------------------------------------------
    def get_run(self, run_id: str, with_evals: bool = True) -> RunRecord:
        """One run by id; ``"latest"`` means the most recently created."""
        with self._connect() as conn:
            if run_id == "latest":
                row = conn.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
            else:
                row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                what = "no runs yet" if run_id == "latest" else f"no run {run_id!r}"
                raise StoreError(f"{what} in {self.path}", "list runs with 'hasten runs'")
            record = self._from_row(row)
            if with_evals:
                record.evals = self._evals(conn, record.run_id)
        return record

    def list_runs(
        self,
        workload: str | None = None,
        *,
        recipe: str | None = None,
        status: str | None = None,
        schedule: str | None = None,
        with_evals: bool = False,
    ) -> list[RunRecord]:
        clauses, args = [], []
        for column, value in (("workload", workload), ("recipe", recipe), ("status", status),
                              ("schedule", schedule)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM runs {where} ORDER BY created_at, rowid", args).fetchall()
            records = [self._from_row(r) for r in rows]
            if with_evals:
                for record in records:
                    record.evals = self._evals(conn, record.run_id)
        return records

    def find_completed(
        self, workload: str, recipe: str, duration: str, seed: int, schedule: str = "scaled"
    ) -> RunRecord | None:
        """A finished run of exactly this point, so sweeps can skip it."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE workload = ? AND recipe = ? AND duration = ? AND seed = ?"
                " AND schedule = ? AND status = 'completed' ORDER BY created_at DESC LIMIT 1",
                (workload, recipe, duration, seed, schedule),
            ).fetchone()
            if row is None:
                return None
            record = self._from_row(row)
            record.evals = self._evals(conn, record.run_id)
        return record

    @staticmethod
    def _evals(conn: sqlite3.Connection, run_id: str) -> list[EvalPoint]:
        rows = conn.execute("SELECT * FROM evals WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()
        return [
            EvalPoint(step=r["step"], samples=r["samples"], tokens=r["tokens"], epoch=r["epoch"],
                      train_time_s=r["train_time_s"], metrics=json.loads(r["metrics"]))
            for r in rows
        ]

    @staticmethod
    def _to_row(record: RunRecord) -> list[Any]:
        data = record.to_dict()
        data["higher_is_better"] = int(bool(record.higher_is_better))
        return [json.dumps(data[c]) if c in _JSON_FIELDS else data[c] for c in _RUN_COLUMNS]

    @staticmethod
    def _from_row(row: sqlite3.Row) -> RunRecord:
        data = {c: row[c] for c in _RUN_COLUMNS}
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key])
        data["higher_is_better"] = bool(data["higher_is_better"])
        return RunRecord(**data)

    # moving runs in and out -----------------------------------------------------
    def export_jsonl(self, out: IO[str], workload: str | None = None) -> int:
        """Write one JSON object per run (its eval points inside). Returns the count."""
        runs = self.list_runs(workload, with_evals=True)
        for record in runs:
            out.write(record.to_json() + "\n")
        return len(runs)

    def import_jsonl(self, lines: Iterable[str], source: str = "input") -> tuple[int, int]:
        """Read runs written by ``export_jsonl``. Returns (imported, skipped as already present).

        The whole file is checked before anything is written, so a bad line imports nothing.
        """
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(RunRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreError(
                    f"{source} line {number} is not a hasten run: {exc}",
                    "import files written by 'hasten runs export'",
                ) from exc
        imported = skipped = 0
        with self._write() as conn:
            for record in records:
                exists = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (record.run_id,)).fetchone()
                if exists:
                    skipped += 1
                    continue
                record.created_at = record.created_at or _now()
                record.updated_at = record.updated_at or _now()
                self._insert(conn, record)
                imported += 1
        return imported, skipped
