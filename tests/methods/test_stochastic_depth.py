import math

import pytest
import torch
from torch import nn

from hasten.core.composition import check_composition
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.compile import Compile
from hasten.methods.stochastic_depth import (
    BranchEnd,
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
        image_trainer_factory(
            data_dir,
            lambda: [StochasticDepth()],
            model=lambda: nn.Sequential(
                nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
            ),
        )()
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
    assert_resumes_exactly(
        image_trainer_factory(data_dir, lambda: [StochasticDepth(drop_path_rate=0.5, mode=mode)]), tmp_path
    )


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


# ------------------------------------------------ post-activation blocks: act(x + f(x))
class CifarBasicBlock(nn.Module):
    """Defined only here, the common CIFAR ResNet block: ``out = f(x); out += shortcut(x); relu(out)``."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.nn.functional.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return torch.nn.functional.relu(out)


class TorchvisionStyleBottleneck(nn.Module):
    """Defined only here, torchvision's Bottleneck layout with one shared ``nn.ReLU`` module."""

    def __init__(self, channels: int, inplace: bool) -> None:
        super().__init__()
        width = channels // 4
        self.conv1, self.bn1 = nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=inplace)
        self.downsample = None

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out = out + identity
        return self.relu(out)


def post_block_net(style: str) -> nn.Module:
    torch.manual_seed(0)
    if style == "cifar":  # the middle block has a projection shortcut: nothing to skip to, left alone
        blocks = [CifarBasicBlock(8, 8), CifarBasicBlock(8, 16, stride=2), CifarBasicBlock(16, 16)]
    else:
        blocks = [TorchvisionStyleBottleneck(16, inplace=style == "inplace") for _ in range(2)]
    width = 8 if style == "cifar" else 16
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), *blocks)


def count_conv_calls(module: nn.Module) -> list[int]:
    """A one-element counter of the Conv2d calls inside ``module`` (forward hooks)."""
    counter = [0]
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            conv.register_forward_hook(lambda *_: counter.__setitem__(0, counter[0] + 1))
    return counter


@pytest.mark.parametrize("style", ["cifar", "plain", "inplace"])
def test_a_dropped_post_activation_block_runs_none_of_its_convolutions(style):
    model = post_block_net(style)
    x = torch.randn(4, 3, 8, 8)
    expected = model.eval()(x)
    wrapped = apply_stochastic_depth(model, x, drop_path_rate=0.5)
    parts = [m for m in model.modules() if isinstance(m, StochasticDepthBranch)]
    assert wrapped == 2 and [p.kind for p in parts] == ["post", "post"]
    assert torch.equal(model.eval()(x), expected)  # eval: the plain network
    model.train()
    for part in parts:
        block, convs = part.module, count_conv_calls(part.module)
        inputs = torch.relu(torch.randn(4, block.conv1.in_channels, 8, 8))
        with torch.no_grad():
            torch.manual_seed(3)
            outs = [(part(inputs), convs[0]) for _ in range(40)]
        runs = [calls_after - calls_before for (_, calls_before), (_, calls_after) in zip([(None, 0)] + outs, outs)]
        dropped = [out for (out, _), ran in zip(outs, runs) if ran == 0]
        assert 0 < len(dropped) < 40 and set(runs) == {0, sum(isinstance(m, nn.Conv2d) for m in block.modules())}
        assert all(torch.equal(out, torch.relu(inputs)) for out in dropped)  # the shortcut, activated


def test_a_kept_post_activation_block_scales_its_branch_before_the_activation():
    block = CifarBasicBlock(4, 4).train()
    with pytest.raises(ConfigError, match="BranchEnd"):  # the branch end must be wrapped first
        StochasticDepthBranch(block, 0.5, kind="post", branch_end="bn2", activation=torch.relu)
    model = nn.Sequential(nn.Identity(), block)
    x = torch.relu(torch.randn(2, 4, 6, 6))
    apply_stochastic_depth(model, x, drop_path_rate=0.5, drop_distribution="uniform")
    inner = model[1].module
    model.train()
    for _ in range(50):
        with torch.no_grad():
            out = model(x)
        if not torch.equal(out, torch.relu(x)):
            break
    with torch.no_grad():
        branch = inner.bn2.module(inner.conv2(torch.relu(inner.bn1(inner.conv1(x)))))
    # bn in train mode uses batch statistics: the same batch gives the same branch output
    assert torch.allclose(out, torch.relu(x + branch / 0.5), atol=1e-5)


def test_post_activation_blocks_in_sample_mode_drop_the_branch_per_sample():
    model = post_block_net("cifar")
    x = torch.randn(64, 3, 8, 8)
    apply_stochastic_depth(model, x, drop_path_rate=0.5, mode="sample", drop_distribution="uniform")
    part = model[2]
    assert part.kind == "post"
    inputs = torch.relu(torch.randn(64, 8, 8, 8))
    with torch.no_grad():
        out = part.train()(inputs)
    same = [torch.equal(out[i], torch.relu(inputs[i])) for i in range(64)]
    assert 10 < sum(same) < 54  # about half the samples got only the shortcut


def test_hasten_cifar_resnet_blocks_skip_their_convolutions_when_dropped():
    model = CifarResNet(blocks=(1, 1, 1))
    x = torch.randn(2, 3, 32, 32)
    assert apply_stochastic_depth(model, x, drop_path_rate=0.5) == 3
    part = model.stages[0].blocks[0]
    assert isinstance(part, StochasticDepthBranch) and part.kind == "block"
    convs = count_conv_calls(part.module)
    inputs = torch.randn(2, 32, 16, 16)
    torch.manual_seed(0)
    with torch.no_grad():
        results = []
        for _ in range(30):
            before = convs[0]
            out = part.train()(inputs)
            results.append((convs[0] - before, torch.equal(out, inputs)))
    assert {(2, False), (0, True)} == set(results)  # kept: both convs ran; dropped: none, the input passes


def test_block_mode_refuses_a_branch_whose_convolutions_run_outside_any_module():
    class Flat(nn.Module):  # the residual block written inline in the model's forward
        def __init__(self):
            super().__init__()
            self.conv_a, self.bn_a = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            out = self.bn_a(self.conv_a(x))
            out += x
            return torch.relu(out)

    x = torch.randn(2, 4, 6, 6)
    with pytest.raises(ConfigError, match=r"'bn_a' is only the end of its branch \(conv_a run before it") as info:
        apply_stochastic_depth(Flat(), x)
    assert "\n" not in str(info.value)
    model = Flat()
    assert apply_stochastic_depth(model, x, mode="sample") == 1 and isinstance(model.bn_a, StochasticDepthBranch)


def test_remove_stochastic_depth_restores_post_activation_blocks():
    model = post_block_net("cifar")
    names = [n for n, _ in model.named_parameters()]
    apply_stochastic_depth(model, torch.randn(2, 3, 8, 8))
    assert remove_stochastic_depth(model) == 2
    assert [n for n, _ in model.named_parameters()] == names
    assert not any(isinstance(m, (StochasticDepthBranch, BranchEnd)) for m in model.modules())


def test_post_activation_blocks_resume_exactly(tmp_path, data_dir):
    def model():
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            CifarBasicBlock(8, 8),
            CifarBasicBlock(8, 8),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 10),
        )

    assert_resumes_exactly(
        image_trainer_factory(data_dir, lambda: [StochasticDepth(drop_path_rate=0.5)], model=model), tmp_path
    )
