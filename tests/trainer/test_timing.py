"""Timing buckets keep the process's CPU time of training beside its wall time."""

from __future__ import annotations

import time

from hasten.trainer.timing import TimingBuckets


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_train_cpu_counts_work_in_train_only_and_not_sleep():
    timer = TimingBuckets("cpu")
    timer.start("train")
    _spin(0.05)
    time.sleep(0.2)  # waiting: wall time, no CPU time
    with timer.bucket("eval"):
        _spin(0.1)  # CPU time outside training is not training's
    timer.stop()
    assert 0.05 <= timer.train_cpu < 0.05 + 0.1
    # the sleep alone is 0.2 s of wall time; the spin's wall time can be below its CPU time when
    # other threads of this process also burn CPU, so it is not counted here
    assert timer.totals["train"] >= 0.2
    assert timer.train_cpu < timer.totals["train"]


def test_train_cpu_survives_a_checkpoint_round_trip():
    timer = TimingBuckets("cpu")
    timer.start("train")
    _spin(0.03)
    state = timer.state_dict()
    assert state["train_cpu"] >= 0.03
    resumed = TimingBuckets("cpu")
    resumed.load_state_dict(state)
    resumed.start("train")
    _spin(0.02)
    resumed.stop()
    assert resumed.train_cpu >= state["train_cpu"] + 0.02
    assert TimingBuckets("cpu").load_state_dict({"train": 1.0}) is None  # an old checkpoint has no train_cpu
