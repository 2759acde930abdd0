"""The run plan: total steps and the eval/checkpoint steps, computed once."""

import pytest

from hasten.core.plan import RunPlan
from hasten.core.time import Duration, Rates, Time

RATES = Rates(batches_per_epoch=10, samples_per_step=32, tokens_per_step=32 * 64)


def test_total_steps_round_up_and_never_reach_zero():
    assert RunPlan.make(RATES, Duration("3ep")).total_steps == 30
    assert RunPlan.make(RATES, Duration("100sp")).total_steps == 4  # 3.125 steps: the last one is partial
    assert RunPlan.make(RATES, Duration("1sp")).total_steps == 1


def test_one_eval_interval_is_a_period_and_several_are_steps():
    one = RunPlan.make(RATES, Duration("2ep"), [Time.parse("0.25dur")], Time.parse("5ba"))
    assert one.eval_every == pytest.approx(5.0) and one.eval_steps == frozenset()
    assert one.checkpoint_every == pytest.approx(5.0)
    several = RunPlan.make(RATES, Duration("2ep"), [Time.parse("3ba"), Time.parse("1ep"), Time.parse("640sp")])
    assert several.eval_every is None and several.eval_steps == {3, 10, 20}


def test_to_steps_converts_every_unit():
    plan = RunPlan.make(RATES, Duration("2ep"))
    assert plan.to_steps("0.5dur", Duration("2ep")) == pytest.approx(10)
    assert plan.to_steps("4096tok", Duration("2ep")) == pytest.approx(2)
    assert plan.to_steps("7ba", Duration("2ep")) == pytest.approx(7)
