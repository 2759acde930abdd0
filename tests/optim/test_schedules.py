import math

import pytest

from hasten.optim.schedules import Constant, MultiplicativeCyclic, WarmupCosine, WarmupLinear


def test_warmup_cosine_matches_nanogpt_shape():
    schedule = WarmupCosine(warmup=100, final=0.1)
    values = [schedule(s, 2000) for s in range(2000)]
    assert values[0] == pytest.approx(1 / 100)
    assert values[99] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    midpoint = 100 + (2000 - 1 - 100) / 2
    assert schedule(int(midpoint), 2000) == pytest.approx(0.55, abs=1e-3)
    assert all(a >= b for a, b in zip(values[99:], values[100:]))


def test_fractional_warmup_scales_with_the_budget():
    schedule = WarmupLinear(warmup=0.1, final=0.0)
    for total in (100, 1000):
        assert schedule(int(0.1 * total) - 1, total) == pytest.approx(1.0)
        assert schedule(total - 1, total) == pytest.approx(0.0)


def test_constant_with_warmup():
    assert [Constant(warmup=4)(s, 10) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cyclic_cycles_double_and_end_at_minima():
    schedule = MultiplicativeCyclic(cycles=4, t_mult=2, warmup=0)
    ends = schedule.cycle_ends(1500)
    assert ends == [100, 300, 700, 1500]
    lengths = [b - a for a, b in zip([0] + ends, ends)]
    assert lengths == [100, 200, 400, 800]
    for end in ends:
        assert schedule(end - 1, 1500) == pytest.approx(0.0, abs=1e-12)  # the last step of a cycle
        assert schedule(end % 1500, 1500) > 0.99 or end == 1500  # restart at the peak
    assert schedule(49, 1500) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_cyclic_with_warmup_and_validation():
    schedule = MultiplicativeCyclic(cycles=3, t_mult=2, warmup=70)
    assert schedule.cycle_ends(770) == [170, 370, 770]
    assert schedule(34, 770) == pytest.approx(35 / 70)
    with pytest.raises(ValueError):
        MultiplicativeCyclic(cycles=0)


def test_trapezoid_warms_up_holds_then_cools_down_linearly() -> None:
    from hasten.optim.schedules import WarmupTrapezoid

    schedule = WarmupTrapezoid(warmup=10, cooldown=0.5, final=0.0)
    values = [schedule(s, 100) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == 1.0
    assert all(v == 1.0 for v in values[10:50])
    assert values[50] < 1.0 and values[99] == pytest.approx(0.0)
    steps = [values[s] - values[s + 1] for s in range(50, 99)]
    assert max(steps) == pytest.approx(min(steps))  # linear
    assert WarmupTrapezoid(cooldown=0.2, final=0.1)(99, 100) == pytest.approx(0.1)
