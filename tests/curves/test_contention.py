"""Busy-machine signs are found in run records, and only where the records show them."""

from __future__ import annotations

import pytest

from hasten.curves.compare import compare_runs
from hasten.curves.contention import contention_flags
from hasten.curves.report import build_blocks, render_markdown
from tests.curves.synthetic import run

BUDGETS = {"1ep": (100, 0.70), "2ep": (200, 0.80), "4ep": (400, 0.88)}
PER_STEP = {"baseline": 0.010, "fast": 0.007}


def _sweep(seconds=None, env=None):
    """recipes x budgets x 3 seeds on a quiet machine: time = steps x per-step time (+-2% noise),
    CPU time = wall time, low load. ``seconds[(recipe, budget, seed)]`` overrides a run's time."""
    runs = []
    for recipe, per_step in PER_STEP.items():
        for seed in range(3):
            for budget, (steps, quality) in BUDGETS.items():
                t = (seconds or {}).get((recipe, budget, seed), steps * per_step * (1 + 0.02 * (seed - 1)))
                record = run(recipe, seed, [(t / 2, steps // 2, quality - 0.1), (t, steps, quality)], duration=budget)
                record.env.update(device="cpu", cpu_count=2, train_cpu_s=t, load_start=0.8, load_end=1.1)
                record.env.update((env or {}).get((recipe, budget, seed), {}))
                runs.append(record)
    return runs


def _flagged(runs):
    return {(f.recipe, f.duration, f.seed): f.reasons for f in contention_flags(runs)}


def test_a_quiet_sweep_is_not_flagged():
    assert _flagged(_sweep()) == {}


def test_a_shorter_run_slower_than_a_longer_one_is_flagged_with_both_runs():
    # the case: the 100-step run took longer than the 200-step run of the same recipe and seed
    flags = _flagged(_sweep({("baseline", "1ep", 1): 2.5}))
    assert set(flags) == {("baseline", "1ep", 1), ("baseline", "2ep", 1)}
    assert any("200 steps took 2.00 s, no longer than the 100 steps" in r for r in flags[("baseline", "2ep", 1)])
    assert any("dispersion" in r or "median" in r for r in flags[("baseline", "1ep", 1)])  # 2.5x its seeds too


def test_one_seed_much_slower_per_step_than_its_siblings_is_flagged_alone():
    flags = _flagged(_sweep({("fast", "4ep", 2): 400 * 0.007 * 1.8}))
    assert set(flags) == {("fast", "4ep", 2)}
    assert "1.8x above the median of the 3 runs" in flags[("fast", "4ep", 2)][0]


def test_two_runs_far_apart_are_both_flagged():
    runs = [r for r in _sweep({("fast", "2ep", 0): 200 * 0.007 * 2.0}) if not (r.recipe == "fast" and r.seed == 2)]
    flags = _flagged(runs)
    assert {k for k in flags if k[1] == "2ep"} == {("fast", "2ep", 0), ("fast", "2ep", 1)}


def test_cpu_time_far_below_wall_time_is_flagged_on_cpu_only():
    waiting = {("baseline", "2ep", 0): {"train_cpu_s": 0.6}}  # 0.6 CPU s in ~2 s of training
    flags = _flagged(_sweep(env=waiting))
    assert list(flags) == [("baseline", "2ep", 0)] and "CPU seconds per second" in flags[("baseline", "2ep", 0)][0]
    on_gpu = {("baseline", "2ep", 0): {"train_cpu_s": 0.6, "device": "cuda:0"}}  # the host waits on the GPU
    assert _flagged(_sweep(env=on_gpu)) == {}


def test_data_waits_do_not_count_as_cpu_starvation():
    runs = _sweep(env={("baseline", "4ep", 0): {"train_cpu_s": 1.0}})
    slow_data = next(r for r in runs if (r.recipe, r.duration, r.seed) == ("baseline", "4ep", 0))
    slow_data.data_wait_s = slow_data.train_time_s - 1.0  # the rest of the time it waited for batches
    assert _flagged(runs) == {}


@pytest.mark.parametrize("moment", ["start", "end"])
def test_a_high_load_average_is_flagged(moment):
    flags = _flagged(_sweep(env={("fast", "1ep", 1): {f"load_{moment}": 5.0}}))
    assert flags == {("fast", "1ep", 1): (f"load average 5.0 on 2 cores at its {moment}",)}
    assert _flagged(_sweep(env={("fast", "1ep", 1): {f"load_{moment}": 2.9}})) == {}


def test_records_without_cpu_time_or_load_are_judged_by_their_times_only():
    runs = _sweep()
    for r in runs:
        r.env = {"cpu": "test cpu", "threads": 1, "torch": "test"}
    assert _flagged(runs) == {}


def test_compare_and_report_carry_the_flags():
    comparison = compare_runs(_sweep({("baseline", "1ep", 1): 2.5}), target=0.75)
    assert {(f.recipe, f.duration) for f in comparison.contention} == {("baseline", "1ep"), ("baseline", "2ep")}
    assert any("2 of 18 runs show signs of a busy machine" in note for note in comparison.notes)
    [row] = comparison.speedup_rows()
    assert row["contended_runs"] == 0 and row["baseline_contended_runs"] == 2
    text = render_markdown(build_blocks(comparison, {"tradeoff": "t.png", "speedup": "s.png", "factors": "f.png"}))
    assert "Measurement warnings" in text and "| baseline | 1ep | 3 |" in text and "1 run flagged" in text
    quiet = compare_runs(_sweep(), target=0.75)
    assert quiet.contention == [] and "Measurement warnings" not in render_markdown(
        build_blocks(quiet, {"tradeoff": "t.png", "speedup": "s.png", "factors": "f.png"})
    )


def test_the_tradeoff_plot_rings_flagged_points(tmp_path):
    import numpy as np
    from PIL import Image

    from hasten.curves.plots import plot_tradeoff

    def red_pixels(comparison, name):
        with Image.open(plot_tradeoff(comparison, tmp_path / name)) as image:
            pixels = np.asarray(image.convert("RGB")).astype(int)
        return int((np.abs(pixels - np.array([0xB3, 0x26, 0x1E])).sum(axis=-1) < 30).sum())

    assert red_pixels(compare_runs(_sweep(), target=0.75), "quiet.png") == 0
    assert red_pixels(compare_runs(_sweep({("baseline", "1ep", 1): 2.5}), target=0.75), "busy.png") > 50
