"""The run store: records round-trip, several processes write at once, runs move in and out as JSONL."""

import io
import json
import multiprocessing as mp
import sqlite3

import pytest

from hasten.errors import ConfigError, StoreError
from hasten.store.records import EvalPoint, RunRecord
from hasten.store.store import RunStore


def record(run_id: str, **fields) -> RunRecord:
    values = dict(
        workload="toy",
        recipe="baseline",
        seed=0,
        duration="4ep",
        metric="accuracy",
        env={"cpu": "test"},
        config={"precision": "fp32"},
    )
    values.update(fields)
    return RunRecord(run_id=run_id, **values)


def test_round_trip_with_evals(tmp_path):
    store = RunStore(tmp_path / "s.db")
    store.create_run(record("a", methods=[{"name": "mixup", "params": {"alpha": 0.2}}], recipe="mixup:alpha=0.2"))
    store.add_eval("a", EvalPoint(step=10, samples=320, tokens=0, train_time_s=1.5, metrics={"accuracy": 0.5}))
    store.add_eval("a", EvalPoint(step=20, samples=640, tokens=0, train_time_s=3.0, metrics={"accuracy": 0.7}))
    store.update_run("a", status="completed", steps=20, final={"accuracy": 0.7}, train_time_s=3.0)
    got = store.get_run("a")
    assert got.status == "completed" and got.quality == 0.7
    assert [e.step for e in got.evals] == [10, 20]
    assert got.methods == [{"name": "mixup", "params": {"alpha": 0.2}}]
    assert store.get_run("latest").run_id == "a"
    assert store.find_completed("toy", "mixup:alpha=0.2", "4ep", 0).run_id == "a"
    assert store.find_completed("toy", "mixup:alpha=0.2", "4ep", 1) is None


def test_resume_truncates_evals_past_the_checkpoint(tmp_path):
    store = RunStore(tmp_path / "s.db")
    store.create_run(record("a"))
    for step in (5, 10, 15):
        store.add_eval("a", EvalPoint(step=step, samples=0, tokens=0, train_time_s=step, metrics={}))
    store.truncate_evals("a", 10)
    assert [e.step for e in store.get_run("a").evals] == [5, 10]


def test_unknown_run_and_bad_fields(tmp_path):
    store = RunStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.get_run("nope")
    with pytest.raises(StoreError, match="no runs yet"):
        store.get_run("latest")
    store.create_run(record("a"))
    with pytest.raises(ValueError, match="status"):
        store.update_run("a", status="exploded")


def test_unwritable_store_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open run store"):
        RunStore(tmp_path / "file" / "s.db")


def test_wal_mode(tmp_path):
    RunStore(tmp_path / "s.db").create_run(record("a"))
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _writer(path: str, worker: int, runs: int, evals: int) -> None:
    store = RunStore(path)
    for r in range(runs):
        run_id = f"w{worker}-r{r}"
        store.create_run(record(run_id, seed=worker))
        for step in range(evals):
            store.add_eval(
                run_id,
                EvalPoint(step=step, samples=step, tokens=0, train_time_s=step, metrics={"accuracy": step / evals}),
            )
        store.update_run(run_id, status="completed", steps=evals)


def test_four_processes_writing_at_once_lose_no_rows(tmp_path):
    path = str(tmp_path / "s.db")
    RunStore(path)
    context = mp.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 15, 12)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=180)
        assert p.exitcode == 0
    runs = RunStore(path).list_runs(with_evals=True)
    assert len(runs) == 4 * 15
    assert all(r.status == "completed" and len(r.evals) == 12 for r in runs)


def test_export_then_import_round_trips(tmp_path):
    source = RunStore(tmp_path / "a.db")
    source.create_run(record("a", final={"accuracy": 0.9}, status="completed"))
    source.add_eval("a", EvalPoint(step=3, samples=9, tokens=0, train_time_s=0.5, metrics={"accuracy": 0.9}))
    source.create_run(record("b", workload="other"))
    buffer = io.StringIO()
    assert source.export_jsonl(buffer) == 2
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["evals"][0]["step"] == 3

    target = RunStore(tmp_path / "b.db")
    assert target.import_jsonl(lines) == (2, 0)
    assert target.import_jsonl(lines) == (0, 2)
    assert target.get_run("a").to_dict() == source.get_run("a").to_dict()


def test_a_bad_line_imports_nothing(tmp_path):
    target = RunStore(tmp_path / "b.db")
    good = record("a").to_json()
    with pytest.raises(ConfigError, match="line 2 is not a hasten run"):
        target.import_jsonl([good, '{"run_id": "x"}'], source="runs.jsonl")
    assert target.list_runs() == [] and not target.path.exists()
