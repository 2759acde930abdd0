import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.low_precision_norm import (
    LowPrecisionGroupNorm,
    LowPrecisionLayerNorm,
    LowPrecisionNorm,
    apply_low_precision_norm,
    is_low_precision,
    remove_low_precision_norm,
)
from tests.harness import assert_resumes_exactly, image_trainer_factory
from tests.methods.model_helpers import (
    assert_same_weights,
    gpt_source,
    gpt_trainer_factory,
    reseed,
    small_gpt,
    train_by_hand,
    weights_of,
)

BF16 = torch.bfloat16


class HandLayerNorm(nn.Module):
    """nanoGPT's LayerNorm with an optional bias, written in the test: not an nn.LayerNorm."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class Normed(nn.Module):
    """Defined only here: every kind of norm the method covers, and a batch norm it leaves."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.group = nn.GroupNorm(2, 8)
        self.batch = nn.BatchNorm2d(8)
        self.proj = nn.Linear(8, 16)
        self.layer = nn.LayerNorm(16)
        self.hand = HandLayerNorm(16)
        self.rms = nn.RMSNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.batch(self.group(self.conv(x))).mean((2, 3))
        return self.head(self.rms(self.hand(self.layer(self.proj(x)))))


class NormDtypes(TorchFunctionMode):
    """Records the dtypes each normalisation function is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (F.layer_norm, F.group_norm, F.rms_norm):
            tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
            self.calls.append((func.__name__, {t.dtype for t in tensors}))
        return func(*args, **kwargs)


def test_swaps_exactly_the_norms_and_keeps_parameters_and_keys():
    model = Normed()
    keys, params = list(model.state_dict()), [id(p) for p in model.parameters()]
    assert apply_low_precision_norm(model) == 4
    assert isinstance(model.layer, LowPrecisionLayerNorm) and isinstance(model.group, LowPrecisionGroupNorm)
    assert is_low_precision(model.hand) and is_low_precision(model.rms) and not is_low_precision(model.batch)
    assert list(model.state_dict()) == keys and [id(p) for p in model.parameters()] == params
    assert apply_low_precision_norm(model) == 0  # already done
    assert remove_low_precision_norm(model) == 4
    assert type(model.layer) is nn.LayerNorm and type(model.hand) is HandLayerNorm
    gpt = small_gpt()
    assert apply_low_precision_norm(gpt) == 5  # two per block and the final one


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # the stock reference's RMSNorm
def test_norms_run_entirely_in_bf16_under_autocast_and_match_fp32():
    torch.manual_seed(0)
    reference, model = Normed(), Normed()
    model.load_state_dict(reference.state_dict())
    with torch.no_grad():  # non-trivial affine parameters
        for norm in (reference.layer, reference.group, reference.hand, reference.rms):
            norm.weight.uniform_(0.5, 1.5)
    model.load_state_dict(reference.state_dict())
    apply_low_precision_norm(model)
    x = torch.randn(4, 3, 8, 8)
    spy = NormDtypes()
    with torch.autocast("cpu", dtype=BF16), spy:
        out = model(x)
    assert sorted(name for name, _ in spy.calls) == ["group_norm", "layer_norm", "layer_norm", "rms_norm"]
    assert all(dtypes == {BF16} for _, dtypes in spy.calls)  # input, weight and bias all bf16
    stock = NormDtypes()
    with torch.autocast("cpu", dtype=BF16), stock:
        reference(x)
    assert any(torch.float32 in dtypes for _, dtypes in stock.calls)  # stock norms keep fp32 weights
    assert out.dtype == BF16
    expected = reference(x)
    assert torch.allclose(out.float(), expected, atol=0.06, rtol=0.05)
    layer_out = model.layer.forward  # the norm alone, against fp32 maths
    y = torch.randn(32, 16) * 3 + 1
    with torch.autocast("cpu", dtype=BF16):
        low = layer_out(y)
    assert low.dtype == BF16 and (low.float() - reference.layer(y)).abs().max() < 0.05


def test_outside_autocast_nothing_changes_and_gradients_reach_fp32_weights():
    torch.manual_seed(0)
    reference, model = Normed(), Normed()
    model.load_state_dict(reference.state_dict())
    apply_low_precision_norm(model)
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(model(x), reference(x))
    with torch.autocast("cpu", dtype=BF16):
        model(x).float().sum().backward()
    reference(x).sum().backward()
    assert model.layer.weight.dtype == torch.float32 and model.layer.weight.grad.dtype == torch.float32
    assert torch.allclose(model.hand.weight.grad, reference.hand.weight.grad, atol=0.05, rtol=0.05)


def test_algorithm_refuses_fp32_runs_and_models_without_norms(data_dir):
    with pytest.raises(ConfigError, match="does nothing at precision 'fp32'"):
        gpt_trainer_factory(data_dir, lambda: [LowPrecisionNorm()])().fit()
    with pytest.raises(ConfigError, match="low_precision_norm found no LayerNorm"):
        image_trainer_factory(data_dir, lambda: [LowPrecisionNorm()], precision="bf16")()


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = gpt_trainer_factory(data_dir, lambda: [LowPrecisionNorm()], precision="bf16")()
    trainer.fit()
    torch.manual_seed(0)
    model = small_gpt()
    reseed()
    apply_low_precision_norm(model)
    train_by_hand(
        model, gpt_source(data_dir), precision="bf16", optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3)
    )
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_low_precision_norm_resumes_exactly(tmp_path, data_dir):
    assert_resumes_exactly(gpt_trainer_factory(data_dir, lambda: [LowPrecisionNorm()], precision="bf16"), tmp_path)


def test_composes_with_the_precision_method(data_dir):
    result = gpt_trainer_factory(data_dir, lambda: [build_method("precision"), LowPrecisionNorm()])(
        max_duration="2ba"
    ).fit()
    assert result.status == "completed"
