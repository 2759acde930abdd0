"""CharBert: bidirectional (a later token changes an earlier output), tied head, logits per position."""

from __future__ import annotations

import torch

from hasten.models.bert import BertConfig, CharBert


def test_attention_sees_both_directions() -> None:
    torch.manual_seed(0)
    model = CharBert(BertConfig(vocab_size=11, context=8, layers=1, heads=2, width=16)).eval()
    ids = torch.randint(10, (1, 8))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 10
    a, b = model(ids), model(changed)
    assert a.shape == (1, 8, 11)
    assert not torch.allclose(a[0, 0], b[0, 0])  # position 0 saw the last token
    assert model.lm_head.weight is model.token_embedding.weight and model.config.mask_id == 10
