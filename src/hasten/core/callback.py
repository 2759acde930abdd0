"""Callbacks observe training (logging, progress, stores) and never change it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hasten.core.event import Event
    from hasten.core.state import State


class Callback:
    """Override ``on_<event>`` methods, e.g. ``on_batch_end(self, state)``.

    Names follow the Event values: ``on_fit_start``, ``on_eval_end``, ``on_fit_end``...
    """

    def run_event(self, event: "Event", state: "State") -> None:
        handler = getattr(self, f"on_{event.value}", None)
        if handler is not None:
            handler(state)
