import pytest
import torch

from hasten.core.algorithm import Algorithm
from hasten.core.callback import Callback
from hasten.core.engine import Engine
from hasten.core.event import Event
from hasten.core.state import State
from hasten.core.time import Time


def make_state() -> State:
    return State(
        model=torch.nn.Linear(2, 2),
        loss_fn=lambda o, t: o.sum(),
        max_duration=Time.parse("1ep"),
        train_data=[],
        device=torch.device("cpu"),
    )


def recorder(label: str, priority: int = 0, log: list | None = None) -> Algorithm:
    class Recorder(Algorithm):
        name = label

        def match(self, event, state):
            return event in (Event.BEFORE_FORWARD, Event.AFTER_FORWARD, Event.BATCH_END)

        def apply(self, event, state):
            log.append((event, label))

    Recorder.priority = priority
    return Recorder()


def test_before_in_order_after_in_reverse_and_trace_matches():
    log: list = []
    engine = Engine(make_state(), [recorder("a", log=log), recorder("b", log=log), recorder("c", log=log)])
    engine.run_event(Event.BEFORE_FORWARD)
    engine.run_event(Event.AFTER_FORWARD)
    engine.run_event(Event.BATCH_END)
    assert [name for _, name in log] == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert list(engine.trace) == log


def test_priority_is_the_explicit_order_rule():
    log: list = []
    engine = Engine(make_state(), [recorder("late", 5, log), recorder("early", -5, log), recorder("mid", 0, log)])
    engine.run_event(Event.BEFORE_FORWARD)
    assert [name for _, name in log] == ["early", "mid", "late"]


def test_callbacks_run_after_algorithms_and_see_their_changes():
    seen = []

    class Setter(Algorithm):
        def match(self, event, state):
            return event is Event.BATCH_END

        def apply(self, event, state):
            state.extra["mark"] = "set"

    class Watcher(Callback):
        def on_batch_end(self, state):
            seen.append(state.extra.get("mark"))

    Engine(make_state(), [Setter()], [Watcher()]).run_event(Event.BATCH_END)
    assert seen == ["set"]


def test_algorithm_name_defaults_to_snake_case_and_touches_are_checked():
    class MyFancyMethod(Algorithm):
        pass

    assert MyFancyMethod.name == "my_fancy_method"
    with pytest.raises(TypeError, match="unknown entries"):

        class Bad(Algorithm):
            touches = frozenset({"weights"})
