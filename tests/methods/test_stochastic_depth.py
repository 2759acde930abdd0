import math

import pytest
import torch
from torch import nn

from hasten.core.composition import check_composition
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.compile import Compile
from hasten.methods.stochastic_depth import (
    StochasticDepth,
    StochasticDepthBranch,
    apply_stochastic_depth,
    drop_path,
    drop_rates,
    remove_stochastic_depth,
)
from hasten.models import CharGPT, CifarResNet, GPTConfig
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import assert_same_weights, cifar_source, reseed, train_by_hand, weights_of


class Counted(nn.Module):
    """A residual branch that counts how often it really runs."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(width, width)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.tanh(self.lin(x))


class DeepResidualMLP(nn.Module):
    """Defined only here: five residual branches ``x + f(x)`` and a projection in front."""

    def __init__(self, depth: int = 5, width: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(4, width)
        self.layers = nn.ModuleList(Counted(width) for _ in range(depth))
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        x = self.embed(x)
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


def binomial_ok(hits: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(hits - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_linear_decay_rule_and_uniform_rates():
    assert drop_rates(4, 0.2) == pytest.approx([0.05, 0.1, 0.15, 0.2])  # l / L * p_L
    assert drop_rates(3, 0.3, "uniform") == [0.3, 0.3, 0.3]
    with pytest.raises(ConfigError):
        drop_rates(3, 1.0)


def test_drop_path_drops_samples_at_the_stated_rate_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(20_000, 3)
    out = drop_path(x, 0.3)
    dropped = int((out[:, 0] == 0).sum())
    assert binomial_ok(dropped, 20_000, 0.3)
    assert torch.allclose(out[out[:, 0] != 0], torch.full((1,), 1 / 0.7))  # survivors scaled by 1/keep
    assert abs(float(out.mean()) - 1.0) < 0.02
    assert drop_path(x, 0.3, training=False) is x


def test_block_mode_skips_the_branch_at_the_stated_rate_and_is_identity_at_eval():
    torch.manual_seed(0)
    inner = Counted(6)
    branch = StochasticDepthBranch(inner, 0.25, mode="block")
    x = torch.randn(3, 6)
    outs = [branch(x) for _ in range(4000)]
    dropped = sum(bool((o == 0).all()) for o in outs)
    assert binomial_ok(dropped, 4000, 0.25)
    assert inner.calls == 4000 - dropped  # a skipped branch costs nothing
    kept = next(o for o in outs if not (o == 0).all())
    assert torch.allclose(kept, inner(x) / 0.75)
    branch.eval()
    assert torch.equal(branch(x), inner(x))


def test_block_kind_returns_its_input_when_dropped():
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.f(x)

    block = Block()
    wrapped = StochasticDepthBranch(block, 0.5, mode="block", kind="block")
    x = torch.randn(2, 4)
    outs = [wrapped(x) for _ in range(200)]
    assert any(torch.equal(o, x) for o in outs)
    kept = next(o for o in outs if not torch.equal(o, x))
    assert torch.allclose(kept, x + block.f(x) / 0.5, atol=1e-6)
    assert torch.equal(wrapped.eval()(x), block(x))


def test_surgery_on_a_model_defined_here_follows_the_linear_rule():
    torch.manual_seed(0)
    model = DeepResidualMLP()
    x = torch.randn(16, 4)
    expected = model.eval()(x)
    assert apply_stochastic_depth(model, x, drop_path_rate=0.5) == 5
    assert [b.drop_prob for b in model.layers] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert torch.equal(model.eval()(x), expected)  # eval: the plain network
    model.train()
    for layer in model.layers:
        layer.module.calls = 0
    torch.manual_seed(1)
    for _ in range(2000):
        model(x)
    for layer in model.layers:  # each branch really ran at its survival rate
        assert binomial_ok(2000 - layer.module.calls, 2000, layer.drop_prob)
    assert remove_stochastic_depth(model) == 5
    assert all(isinstance(layer, Counted) for layer in model.layers)


def test_finds_blocks_and_branches_in_shared_and_library_models():
    tiny = TinyConvNet()
    assert apply_stochastic_depth(tiny, torch.randn(2, 3, 32, 32)) == 1
    assert isinstance(tiny.block, StochasticDepthBranch) and tiny.block.kind == "branch"
    resnet = CifarResNet()
    assert apply_stochastic_depth(resnet, torch.randn(2, 3, 32, 32), drop_path_rate=0.2) == 2
    blocks = [m for m in resnet.modules() if isinstance(m, StochasticDepthBranch)]
    assert [b.kind for b in blocks] == ["block", "block"]  # whole ResidualBlocks: a drop skips both convs
    assert [b.drop_prob for b in blocks] == pytest.approx([0.1, 0.2])
    gpt = CharGPT(GPTConfig(layers=2, width=32, heads=2))
    assert apply_stochastic_depth(gpt, torch.randint(0, 65, (2, 16)), mode="sample") == 4
    assert isinstance(gpt.blocks[1].mlp, StochasticDepthBranch)
    only_mlps = CharGPT(GPTConfig(layers=2, width=32, heads=2))
    assert apply_stochastic_depth(only_mlps, torch.randint(0, 65, (2, 16)), target=lambda n, m: n.endswith("mlp")) == 2


def test_algorithm_refuses_a_model_without_residuals(data_dir):
    with pytest.raises(ConfigError, match="stochastic_depth found no residual"):
        image_trainer_factory(data_dir, lambda: [StochasticDepth()], model=lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)))()
    with pytest.raises(ConfigError):
        build_method("stochastic_depth:mode=layer")


def test_block_mode_conflicts_with_compile_and_sample_mode_does_not():
    with pytest.raises(ConflictError) as info:
        check_composition([StochasticDepth(), Compile()])
    assert "stochastic_depth" in str(info.value) and "compile" in str(info.value)
    check_composition([StochasticDepth(mode="sample"), Compile()])


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [StochasticDepth(drop_path_rate=0.5)])()
    trainer.fit()
    torch.manual_seed(0)
    model = TinyConvNet()
    reseed()
    source = cifar_source(data_dir)
    apply_stochastic_depth(model, next(iter(source.batches(0)))[0][:2], drop_path_rate=0.5)
    train_by_hand(model, source)
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


@pytest.mark.parametrize("mode", ["block", "sample"])
def test_stochastic_depth_resumes_exactly(tmp_path, data_dir, mode):
    assert_resumes_exactly(image_trainer_factory(
        data_dir, lambda: [StochasticDepth(drop_path_rate=0.5, mode=mode)]), tmp_path)


def test_block_mode_refuses_a_branch_that_changes_shape_and_sample_mode_takes_it():
    class Bottleneck(nn.Module):
        def __init__(self):
            super().__init__()
            self.down, self.up = nn.Linear(8, 2), nn.Linear(2, 8)

        def forward(self, x):
            return x + self.up(torch.relu(self.down(x)))  # the branch found is `up`: (.., 2) -> (.., 8)

    x = torch.randn(4, 8)
    with pytest.raises(ConfigError, match="block mode needs"):
        apply_stochastic_depth(Bottleneck(), x)
    model = Bottleneck()
    assert apply_stochastic_depth(model, x, mode="sample") == 1 and isinstance(model.up, StochasticDepthBranch)
