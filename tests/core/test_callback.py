"""Callback hooks are declared, one per Event, so a misspelled hook is an error."""

import pytest

from hasten.core.callback import Callback
from hasten.core.event import Event


def test_every_event_has_a_declared_no_op_hook_and_nothing_else_is_one():
    hooks = {name for name in vars(Callback) if name.startswith("on_")}
    assert hooks == {f"on_{event.value}" for event in Event}
    for name in hooks:
        assert getattr(Callback, name).__doc__, f"{name} has no docstring"
        assert getattr(Callback(), name)(None) is None


def test_a_misspelled_hook_is_refused_with_the_right_name():
    with pytest.raises(TypeError, match=r"Typo.on_batch_ends is not a callback hook \(did you mean on_batch_end\?\)"):

        class Typo(Callback):
            def on_batch_ends(self, state):  # type: ignore[no-untyped-def]
                pass


def test_run_event_calls_the_overridden_hook_only():
    seen = []

    class Watcher(Callback):
        def on_batch_end(self, state):  # type: ignore[no-untyped-def]
            seen.append(state)

    watcher = Watcher()
    watcher.run_event(Event.BATCH_START, "s0")
    watcher.run_event(Event.BATCH_END, "s1")
    assert seen == ["s1"]
