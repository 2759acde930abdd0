from __future__ import annotations

import time

import pytest
import torch

from hasten.profile.microbench import SweepPoint, best_time, copy_rate, gemm_rate, op_overhead, sweep_ops

CPU = torch.device("cpu")


def test_best_time_is_per_call_and_takes_the_fastest_block():
    seconds = best_time(lambda: time.sleep(0.002), CPU, repeats=2, block_s=0.004)
    assert 0.0019 < seconds < 0.02


def test_rates_are_positive_and_matmul_beats_a_tiny_op():
    assert gemm_rate(CPU, 128, torch.float32, repeats=2, block_s=0.005) > 1e8
    assert copy_rate(CPU, 4 << 20, repeats=2, block_s=0.005) > 1e8
    overhead = op_overhead(CPU, repeats=2)
    assert 0 < overhead < 1e-3


def test_sweep_covers_each_class_and_small_sizes_are_overhead_bound():
    torch.set_num_threads(1)  # threads fighting other processes would time the machine's load
    points = sweep_ops(CPU, matmul_sizes=(16, 256), elementwise_sizes=(256, 1 << 20), repeats=2, block_s=0.003)
    assert {p.op_class for p in points} == {"matmul/conv", "elementwise", "normalization", "reduction"}
    small = next(p for p in points if p.op == "add" and p.size == "256")
    large = next(p for p in points if p.op == "add" and p.size == str(1 << 20))
    assert large.bytes_per_s > 3 * small.bytes_per_s  # small ops pay the fixed per-call cost
    mm = next(p for p in points if p.op == "matmul" and p.size == "256x256x256")
    assert mm.flops == 2 * 256**3 and mm.intensity == pytest.approx(2 * 256**3 / (3 * 256 * 256 * 4))


def test_sweep_point_rates():
    p = SweepPoint("add", "elementwise", "10", "float32", flops=10.0, bytes=120.0, seconds=2.0)
    assert (p.flops_per_s, p.bytes_per_s, p.intensity) == (5.0, 60.0, pytest.approx(1 / 12))
