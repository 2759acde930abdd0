"""The FP8 numerics diagnostic counts underflow and clipping per layer and tensor."""

import pytest
import torch

from hasten.models.gpt import GPTConfig
from hasten.models.unit_gpt import UnitGPT
from hasten.numerics.fp8 import FP8Linear, fp8_linear
from hasten.numerics.fp8_stats import LayerFP8Stats, track_fp8_numerics


def test_counts_are_exact_on_a_known_tensor():
    stats = LayerFP8Stats()
    x = torch.tensor([[1e-6, 1.0, 1000.0, 0.0], [-1e-7, 2.0, -500.0, 3.0]])
    w = torch.ones(2, 4)
    fp8_linear(x, w, 1.0, "emulated", stats)
    counts = stats.counts["input"]
    assert (counts.total, counts.underflow, counts.clipped) == (8, 2, 2)  # zero is not underflow
    assert stats.counts["weight"].underflow == 0 and stats.counts["weight"].clipped == 0


def test_tracks_every_fp8_layer_forward_and_backward_and_detaches_after():
    torch.manual_seed(0)
    model = UnitGPT(GPTConfig(layers=2, width=32, heads=2, context=16), fp8_backend="emulated")
    ids = torch.randint(0, 65, (4, 16))
    with track_fp8_numerics(model) as report:
        model(ids).logsumexp(-1).mean().backward()
    layers = {r["layer"] for r in report.rows()}
    assert layers == {n for n, m in model.named_modules() if isinstance(m, FP8Linear) and m.backend}
    assert {r["tensor"] for r in report.rows()} == {"input", "weight", "grad_output"}
    grads = [r for r in report.rows() if r["tensor"] == "grad_output"]
    assert all(r["values"] > 0 for r in grads)
    assert max(r["underflow"] for r in grads) > 0  # tiny unscaled gradients do flush in e5m2
    assert "underflow" in report.table()
    assert all(m.stats is None for m in model.modules() if isinstance(m, FP8Linear))


def test_refuses_a_model_without_fp8_layers():
    model = UnitGPT(GPTConfig(layers=1, width=16, heads=2))
    with pytest.raises(ValueError, match="no FP8 linears"), track_fp8_numerics(model):
        pass


def test_a_static_gradient_scale_rescues_underflowing_gradients_without_changing_their_value():
    ids = torch.randint(0, 65, (4, 16), generator=torch.Generator().manual_seed(0))
    grads, underflow = [], []
    for grad_scale in (1.0, 2.0**14):
        torch.manual_seed(0)
        model = UnitGPT(
            GPTConfig(layers=2, width=32, heads=2, context=16), fp8_backend="emulated", fp8_grad_scale=grad_scale
        )
        with track_fp8_numerics(model) as report:
            torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten()).backward()
        underflow.append(max(r["underflow"] for r in report.rows() if r["tensor"] == "grad_output"))
        grads.append(model.blocks[0].attn.qkv.weight.grad)
    assert underflow[1] < underflow[0] / 5
    assert torch.nn.functional.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0) > 0.5
