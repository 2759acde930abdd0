"""The transfer rules give the stated learning rate and decoupled weight decay per group."""

import math

import pytest
import torch

from hasten.errors import ConfigError
from hasten.models.gpt import GPTConfig
from hasten.models.unit_gpt import UnitGPT
from hasten.optim.unit_transfer import group_lrs, unit_adamw, unit_param_groups


def model(width: int) -> UnitGPT:
    return UnitGPT(GPTConfig(layers=2, width=width, heads=4))


@pytest.mark.parametrize("base, width", [(64, 64), (64, 256), (32, 512)])
def test_hidden_lr_scales_by_sqrt_base_over_width_and_the_rest_is_unchanged(base, width):
    lrs = group_lrs(unit_adamw(model(width), lr=0.1, weight_decay=1e-4, base_width=base))
    assert lrs["hidden"] == pytest.approx(0.1 * math.sqrt(base / width))
    assert lrs["embedding"] == lrs["norm"] == lrs["head"] == 0.1


def test_every_parameter_is_in_exactly_one_group_of_the_right_kind():
    m = model(64)
    groups = {g["name"]: g["params"] for g in unit_param_groups(m, 0.1, 1e-4)}
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in m.parameters())
    assert len(groups["hidden"]) == 2 * 4 and all(p.dim() == 2 for p in groups["hidden"])
    assert groups["head"][0] is m.lm_head.weight and all(p.dim() == 1 for p in groups["norm"])


def test_weight_decay_is_decoupled_from_the_learning_rate():
    m = model(256)
    for group in unit_param_groups(m, 0.1, 1e-4, base_width=64):
        expected = 0.0 if group["name"] == "norm" else 1e-4
        assert group["lr"] * group["weight_decay"] == pytest.approx(expected)  # the per-step decay
    weights = torch.ones(3)
    optimizer = torch.optim.AdamW(
        [{"params": [torch.nn.Parameter(weights.clone())], "lr": 0.05, "weight_decay": 1e-4 / 0.05}]
    )
    optimizer.param_groups[0]["params"][0].grad = torch.zeros(3)
    optimizer.step()
    assert optimizer.param_groups[0]["params"][0].data == pytest.approx(torch.full((3,), 1 - 1e-4))


def test_base_width_larger_than_the_model_is_refused():
    with pytest.raises(ConfigError, match="transfer base width 512 is outside 1..128"):
        unit_param_groups(model(128), 0.1, 1e-4, base_width=512)
