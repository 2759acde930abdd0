import math

import pytest
import torch
from torch import nn

from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.compile import Compile
from hasten.methods.layer_freezing import (
    FreezeOutPlan,
    LayerFreezing,
    UpdateScaler,
    freeze_layers,
    freeze_times,
    freezeout_lr_factor,
)
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import (
    assert_same_weights,
    cifar_source,
    reseed,
    small_gpt,
    train_by_hand,
    weights_of,
)

TINY_UNITS = ["stem.0", "stem.1", "down.0", "down.1", "block.0", "block.1", "head"]


class Tower(nn.Module):
    """Defined only here: parameters held directly by a custom module, and a parameter-free layer."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(6))
        self.inner = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.LayerNorm(6))
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(self.inner(x * self.scale))


def test_freeze_times_follow_freezeout():
    assert freeze_times(5, 0.5, "linear") == pytest.approx([0.5, 0.625, 0.75, 0.875, 1.0])
    cubic = freeze_times(3, 0.8, "cubic")
    assert cubic == pytest.approx([0.512, 0.9**3, 1.0])  # t_0 is "pre-cubed", as in FreezeOut
    assert freeze_times(1) == [1.0]
    with pytest.raises(ConfigError):
        freeze_times(3, 0.0)
    with pytest.raises(ConfigError):
        freeze_times(3, 0.5, "quartic")


def test_layer_learning_rate_anneals_to_zero_at_its_freeze_time():
    assert freezeout_lr_factor(0.0, 0.5, scale_lr=False) == 1.0
    assert freezeout_lr_factor(0.25, 0.5, scale_lr=False) == pytest.approx(0.5)
    assert freezeout_lr_factor(0.5, 0.5, scale_lr=False) == pytest.approx(0.0)
    assert freezeout_lr_factor(0.0, 0.5) == pytest.approx(2.0)  # scaled: 1 / t_i
    assert freezeout_lr_factor(0.7, 1.0) == 1.0  # the last layer follows the run's own schedule


def test_units_of_a_model_defined_here_and_tied_weights():
    plan = FreezeOutPlan.build(Tower(), 0.5, "linear")
    assert plan.names == ["", "inner.0", "inner.2", "out"]  # the root holds `scale` itself
    assert plan.times == pytest.approx([0.5, 2 / 3, 5 / 6, 1.0])
    gpt = small_gpt()
    frozen = freeze_layers(gpt, 0.99, 0.5, "linear")
    assert "token_embedding" in frozen and gpt.token_embedding.weight.requires_grad  # tied to the head: kept
    assert not gpt.position_embedding.weight.requires_grad
    assert gpt.lm_head.weight.requires_grad and gpt.ln_f.weight.requires_grad is False


class FrozenSpy(Callback):
    def __init__(self) -> None:
        self.frozen, self.snapshots = [], []

    def on_batch_start(self, state) -> None:
        model = state.model
        self.frozen.append(
            [
                n
                for n, m in model.named_modules()
                if n in TINY_UNITS and not any(p.requires_grad for p in m.parameters(recurse=False))
            ]
        )

    def on_batch_end(self, state) -> None:
        self.snapshots.append({k: v.clone() for k, v in state.model.state_dict().items()})


def test_units_freeze_at_the_scheduled_steps_and_stop_changing(data_dir):
    spy = FrozenSpy()
    make = image_trainer_factory(data_dir, lambda: [LayerFreezing(0.25, "linear", lr_annealing=False)])
    trainer = make(callbacks=[spy])
    trainer.fit()
    times = freeze_times(7, 0.25, "linear")
    for step, frozen in enumerate(spy.frozen):  # unit i is frozen from step ceil(8 * t_i) on
        assert frozen == [n for n, t in zip(TINY_UNITS, times) if math.ceil(8 * t) <= step], step
    final = spy.snapshots[-1]
    assert torch.equal(final["stem.0.weight"], spy.snapshots[1]["stem.0.weight"])  # frozen at step 2
    assert not torch.equal(spy.snapshots[1]["stem.0.weight"], spy.snapshots[0]["stem.0.weight"])
    assert torch.equal(final["stem.1.running_mean"], spy.snapshots[2]["stem.1.running_mean"])  # eval mode
    assert not torch.equal(final["head.weight"], spy.snapshots[-2]["head.weight"])  # never frozen


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-2),
        lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
    ],
)
def test_scaling_the_update_equals_scaling_the_learning_rate(make_optimizer):
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_optimizer(a.parameters(), 0.1), make_optimizer(b.parameters(), 0.1 * 0.3)
    for _ in range(3):
        x = torch.randn(8, 5)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
        scaler = UpdateScaler([(list(a.parameters()), 0.3)])
        opt_a.step()
        scaler.apply()
        opt_b.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6) and torch.allclose(a.bias, b.bias, atol=1e-6)


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(
        data_dir, lambda: [build_method("layer_freezing:freeze_start=0.25,scaling=linear")]
    )()
    trainer.fit()
    torch.manual_seed(0)
    model = TinyConvNet()
    reseed()
    plan = FreezeOutPlan.build(model, 0.25, "linear")
    factors = {}

    def on_batch(step, progress):
        plan.freeze(progress)
        factors["now"] = plan.lr_factors(progress)

    train_by_hand(
        model,
        cifar_source(data_dir),
        on_batch=on_batch,
        before_step=lambda step, opt: UpdateScaler(factors["now"]),
        after_step=lambda step, opt, scaler: scaler.apply(),
    )
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_conflicts_with_compile():
    with pytest.raises(ConflictError, match="layer_freezing.*compile|compile.*layer_freezing"):
        check_composition([LayerFreezing(), Compile()])


def test_layer_freezing_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [LayerFreezing(0.25, "linear")]), tmp_path)
