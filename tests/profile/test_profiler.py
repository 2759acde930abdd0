from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.profile import Profiler
from hasten.profile.profiler import CENSUS, DONE, RECORDED, TIMED, WARMUP


def batches(n=30, rows=16):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(rows, 8, generator=g), torch.randn(rows, 4, generator=g)) for _ in range(n)]


def train(prof, data, sleep=0.0):
    model = nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    phases = []
    for x, y in prof.wrap(data):
        phases.append(prof.phase)
        with prof.step():
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            time.sleep(sleep)
    return phases


def test_windows_run_in_order_then_the_profiler_steps_aside(cpu_peaks):
    prof = Profiler("cpu", skip=2, steps=3, record=2, min_time=0, peaks=cpu_peaks)
    phases = train(prof, batches(12))
    assert phases == [WARMUP] * 2 + [TIMED] * 3 + [RECORDED] * 2 + [CENSUS] + [DONE] * 4
    assert prof.done and prof.completed == 12 and prof.steps_needed == 8
    assert len(prof.times) == 3 and prof.times.samples == [16, 16, 16]
    report = prof.report()
    assert report.evidence["steps_timed"] == 3 and report.evidence["steps_recorded"] == 2
    assert report.evidence["census"] is True and report.evidence["samples_per_step"] == 16


def test_min_time_keeps_the_timed_window_open(cpu_peaks):
    # The window closes at the first step after which it has both 2 steps and 0.06 s. Checked
    # against the steps' own measured times, so a busy machine (slower steps) cannot fail it.
    prof = Profiler("cpu", skip=0, steps=2, record=1, min_time=0.06, peaks=cpu_peaks)
    phases = train(prof, batches(40), sleep=0.01)
    times = prof.times.iterations
    assert phases.count(TIMED) == len(times) >= 2
    assert sum(times) >= 0.06 - 1e-3  # open until min_time had passed...
    assert len(times) == 2 or sum(times[:-1]) < 0.06 + 1e-3  # ...and closed as soon as it had


def test_a_loader_with_a_length_leaves_room_for_the_recorded_steps(cpu_peaks):
    prof = Profiler("cpu", skip=2, steps=10, record=3, min_time=10.0, peaks=cpu_peaks)
    train(prof, batches(9))
    assert len(prof.times) == 3  # 9 - 2 warm-up - 3 recorded - 1 census
    assert prof.report().evidence["steps_recorded"] == 3


def test_a_loop_ending_inside_the_recorded_window_still_reports(cpu_peaks):
    prof = Profiler("cpu", skip=1, steps=2, record=5, min_time=0, peaks=cpu_peaks)
    train(prof, iter(batches(6)))  # no length: the profiler cannot plan ahead
    report = prof.report()
    assert report.evidence["steps_recorded"] == 3
    assert report.evidence["census"] is False and any("census" in n for n in report.evidence["notes"])


def test_count_ops_off_skips_the_census(cpu_peaks):
    prof = Profiler("cpu", skip=1, steps=2, record=2, min_time=0, count_ops=False, peaks=cpu_peaks)
    phases = train(prof, batches(8))
    assert CENSUS not in phases
    assert prof.report().evidence["flops_per_step"] == 0


def test_too_few_steps_is_one_clear_error(cpu_peaks):
    prof = Profiler("cpu", skip=3, steps=5, record=2, peaks=cpu_peaks)
    train(prof, batches(4))
    with pytest.raises(ConfigError, match="saw 4 steps, too few"):
        prof.report()


@pytest.mark.parametrize("kwargs", [dict(steps=1), dict(skip=-1), dict(record=0), dict(min_time=-1), dict(steps=2.5)])
def test_bad_windows_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        Profiler("cpu", **kwargs)


def test_step_without_wrap_works_and_sees_no_data_wait(cpu_peaks):
    prof = Profiler(skip=1, steps=3, record=2, min_time=0, peaks=cpu_peaks)
    assert prof.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = torch.randn(64, 64)
    for _ in range(prof.steps_needed):
        with prof.step():
            (x @ x).sum()
    assert prof.report().evidence["data_wait_s"] == 0.0


def test_extend_warmup_only_before_timing_starts(cpu_peaks):
    prof = Profiler("cpu", skip=0, steps=2, record=1, peaks=cpu_peaks)
    assert prof.phase == TIMED
    prof.extend_warmup(3)
    assert (prof.phase, prof.skip) == (WARMUP, 3)
    with prof.step():
        pass
    prof.extend_warmup(10)
    assert prof.skip == 3


def _unsized(data):
    yield from data  # no len(): the profiler cannot end the timed window early


@pytest.mark.parametrize(
    "n, skip, steps, min_time, expected",
    [
        (3, 3, 5, 0.0, "all of them were warm-up (skip=3)"),
        (4, 3, 5, 0.0, "3 warm-up and 1 timed; it needs at least 2 timed"),
        (6, 3, 5, 0.0, "3 warm-up and 3 timed, none recorded; it needs at least 5 timed steps"),
        (30, 3, 5, 60.0, "the timed window had its 5 steps but lasts at least min_time=60s"),
    ],
)
def test_too_few_steps_says_which_condition_failed(cpu_peaks, n, skip, steps, min_time, expected):
    prof = Profiler("cpu", skip=skip, steps=steps, record=2, min_time=min_time, peaks=cpu_peaks)
    train(prof, _unsized(batches(n)))
    with pytest.raises(ConfigError, match=f"saw {n} steps, too few") as caught:
        prof.report()
    assert expected in str(caught.value)
    assert ("smaller min_time" in str(caught.value)) == (min_time > 0)
