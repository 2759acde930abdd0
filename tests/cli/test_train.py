"""`hasten train`, `hasten runs`, `hasten workloads` from a user's point of view."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore
from hasten.trainer.checkpoint import list_checkpoints, load_checkpoint

JSON_KEYS = {
    "run_id",
    "workload",
    "methods",
    "seed",
    "duration",
    "status",
    "steps",
    "samples",
    "train_time_s",
    "eval_time_s",
    "data_wait_s",
    "final",
    "evals",
    "env",
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_toy_json_is_recorded_and_listed(store_path):
    result = run("train", "toy", "--json", "--duration", "4ep")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert JSON_KEYS <= set(summary)
    assert summary["status"] == "completed" and summary["steps"] == 128
    assert summary["final"]["accuracy"] > 0.8
    assert [e["step"] for e in summary["evals"]] == [64, 128]
    assert summary["env"]["torch"] and summary["env"]["cpu"]
    stored = RunStore(store_path).get_run(summary["run_id"])
    assert stored.status == "completed" and stored.final == summary["final"]
    listing = run("runs")
    assert summary["run_id"] in listing.stdout and "completed" in listing.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "nope"], "unknown workload 'nope'"),
        (["train", "toy", "--duration", "10xx"], "malformed time '10xx'"),
        (["train", "toy", "--method", "no_such_method"], "unknown method 'no_such_method'"),
        (["train", "toy", "--method", "mixup:alpha"], "malformed parameter 'alpha'"),
        (["train", "toy", "--resume", "nope"], "no run 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(store_path, args, needle):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: ")
    if "--resume" not in args:
        assert not store_path.exists()


def test_export_import_between_stores(tmp_path, store_path):
    run("train", "toy", "--duration", "2ep", "--no-checkpoints")
    out = tmp_path / "runs.jsonl"
    assert run("runs", "export", "-o", str(out)).exit_code == 0
    other = tmp_path / "other.db"
    result = run("runs", "--store", str(other), "import", str(out))
    assert "imported 1 runs" in result.stdout
    assert len(RunStore(other).list_runs()) == 1
    missing = CliRunner().invoke(cli, ["runs", "import", str(tmp_path / "missing.jsonl")])
    assert missing.exit_code == 2 and "no file" in missing.stderr


def test_workloads_table_lists_toy():
    result = run("workloads")
    assert result.exit_code == 0
    assert "toy" in result.stdout and "accuracy (max)" in result.stdout


def test_killed_cli_run_resumes_and_keeps_its_id(tmp_path, store_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HASTEN_STORE": str(store_path)}
    command = [
        sys.executable,
        "-m",
        "hasten.cli.main",
        "train",
        "toy",
        "--duration",
        "60ep",
        "--deterministic",
        "--checkpoint-interval",
        "100ba",
    ]  # 1920 steps
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    checkpoints = []
    while time.time() < deadline and not checkpoints:
        time.sleep(0.05)
        for folder in (store_path.parent / "checkpoints").glob("*"):
            checkpoints = list_checkpoints(folder)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    record = RunStore(store_path).get_run("latest")
    assert record.status == "interrupted" and checkpoints  # the dead process is seen by the reader
    resumed = subprocess.run(
        [sys.executable, "-m", "hasten.cli.main", "train", "toy", "--resume", "latest", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_id"] == record.run_id and summary["status"] == "completed" and summary["steps"] == 1920
    assert RunStore(store_path).get_run(record.run_id).status == "completed"
    assert len(RunStore(store_path).list_runs()) == 1
    again = subprocess.run(
        [sys.executable, "-m", "hasten.cli.main", "train", "toy", "--resume", record.run_id],
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "already completed" in again.stderr

    straight = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=600)
    other_id = json.loads(straight.stdout)["run_id"]
    final_a = load_checkpoint(store_path.parent / "checkpoints" / record.run_id)["model"]
    final_b = load_checkpoint(store_path.parent / "checkpoints" / other_id)["model"]
    assert all((final_a[k] == final_b[k]).all() for k in final_a)
