"""Tradeoff curves, honest speedups and reports: sweeps, single-run cyclic curves, analysis
(pure functions over run records, so imported runs work too), figures, and the demo."""

from hasten.curves.analysis import (
    Crossing,
    CurvePoint,
    Point,
    TradeoffCurve,
    first_crossing,
    pareto_frontier,
    quality_at_time,
    seed_points,
    tradeoff_curve,
)
from hasten.curves.compare import Comparison, compare_runs
from hasten.curves.cyclic import CyclicValidation, validate_cyclic
from hasten.curves.profiles import performance_ratios, profile, profile_score, profile_scores
from hasten.curves.speedup import QualityGain, Speedup, iso_quality_speedup, quality_gain_at_time

__all__ = [
    "Comparison",
    "Crossing",
    "CurvePoint",
    "CyclicValidation",
    "Point",
    "QualityGain",
    "Speedup",
    "TradeoffCurve",
    "compare_runs",
    "first_crossing",
    "iso_quality_speedup",
    "pareto_frontier",
    "performance_ratios",
    "profile",
    "profile_score",
    "profile_scores",
    "quality_at_time",
    "quality_gain_at_time",
    "seed_points",
    "tradeoff_curve",
    "validate_cyclic",
]
