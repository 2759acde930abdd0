"""compare_runs: one workload's runs against a baseline, for a lower-is-better metric too."""

from __future__ import annotations

import pytest

from hasten.curves.compare import compare_runs, default_target
from hasten.errors import ConfigError
from tests.curves.synthetic import run


def _loss_runs(cpu="test cpu"):
    """Each run's eval series of validation loss; 'fast' needs half the steps at the same step time."""
    runs = []
    for seed, jitter in enumerate((0.99, 1.01)):
        series = [(10.0 * k * jitter, 100 * k, 3.0 - 0.25 * k) for k in range(1, 9)]  # 2.75 ... 1.0
        runs.append(run("baseline", seed, series, metric="loss", higher_is_better=False, cpu=cpu))
        fast = [(10.0 * k * jitter, 100 * k, 3.0 - 0.5 * k) for k in range(1, 5)]  # 2.5 ... 1.0
        runs.append(run("fast", seed, fast, metric="loss", higher_is_better=False, cpu=cpu))
    return runs


def test_lower_is_better_with_the_eval_readout():
    result = compare_runs(_loss_runs(), target=1.5)
    assert result.readout == "evals" and not result.higher_is_better
    s = result.speedups["fast"]
    # baseline reaches 1.5 at step 600 (60 s, x jitter); fast at step 300 (30 s): 2x from fewer steps
    assert s.speedup == pytest.approx(2.0) and s.steps_factor == pytest.approx(2.0)
    assert s.time_per_step_factor == pytest.approx(1.0)
    assert result.time_to_target("baseline") == (pytest.approx(60.0), [pytest.approx(59.4), pytest.approx(60.6)])
    targets = result.target_range(4)
    assert targets[0] < 2.75 and targets[-1] == pytest.approx(1.0)  # from below the first eval to the worst best
    by_target = result.speedups_over_targets(targets)["fast"]
    assert all(row.speedup is not None for row in by_target)
    assert [p.label for p in result.frontier][:1] == ["fast @ step 100"]
    gains = result.gains["fast"]
    assert gains[0].gain is None  # at 10.0 s one 'fast' seed has no point yet (its first is at 10.1 s)
    # at 20 s, read in log-time: baseline seeds 2.4938 and 2.5036, fast seeds 1.9876 and 2.0072
    assert gains[1].gain == pytest.approx(0.5013, abs=2e-4)  # positive: the lower loss is better
    assert gains[-1].gain is None  # 'fast' stopped at 40 s: no extrapolation to 80 s


def test_recipe_selection_and_errors():
    runs = _loss_runs()
    assert compare_runs(runs, target=1.5, recipes=["fast"]).recipes == ["baseline", "fast"]
    with pytest.raises(ConfigError, match="'slow'"):
        compare_runs(runs, target=1.5, recipes=["slow"])
    with pytest.raises(ConfigError, match="baseline 'other'"):
        compare_runs(runs, target=1.5, baseline="other")
    with pytest.raises(ConfigError, match="one workload"):
        compare_runs(runs + [run("baseline", 0, [(1, 1, 1.0)], workload="elsewhere")], target=1.5)
    with pytest.raises(ConfigError, match="finite"):
        compare_runs(runs, target=float("nan"))


def test_mixed_machines_are_flagged():
    runs = _loss_runs() + [run("fast", 7, [(5.0, 100, 2.0)], metric="loss", higher_is_better=False, cpu="other cpu")]
    result = compare_runs(runs, target=1.5)
    assert len(result.machines) == 2 and any("different machines" in n for n in result.notes)


def test_default_target():
    assert default_target("toy", None) == 0.90
    assert default_target("anything", 0.5) == 0.5
    with pytest.raises(ConfigError, match="--target"):
        default_target("not-a-workload", None)
