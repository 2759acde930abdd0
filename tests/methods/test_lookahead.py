import pytest
import torch

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.lookahead import Lookahead, LookaheadMethod
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.optimization_loops import cifar_batches, plain_fit, same_weights, seeded_model, sgd


def test_slow_weights_follow_the_formula_on_a_hand_computed_sequence():
    # f(w) = w^2 / 2, so plain SGD with lr 0.1 multiplies w by 0.9 each step.
    w = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
    seen = []
    for _ in range(4):
        optimizer.zero_grad()
        (0.5 * w**2).sum().backward()
        optimizer.step()
        seen.append(float(w.detach()))
    # step 2: slow = 1 + 0.5 (0.81 - 1) = 0.905; step 4: slow = 0.905 + 0.5 (0.905 * 0.81 - 0.905) = 0.819025
    assert seen == pytest.approx([0.9, 0.905, 0.8145, 0.819025], abs=1e-6)
    assert float(optimizer.slow[0]) == pytest.approx(0.819025, abs=1e-6)


def test_slow_weights_start_from_the_weights_at_the_first_step():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = Lookahead(torch.optim.SGD([w], lr=0.1), k=2, alpha=0.5)
    with torch.no_grad():
        w.fill_(2.0)  # e.g. an initialization done after the optimizer was built
    for _ in range(2):
        optimizer.zero_grad()
        (0.5 * w**2).sum().backward()
        optimizer.step()
    assert float(w.detach()) == pytest.approx(2.0 + 0.5 * (2.0 * 0.81 - 2.0), abs=1e-6)


def test_inner_momentum_survives_the_sync():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    inner = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    optimizer = Lookahead(inner, k=1, alpha=0.5)
    (0.5 * w**2).sum().backward()
    optimizer.step()
    assert float(inner.state[w]["momentum_buffer"]) == pytest.approx(1.0)


def test_algorithm_equals_functional_form(data_dir):
    trainer = image_trainer_factory(data_dir, algorithms=lambda: [LookaheadMethod(k=3, alpha=0.6)], eval_data=None)()
    trainer.fit()
    assert isinstance(trainer.state.optimizer, Lookahead) and trainer.state.optimizer.steps == 8
    model = seeded_model()
    plain_fit(model, Lookahead(sgd(model), k=3, alpha=0.6), cifar_batches(data_dir), steps=8)
    assert same_weights(model, trainer.state.model)


def test_lookahead_resumes_exactly_mid_cycle(tmp_path, data_dir):
    # k=3 with a checkpoint after step 4: the slow weights and the step count must both survive.
    make = image_trainer_factory(data_dir, algorithms=lambda: [LookaheadMethod(k=3)])
    assert_resumes_exactly(make, tmp_path)


def test_mismatched_slow_weights_are_refused():
    a = Lookahead(torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1))
    a.slow = [torch.ones(3)]
    b = Lookahead(torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1))
    with pytest.raises(ValueError, match="do not match"):
        b.load_state_dict(a.state_dict())


def test_bad_parameters_fail_clearly():
    with pytest.raises(ConfigError, match="k must be >= 1"):
        build_method("lookahead:k=0")
    with pytest.raises(ConfigError, match="alpha must be in"):
        build_method("lookahead:alpha=1.5")
