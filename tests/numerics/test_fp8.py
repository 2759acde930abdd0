"""FP8 linears: rounding to representable values, clipping, gradients in e5m2, the backend choice."""

import pytest
import torch
from torch import nn

from hasten.errors import ConfigError
from hasten.models.gpt import CharGPT, GPTConfig
from hasten.numerics.fp8 import (
    E4M3,
    E5M2,
    FP8Format,
    FP8Linear,
    apply_fp8_linears,
    fp8_hardware_available,
    fp8_linear,
    hidden_linears,
    resolve_backend,
    round_fp8,
    to_fp8,
)


def all_values(dtype: torch.dtype) -> torch.Tensor:
    """Every finite value of an FP8 dtype, from its 256 bit patterns."""
    values = torch.arange(256, dtype=torch.int16).to(torch.uint8).view(dtype).float()
    return values[torch.isfinite(values)]


@pytest.mark.parametrize("dtype", [E4M3, E5M2])
def test_rounding_lands_on_representable_values_and_is_nearest(dtype):
    grid = all_values(dtype).unique()
    x = torch.randn(4000) * torch.logspace(-6, 4, 4000)
    rounded = round_fp8(x, dtype)
    assert torch.isin(rounded, grid).all()
    inside = x.abs() <= FP8Format(dtype).max
    distance_to_grid = (x[inside, None] - grid[None]).abs().min(dim=1).values
    assert torch.allclose((x[inside] - rounded[inside]).abs(), distance_to_grid)


@pytest.mark.parametrize("dtype", [E4M3, E5M2])
def test_values_beyond_the_range_clip_instead_of_overflowing(dtype):
    limit = FP8Format(dtype).max
    x = torch.tensor([1e9, -1e9, limit * 1.5, -limit * 3])
    rounded = round_fp8(x, dtype)
    assert torch.isfinite(rounded).all()
    assert rounded.tolist() == [limit, -limit, limit, -limit]


def test_a_plain_e5m2_cast_would_overflow_where_ours_clips():
    x = torch.tensor([1e6])
    assert torch.isinf(x.to(E5M2).float()).all()
    assert round_fp8(x, E5M2).item() == FP8Format(E5M2).max


def test_format_facts():
    assert FP8Format(E4M3).max == 448 and FP8Format(E5M2).max == 57344
    assert FP8Format(E4M3).min_subnormal == 2**-9 and FP8Format(E5M2).min_subnormal == 2**-16
    assert round_fp8(torch.tensor([2**-9, 2**-11]), E4M3).tolist() == [2**-9, 0.0]


def test_emulated_linear_matches_a_matmul_of_rounded_operands_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 32, requires_grad=True)
    w = torch.randn(16, 32, requires_grad=True)
    y = fp8_linear(x, w, scale=0.25, backend="emulated")
    assert torch.allclose(y, 0.25 * round_fp8(x) @ round_fp8(w).t(), atol=1e-5)
    grad = torch.randn_like(y)
    y.backward(grad)
    g = round_fp8(grad, E5M2).reshape(-1, 16)
    assert torch.allclose(x.grad.reshape(-1, 32), 0.25 * g @ round_fp8(w), atol=1e-5)
    assert torch.allclose(w.grad, 0.25 * g.t() @ round_fp8(x).reshape(-1, 32), atol=1e-4)
    assert not torch.allclose(w.grad, 0.25 * grad.reshape(-1, 16).t() @ x.detach().reshape(-1, 32), atol=1e-4)


def test_hidden_linears_leave_the_first_and_last_layers_out():
    model = CharGPT(GPTConfig(layers=2, width=32, heads=2))
    names = [name for name, _ in hidden_linears(model)]
    assert "lm_head" not in names and names[0] == "blocks.0.attn.qkv" and len(names) == 8
    mlp = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False), nn.Linear(8, 2))
    assert [n for n, _ in hidden_linears(mlp)] == ["2"]


def test_standard_model_in_fp8_keeps_its_weights_and_still_trains():
    torch.manual_seed(0)
    model = CharGPT(GPTConfig(layers=2, width=32, heads=2, context=16))
    weight = model.blocks[0].mlp.fc.weight
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    assert apply_fp8_linears(model, "emulated") == 8
    assert isinstance(model.blocks[0].mlp.fc, FP8Linear) and model.blocks[0].mlp.fc.weight is weight
    ids = torch.randint(0, 65, (8, 16))
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def test_backend_choice_and_refusal():
    assert resolve_backend("emulated", "cpu") == "emulated"
    assert resolve_backend("auto", "cpu") == ("scaled_mm" if fp8_hardware_available("cpu") else "emulated")
    with pytest.raises(ConfigError, match="no FP8 tensor cores"):
        resolve_backend("scaled_mm", "cpu")
    with pytest.raises(ConfigError, match="unknown FP8 backend"):
        resolve_backend("fp4", "cpu")


@pytest.mark.skipif(not fp8_hardware_available(), reason="needs a CUDA GPU with FP8 tensor cores (capability >= 8.9)")
def test_scaled_mm_backend_agrees_with_the_emulation():
    torch.manual_seed(0)
    x = torch.randn(100, 64, device="cuda", requires_grad=True)  # 100 rows: exercises the padding to 16
    w = torch.randn(32, 64, device="cuda", requires_grad=True)
    outputs = []
    for backend in ("scaled_mm", "emulated"):
        y = fp8_linear(x, w, 0.125, backend)
        y.backward(torch.ones_like(y))
        outputs.append((y.detach(), x.grad.clone(), w.grad.clone()))
        x.grad = w.grad = None
    for a, b in zip(*outputs):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)


def test_to_fp8_gives_the_fp8_dtype():
    assert to_fp8(torch.ones(3), E5M2).dtype == E5M2
