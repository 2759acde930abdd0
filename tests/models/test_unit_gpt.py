"""The unit-scaled GPT: unit variances at initialisation at several widths, the residual rule, tau."""

import math

import pytest
import torch

from hasten.errors import ConfigError
from hasten.models.gpt import GPTConfig
from hasten.models.unit_gpt import UnitGPT, fixed_residual, tau_for_depth


def forward_stds(model: UnitGPT, ids: torch.Tensor) -> dict[str, float]:
    """Std of each unit linear's output and of the residual stream after each block."""
    stds: dict[str, float] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: stds.__setitem__(n, float(o.std())))
        for n, m in model.named_modules()
        if n.endswith(("qkv", "fc")) or n.startswith("blocks.") and n.count(".") == 1
    ]
    model(ids)
    for h in hooks:
        h.remove()
    return stds


@pytest.mark.parametrize("width", [32, 128, 512])
def test_weights_and_activations_have_unit_variance_at_init(width):
    torch.manual_seed(0)
    model = UnitGPT(GPTConfig(layers=3, width=width, heads=4, context=32))
    for name, p in model.named_parameters():
        if p.dim() == 2:
            assert abs(float(p.detach().std()) - 1) < 0.1, name
    stds = forward_stds(model, torch.randint(0, 65, (16, 32)))
    assert len(stds) == 3 * 3
    for name, std in stds.items():
        assert 0.85 < std < 1.15, (name, std)


def test_head_multiplier_keeps_logits_small_and_width_independent_in_variance_times_width():
    torch.manual_seed(0)
    ids = torch.randint(0, 65, (8, 32))
    for width in (64, 256):
        logits = UnitGPT(GPTConfig(layers=1, width=width, heads=4, context=32))(ids)
        assert abs(float(logits.std()) * math.sqrt(width) - 1) < 0.15  # 1/fan_in on unit inputs: std 1/sqrt(width)


def test_fixed_residual_preserves_unit_variance():
    torch.manual_seed(0)
    x, branch = torch.randn(100_000), torch.randn(100_000)
    assert abs(float(fixed_residual(x, branch, 0.3).var()) - 1) < 0.02
    assert torch.equal(fixed_residual(x, branch, 0.25), math.sqrt(0.75) * x + 0.5 * branch)


def test_tau_falls_with_depth_and_is_checked():
    assert tau_for_depth(4) == 0.4 and tau_for_depth(16) == 0.1 and tau_for_depth(2) == 0.4
    assert tau_for_depth(32) < tau_for_depth(8)
    assert UnitGPT(GPTConfig(layers=8, width=16, heads=2)).tau == 0.2
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="tau must lie strictly between 0 and 1"):
            UnitGPT(GPTConfig(layers=1, width=16, heads=2), tau=bad)


def test_fp8_model_keeps_embeddings_and_head_in_higher_precision():
    model = UnitGPT(GPTConfig(layers=1, width=16, heads=2), fp8_backend="emulated")
    assert model.lm_head.backend is None
    assert model.blocks[0].attn.qkv.backend == "emulated" and model.blocks[0].mlp.proj.backend == "emulated"


def test_fp8_emulated_model_trains():
    torch.manual_seed(0)
    model = UnitGPT(GPTConfig(layers=2, width=32, heads=2, context=16), fp8_backend="emulated")
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.03)
    ids = torch.randint(0, 65, (8, 17))
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0
