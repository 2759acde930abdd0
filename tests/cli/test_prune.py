"""``hasten prune``: bad input is one line and exit 2; a tiny benchmark records runs and writes its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.store.store import RunStore


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--compressions", "0.5,2"], "below 1"),
        (["--strategies", "biggest"], "unknown pruning strategy"),
        (["--lr-scale", "0"], "not positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["prune", "mnist", "--store", str(tmp_path / "r.db"), *args])
    assert result.exit_code == 2, result.output
    assert problem in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists() or not RunStore(tmp_path / "r.db").list_runs()


@pytest.mark.slow
def test_a_tiny_benchmark_records_and_reports(tmp_path: Path, data_dir: Path) -> None:
    store = tmp_path / "r.db"
    args = [
        "prune",
        "mnist",
        "--store",
        str(store),
        "--data-dir",
        str(data_dir),
        "--device",
        "cpu",
        "--pretrain",
        "30ba",
        "--finetune",
        "10ba",
        "--seeds",
        "1",
        "--compressions",
        "4",
        "--strategies",
        "global_magnitude,random",
        "--out",
        str(tmp_path / "report"),
        "--json",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert [r["strategy"] for r in results] == ["none", "global_magnitude", "random"]
    control, magnitude, _ = results
    assert control["compression"] == 1.0 and control["theoretical_speedup"] == 1.0
    assert magnitude["compression"] == pytest.approx(4, rel=1e-4)
    assert magnitude["theoretical_speedup"] > 1.0
    pruned = magnitude["size"] - magnitude["nonzero"]
    assert magnitude["masked_weights_after"] >= pruned  # the masks held through fine-tuning
    assert 0.0 < magnitude["after"]["accuracy"] <= 1.0 and "accuracy" in magnitude["before"]
    runs = RunStore(store).list_runs("mnist")
    assert {r.recipe for r in runs} == {"baseline", "prune:unpruned", "prune:global_magnitude@4x", "prune:random@4x"}
    report = (tmp_path / "report" / "pruning.md").read_text()
    assert "unpruned control" in report and "random" in report
    assert (tmp_path / "report" / "accuracy-vs-compression.png").stat().st_size > 0
