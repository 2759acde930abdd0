"""The catalogue as a whole: complete cards, symmetric conflicts, explicit order rules, and
methods from every component composing and training together on real data."""

import importlib
import itertools
import re

import pytest
import torch

from hasten.core.algorithm import EXCLUSIVE_TOUCHES, Algorithm
from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.core.event import Event
from hasten.errors import ConflictError
from hasten.methods import all_methods, build_methods, get_method
from hasten.methods.lookahead import Lookahead
from hasten.methods.sam import SAM
from hasten.optim.muon import Muon
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.data_helpers import bare_state

ENTRIES = all_methods()
WHEN = re.compile(r"^(whole run|\d*\.?\d+-\d*\.?\d+dur)$")


def _resolve(name: str, module):
    if "." in name:
        module_name, _, attribute = name.rpartition(".")
        return getattr(importlib.import_module(module_name), attribute)
    return getattr(module, name)


def test_the_catalogue_has_at_least_25_methods():
    assert len(ENTRIES) >= 25, [e.name for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_card_is_complete(entry):
    card = entry.card
    assert card.summary and len(card.summary) <= 160, "a one-line summary"
    assert card.paper is not None or card.implementation_level, "a paper, or marked implementation-level"
    if card.paper is not None:
        assert card.paper.authors and card.paper.title and 1950 < card.paper.year < 2030
        assert card.paper.arxiv is None or re.fullmatch(r"\d{4}\.\d{4,5}", card.paper.arxiv)
    assert card.effect, "the expected effect"
    assert card.not_worth_it, "where it does not pay off"
    assert card.export, "how to get a plain model back"
    assert WHEN.match(card.when), f"when={card.when!r}: 'whole run' or a window like '0.0-0.5dur'"
    assert card.resume or card.resume_note, "a method that cannot resume says why"
    assert card.functional, "a functional form"
    module = importlib.import_module(entry.algorithm.__module__)
    for name in card.functional:
        assert callable(_resolve(name, module)), f"functional form {name} not found"
    for other in card.conflicts:
        get_method(other)  # declared conflicts name real methods


def _declared_pairs():
    pairs = set()
    for entry in ENTRIES:
        for other in entry.card.conflicts:
            pairs.add(tuple(sorted((entry.name, other))))
    return sorted(pairs)


@pytest.mark.parametrize("pair", _declared_pairs(), ids="+".join)
def test_every_declared_conflict_is_caught_in_both_orders(pair):
    first, second = (get_method(name).build() for name in pair)
    for order in ([first, second], [second, first]):
        with pytest.raises(ConflictError) as caught:
            check_composition(order)
        assert pair[0] in str(caught.value) and pair[1] in str(caught.value)


def test_capability_and_exclusive_touch_conflicts_are_caught_in_both_orders():
    built = {e.name: e.build() for e in ENTRIES}
    checked = 0
    for a, b in itertools.combinations(built.values(), 2):
        clash = (
            set(a.requires) & set(b.removes)
            or set(b.requires) & set(a.removes)
            or set(a.touches) & set(b.touches) & EXCLUSIVE_TOUCHES
        )
        if clash:
            checked += 1
            for order in ([a, b], [b, a]):
                with pytest.raises(ConflictError):
                    check_composition(order)
    assert checked > 0  # the catalogue has such pairs (e.g. mixup + cutmix)


class _Probe(Algorithm):
    touches = frozenset()

    def __init__(self, name: str, priority: int) -> None:
        self.name, self.priority = name, priority  # type: ignore[misc]

    def match(self, event, state):
        return True

    def apply(self, event, state):
        pass


def test_order_rule_priority_first_and_reversed_at_after_events():
    state, engine = bare_state([_Probe("late", 10), _Probe("early", -10), _Probe("tie_a", 0), _Probe("tie_b", 0)])
    for event in (Event.INIT, Event.BEFORE_FORWARD, Event.AFTER_FORWARD, Event.BATCH_END):
        engine.run_event(event)
    trace = list(engine.trace)
    by_event = {event: [name for e, name in trace if e is event] for event, _ in trace}
    forward = ["early", "tie_a", "tie_b", "late"]
    assert by_event[Event.INIT] == by_event[Event.BEFORE_FORWARD] == by_event[Event.BATCH_END] == forward
    assert by_event[Event.AFTER_FORWARD] == forward[::-1]


def test_optimizer_methods_stack_in_the_stated_order_whatever_order_they_are_given(data_dir):
    given = ["lookahead:k=3", "gradient_clipping", "sam:interval=2", "muon", "scale_schedule:ratio=0.5", "precision"]
    trainer = image_trainer_factory(data_dir, algorithms=lambda: build_methods(given), eval_data=None)(
        max_duration="4ba"
    )
    init_order = [name for event, name in trainer.engine.trace if event is Event.INIT]
    assert init_order == ["scale_schedule", "precision", "muon", "sam", "lookahead"]
    result = trainer.fit()
    assert result.steps == 2 and trainer.state.precision == "bf16"
    lookahead = trainer.state.optimizer
    assert isinstance(lookahead, Lookahead) and isinstance(lookahead.base_optimizer, SAM)
    assert isinstance(lookahead.base_optimizer.base_optimizer, Muon)
    assert lookahead.param_groups is lookahead.base_optimizer.base_optimizer.param_groups


def test_the_wrapped_optimizer_stack_resumes_exactly(tmp_path, data_dir):
    recipe = ["muon", "sam:interval=3", "lookahead:k=3", "ema:decay=0.9", "gradient_clipping"]
    assert_resumes_exactly(image_trainer_factory(data_dir, algorithms=lambda: build_methods(recipe)), tmp_path)


class _FirstInputs(Callback):
    """Every input tensor the model is called with, in order (including SAM's second pass)."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def on_fit_start(self, state) -> None:  # type: ignore[no-untyped-def]
        state.model.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].detach().clone()))


def test_sam_replays_the_mixed_batch_mixup_fed_the_model(data_dir):
    recorder = _FirstInputs()
    trainer = image_trainer_factory(
        data_dir, algorithms=lambda: build_methods(["mixup:alpha=1.0", "sam"]), eval_data=None
    )(max_duration="2ba", callbacks=[recorder])
    trainer.fit()
    first, second = recorder.inputs[0], recorder.inputs[1]
    assert torch.equal(first, second)  # SAM's second pass sees the same mixed images
    loaded = next(iter(trainer.state.train_data.batches(0)))[0]
    assert not torch.equal(first, loaded)  # ... which are not the images as loaded


class _TrainLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, state) -> None:  # type: ignore[no-untyped-def]
        self.losses.append(state.train_loss)


def test_a_realistic_recipe_composes_and_trains_on_real_data(data_dir):
    recipe = [
        "label_smoothing:smoothing=0.1",
        "ema:decay=0.9",
        "sam:rho=0.05,interval=2",
        "gradient_clipping:clipping_threshold=2.0",
    ]
    losses = _TrainLosses()
    trainer = image_trainer_factory(data_dir, algorithms=lambda: build_methods(recipe), n=512)(
        max_duration="3ep", callbacks=[losses]
    )
    result = trainer.fit()
    assert result.status == "completed" and result.steps == 48
    assert sum(losses.losses[-8:]) / 8 < sum(losses.losses[:8]) / 8 - 0.1  # it learns
    assert result.final["accuracy"] > 0.3  # 10 classes: far above chance (0.1) on these images


def test_conflicts_fail_before_any_work(data_dir):
    make = image_trainer_factory(data_dir, algorithms=lambda: build_methods(["swa", "ema"]))
    with pytest.raises(ConflictError, match="use one weight average"):
        make()
