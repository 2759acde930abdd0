"""`hasten runs`: options after the subcommand, whole run ids, imports that keep their metric."""

import io
import json

from click.testing import CliRunner
from rich.console import Console

from hasten.cli.common import rich_table
from hasten.cli.main import cli
from hasten.store.records import RunRecord
from hasten.store.store import RunStore


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def exported(tmp_path, **fields) -> str:
    data = RunRecord(
        run_id="abcdef1234",
        workload="toy",
        duration="2ep",
        metric="accuracy",
        status="completed",
        final={"accuracy": 0.93},
    ).to_dict()
    data.update(fields)
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}) + "\n")
    return str(path)


def test_store_option_works_after_the_subcommand(tmp_path):
    store = tmp_path / "s.db"
    source = exported(tmp_path)
    result = invoke("runs", "import", source, "--store", str(store))
    assert result.exit_code == 0, result.output
    assert [r.run_id for r in RunStore(store).list_runs()] == ["abcdef1234"]
    assert json.loads(invoke("runs", "show", "latest", "--store", str(store)).stdout)["run_id"] == "abcdef1234"
    out = tmp_path / "out.jsonl"
    assert invoke("runs", "export", "-o", str(out), "--store", str(store)).exit_code == 0
    assert json.loads(out.read_text())["run_id"] == "abcdef1234"


def test_run_ids_are_whole_in_an_80_column_table():
    rows = [
        (
            "0123456789",
            "toy",
            "mixup:alpha=0.2+label_smoothing",
            0,
            "10ep",
            "scaled",
            "completed",
            320,
            "2.1s",
            "0.9395",
            "2026-12-04T17:00:00+00:00",
        )
    ]
    columns = (
        "run",
        "workload",
        "recipe",
        "seed",
        "duration",
        "schedule",
        "status",
        "steps",
        "train",
        "final",
        "created",
    )
    out = io.StringIO()
    Console(file=out, width=80).print(rich_table(columns, rows, whole=("run",)))
    assert "0123456789" in out.getvalue()


def test_import_without_metric_takes_the_known_workloads(tmp_path):
    store = tmp_path / "s.db"
    assert invoke("runs", "import", exported(tmp_path, metric=None), "--store", str(store)).exit_code == 0
    run = RunStore(store).get_run("abcdef1234")
    assert run.metric == "accuracy" and run.higher_is_better and run.quality == 0.93


def test_import_without_metric_of_an_unknown_workload_is_refused(tmp_path):
    store = tmp_path / "s.db"
    result = invoke("runs", "import", exported(tmp_path, metric=None, workload="mine"), "--store", str(store))
    assert result.exit_code == 2 and "its metric cannot be inferred" in result.stderr
    assert not store.exists()


def test_listing_survives_a_string_metric_stored_before_imports_were_checked(tmp_path):
    store = RunStore(tmp_path / "s.db")
    store.create_run(
        RunRecord(run_id="old", workload="toy", duration="2ep", metric="accuracy", final={"accuracy": "high"})
    )  # type: ignore[dict-item]
    result = invoke("runs", "--store", str(store.path))
    assert result.exit_code == 0 and "'high'" in result.stdout
