"""Core abstractions: events, state, algorithms, callbacks, the engine and time units."""

from hasten.core.algorithm import Algorithm
from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.core.engine import Engine, order_algorithms
from hasten.core.event import Event
from hasten.core.metrics import Accuracy, CrossEntropy, Metric
from hasten.core.state import State
from hasten.core.time import Duration, Rates, Time, Timestamp, TimeUnit

__all__ = [
    "Accuracy",
    "Algorithm",
    "Callback",
    "CrossEntropy",
    "Duration",
    "Engine",
    "Event",
    "Metric",
    "Rates",
    "State",
    "Time",
    "TimeUnit",
    "check_composition",
    "Timestamp",
    "order_algorithms",
]
