from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from hasten.profile.trace import STEP_SCOPE, clip, covered, exposed, merge_intervals, summarize_trace


def test_interval_union_clip_and_exposed_communication():
    assert merge_intervals([(5, 7), (0, 2), (1, 3), (7, 8)]) == [(0, 3), (5, 8)]
    assert covered([(0, 2), (1, 3), (10, 11)]) == 4
    assert clip([(0, 10)], [(2, 3), (5, 6)]) == [(2, 3), (5, 6)]
    # 10 units of communication, 4 of them under compute: 6 exposed
    assert exposed([(0, 10)], [(2, 4), (6, 8)]) == 6
    assert exposed([(0, 10)], []) == 10


class Event:
    """Just enough of torch's FunctionEvent for summarize_trace."""

    def __init__(self, name, start, end, device="CPU", parent=None, cpu=None, gpu=0.0):
        self.name = name
        self.device_type = SimpleNamespace(name=device)
        self.time_range = SimpleNamespace(start=start, end=end, elapsed_us=lambda: end - start)
        self.cpu_parent = parent
        self.cpu_children = []
        self.cpu_time_total = (end - start) if cpu is None else cpu
        self.device_time_total = gpu
        if parent is not None:
            parent.cpu_children.append(self)


def test_time_is_charged_to_the_outermost_known_op_once():
    step = Event(STEP_SCOPE, 0, 100)
    linear = Event("aten::linear", 10, 60, parent=step)
    addmm = Event("aten::addmm", 12, 58, parent=linear)
    Event("aten::copy_", 13, 20, parent=addmm)  # internal to addmm: not charged again
    opt = Event("Optimizer.step#SGD.step", 70, 90, parent=step)
    Event("aten::add_", 72, 88, parent=opt)
    summary = summarize_trace(
        [step, linear, addmm, opt] + opt.cpu_children + addmm.cpu_children,
        {"aten::addmm", "aten::add_", "aten::copy_"},
        on_device=False,
    )
    assert summary.steps == 1 and summary.bodies == [100e-6]
    assert summary.ops[("matmul/conv", "aten::addmm")].per_step == [pytest.approx(46e-6)]
    assert summary.ops[("optimizer", "aten::add_")].per_step == [pytest.approx(16e-6)]
    assert ("elementwise", "aten::copy_") not in summary.ops
    assert summary.outside_ops(0) == pytest.approx(38e-6)  # everything outside the two ops


def test_device_busy_idle_and_exposed_communication_per_step():
    step = Event(STEP_SCOPE, 0, 100)
    op = Event("aten::mm", 5, 10, parent=step, gpu=40.0)
    kernels = [
        Event("sgemm_kernel", 20, 60, device="CUDA"),
        Event("ncclDevKernel_AllReduce", 50, 80, device="CUDA"),  # 10 under the gemm, 20 exposed
        Event("late_kernel", 150, 160, device="CUDA"),  # outside the step: ignored
        Event(STEP_SCOPE, 0, 100, device="CUDA"),  # the step's range mirrored on the GPU timeline
        Event("Optimizer.step#SGD.step", 85, 95, device="CUDA"),
    ]
    summary = summarize_trace([step, op] + kernels, {"aten::mm"}, on_device=True)
    assert summary.busy == [pytest.approx(60e-6)]  # annotations are not device work
    assert summary.kernels == 2
    assert summary.comm == [pytest.approx(30e-6)]
    assert summary.comm_exposed == [pytest.approx(20e-6)]
    assert summary.outside_ops(0) == pytest.approx(40e-6)  # the device idled 40 of 100 us
    assert summary.ops[("matmul/conv", "aten::mm")].per_step == [pytest.approx(40e-6)]


def test_reference_step_is_the_fastest():
    steps = [Event(STEP_SCOPE, 0, 50), Event(STEP_SCOPE, 100, 120), Event(STEP_SCOPE, 200, 290)]
    summary = summarize_trace(steps, set(), on_device=False)
    assert summary.bodies == [pytest.approx(50e-6), pytest.approx(20e-6), pytest.approx(90e-6)]
    assert summary.reference == 1


def test_real_cpu_trace_of_a_training_step():
    model = torch.nn.Linear(64, 64)
    x = torch.randn(32, 64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            with record_function("hasten::data"):
                torch.randn(32, 64)  # data work: not charged to the step
            with record_function(STEP_SCOPE):
                model(x).sum().backward()
    summary = summarize_trace(list(prof.events()), None, on_device=False)
    assert summary.steps == 2
    names = {name for _, name in summary.ops}
    assert "aten::linear" in names and "aten::randn" not in names
    assert all(len(op.per_step) == 2 for op in summary.ops.values())
    for i in range(2):
        charged = sum(op.per_step[i] for op in summary.ops.values())
        assert 0 < charged <= summary.bodies[i] * 1.0001
