import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hasten.errors import ConfigError
from hasten.methods import build_method
from hasten.methods.gated_linear_units import (
    GatedLinearUnits,
    GatedMLP,
    apply_gated_linear_units,
    gated_hidden_size,
    recognise_mlp,
)
from hasten.models import MLP as LibraryMLP
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


class FunctionalMLP(nn.Module):
    """Defined only here: the activation is a function call, not a child module; dropout at the end."""

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.drop(self.down(F.silu(self.up(x))))


class NotAnMLP(nn.Module):
    """Two matching Linear layers, but a residual inside: must be left alone."""

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class Mixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ffn = FunctionalMLP()
        self.seq = nn.Sequential(nn.Linear(12, 24), nn.GELU(approximate="tanh"), nn.Dropout(0.2), nn.Linear(24, 12))
        self.res = NotAnMLP()
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        return self.head(self.res(self.seq(self.ffn(x))))


def test_hidden_size_keeps_the_parameter_count():
    assert gated_hidden_size(512) == 344  # 512 * 2/3 = 341.3, rounded up to a multiple of 8
    assert gated_hidden_size(48, 2 / 3, 1) == 32
    with pytest.raises(ConfigError):
        gated_hidden_size(48, 0)


def test_gated_mlp_is_the_papers_formula():
    torch.manual_seed(0)
    glu = GatedMLP(6, 5, 4, F.gelu, bias=False)
    x = torch.randn(3, 6)
    w, v = glu.w_in.weight[:5], glu.w_in.weight[5:]
    assert torch.allclose(glu(x), (F.gelu(x @ w.T) * (x @ v.T)) @ glu.w_out.weight.T, atol=1e-6)


def test_recognises_plain_mlps_whatever_their_class():
    parts = recognise_mlp(FunctionalMLP())
    assert parts is not None and parts.activation is F.silu and parts.dropout == 0.1
    seq = recognise_mlp(Mixer().seq)
    assert seq.hidden_dropout == 0.2 and seq.activation(torch.tensor([1.0])) == F.gelu(
        torch.tensor([1.0]), approximate="tanh"
    )
    assert recognise_mlp(NotAnMLP()) is None
    assert recognise_mlp(small_gpt().blocks[0].attn) is None


def test_surgery_on_a_model_defined_here():
    torch.manual_seed(0)
    model = Mixer()
    before = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_children()}
    up_std = float(model.ffn.up.weight.detach().std())
    assert apply_gated_linear_units(model, multiple_of=1) == 2
    assert isinstance(model.ffn, GatedMLP) and isinstance(model.seq, GatedMLP) and isinstance(model.res, NotAnMLP)
    assert (model.ffn.hidden, model.seq.hidden) == (32, 16)  # 2/3 of 48 and of 24
    assert model.ffn.activation is F.silu and model.ffn.dropout.p == 0.1 and model.seq.hidden_dropout.p == 0.2
    assert model.ffn.w_in.bias is None  # no biases, as in the paper
    after = sum(p.numel() for p in model.ffn.parameters())
    assert after == 3 * 12 * 32 and after <= before["ffn"]  # the biases are gone, the matrices match
    assert abs(float(model.ffn.w_in.weight.detach().std()) - up_std) < 0.2 * up_std  # the model's init scale is kept
    assert model(torch.randn(5, 12)).shape == (5, 3)


def test_library_gpt_and_an_existing_optimizer():
    gpt = small_gpt()
    opt = torch.optim.AdamW(gpt.parameters(), lr=1e-3)
    gpt(torch.randint(0, 65, (2, 8))).sum().backward()
    opt.step()
    old = [p for b in gpt.blocks for p in b.mlp.parameters()]
    assert isinstance(gpt.blocks[0].mlp, LibraryMLP)
    assert apply_gated_linear_units(gpt, optimizer=opt) == 2
    assert gpt.blocks[1].mlp.hidden == 88  # 4 * 32 * 2/3 = 85.3 -> 88
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in gpt.parameters()} and not any(p in opt.state for p in old)
    # GPT's scaled residual init (0.02 / sqrt(2 * layers) = 0.01) carried over; nn.Linear's default would be ~0.06
    assert abs(float(gpt.blocks[0].mlp.w_out.weight.detach().std()) - 0.01) < 0.002


def test_algorithm_refuses_a_model_without_mlps(data_dir):
    with pytest.raises(ConfigError, match="gated_linear_units found no plain MLP"):
        image_trainer_factory(data_dir, lambda: [GatedLinearUnits()])()
    with pytest.raises(ConfigError):
        build_method("gated_linear_units:hidden_ratio=0")


def test_functional_form_equals_the_algorithm(data_dir):
    trainer = gpt_trainer_factory(data_dir, lambda: [GatedLinearUnits()])()
    trainer.fit()
    torch.manual_seed(0)
    model = small_gpt()
    reseed()
    apply_gated_linear_units(model)
    train_by_hand(model, gpt_source(data_dir), optimizer=lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3))
    assert_same_weights(weights_of(trainer.state.model), weights_of(model))


def test_gated_linear_units_resume_exactly(tmp_path, data_dir):
    assert_resumes_exactly(gpt_trainer_factory(data_dir, lambda: [GatedLinearUnits()]), tmp_path)
