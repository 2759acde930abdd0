"""BERT's corruption: 80/10/10 on average, labels on every selected position, reproducible batches."""

from __future__ import annotations

import pytest
import torch

from hasten.data.masked_lm import (
    IGNORE_INDEX,
    MaskedWindows,
    fixed_masked_split,
    mask_tokens,
)
from hasten.errors import ConfigError

VOCAB, MASK = 65, 65


def test_corruption_follows_80_10_10_on_average() -> None:
    tokens = torch.randint(VOCAB, (200, 256), generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(
        tokens, 0.3, mask_id=MASK, vocab_size=VOCAB, generator=torch.Generator().manual_seed(1)
    )
    selected = labels != IGNORE_INDEX
    assert abs(selected.float().mean().item() - 0.3) < 0.01
    assert torch.equal(labels[selected], tokens[selected])  # the original at every selected position
    assert torch.equal(inputs[~selected], tokens[~selected])  # unselected positions are untouched
    masked = (inputs == MASK) & selected
    changed = (inputs != tokens) & (inputs != MASK) & selected
    n = selected.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.01
    # random replacements are 10%, minus the 1/65 that draw the original token back
    assert abs(changed.sum().item() / n - 0.1 * (1 - 1 / VOCAB)) < 0.01
    assert (inputs != MASK).logical_or(selected).all()  # the mask token only where selected


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_rate_outside_unit_interval_is_refused(rate: float) -> None:
    with pytest.raises(ConfigError, match="outside"):
        mask_tokens(torch.zeros(4, dtype=torch.long), rate, mask_id=MASK, vocab_size=VOCAB)


def test_fixed_split_is_the_same_every_time() -> None:
    tokens = torch.randint(VOCAB, (10_000,), generator=torch.Generator().manual_seed(0))
    a = fixed_masked_split(tokens, 64, 0.15, mask_id=MASK, vocab_size=VOCAB, seed=7)
    b = fixed_masked_split(tokens, 64, 0.15, mask_id=MASK, vocab_size=VOCAB, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].shape == (156, 64)


def test_windows_reproduce_per_batch_and_follow_the_rate() -> None:
    tokens = torch.randint(VOCAB, (5_000,), generator=torch.Generator().manual_seed(0))
    source = MaskedWindows(tokens, 32, 64, mask_id=MASK, vocab_size=VOCAB, seed=3, mask_rate=0.5)
    first = list(source.batches(0))
    resumed = list(source.batches(0, start=1))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first[1:], resumed))
    assert first[0][0].shape == (64, 32) and source.tokens_per_batch == 64 * 32
    selected = torch.cat([(y != IGNORE_INDEX).flatten() for _, y in first]).float().mean().item()
    assert abs(selected - 0.5) < 0.02
    source.mask_rate = 0.1
    _x, y = next(source.batches(0))
    assert abs((y != IGNORE_INDEX).float().mean().item() - 0.1) < 0.03
