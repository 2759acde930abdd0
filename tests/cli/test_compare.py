"""`hasten compare --json` on toy runs, and on imported runs of a workload this install does not know."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore
from tests.curves.synthetic import run

STATUSES = {"speedup", "no measurable speedup", "slower", "not reached"}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_compare_toy_sweep(store_path):
    assert (
        invoke("curve", "toy", "--recipe", "label_smoothing", "--budgets", "6ba,12ba,24ba", "--seeds", "2").exit_code
        == 0
    )
    result = invoke("compare", "toy", "--baseline", "baseline", "--target", "0.5", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["target"] == 0.5 and data["readout"] == "budgets" and data["schedule"] == "scaled"
    [row] = data["recipes"]
    assert row["recipe"] == "label_smoothing" and row["status"] in STATUSES
    assert {"speedup", "ci_low", "ci_high", "steps_factor", "time_per_step_factor", "status"} <= set(row)
    if row["speedup"] is not None and row["ci_low"] is not None:
        assert row["ci_low"] <= row["speedup"] <= row["ci_high"]
        assert abs(row["steps_factor"] * row["time_per_step_factor"] - row["speedup"]) < 1e-9
    unreachable = json.loads(invoke("compare", "toy", "--target", "1.01", "--json").stdout)
    assert unreachable["recipes"][0]["status"] == "not reached"
    table = invoke("compare", "toy", "--target", "0.5")
    assert "label_smoothing" in table.stdout and "steps-to-quality" in table.stdout


def test_compare_imported_runs(store_path):
    store = RunStore(store_path)
    for seed, jitter in enumerate((0.98, 1.0, 1.02)):
        store.create_run(run("baseline", seed, [(10 * jitter, 100, 0.5), (40 * jitter, 400, 0.9)], workload="imported"))
        store.create_run(run("fast", seed, [(5 * jitter, 100, 0.5), (20 * jitter, 400, 0.9)], workload="imported"))
    result = invoke("compare", "imported", "--target", "0.7", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["recipes"]
    assert row["status"] == "speedup" and abs(row["speedup"] - 2.0) < 1e-9
    assert abs(row["time_per_step_factor"] - 2.0) < 1e-9 and abs(row["steps_factor"] - 1.0) < 1e-9
    assert row["time_to_target_s"] == 10.0  # sqrt(5 * 20): halfway from 0.5 to 0.9, in log-time


def test_compare_bad_input(store_path):
    missing_target = invoke("compare", "imported-but-absent")
    assert missing_target.exit_code == 2 and "no runs" in missing_target.stderr
    RunStore(store_path).create_run(run("baseline", 0, [(1, 1, 0.5)], workload="imported"))
    no_target = invoke("compare", "imported")
    assert no_target.exit_code == 2 and "--target" in no_target.stderr
    no_baseline = invoke("compare", "imported", "--target", "0.5", "--baseline", "other")
    assert no_baseline.exit_code == 2 and "baseline 'other'" in no_baseline.stderr
