from __future__ import annotations

from hasten.profile.microbench import SweepPoint
from hasten.profile.roofline import plot_roofline, roofline_points

OPS = [
    {"name": "aten::mm", "class": "matmul/conv", "work_flops": 2e9, "bytes": 12e6, "time_s": 0.03},
    {"name": "aten::add", "class": "elementwise", "work_flops": 1e6, "bytes": 12e6, "time_s": 0.004},
    {"name": "aten::view", "class": "elementwise", "work_flops": 0.0, "bytes": 0.0, "time_s": 1e-6},
]


def test_only_ops_with_work_bytes_and_time_are_placed():
    assert [op["name"] for op in roofline_points(OPS)] == ["aten::mm", "aten::add"]


def test_plot_writes_a_png(cpu_peaks, tmp_path):
    sweep = [
        SweepPoint("matmul", "matmul/conv", "64", "float32", 5e5, 5e4, 1e-5),
        SweepPoint("add", "elementwise", "1024", "float32", 1024.0, 12288.0, 2e-6),
    ]
    path = plot_roofline(cpu_peaks, tmp_path / "sub" / "roof.png", sweep=sweep, ops=OPS, title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
