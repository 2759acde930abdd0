import math
from fractions import Fraction

import pytest

from hasten.core.time import Time, TimeUnit
from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.scale_schedule import ScaleSchedule, scale_duration
from hasten.optim.schedules import WarmupCosine
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import LrRecorder, same_weights

SCHEDULE = WarmupCosine(warmup=0.25)


def test_scale_duration_multiplies_and_rounds_counts():
    assert scale_duration("10ep", 0.25) == Time(2.5, TimeUnit.EPOCH)
    assert scale_duration("8ba", 0.3) == Time(2, TimeUnit.BATCH)
    assert scale_duration("100ba", 1.5) == Time(150, TimeUnit.BATCH)
    assert scale_duration("6e4sp", 0.5) == Time(30000, TimeUnit.SAMPLE)
    assert scale_duration("3ba", 0.01) == Time(1, TimeUnit.BATCH)
    with pytest.raises(ValueError, match="ratio must be > 0"):
        scale_duration("1ep", 0)


@pytest.mark.parametrize("count", [1, 3, 5, 7, 10, 30, 99, 100, 333])
@pytest.mark.parametrize("ratio", ["0.05", "0.15", "0.25", "0.29", "0.35", "0.5", "1.5", "2.5"])
def test_counts_round_to_the_nearest_whole_unit_halves_up(count, ratio):
    exact = Fraction(count) * Fraction(ratio)  # the budget in exact arithmetic
    nearest = max(1, math.floor(exact + Fraction(1, 2)))
    assert scale_duration(f"{count}ba", float(ratio)) == Time(nearest, TimeUnit.BATCH)
    assert scale_duration(f"{count}ep", float(ratio)) == Time(count * float(ratio), TimeUnit.EPOCH)


@pytest.mark.parametrize("given, ratio, equivalent", [("16ba", 0.5, "8ba"), ("4ba", 2.0, "8ba")])
def test_steps_and_the_lr_curve_scale_with_the_budget(data_dir, given, ratio, equivalent):
    make = image_trainer_factory(data_dir, eval_data=None, scheduler=SCHEDULE)
    scaled_lrs, plain_lrs = LrRecorder(), LrRecorder()
    scaled = make(max_duration=given, algorithms=[ScaleSchedule(ratio=ratio)], callbacks=[scaled_lrs])
    result = scaled.fit()
    plain = make(max_duration=equivalent, callbacks=[plain_lrs])
    plain.fit()
    assert result.steps == 8
    assert scaled.state.run_info["duration"] == equivalent
    assert scaled.state.run_info["config"]["scaled_from"] == given
    assert scaled_lrs.lrs == pytest.approx([0.05 * SCHEDULE(step, 8) for step in range(8)])
    assert scaled_lrs.lrs == plain_lrs.lrs
    assert same_weights(scaled.state.model, plain.state.model)  # functional form == Algorithm


def test_scale_schedule_resumes_exactly(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, scheduler=SCHEDULE, algorithms=lambda: [ScaleSchedule(ratio=0.5)])

    def make_scaled(**overrides):
        overrides["max_duration"] = "16ba"  # the harness asks for 8 steps; the method halves 16
        return make(**overrides)

    assert_resumes_exactly(make_scaled, tmp_path)


def test_bad_ratio_fails_clearly():
    with pytest.raises(ConfigError, match="ratio must be > 0"):
        build_method("scale_schedule:ratio=0")


def test_a_cyclic_run_refuses_scale_schedule_before_any_work():
    from hasten.workloads import build_trainer

    with pytest.raises(ConfigError, match="scale_schedule cannot be used in a cyclic run"):
        build_trainer("toy", methods=["scale_schedule:ratio=0.5"], schedule="cyclic")
