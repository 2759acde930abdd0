"""The character GPT: nanoGPT's shapes and parameter count, causality, tied weights, no biases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hasten.models.gpt import MLP, Block, CausalSelfAttention, CharGPT, GPTConfig, decay_groups


@pytest.fixture
def model() -> CharGPT:
    torch.manual_seed(0)
    return CharGPT(GPTConfig(vocab_size=65, context=64, layers=4, heads=4, width=128))


def test_parameter_count_matches_nanogpt(model: CharGPT) -> None:
    # nanoGPT prints 0.80M for this configuration, counting without position embeddings.
    assert model.parameters_without_positions() == 795_904
    assert sum(p.numel() for p in model.parameters()) == 795_904 + 64 * 128


def test_output_shape_and_initial_loss_is_near_uniform(model: CharGPT) -> None:
    ids, targets = torch.randint(0, 65, (2, 3, 64))
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (3, 64, 65)
    loss = nn.functional.cross_entropy(logits.reshape(-1, 65), targets.reshape(-1))
    assert abs(float(loss) - math.log(65)) < 0.05  # nanoGPT starts at 4.17


def test_attention_is_causal(model: CharGPT) -> None:
    model.eval()
    ids = torch.randint(0, 65, (2, 32))
    changed = ids.clone()
    changed[:, 20:] = (changed[:, 20:] + 7) % 65
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)  # the past never sees the future
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_embedding_and_output_are_one_tensor_and_there_are_no_biases(model: CharGPT) -> None:
    assert model.lm_head.weight is model.token_embedding.weight
    assert all(not name.endswith("bias") for name, _ in model.named_parameters())
    assert all(m.bias is None for m in model.modules() if isinstance(m, (nn.Linear, nn.LayerNorm)))


def test_parts_are_findable_by_type(model: CharGPT) -> None:
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(Block) == 4 and kinds.count(MLP) == 4 and kinds.count(CausalSelfAttention) == 4
    assert kinds.count(nn.LayerNorm) == 9  # two per block and the final one
    assert all(isinstance(b.mlp.fc, nn.Linear) and b.mlp.fc.out_features == 512 for b in model.blocks)


@torch.no_grad()
def test_residual_projections_get_the_scaled_init(model: CharGPT) -> None:
    scaled = 0.02 / math.sqrt(2 * 4)
    for block in model.blocks:
        assert abs(float(block.attn.proj.weight.std()) - scaled) < 0.002
        assert abs(float(block.mlp.proj.weight.std()) - scaled) < 0.002
        assert abs(float(block.mlp.fc.weight.std()) - 0.02) < 0.002


def test_decay_groups_follow_nanogpts_rule(model: CharGPT) -> None:
    decayed, plain = decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert len(plain["params"]) == 9  # the LayerNorm gains
    total = sum(p.numel() for group in (decayed, plain) for p in group["params"])
    assert total == sum(p.numel() for p in model.parameters())  # the tied matrix is counted once


def test_too_long_input_and_bad_head_count_are_refused(model: CharGPT) -> None:
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="not divisible"):
        CharGPT(GPTConfig(width=130, heads=4))


def test_speedrun_options_change_the_architecture_and_still_train() -> None:
    config = GPTConfig(
        context=16,
        layers=2,
        heads=2,
        width=32,
        position="rotary",
        qk_norm=True,
        activation="relu2",
        tied_head=False,
        zero_init_proj=True,
    )
    model = CharGPT(config)
    assert model.position_embedding is None and model.lm_head.weight is not model.token_embedding.weight
    assert all(float(p.detach().abs().sum()) == 0.0 for n, p in model.named_parameters() if n.endswith("proj.weight"))
    ids = torch.randint(0, 65, (3, 16))
    logits = model(ids)
    assert logits.shape == (3, 16, 65)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(ids).view(-1, 65), ids.roll(-1, 1).view(-1))
        first = first if first is not None else float(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < first - 0.5


def test_rotary_attention_is_causal_and_depends_on_position() -> None:
    torch.manual_seed(0)
    model = CharGPT(GPTConfig(context=8, layers=1, heads=2, width=16, position="rotary")).eval()
    ids = torch.randint(0, 65, (1, 8))
    changed = ids.clone()
    changed[0, 5] = (ids[0, 5] + 1) % 65
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[0, :5], b[0, :5], atol=1e-6) and not torch.allclose(a[0, 5:], b[0, 5:])
    swapped = torch.tensor([[1, 2, 1, 2, 1, 2, 1, 2]])
    with torch.no_grad():
        out = model(swapped)  # same token at different positions: different outputs
    assert not torch.allclose(out[0, 0], out[0, 2])


def test_relu2_and_bad_options() -> None:
    from hasten.models.gpt import ReLU2

    assert torch.equal(ReLU2()(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 4.0]))
    for bad in (dict(activation="swish"), dict(position="alibi"), dict(width=30, heads=4)):
        with pytest.raises(ValueError):
            GPTConfig(**bad)
