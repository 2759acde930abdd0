from __future__ import annotations

import pytest

from hasten.methods.registry import method_names
from hasten.profile.verdict import PRIORITY
from hasten.profile.workload import profile_workload


def test_profile_a_workload_recipe(cpu_peaks, monkeypatch):
    monkeypatch.setattr("hasten.profile.profiler.get_peaks", lambda device: cpu_peaks)
    report = profile_workload("toy", steps=3, skip=1, record=2, device="cpu")
    assert report.verdict in PRIORITY
    assert report.evidence["samples_per_step"] == 128
    assert report.evidence["steps_timed"] >= 3 and report.evidence["census"] is True
    assert report.evidence["flops_per_step"] > 0


def test_methods_in_the_recipe_are_not_recommended_again(cpu_peaks, monkeypatch):
    if "label_smoothing" not in method_names():
        pytest.skip("label_smoothing is not in the catalogue")
    monkeypatch.setattr("hasten.profile.profiler.get_peaks", lambda device: cpu_peaks)
    report = profile_workload("toy", ["label_smoothing:smoothing=0.1"], steps=2, skip=1, record=1, device="cpu")
    assert "label_smoothing" not in [r.method for r in report.recommendations]
