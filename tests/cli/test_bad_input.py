"""The bad-input battery: every input the audit (issue 11) found crashing, hanging or silently
accepted, run through the real CLI. Each must give one ``error:`` line, a non-zero exit (2 for
input that is simply wrong) and write nothing: no store file, no run row."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.records import EvalPoint, RunRecord
from hasten.store.store import RunStore


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_refused(result, needle: str, exit_code: int = 2) -> None:
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], result.stderr  # (progress lines may come first)
    assert needle in errors[0], errors[0]
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ train: refused before any write
TRAIN_CASES = [
    (["--seed", str(2**64)], "seed 18446744073709551616 is out of range"),
    (["--seed", str(2**63)], "out of range"),
    (["--seed", "-1"], "out of range"),
    (["--duration", "1e99ba"], "more than the"),
    (["--duration", "1e99ep"], "more than the"),
    (["--duration", "1e30sp"], "more than the"),
    (["--duration", "1.5ba"], "a fraction of a batch"),
    (["--duration", "1000.5sp"], "a fraction of a sample"),
    (["--checkpoint-interval", "0ba"], "an interval must be positive"),
    (["--checkpoint-interval", "0dur"], "an interval must be positive"),
    (["--resume", ""], "--resume was given an empty run id"),
    (["--resume", "  "], "--resume was given an empty run id"),
    (["--data-dir", "/no/such/folder"], "data folder '/no/such/folder' does not exist"),
    (["-m", "scale_schedule:ratio=1e12"], "more than the"),
    (["-m", "mixup:alpha=nan"], "alpha='nan' is not a finite number"),
    (["-m", "mixup:alpha=inf"], "alpha='inf' is not a finite number"),
    (["-m", "cutmix:alpha=-inf"], "alpha='-inf' is not a finite number"),
    (["-m", "sam:rho=nan"], "rho='nan' is not a finite number"),
    (["-m", "muon:lr=inf"], "lr='inf' is not a finite number"),
    (["-m", "label_smoothing:smoothing=nan"], "is not a finite number"),
    (["-m", "mixup:alpha=0.2,alpha=0.3"], "parameter 'alpha' is given twice"),
    (["-m", "progressive_resizing"], "progressive resizing needs image batches"),
    (["-m", "seq_length_warmup"], "sequence length warmup needs (N, T) inputs"),
]


@pytest.mark.parametrize("extra, needle", TRAIN_CASES, ids=[" ".join(c[0]) or "empty" for c in TRAIN_CASES])
def test_train_refuses_and_writes_nothing(store_path, extra, needle):
    assert_refused(invoke("train", "toy", "--duration", "2ep", *extra), needle)
    assert not store_path.exists() and not store_path.parent.exists()


def test_wrong_input_in_an_existing_store_adds_no_row(store_path):
    """A method that cannot apply is found at its first batch: no 'failed' row is left behind."""
    RunStore(store_path).create_run(RunRecord(run_id="kept", workload="toy", duration="2ep", metric="accuracy"))
    assert_refused(invoke("train", "toy", "--duration", "2ep", "-m", "progressive_resizing"), "image batches")
    assert [r.run_id for r in RunStore(store_path).list_runs()] == ["kept"]


# ------------------------------------------------------------------ runs import: schema checked first
def good_run(run_id: str = "r1", **changes) -> dict:
    run = RunRecord(
        run_id=run_id,
        workload="toy",
        duration="2ep",
        metric="accuracy",
        status="completed",
        steps=64,
        final={"accuracy": 0.9},
        evals=[EvalPoint(step=64, samples=8192, tokens=0, train_time_s=1.0, metrics={"accuracy": 0.9})],
    )
    data = run.to_dict()
    data.update(changes)
    return data


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD_LINES = [
    ("huge seed", json.dumps(good_run(seed=2**70)), "run.seed holds an integer beyond 64 bits"),
    ("huge steps", json.dumps(good_run(steps=10**30)), "run.steps holds an integer beyond 64 bits"),
    ("negative steps", json.dumps(good_run(steps=-5)), "steps must be between 0"),
    ("huge int in config", json.dumps(good_run(config={"x": 2**80})), "beyond 64 bits"),
    ("huge int literal", json.dumps(good_run()).replace('"steps": 64', '"steps": ' + "9" * 5000), "not a hasten run"),
    ("NaN time", json.dumps(good_run(train_time_s=float("nan"))), "train_time_s must be a finite number"),
    (
        "inf eval time",
        json.dumps(good_run(evals=[{"step": 1, "train_time_s": float("inf"), "metrics": {}}])),
        "evals[0].train_time_s must be a finite number",
    ),
    ("null steps", json.dumps(good_run(steps=None)), "steps must be a whole number, got null"),
    ("null workload", json.dumps(good_run(workload=None)), "workload must be text, got null"),
    ("null final", json.dumps(good_run(final=None)), "final must be an object"),
    ("null evals", json.dumps(good_run(evals=None)), "evals must be a list"),
    ("string metric value", json.dumps(good_run(final={"accuracy": "0.9"})), "final.accuracy must be a number"),
    (
        "string eval metric",
        json.dumps(good_run(evals=[{"step": 1, "train_time_s": 1.0, "metrics": {"a": "x"}}])),
        "evals[0].metrics.a must be a number",
    ),
    ("bool seed", json.dumps(good_run(seed=True)), "seed must be a whole number"),
    ("float steps", json.dumps(good_run(steps=1.5)), "steps must be a whole number"),
    ("string bool", json.dumps(good_run(higher_is_better="yes")), "higher_is_better must be true or false"),
    ("methods as text", json.dumps(good_run(methods="mixup")), "methods must be a list"),
    ("bad duration", json.dumps(good_run(duration="forever")), "duration:"),
    ("bad status", json.dumps(good_run(status="exploded")), "status 'exploded'"),
    ("path in run id", json.dumps(good_run(run_id="../../etc")), "is not a run id"),
    ("lone surrogate", json.dumps(good_run(recipe="\ud800")), "not valid UTF-8"),
    (
        "deep nesting",
        json.dumps(good_run()).replace('"config": {}', '"config": {"x": ' + deep(100000) + "}"),
        "nested too deeply",
    ),
    ("nesting past the limit", json.dumps(good_run(config={"x": json.loads(deep(40))})), "nested more than"),
    ("not an object", "[1, 2]", "a run is a JSON object"),
    ("not JSON", "{run_id: 1", "not a hasten run"),
    ("unknown field", json.dumps({**good_run(), "colour": "red"}), "unknown run fields"),
    (
        "no metric, unknown workload",
        json.dumps({k: v for k, v in good_run(workload="mine").items() if k != "metric"}),
        "its metric cannot be inferred",
    ),
]


@pytest.mark.parametrize("line, needle", [c[1:] for c in BAD_LINES], ids=[c[0] for c in BAD_LINES])
def test_import_refuses_a_bad_line_and_imports_nothing(tmp_path, store_path, line, needle):
    source = tmp_path / "runs.jsonl"
    source.write_text(json.dumps(good_run("good")) + "\n" + line + "\n")
    assert_refused(invoke("runs", "import", str(source)), "line 2 is not a hasten run")
    assert needle in invoke("runs", "import", str(source)).stderr
    assert not store_path.exists()


def test_import_refuses_invalid_utf8(tmp_path, store_path):
    source = tmp_path / "runs.jsonl"
    source.write_bytes(json.dumps(good_run()).encode() + b"\n" + b'{"run_id": "\xff\xfe"}\n')
    assert_refused(invoke("runs", "import", str(source)), "line 2 is not a hasten run: not valid UTF-8")
    assert not store_path.exists()


def test_string_metric_cannot_break_listing_or_compare(tmp_path, store_path):
    """The audit's case: one imported string metric broke 'runs' and 'compare' for the whole store."""
    source = tmp_path / "runs.jsonl"
    source.write_text(json.dumps(good_run("ok")) + "\n")
    assert invoke("runs", "import", str(source)).exit_code == 0
    source.write_text(json.dumps(good_run("bad", final={"accuracy": "high"})) + "\n")
    assert invoke("runs", "import", str(source)).exit_code == 2
    assert invoke("runs").exit_code == 0
    assert invoke("compare", "toy").exit_code in (0, 1)  # whatever it concludes, it does not crash
    assert "Traceback" not in invoke("compare", "toy").output


# ------------------------------------------------------------------ stores that are not ours
def foreign_store(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    return path


@pytest.mark.parametrize(
    "command", [["runs"], ["runs", "show", "latest"], ["train", "toy", "--duration", "1ep"], ["runs", "import", "RUNS"]]
)
def test_foreign_schema_store_is_one_line(tmp_path, command):
    store = foreign_store(tmp_path / "other.db")
    source = tmp_path / "runs.jsonl"
    source.write_text(json.dumps(good_run()) + "\n")
    args = [str(source) if a == "RUNS" else a for a in command]
    before = store.read_bytes()
    assert_refused(invoke(*args, "--store", str(store)), "not a hasten run store", exit_code=1)
    assert store.read_bytes() == before


def test_garbage_file_as_store_is_one_line(tmp_path):
    store = tmp_path / "junk.db"
    store.write_bytes(b"this is not a database at all" * 100)
    assert_refused(invoke("runs", "--store", str(store)), "cannot open run store", exit_code=1)
    assert_refused(invoke("train", "toy", "--store", str(store)), "cannot open run store", exit_code=1)


def test_read_only_store_is_one_line(tmp_path, monkeypatch):
    """Simulated (tests may run as root, whom chmod does not stop); the real case is below."""
    store = tmp_path / "ro" / "hasten.db"
    RunStore(store).create_run(RunRecord(run_id="a", workload="toy", duration="2ep", metric="accuracy"))
    monkeypatch.setattr("hasten.store.store._writable", lambda path: Path(path) not in (store, store.parent))
    assert_refused(invoke("train", "toy", "--store", str(store)), "is read-only", exit_code=1)


def test_store_inside_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_refused(invoke("runs", "--store", str(tmp_path / "file" / "s.db")), "is a file, not a folder", 1)


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root writes through chmod; the simulated test covers it")
def test_read_only_store_file_is_one_line(tmp_path):
    store = tmp_path / "ro" / "hasten.db"
    RunStore(store).create_run(RunRecord(run_id="a", workload="toy", duration="2ep", metric="accuracy"))
    store.chmod(0o444)
    store.parent.chmod(0o555)
    try:
        assert_refused(invoke("train", "toy", "--store", str(store)), "read-only", exit_code=1)
    finally:
        store.parent.chmod(0o755)
