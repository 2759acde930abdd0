"""The Engine runs algorithms, then callbacks, at every event, and keeps a trace."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Sequence

from hasten.core.event import Event

if TYPE_CHECKING:
    from hasten.core.algorithm import Algorithm
    from hasten.core.callback import Callback
    from hasten.core.state import State


def order_algorithms(algorithms: Sequence["Algorithm"]) -> list["Algorithm"]:
    """The explicit order rule: by ``priority`` (lower first), ties kept in the order given."""
    return sorted(algorithms, key=lambda a: a.priority)


class Engine:
    """Runs the algorithms that match an event, in order at BEFORE_* and plain events and
    in reverse at AFTER_* events (so an algorithm can undo what it did), then the callbacks.

    ``trace`` holds ``(event, algorithm name)`` for every algorithm applied, most recent last.
    """

    def __init__(
        self,
        state: "State",
        algorithms: Sequence["Algorithm"] = (),
        callbacks: Sequence["Callback"] = (),
        trace_limit: int = 200_000,
    ) -> None:
        self.state = state
        self.algorithms = order_algorithms(algorithms)
        self.callbacks = list(callbacks)
        self.trace: deque[tuple[Event, str]] = deque(maxlen=trace_limit)

    def run_event(self, event: Event) -> None:
        algorithms = reversed(self.algorithms) if event.is_after else self.algorithms
        for algorithm in algorithms:
            if algorithm.match(event, self.state):
                algorithm.apply(event, self.state)
                self.trace.append((event, algorithm.name))
        for callback in self.callbacks:
            callback.run_event(event, self.state)
