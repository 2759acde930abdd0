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


def test_a_workload_profile_recommends_only_what_fits_its_model(cpu_peaks, monkeypatch):
    from hasten.methods.registry import all_methods

    cards = {m.name: m.card for m in all_methods()}
    monkeypatch.setattr("hasten.profile.profiler.get_peaks", lambda device: cpu_peaks)
    # toy: a tabular MLP of three Linear layers, no conv, norm, residual or two-layer block
    report = profile_workload("toy", steps=2, skip=1, record=1, device="cpu", precision="bf16")
    for rec in report.recommendations:
        card = cards[rec.method]
        assert not card.needs, rec.method  # nothing a surgery could find
        assert "any" in card.applies_to, rec.method  # no image or text method for a tabular model
    assert "precision" not in [r.method for r in report.recommendations]  # bf16 is already on
    assert all(x.why for x in report.left_out)
