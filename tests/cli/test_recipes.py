"""`hasten recipes`, `hasten train --recipe` and recipes in sweeps, from a user's point of view."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.curves.sweep import SweepPoint, check_recipes, run_point
from hasten.store.store import RunStore

TOY = "name: toy-fast\nversion: 1\nworkload: toy\nduration: 6ba\nprecision: fp32\nmethods: [label_smoothing]\n"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_recipes_lists_workload_and_measurement_as_text_and_json() -> None:
    listing = run("recipes")
    assert listing.exit_code == 0 and "shakespeare-speedrun\t" in listing.stdout
    data = json.loads(run("recipes", "--json").stdout)
    entry = next(r for r in data if r["name"] == "shakespeare-speedrun")
    assert entry["workload"] == "shakespeare" and entry["label"] == "@shakespeare-speedrun"
    assert {"measured", "settings", "methods", "components", "version"} <= set(entry)
    shown = run("recipes", "shakespeare-speedrun")
    assert "workload: shakespeare" in shown.stdout and "components:" in shown.stdout


def test_train_with_a_recipe_file_records_its_label(tmp_path: Path, store_path: Path) -> None:
    path = tmp_path / "toy-fast.yaml"
    path.write_text(TOY)
    result = run("train", "toy", "--recipe", str(path), "--json", "--no-checkpoints")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 6 and [m["name"] for m in summary["methods"]] == ["label_smoothing"]
    record = RunStore(store_path).get_run(summary["run_id"])
    assert record.recipe == f"@{path}" and record.config["precision"] == "fp32"


def test_bad_recipe_input_is_one_line_and_exit_2(tmp_path: Path, store_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TOY + "optimizer: sgd\n")
    other = tmp_path / "other.yaml"
    other.write_text(TOY.replace("workload: toy", "workload: mnist"))
    unknown_method = tmp_path / "m.yaml"
    unknown_method.write_text(TOY.replace("label_smoothing", "warp"))
    cases = [
        (("train", "toy", "--recipe", "nope"), "unknown recipe 'nope'"),
        (("train", "toy", "--recipe", str(bad)), "unknown key optimizer"),
        (("train", "toy", "--recipe", str(other)), "is for workload 'mnist', not 'toy'"),
        (("train", "toy", "--recipe", str(unknown_method)), "unknown method 'warp'"),
        (("train", "toy", "--recipe", str(bad), "--method", "mixup"), "cannot be combined"),
        (("curve", "toy", "-r", "@shakespeare-speedrun"), "is for workload 'shakespeare', not 'toy'"),
        (("recipes", "nope"), "unknown recipe"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not store_path.exists()


def test_sweep_runs_a_recipe_at_the_sweeps_budget(tmp_path: Path) -> None:
    path = tmp_path / "toy-fast.yaml"
    path.write_text(TOY)
    assert check_recipes(["baseline", str(path)], workload="toy") == ["baseline", f"@{path}"]
    store = RunStore(tmp_path / "runs.db")
    outcome = run_point(SweepPoint("toy", f"@{path}", "4ba", 0), store, device="cpu")
    record = store.get_run(outcome.run_id)
    assert outcome.status == "completed" and record.recipe == f"@{path}" and record.duration == "4ba"
    assert [m["name"] for m in record.methods] == ["label_smoothing"]
