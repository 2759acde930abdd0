import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.methods.surgery import (
    Unwrappable,
    both,
    find_modules,
    find_residual_branches,
    replace_modules,
    require_some,
    sample_inputs,
    unwrap_modules,
)
from hasten.models import CharGPT, CifarResNet, GPTConfig, MnistCNN
from tests.harness import TinyConvNet
from tests.methods.model_helpers import cifar_source


class Zoo(nn.Module):
    """Defined only here: every residual pattern surgery must recognise, and some it must not."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()  # shared: called several times, never a branch
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(8)
        self.project = nn.Conv2d(8, 16, 1, stride=2)
        self.main = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = x + self.branch(x)  # x + M(x)
        out = self.bn_a(self.conv_a(x))
        out += x  # in-place add with the identity
        x = self.relu(out)
        x = self.relu(self.main(x) + self.project(x))  # projection shortcut: not residual
        return self.head(x.mean((2, 3)))


def test_find_modules_by_type_and_by_predicate():
    model = Zoo()
    convs = [n for n, _ in find_modules(model, nn.Conv2d)]
    assert convs == ["stem", "branch.0", "conv_a", "project", "main"]
    strided = [n for n, _ in find_modules(model, lambda n, m: isinstance(m, nn.Conv2d) and m.stride == (2, 2))]
    assert strided == ["project", "main"]
    assert [n for n, _ in find_modules(model, both(nn.Conv2d, lambda n, m: n.startswith("branch")))] == ["branch.0"]
    assert [n for n, _ in find_modules(model, (nn.BatchNorm2d, nn.Linear))] == ["branch.1", "bn_a", "head"]


def test_replace_modules_counts_keeps_shapes_and_never_rewraps():
    model = Zoo()
    x = torch.randn(2, 3, 16, 16)
    before = model(x).shape

    class Wrap(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    # the predicate also matches the wrapper's name prefix: replaced modules must not be visited again
    count = replace_modules(model, lambda n, m: isinstance(m, nn.Conv2d) or n == "branch", lambda n, m: Wrap(m))
    assert count == 5  # "branch" (holding branch.0) + stem, conv_a, project, main
    assert isinstance(model.branch, Wrap) and isinstance(model.branch.inner[0], nn.Conv2d)
    assert model(x).shape == before
    assert replace_modules(model, nn.GRU, lambda n, m: nn.Identity()) == 0


def test_a_module_registered_twice_is_replaced_once_everywhere():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert replace_modules(model, nn.Linear, lambda n, m: nn.Sequential(m, nn.Tanh())) == 1
    assert model[0] is model[2] and isinstance(model[0], nn.Sequential)


def test_new_modules_take_the_device_and_dtype_they_replace():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).double()
    replace_modules(model, nn.Linear, lambda n, m: nn.Linear(4, 4))
    assert model[0].weight.dtype == torch.float64


def test_an_existing_optimizer_follows_the_surgery():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.1}, {"params": model[2].parameters(), "lr": 0.01}], momentum=0.9
    )
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    old = list(model[2].parameters())
    assert all(p in opt.state for p in old)
    # replace the second layer outright and wrap the first with a new gate
    replace_modules(model, lambda n, m: n == "2", lambda n, m: nn.Linear(8, 2), opt)
    gate = nn.Linear(8, 8)
    replace_modules(model, lambda n, m: n == "0", lambda n, m: nn.Sequential(m, gate), opt)
    held = [set(map(id, g["params"])) for g in opt.param_groups]
    assert not any(id(p) in held[1] or p in opt.state for p in old)  # gone, with their momentum
    assert {id(p) for p in model[2].parameters()} <= held[1]  # the new layer took their group
    assert {id(p) for p in gate.parameters()} <= held[0]  # the gate joined the wrapped layer's
    assert {id(p) for p in model[0][0].parameters()} <= held[0]  # the wrapped layer is still held once
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    opt.zero_grad()
    model(torch.randn(3, 4)).sum().backward()
    before = model[2].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[2].weight)


def test_residual_branches_of_a_model_defined_here():
    model = Zoo()
    found = find_residual_branches(model, torch.randn(2, 3, 16, 16))
    assert [(b.name, b.kind) for b in found] == [("branch", "branch"), ("bn_a", "branch")]
    assert found[0].output_shape == (2, 8, 16, 16)
    # bn_a is only the end of its branch: conv_a runs before it, outside any module
    assert [b.upstream for b in found] == [(), ("conv_a",)]


def test_post_activation_blocks_are_found_whole():
    class Block(nn.Module):  # out = f(x); out += x; return relu(out)
        def __init__(self, inplace: bool) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.act = nn.LeakyReLU(0.2, inplace=inplace)

        def forward(self, x):
            out = self.bn(self.conv(x))
            out += x
            return self.act(out)

    x = torch.randn(2, 4, 5, 5)
    for inplace in (False, True):
        model = nn.Sequential(nn.Identity(), Block(inplace))
        found = {b.name: b for b in find_residual_branches(model, x)}
        assert (found["1"].kind, found["1"].branch_end) == ("post", "bn")
        if not inplace:  # (in place, the sum is also the block's output: the block itself is the branch found)
            assert found["1.bn"].upstream == ("1.conv",)
        assert torch.equal(found["1"].activation(x), nn.functional.leaky_relu(x, 0.2))
        assert found["1"].activation(x) is not x


def test_residual_parts_of_the_shared_and_library_models():
    assert [(b.name, b.kind) for b in find_residual_branches(TinyConvNet(), torch.randn(2, 3, 32, 32))] == [
        ("block", "branch")
    ]
    resnet = [(b.name, b.kind) for b in find_residual_branches(CifarResNet(), torch.randn(2, 3, 32, 32))]
    assert ("stages.0.blocks.0", "block") in resnet and ("stages.2.blocks.0", "block") in resnet
    gpt = find_residual_branches(CharGPT(GPTConfig(layers=2, width=32, heads=2)), torch.randint(0, 65, (2, 16)))
    assert [b.name for b in gpt] == ["blocks.0.attn", "blocks.0.mlp", "blocks.1.attn", "blocks.1.mlp"]
    assert find_residual_branches(MnistCNN(), torch.randn(2, 1, 28, 28)) == []


def test_probing_changes_nothing():
    model = Zoo().train()
    stats = model.branch[1].running_mean.clone()
    x = torch.randn(2, 3, 16, 16) + 5
    rng = torch.get_rng_state()
    find_residual_branches(model, x)
    assert model.training and model.branch[1].training
    assert torch.equal(model.branch[1].running_mean, stats)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.branch._forward_hooks and not model.branch._forward_pre_hooks


def test_sample_inputs_takes_the_first_inputs_of_epoch_0_without_touching_the_rng(data_dir):
    source = cifar_source(data_dir)
    rng = torch.get_rng_state()
    taken = sample_inputs(source, 40)
    assert torch.equal(torch.get_rng_state(), rng)
    first, second = list(source.batches(0))[:2]
    assert torch.equal(taken, torch.cat([first[0], second[0][:8]]))
    with pytest.raises(ConfigError):
        sample_inputs(source, 0)


def test_unwrap_undoes_an_unwrappable_wrapper_exactly():
    class Scale(Unwrappable):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

        def unwrap(self):
            return self.inner

    model = TinyConvNet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert replace_modules(model, nn.Conv2d, lambda n, m: Scale(m)) == 3
    assert unwrap_modules(model, Scale) == 3
    assert [m for m in model.modules() if isinstance(m, nn.Conv2d)] == convs
    assert not any(isinstance(m, Scale) for m in model.modules())


def test_a_method_that_would_change_nothing_refuses_with_one_line():
    with pytest.raises(ConfigError) as info:
        require_some(0, "blurpool", "strided convolutions", "drop it for this model")
    assert "blurpool found no strided convolutions" in str(info.value) and "\n" not in str(info.value)
    assert require_some(2, "x", "y", "z") == 2
