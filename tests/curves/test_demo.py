"""The demo's race, on the toy workload (the real demo runs on shakespeare in minutes)."""

from __future__ import annotations

import io

from hasten.curves.demo import DEMO_RECIPE, DEMO_WORKLOAD, run_demo
from hasten.curves.sweep import check_recipes
from hasten.store.store import RunStore
from hasten.workloads.base import get_workload


def test_demo_defaults_name_real_things():
    spec = get_workload(DEMO_WORKLOAD)
    assert check_recipes(["baseline", DEMO_RECIPE]) == ["baseline", DEMO_RECIPE]
    assert DEMO_RECIPE != "baseline"
    assert spec.metric


def test_race_alternates_stops_at_target_and_reports(tmp_path):
    out = io.StringIO()
    result = run_demo(
        tmp_path / "demo",
        workload="toy",
        recipe="label_smoothing",
        target=0.9,
        eval_interval="8ba",
        device="cpu",
        stream=out,
    )
    text = out.getvalue()
    assert "time to accuracy 0.9" in text and "95% CI" in text and "steps-to-quality" in text
    assert str(result.files.html.resolve()) in text
    runs = RunStore(result.store_path).list_runs("toy", with_evals=True)
    assert [(r.recipe, r.seed) for r in runs] == [
        ("baseline", 0),
        ("label_smoothing", 0),
        ("baseline", 1),
        ("label_smoothing", 1),
    ]
    for record in runs:  # each clock stopped at the first evaluation that reached the target
        accuracies = [e.metrics["accuracy"] for e in record.evals]
        assert accuracies[-1] >= 0.9 and all(a < 0.9 for a in accuracies[:-1])
        assert record.steps < 320 and record.config["stop_at_target"] == 0.9
    speedup = result.comparison.speedups["label_smoothing"]
    assert speedup.status in {"speedup", "no measurable speedup", "slower"}
    assert result.comparison.readout == "evals"
    assert result.files.html.exists() and (tmp_path / "demo" / "tradeoff.png").exists()

    again = run_demo(
        tmp_path / "demo",
        workload="toy",
        recipe="label_smoothing",
        target=0.9,
        eval_interval="8ba",
        seeds=1,
        device="cpu",
        stream=io.StringIO(),
    )
    assert len(RunStore(again.store_path).list_runs()) == 2  # a new race: old runs are not reused
