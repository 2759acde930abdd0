"""Callbacks observe training (logging, progress, stores) and never change it."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from hasten.core.event import Event

if TYPE_CHECKING:
    from hasten.core.state import State

_HOOKS = {event: f"on_{event.value}" for event in Event}


class Callback:
    """Override the ``on_<event>`` hooks you need, e.g. ``on_batch_end(self, state)``.

    Every Event has a declared no-op hook below, so a subclass method named ``on_...`` that
    matches no Event (a misspelling such as ``on_batch_ends``) is refused when the class is
    defined, instead of silently never running.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = set(_HOOKS.values())
        for name in vars(cls):
            if name.startswith("on_") and name not in declared:
                close = difflib.get_close_matches(name, declared, n=1)
                hint = f"did you mean {close[0]}?" if close else "hooks are on_<event> for each hasten.core.Event"
                raise TypeError(f"{cls.__name__}.{name} is not a callback hook ({hint})")

    def run_event(self, event: Event, state: "State") -> None:
        getattr(self, _HOOKS[event])(state)

    def on_init(self, state: "State") -> None:
        """The Trainer was built; algorithms did their model surgery."""

    def on_fit_start(self, state: "State") -> None:
        """``fit`` began: the optimizer exists and the run is planned (``state.plan``)."""

    def on_epoch_start(self, state: "State") -> None:
        """An epoch begins."""

    def on_before_dataloader(self, state: "State") -> None:
        """The next batch is about to be fetched."""

    def on_after_dataloader(self, state: "State") -> None:
        """``state.batch`` holds the new batch, on the device."""

    def on_batch_start(self, state: "State") -> None:
        """A training step begins."""

    def on_before_forward(self, state: "State") -> None:
        """A micro-batch is about to go through the model."""

    def on_after_forward(self, state: "State") -> None:
        """``state.outputs`` holds the micro-batch's outputs."""

    def on_before_loss(self, state: "State") -> None:
        """The loss is about to be computed."""

    def on_after_loss(self, state: "State") -> None:
        """``state.loss`` holds the micro-batch's loss."""

    def on_before_backward(self, state: "State") -> None:
        """Gradients are about to be computed."""

    def on_after_backward(self, state: "State") -> None:
        """The micro-batch's gradients are accumulated."""

    def on_before_optimizer_step(self, state: "State") -> None:
        """The schedule has set this step's lr; the optimizer is about to step."""

    def on_after_optimizer_step(self, state: "State") -> None:
        """The weights were updated."""

    def on_batch_end(self, state: "State") -> None:
        """The step is counted in ``state.timestamp``."""

    def on_eval_start(self, state: "State") -> None:
        """An evaluation begins (its time goes to the ``eval`` bucket)."""

    def on_eval_batch_start(self, state: "State") -> None:
        """``state.eval_batch`` is about to be evaluated."""

    def on_eval_batch_end(self, state: "State") -> None:
        """``state.eval_outputs`` holds that batch's outputs."""

    def on_eval_end(self, state: "State") -> None:
        """``state.eval_results`` holds the metrics."""

    def on_epoch_end(self, state: "State") -> None:
        """An epoch ended."""

    def on_checkpoint(self, state: "State") -> None:
        """A checkpoint is about to be written."""

    def on_fit_end(self, state: "State") -> None:
        """The run ended (completed or diverged); the record is about to be finished."""
