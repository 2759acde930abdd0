"""Our unit-scaled linear and residual against Graphcore's ``unit-scaling`` (u-μP): forwards agree,
backward scales differ by design (documented in docs/unit-scaling.md)."""

import math

import pytest
import torch

from hasten.models.unit_gpt import fixed_residual, unit_linear

uf = pytest.importorskip(
    "unit_scaling.functional", reason="Graphcore's unit-scaling is not installed (pip install 'hasten[unit-scaling]')"
)


def test_linear_forward_and_input_gradient_match_backward_weight_scale_differs():
    torch.manual_seed(0)
    ours = unit_linear(64, 32, 64**-0.5, None)
    x = torch.randn(128, 64, requires_grad=True)
    y = ours(x)
    x2 = x.detach().clone().requires_grad_(True)
    w2 = ours.weight.detach().clone().requires_grad_(True)
    y2 = uf.linear(x2, w2, None)  # default constraint: the output scale is used for grad(input) too
    assert torch.allclose(y, y2, atol=1e-5)
    grad = torch.randn_like(y)
    y.backward(grad)
    y2.backward(grad)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    # u-μP scales grad(weight) by 1/sqrt(batch); μS by the forward multiplier 1/sqrt(fan_in)
    assert torch.allclose(ours.weight.grad * math.sqrt(64) / math.sqrt(128), w2.grad, atol=1e-4)


def test_residual_add_is_our_fixed_rule_with_tau_mapped():
    torch.manual_seed(0)
    x, branch = torch.randn(1000), torch.randn(1000)
    ratio = 0.5  # Graphcore's tau: branch-to-skip ratio of scales
    ours_tau = ratio**2 / (1 + ratio**2)
    assert torch.allclose(fixed_residual(x, branch, ours_tau), uf.residual_add(branch, x, ratio), atol=1e-6)
