from __future__ import annotations

import torch
from torch import nn

from hasten.data.memory import TensorBatches
from hasten.profile import Profiler, ProfilerCallback
from hasten.trainer.trainer import Trainer


def test_trainer_runs_are_profiled_and_stop_when_the_profiler_is_done(cpu_peaks):
    x, y = torch.randn(512, 16), torch.randint(0, 4, (512,))
    prof = Profiler("cpu", skip=2, steps=3, record=2, min_time=0, peaks=cpu_peaks)
    trainer = Trainer(
        model=nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)),
        train_data=TensorBatches(x, y, 32),
        max_duration="10ep",
        callbacks=[ProfilerCallback(prof, stop_when_done=True)],
        device="cpu",
    )
    result = trainer.fit()
    assert result.steps == prof.steps_needed == prof.completed
    report = prof.report()
    assert report.evidence["samples_per_step"] == 32
    assert report.evidence["steps_timed"] == 3 and report.evidence["steps_recorded"] == 2
    assert report.evidence["data_wait_s"] > 0  # the Trainer's next() is timed


def test_compile_warmup_steps_are_skipped(cpu_peaks):
    x, y = torch.randn(256, 8), torch.randint(0, 2, (256,))
    prof = Profiler("cpu", skip=1, steps=2, record=1, min_time=0, peaks=cpu_peaks)
    trainer = Trainer(
        model=nn.Linear(8, 2),
        train_data=TensorBatches(x, y, 16),
        max_duration="1ep",
        callbacks=[ProfilerCallback(prof)],
        device="cpu",
        warmup_steps=4,
    )
    trainer.fit()
    assert prof.skip == 5
    assert prof.completed == 16 and len(prof.times) == 2
