from __future__ import annotations

import json

import pytest
import torch

from hasten.profile import peaks as peaks_module
from hasten.profile.microbench import SweepPoint
from hasten.profile.peaks import Peaks, cache_dir, cache_path, get_peaks, load_peaks, peaks_key, save_peaks


def test_quick_peaks_are_plausible(cpu_peaks):
    assert cpu_peaks.quick and cpu_peaks.device_type == "cpu"
    assert cpu_peaks.matmul_flops["float32"] > 1e8
    assert cpu_peaks.bandwidth > 1e8
    assert 0 < cpu_peaks.op_overhead_s < 1e-3
    assert cpu_peaks.ridge() == pytest.approx(cpu_peaks.matmul_flops["float32"] / cpu_peaks.bandwidth)
    assert cpu_peaks.threads == 1  # the fixture measures one thread


def test_cache_round_trip_and_key(cpu_peaks, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch.set_num_threads(cpu_peaks.threads)  # the cache key holds the thread count
    assert cache_dir() == tmp_path / "hasten"
    with_sweep = Peaks(
        **{**cpu_peaks.__dict__, "sweep": [SweepPoint("add", "elementwise", "1024", "float32", 1024.0, 12288.0, 1e-6)]}
    )
    path = save_peaks(with_sweep)
    assert path == cache_path(torch.device("cpu")) and path.parent == tmp_path / "hasten" / "peaks"
    assert f"{cpu_peaks.threads}t" in path.name
    loaded = load_peaks("cpu")
    assert loaded.to_dict() == with_sweep.to_dict()
    assert loaded.sweep[0].bytes_per_s == pytest.approx(12288.0 / 1e-6)


def test_key_separates_devices_threads_and_precision():
    base = peaks_key("cpu", "AMD EPYC 7B13", 1, "2.13.0+cpu", "highest")
    assert base == "cpu-amd-epyc-7b13-1t-highest-torch2.13.0"
    assert base != peaks_key("cpu", "AMD EPYC 7B13", 2, "2.13.0+cpu", "highest")
    assert base != peaks_key("cpu", "AMD EPYC 7B13", 1, "2.13.0+cpu", "high")


def test_unreadable_cache_reads_as_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = cache_path(torch.device("cpu"))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert load_peaks("cpu") is None
    path.write_text(json.dumps({"device_type": "cpu"}))
    assert load_peaks("cpu") is None


def test_get_peaks_prefers_the_cache_and_never_writes_quick_ones(cpu_peaks, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch.set_num_threads(cpu_peaks.threads)
    monkeypatch.setattr(peaks_module, "_QUICK", {})
    calls = []
    monkeypatch.setattr(peaks_module, "measure_peaks", lambda device, quick: calls.append(quick) or cpu_peaks)
    assert get_peaks("cpu") is cpu_peaks and get_peaks("cpu") is cpu_peaks
    assert calls == [True]  # measured once per process
    assert not (tmp_path / "hasten" / "peaks").exists()
    steady = Peaks(**{**cpu_peaks.__dict__, "quick": False, "bandwidth": 123.0})
    save_peaks(steady)
    assert get_peaks("cpu").bandwidth == 123.0


def test_bf16_peak_falls_back_and_float16_reads_bf16(cpu_peaks):
    only_fp32 = Peaks(**{**cpu_peaks.__dict__, "matmul_flops": {"float32": 5.0}})
    assert only_fp32.peak_flops("bfloat16") == 5.0
    assert cpu_peaks.peak_flops("float16") == cpu_peaks.matmul_flops["bfloat16"]


def _fake_rates(monkeypatch, gemm, copy, overhead):
    """Replace the three measurements with queues of figures (one per call)."""
    gemm, copy, overhead = list(gemm), list(copy), list(overhead)
    monkeypatch.setattr(peaks_module, "gemm_rate", lambda device, n, dtype, **kw: gemm.pop(0))
    monkeypatch.setattr(peaks_module, "copy_rate", lambda device, nbytes, **kw: copy.pop(0))
    monkeypatch.setattr(peaks_module, "op_overhead", lambda device, **kw: overhead.pop(0))


def test_each_figure_is_the_best_of_its_rounds_and_the_load_is_recorded(monkeypatch):
    # quick CPU plan: one fp32 size and one bf16 size per round
    _fake_rates(monkeypatch, gemm=[1e9, 2e8, 9e9, 3e8, 4e9, 1e8], copy=[5e9, 1e9, 7e9], overhead=[3e-6, 1e-6, 9e-6])
    peaks = peaks_module.measure_peaks("cpu", quick=True, rounds=3)
    assert peaks.matmul_flops == {"float32": 9e9, "bfloat16": 3e8}
    assert peaks.bandwidth == 7e9 and peaks.op_overhead_s == 1e-6 and peaks.rounds == 3
    assert set(peaks.load_average) == {"start", "end"} and len(peaks.load_average["start"]) == 3
    with pytest.raises(ValueError):
        peaks_module.measure_peaks("cpu", quick=True, rounds=0)


def test_merging_keeps_the_better_figure_and_reports_the_clearly_worse(cpu_peaks):
    cached = Peaks(
        **{
            **cpu_peaks.__dict__,
            "matmul_flops": {"float32": 10e9, "bfloat16": 2e9},
            "bandwidth": 8e9,
            "op_overhead_s": 2e-6,
            "quick": False,
            "sweep": [SweepPoint("add", "elementwise", "1024", "float32", 1024.0, 12288.0, 1e-6)],
        }
    )
    busy = Peaks(
        **{
            **cached.__dict__,
            "matmul_flops": {"float32": 10e9 / 22, "bfloat16": 2.5e9},
            "bandwidth": 7.9e9,
            "op_overhead_s": 5e-6,
            "quick": True,
            "sweep": [SweepPoint("add", "elementwise", "1024", "float32", 1024.0, 12288.0, 4e-6)],
        }
    )
    merged = peaks_module.merge_peaks(cached, busy)
    assert merged.matmul_flops == {"float32": 10e9, "bfloat16": 2.5e9}  # bf16 improved, fp32 kept
    assert merged.bandwidth == 8e9 and merged.op_overhead_s == 2e-6 and not merged.quick
    assert merged.sweep[0].seconds == 1e-6
    worse = {c.figure: round(1 / c.ratio, 1) for c in peaks_module.compare_peaks(cached, busy) if c.clearly_worse}
    assert worse == {"matmul float32": 22.0, "op overhead": 2.5}  # bandwidth is within noise
    assert peaks_module.merge_peaks(None, busy) is busy
