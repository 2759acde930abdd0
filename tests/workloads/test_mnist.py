"""``mnist`` from the CLI: it trains on the real files and its loss falls."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hasten.cli.main import cli
from hasten.workloads import get_workload


def test_trains_a_few_steps_from_the_cli_and_loss_falls(cli_train) -> None:  # type: ignore[no-untyped-def]
    summary, losses = cli_train("mnist", "10ba")
    assert summary["status"] == "completed" and summary["steps"] == 10 and summary["samples"] == 1280
    assert len(losses) == 10 and sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    assert summary["final"]["accuracy"] > 0.5  # 10 steps already beat chance (0.1) by far
    assert summary["data_wait_s"] < 0.5 * summary["train_time_s"]


def test_workload_contract() -> None:
    workload = get_workload("mnist")
    assert workload.metric == "accuracy" and workload.higher_is_better and workload.modality == "image"
    assert workload.reached(workload.target) and not workload.reached(workload.target - 0.01)
    assert workload.target_note and workload.baseline


def test_missing_data_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HASTEN_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HASTEN_DATA", raising=False)
    (tmp_path / "empty").mkdir()  # the folder exists (a missing one is refused earlier, exit 2) but holds no data
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "mnist",
            "--data-dir",
            str(tmp_path / "empty"),
            "--no-checkpoints",
            "--store",
            str(tmp_path / "runs.db"),
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MNIST data not found")
    assert "mnist/train-images-idx3-ubyte.gz" in lines[0] and str(tmp_path / "empty") in lines[0]
