"""Bottleneck profiler: a verdict with evidence, a roofline, and the methods that relieve it.

from hasten.profile import Profiler
prof = Profiler()
for batch in prof.wrap(loader):
    with prof.step():
        ...
report = prof.report()       # .verdict, .evidence, .recommendations
"""

from hasten.bottlenecks import PRIORITY as BOTTLENECKS  # in verdict order, as the report lists them
from hasten.profile.callback import ProfilerCallback
from hasten.profile.peaks import Peaks, get_peaks, load_peaks, measure_peaks, save_peaks
from hasten.profile.profiler import Profiler
from hasten.profile.recommend import Recommendation
from hasten.profile.report import Report

__all__ = [
    "BOTTLENECKS",
    "Peaks",
    "Profiler",
    "ProfilerCallback",
    "Recommendation",
    "Report",
    "get_peaks",
    "load_peaks",
    "measure_peaks",
    "save_peaks",
]
