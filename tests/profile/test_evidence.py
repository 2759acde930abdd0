"""Rules S1-S5 (docs/profiler.md): how each second of a step is charged to a bottleneck."""

from __future__ import annotations

from collections import Counter

import pytest

from hasten.profile.census import OpCount, StepCensus
from hasten.profile.evidence import StepTimes, gather_evidence, regime_of
from hasten.profile.peaks import Peaks
from hasten.profile.trace import OpTime, TraceSummary

PEAKS = Peaks(
    device_type="cpu",
    device_name="test",
    threads=1,
    torch_version="2",
    matmul_precision="highest",
    matmul_flops={"float32": 100e9, "bfloat16": 400e9},
    bandwidth=10e9,
    op_overhead_s=5e-6,
    quick=False,
)


def count(name, op_class, calls=1, flops=0.0, nbytes=0.0, dtype="float32", est=0.0):
    return OpCount(
        name=name,
        op_class=op_class,
        calls=calls,
        flops=flops,
        bytes=nbytes,
        est_flops=est,
        dtypes=Counter({dtype: calls}),
    )


def times(n=4, wait=0.0, body=0.010, other=0.0, samples=None):
    t = StepTimes()
    for _ in range(n):
        t.waits.append(wait)
        t.bodies.append(body)
        t.iterations.append(wait + body + other)
        if samples:
            t.samples.append(samples)
    return t


def trace(ops, body=0.010, steps=2, on_device=False, **extra):
    summary = TraceSummary(bodies=[body] * steps, data_s=0.0, on_device=on_device, **extra)
    for (op_class, name), (calls, seconds) in ops.items():
        summary.ops[(op_class, name)] = OpTime(name, op_class, calls * steps, [seconds] * steps)
    return summary


def census(*counts):
    return StepCensus({(c.op_class, c.name): c for c in counts}, sum(c.flops for c in counts))


# big matmul: 2 GFLOP over 12 MB -> intensity 167, above the ridge (10): compute
MATMUL = count("aten::mm", "matmul/conv", calls=1, flops=2e9, nbytes=12e6)
# big elementwise add: 120 MB, a pointwise FLOP per element -> intensity 0.08: memory
ADD = count("aten::add", "elementwise", calls=1, nbytes=120e6, est=10e6)
# tiny add: 48 bytes; ideal time ~5 ns is far below the 5 us per-op overhead: host
TINY = count("aten::mul", "elementwise", calls=100, nbytes=4800, est=400)


def test_s1_data_share_is_wait_over_step_time():
    ev = gather_evidence(times(wait=0.030, body=0.010), trace({}), None, PEAKS)
    assert ev["data_wait_fraction"] == pytest.approx(0.75)
    assert ev["shares"]["data"] == pytest.approx(0.75)
    assert ev["data_wait_s"] == pytest.approx(0.030)


def test_s2_host_is_time_between_steps_outside_ops_and_overhead_bound_ops():
    ops = {("matmul/conv", "aten::mm"): (1, 0.004), ("elementwise", "aten::mul"): (100, 0.002)}
    ev = gather_evidence(times(body=0.010, other=0.010), trace(ops), census(MATMUL, TINY), PEAKS)
    # between steps: 0.010 of 0.020; inside: 0.004 outside ops + 0.002 tiny ops of 0.010 body
    assert ev["shares"]["host"] == pytest.approx(0.5 + 0.5 * 0.6)
    assert ev["shares"]["compute"] == pytest.approx(0.5 * 0.4)
    assert ev["overhead_bound_ops_per_step"] == 100
    assert ev["framework_fraction"] == pytest.approx(0.4)  # outside any op: 10 - 4 - 2 ms


def test_s2_overhead_bound_means_ideal_time_below_one_empty_op():
    assert regime_of(OpTime("aten::mul", "elementwise", 100, [0.002]), TINY, PEAKS, on_device=False) == "host"
    assert regime_of(OpTime("aten::add", "elementwise", 1, [0.02]), ADD, PEAKS, on_device=False) == "memory"
    # on a GPU, the device's idle time carries host overhead instead
    assert regime_of(OpTime("aten::mul", "elementwise", 100, [0.002]), TINY, PEAKS, on_device=True) == "memory"


def test_s4_s5_intensity_against_the_ridge_point():
    assert regime_of(OpTime("aten::mm", "matmul/conv", 1, [0.02]), MATMUL, PEAKS, on_device=False) == "compute"
    assert regime_of(OpTime("aten::add", "elementwise", 1, [0.02]), ADD, PEAKS, on_device=False) == "memory"
    # intensity 30: compute against the fp32 ridge (10), memory against the bf16 ridge (40)
    mid = count("aten::mm", "matmul/conv", flops=1.5e9, nbytes=50e6)
    assert regime_of(OpTime("aten::mm", "matmul/conv", 1, [0.02]), mid, PEAKS, on_device=False) == "compute"
    mid_bf16 = count("aten::mm", "matmul/conv", flops=1.5e9, nbytes=50e6, dtype="bfloat16")
    assert regime_of(OpTime("aten::mm", "matmul/conv", 1, [0.02]), mid_bf16, PEAKS, on_device=False) == "memory"


def test_without_a_census_ops_are_judged_by_name_and_time_per_call():
    assert regime_of(OpTime("aten::mm", "matmul/conv", 1, [0.02]), None, PEAKS, on_device=False) == "compute"
    assert regime_of(OpTime("aten::add", "elementwise", 1, [0.02]), None, PEAKS, on_device=False) == "memory"
    assert regime_of(OpTime("aten::add", "elementwise", 1000, [0.002]), None, PEAKS, on_device=False) == "host"


def test_s3_communication_on_host_is_its_op_time():
    ops = {("communication", "c10d::allreduce_"): (1, 0.006), ("matmul/conv", "aten::mm"): (1, 0.004)}
    summary = trace(ops)
    summary.comm = summary.comm_exposed = [0.006, 0.006]
    ev = gather_evidence(times(), summary, census(MATMUL), PEAKS)
    assert ev["shares"]["communication"] == pytest.approx(0.6)
    assert ev["shares"]["compute"] == pytest.approx(0.4)


def test_s3_on_gpu_only_exposed_communication_counts_and_idle_is_host():
    ops = {("matmul/conv", "aten::mm"): (1, 0.006), ("elementwise", "aten::add"): (1, 0.002)}
    summary = trace(ops, on_device=True, busy=[0.008, 0.008], comm=[0.003, 0.003], comm_exposed=[0.001, 0.001])
    ev = gather_evidence(times(body=0.010, other=0.0), summary, census(MATMUL, ADD), PEAKS, device_type="cuda")
    assert ev["shares"]["host"] == pytest.approx(0.2)  # 2 ms of 10 idle
    assert ev["shares"]["communication"] == pytest.approx(0.1)
    assert ev["shares"]["compute"] + ev["shares"]["memory"] == pytest.approx(0.7)
    assert ev["shares"]["compute"] == pytest.approx(0.7 * 0.75)
    assert ev["device_idle_fraction"] == pytest.approx(0.2)


def test_gpu_time_between_steps_is_spread_like_the_body():
    ops = {("matmul/conv", "aten::mm"): (1, 0.010)}
    summary = trace(ops, on_device=True, busy=[0.010, 0.010], comm=[0.0, 0.0], comm_exposed=[0.0, 0.0])
    ev = gather_evidence(times(body=0.005, other=0.005), summary, census(MATMUL), PEAKS, device_type="cuda")
    assert ev["shares"]["compute"] == pytest.approx(1.0)


def test_shares_add_up_and_rates_follow_the_counts():
    ops = {("matmul/conv", "aten::mm"): (1, 0.004), ("elementwise", "aten::add"): (1, 0.003)}
    ev = gather_evidence(times(wait=0.005, body=0.010, samples=64), trace(ops), census(MATMUL, ADD), PEAKS)
    assert sum(ev["shares"].values()) == pytest.approx(1.0)
    assert ev["step_time_s"] == pytest.approx(0.015)
    assert ev["flops_per_step"] == 2e9
    assert ev["bytes_per_step"] == 132e6
    assert ev["achieved_flops_per_s"] == pytest.approx(2e9 / 0.015)
    assert ev["mfu"] == pytest.approx(2e9 / 0.015 / 100e9)
    assert ev["time_per_sample_s"] == pytest.approx(0.015 / 64)
    assert ev["op_classes"]["matmul/conv"]["flops"] == 2e9
    assert ev["op_classes"]["data"]["time_s"] == pytest.approx(0.005)
    top = ev["top_ops"][0]
    assert top["name"] == "aten::mm" and top["regime"] == "compute"


def test_op_times_are_scaled_to_the_unprofiled_step_time():
    ops = {("matmul/conv", "aten::mm"): (1, 0.010)}
    # the profiler slowed the recorded step to 20 ms; the real step is 10 ms
    ev = gather_evidence(times(body=0.010), trace(ops, body=0.020), census(MATMUL), PEAKS)
    assert ev["top_ops"][0]["time_s"] == pytest.approx(0.005)
    assert ev["shares"]["compute"] == pytest.approx(0.5)


def test_notes_flag_missing_census_and_stale_peaks():
    ops = {("matmul/conv", "aten::mm"): (1, 0.010)}
    ev = gather_evidence(times(), trace(ops), None, PEAKS)
    assert any("no operation census" in n for n in ev["notes"])
    fast = count("aten::mm", "matmul/conv", flops=5e9, nbytes=1e6)  # 5 GFLOP in 10 ms: faster than the peak
    ev = gather_evidence(times(), trace(ops), census(fast), PEAKS)
    assert any("faster than the measured peak" in n for n in ev["notes"])
