"""The run store: one SQLite database (WAL mode) of runs and their evaluation time series.

Every call opens its own short-lived connection, so several processes (a sweep with
``--jobs``, two terminals) can write at once; SQLite serialises writers and the busy
timeout makes them wait rather than fail. The file is created on the first write, so a
command refused for bad input leaves nothing behind; reading a store that does not exist
yet reads no runs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from hasten.errors import ConfigError, StoreError
from hasten.store.liveness import is_dead
from hasten.store.records import STATUSES, EvalPoint, RunRecord
from hasten.store.schema import SchemaError, check_run

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

_EVAL_COLUMNS = {"run_id", "step", "samples", "tokens", "epoch", "train_time_s", "metrics"}
_JSON_FIELDS = ("methods", "final", "env", "config")
_RUN_COLUMNS = (
    "run_id",
    "workload",
    "recipe",
    "methods",
    "seed",
    "duration",
    "schedule",
    "metric",
    "higher_is_better",
    "status",
    "steps",
    "samples",
    "tokens",
    "train_time_s",
    "eval_time_s",
    "data_wait_s",
    "checkpoint_time_s",
    "warmup_time_s",
    "final",
    "env",
    "config",
    "error",
    "created_at",
    "updated_at",
)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))


def default_store_path() -> Path:
    return Path(os.environ.get("HASTEN_STORE") or DEFAULT_STORE)


class RunStore:
    """Runs and eval points in SQLite. ``path`` defaults to ``$HASTEN_STORE`` or ``./hasten-runs/hasten.db``."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self._ready = self._schema_ok = False
        for parent in (self.path, *self.path.parents):
            if parent.exists():
                if parent != self.path and not parent.is_dir():
                    raise self._error(f"{parent} is a file, not a folder")
                if parent == self.path and not parent.is_file():
                    raise self._error("it is not a file")
                break

    def _error(self, reason: object) -> StoreError:
        text = str(reason).splitlines()[0] if str(reason) else repr(reason)
        return StoreError(
            f"cannot open run store {self.path}: {text}",
            "pass --store PATH (or set HASTEN_STORE) to a writable hasten SQLite file",
        )

    def check_writable(self) -> None:
        """Refuse, before any work starts, a store that is not ours or cannot be written."""
        if self.path.exists():
            with self._connect():
                pass
            for target in (self.path, self.path.parent):  # the folder too: SQLite writes its WAL beside
                if not _writable(target):
                    raise self._error(f"{target} is read-only")
            return
        folder = next(p for p in self.path.parents if p.exists())
        if not _writable(folder):
            raise self._error(f"{folder} is read-only")

    def _create(self) -> None:
        """Make the file and its tables (first write only)."""
        if self._ready:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=60000")
                conn.execute("BEGIN IMMEDIATE")  # one creator at a time; readers see all tables or none
                try:
                    self._check_schema(conn)  # someone else's database is refused, not extended
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        self._ready = True

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """A SQLite file whose tables are not hasten's is refused, not written into. False for a
        database with no tables yet (another process is creating the store this moment)."""
        if self._schema_ok:
            return True
        if not conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False
        for table, columns in (("runs", set(_RUN_COLUMNS)), ("evals", _EVAL_COLUMNS)):
            found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not found:
                raise self._error(f"it has no '{table}' table: not a hasten run store")
            if not columns <= found:
                raise self._error(
                    f"its '{table}' table lacks {', '.join(sorted(columns - found))}:"
                    " not a hasten run store (or one from another version)"
                )
        self._schema_ok = True
        return True

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection | None]:
        """A connection to the checked store; None (reads only) while the store has no tables yet."""
        if write:
            self._create()
        try:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            try:
                conn.execute("PRAGMA busy_timeout=60000")
                conn.execute("PRAGMA foreign_keys=ON")
                ready = self._check_schema(conn)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            conn.row_factory = sqlite3.Row
            yield conn if ready else None
        except sqlite3.OperationalError as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None when the store has not been created yet."""
        if not self.path.exists():
            yield None
            return
        with self._connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect(write=True) as conn:
            assert conn is not None  # _create made the tables
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
            (
                run_id,
                point.step,
                point.samples,
                point.tokens,
                point.epoch,
                point.train_time_s,
                json.dumps(point.metrics),
            ),
        )

    def truncate_evals(self, run_id: str, after_step: int) -> None:
        """Drop eval points past a checkpoint: a resumed run measures them again."""
        with self._write() as conn:
            conn.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", (run_id, after_step))

    # reading ------------------------------------------------------------------
    def get_run(self, run_id: str, with_evals: bool = True) -> RunRecord:
        """One run by id; ``"latest"`` means the most recently created."""
        with self._read() as conn:
            row = None
            if conn is not None and run_id == "latest":
                row = conn.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
            elif conn is not None:
                row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None or conn is None:
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
        for column, value in (("workload", workload), ("recipe", recipe), ("schedule", schedule)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            if conn is None:
                return []
            rows = conn.execute(f"SELECT * FROM runs {where} ORDER BY created_at, rowid", args).fetchall()
            records = [self._from_row(r) for r in rows]
            records = [r for r in records if status is None or r.status == status]  # after the liveness check
            if with_evals:
                for record in records:
                    record.evals = self._evals(conn, record.run_id)
        return records

    def find_completed(
        self, workload: str, recipe: str, duration: str, seed: int, schedule: str = "scaled"
    ) -> RunRecord | None:
        """A finished run of exactly this point, so sweeps can skip it."""
        with self._read() as conn:
            if conn is None:
                return None
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
            EvalPoint(
                step=r["step"],
                samples=r["samples"],
                tokens=r["tokens"],
                epoch=r["epoch"],
                train_time_s=r["train_time_s"],
                metrics=json.loads(r["metrics"]),
            )
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
        record = RunRecord(**data)
        if record.status == "running" and is_dead(record.env):
            record.status = "interrupted"  # what a reader sees; the row is left as written
            record.error = record.error or (
                f"process {record.env.get('pid')} on {record.env.get('host')} ended without finishing (killed?)"
            )
        return record

    # moving runs in and out -----------------------------------------------------
    def export_jsonl(self, out: IO[str], workload: str | None = None) -> int:
        """Write one JSON object per run (its eval points inside). Returns the count."""
        runs = self.list_runs(workload, with_evals=True)
        for record in runs:
            out.write(record.to_json() + "\n")
        return len(runs)

    def import_jsonl(self, lines: Iterable[str | bytes], source: str = "input") -> tuple[int, int]:
        """Read runs written by ``export_jsonl``. Returns (imported, skipped as already present).

        Every line is checked against the run schema before anything is written, so a bad
        line imports nothing (and creates no store).
        """
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                text = line.decode("utf-8") if isinstance(line, bytes) else line
                if not text.strip():
                    continue
                records.append(check_run(json.loads(text)))
            except (SchemaError, ValueError, RecursionError) as exc:
                reason = (
                    "not valid UTF-8"
                    if isinstance(exc, UnicodeDecodeError)
                    else ("nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:300])
                )
                raise ConfigError(
                    f"{source} line {number} is not a hasten run: {reason}; nothing was imported",
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
