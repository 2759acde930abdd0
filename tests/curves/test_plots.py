"""Figures draw without a display and produce real PNGs, also in the edge cases."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hasten.curves.compare import compare_runs
from hasten.curves.plots import plot_factors, plot_profiles, plot_tradeoff
from hasten.curves.profiles import performance_ratios
from tests.curves.synthetic import run


def _pixels(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_profiles_plot(tmp_path):
    ratios = performance_ratios({"w1": {"a": 1.0, "b": 2.0}, "w2": {"a": 3.0, "b": 1.0}})
    pixels = _pixels(plot_profiles(ratios, tmp_path / "profiles.png"))
    assert pixels.shape[1] > 300 and pixels.std() > 10


def test_baseline_only_and_single_seed(tmp_path):
    comparison = compare_runs([run("baseline", 0, [(1.0, 10, 0.5), (2.0, 20, 0.8)])], target=0.7)
    assert comparison.recipes == ["baseline"]
    assert _pixels(plot_factors(comparison, tmp_path / "factors.png")).std() > 5
    assert _pixels(plot_tradeoff(comparison, tmp_path / "tradeoff.png")).std() > 5
