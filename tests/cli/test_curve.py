"""`hasten curve` on the toy workload: sweep, skip finished points, cyclic validation, bad input."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore

SWEEP = ["curve", "toy", "--recipe", "label_smoothing", "--budgets", "6ba,12ba,24ba", "--seeds", "2"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sweep_then_rerun_skips_everything(store_path):
    first = invoke(*SWEEP, "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    curves = {(c["recipe"], c["budget"]): c for c in data["curves"]}
    assert set(curves) == {(r, b) for r in ("baseline", "label_smoothing") for b in ("6ba", "12ba", "24ba")}
    assert all(c["seeds"] == 2 and 0 < c["quality"] <= 1 and c["train_time_s"] > 0 for c in curves.values())
    assert curves[("baseline", "24ba")]["steps"] == 24
    assert "12 runs trained, 0 already" in first.stderr
    assert "[12/12]" in first.stderr  # progress lines off a terminal
    runs = RunStore(store_path).list_runs("toy", status="completed")
    assert len(runs) == 12
    # every run records what a busy machine would show: CPU time of training and the load around it
    assert all(r.env["train_cpu_s"] > 0 and "load_start" in r.env and "load_end" in r.env for r in runs)
    assert isinstance(data["contention"], list)
    flagged = {f["run_id"] for f in data["contention"]}
    assert flagged == {run_id for c in curves.values() for run_id in c["contended_runs"]}

    again = invoke(*SWEEP)
    assert again.exit_code == 0
    assert "0 runs trained, 12 already" in again.stderr
    assert "label_smoothing" in again.stdout and "24ba" in again.stdout  # the curve table


def test_validate_cyclic_reports_agreement(store_path):
    result = invoke(
        "curve",
        "toy",
        "--recipe",
        "label_smoothing",
        "--budgets",
        "8ba,16ba,32ba",
        "--seeds",
        "1",
        "--validate-cyclic",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    validation = data["validation"]
    assert [b["budget"] for b in validation["budgets"]] == ["8ba", "16ba", "32ba"]
    # two recipes: tau is +1 or -1, or undefined when their qualities tie
    assert all(b["recipes"] == 2 and b["kendall_tau"] in (-1.0, 1.0, None) for b in validation["budgets"])
    assert all(None not in pair for per in validation["quality"].values() for pair in per.values())
    assert validation["max_abs_difference"] >= 0
    assert 0 < validation["cost_ratio"]
    cyclic = RunStore(store_path).list_runs("toy", schedule="cyclic", with_evals=True)
    assert len(cyclic) == 2 and all([e.step for e in r.evals] == [8, 16, 32] for r in cyclic)
    # single-run curves: read at each cycle end
    assert {c["budget"] for c in data["curves"] if c["schedule"] == "cyclic"} == {"cycle 1", "cycle 2", "cycle 3"}


def test_warnings_and_bad_input(store_path):
    few = invoke("curve", "toy", "--budgets", "6ba,12ba", "--seeds", "1")
    assert few.exit_code == 0
    assert "needs at least 3" in few.stderr and "one seed" in few.stderr
    for args, message in (
        (("--recipe", "no_such_method"), "unknown method"),
        (("--budgets", "2ep,100ba"), "mix units"),
        (("--recipe", "label_smoothing+label_smoothing"), "twice"),
    ):
        bad = invoke("curve", "toy", *args)
        assert bad.exit_code == 2 and message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert invoke("curve", "no_such_workload").exit_code == 2
