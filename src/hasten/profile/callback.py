"""Drive a :class:`Profiler` from the Trainer's events, so hasten's own runs can be profiled."""

from __future__ import annotations

from hasten.core.callback import Callback
from hasten.core.state import State
from hasten.profile.profiler import Profiler
from hasten.trainer.sources import batch_size_of


class ProfilerCallback(Callback):
    """Time the Trainer's data waits and steps with ``profiler``.

    The Trainer's compile warm-up steps (``state.warmup_steps_remaining``) are added to the
    profiler's warm-up window. With ``stop_when_done`` the run stops once the profiler has
    everything it needs, so a profile of a long recipe takes seconds but sees that recipe's
    real schedule.
    """

    def __init__(self, profiler: Profiler, stop_when_done: bool = False) -> None:
        self.profiler = profiler
        self.stop_when_done = stop_when_done

    def on_fit_start(self, state: State) -> None:
        self.profiler.extend_warmup(state.warmup_steps_remaining + 1)
        if state.plan is not None:
            total = state.plan.total_steps
            self.profiler.step_budget = self.profiler.completed + total - state.timestamp.batch

    def on_before_dataloader(self, state: State) -> None:
        self.profiler.data_begin()

    def on_after_dataloader(self, state: State) -> None:
        self.profiler.data_end()

    def on_batch_start(self, state: State) -> None:
        self.profiler.step_begin(samples=batch_size_of(state.batch))

    def on_batch_end(self, state: State) -> None:
        self.profiler.step_end()
        if self.stop_when_done and self.profiler.done:
            state.stop_training()

    def on_fit_end(self, state: State) -> None:
        self.profiler.finish()
