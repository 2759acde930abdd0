import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config
from torch import nn
from torch._dynamo.testing import CompileCounter

from hasten.core.callback import Callback
from hasten.core.composition import check_composition
from hasten.errors import ConfigError, ConflictError
from hasten.methods import build_method
from hasten.methods.compile import Compile, apply_compile, check_compile, is_compiled, remove_compile
from hasten.methods.layer_freezing import LayerFreezing
from hasten.methods.stochastic_depth import StochasticDepth
from tests.harness import TinyConvNet, assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import assert_same_weights, cifar_source, reseed, train_by_hand, weights_of

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


class Small(nn.Module):
    """Defined only here: a conv, a norm, a residual add and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = self.conv(x)
        return self.head((h + torch.relu(self.norm(h))).mean((2, 3)))


@pytest.fixture
def no_compiler():
    """A machine without a C++ compiler, as inductor sees it (and no cached kernels to hide that)."""
    torch._dynamo.reset()
    with inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",), "force_disable_caches": True}):
        yield
    torch._dynamo.reset()


@pytest.mark.filterwarnings("ignore:dynamo_pgo force disabled")
def test_a_machine_that_cannot_compile_fails_at_once_with_one_line(no_compiler, data_dir):
    with pytest.raises(ConfigError) as info:
        check_compile("cpu")
    message = str(info.value)
    assert "\n" not in message and "cannot compile on this machine" in message
    assert "No working C++ compiler" in message and "gcc" in message
    with pytest.raises(ConfigError, match="cannot compile"):  # the Trainer stops at INIT, before training
        image_trainer_factory(data_dir, lambda: [Compile()])()


class Residual(nn.Module):
    """Defined only here, and kept tiny: inductor compiles a C++ kernel per fused group of ops."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        return x + torch.relu(self.lin(x)) * 0.5


def test_inductor_gives_the_eager_outputs():
    torch.manual_seed(0)
    eager, model = Residual(), Residual()
    model.load_state_dict(eager.state_dict())
    keys = list(model.state_dict())
    assert apply_compile(model) is model and is_compiled(model)
    assert list(model.state_dict()) == keys  # same module, same checkpoint keys
    x = torch.randn(5, 6)
    with torch.no_grad():  # forward only: one small inductor compile keeps this test short
        out, expected = model(x), eager(x)
    assert torch.allclose(out, expected, atol=1e-5)
    remove_compile(model)
    assert not is_compiled(model) and torch.equal(model(x), eager(x))


def test_compiled_autograd_gives_the_eager_gradients():
    torch.manual_seed(0)
    eager, model = Small(), Small()
    model.load_state_dict(eager.state_dict())
    apply_compile(model, backend="aot_eager")  # traces forward and backward like inductor, without codegen
    x = torch.randn(4, 3, 12, 12)
    model(x).square().sum().backward()
    eager(x).square().sum().backward()
    for (name, a), b in zip(model.named_parameters(), eager.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_containers_really_compile_where_module_compile_does_not():
    x = torch.randn(3, 4)
    plain, ours = CompileCounter(), CompileCounter()
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    seq.compile(backend=plain)
    seq(x)
    other = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    apply_compile(other, backend=ours, check=False)
    assert torch.equal(other(x), other._call_impl(x))
    assert plain.frame_count == 0 and ours.frame_count == 1


class WarmupSpy(Callback):
    def __init__(self) -> None:
        self.first = None

    def on_batch_start(self, state) -> None:
        if self.first is None:
            self.first = state.warmup_steps_remaining


def test_compile_warmup_is_charged_to_the_warmup_bucket_in_every_run(tmp_path, data_dir):
    make = image_trainer_factory(data_dir, lambda: [Compile(backend="eager", warmup_steps=2)])
    spy = WarmupSpy()
    result = make(max_duration="4ba", callbacks=[spy], checkpoint_dir=tmp_path).fit()
    assert spy.first == 2 and result.timing["warmup"] > 0 and result.steps == 4
    resumed_spy = WarmupSpy()
    resumed = make(max_duration="6ba", callbacks=[resumed_spy], checkpoint_dir=tmp_path, resume_from=tmp_path)
    resumed.fit()
    assert resumed_spy.first == 2  # a resumed process compiles afresh: its first steps are warm-up again


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = image_trainer_factory(data_dir, lambda: [build_method("compile:backend=eager")])()
    trainer.fit()
    torch.manual_seed(0)
    model = TinyConvNet()
    reseed()
    apply_compile(model, backend="eager")
    train_by_hand(model, cifar_source(data_dir))
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_conflicts_are_caught():
    for other in (LayerFreezing(), StochasticDepth(mode="block")):
        with pytest.raises(ConflictError, match="compile"):
            check_composition([Compile(), other])
    check_composition([Compile(), StochasticDepth(mode="sample")])
    with pytest.raises(ConfigError):
        build_method("compile:mode=fastest")


def test_compile_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(image_trainer_factory(data_dir, lambda: [Compile(backend="eager")]), tmp_path)
