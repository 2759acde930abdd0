"""Masked-language-model corruption (BERT's 80/10/10 rule) and a batch source that applies it.

``mask_tokens`` selects each position with probability ``rate``; of the selected positions 80%
become the mask token, 10% a random token and 10% stay as they are, and the model is asked for
the original token at *every* selected position (labels are ``IGNORE_INDEX`` elsewhere). This is
the collator step of Devlin et al. (2019), as a plain function so any loop can call it with any
rate. ``MaskedWindows`` is a batch source of random character windows corrupted at its current
``mask_rate``: the rate is read when each batch is produced, so a masking-rate schedule only has
to set the attribute before the Trainer fetches the next batch. Each batch's windows and
corruption come from generators seeded by (seed, epoch, batch index), so a resumed run sees the
same batches (given the same rate).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from hasten.data.text import RandomWindows
from hasten.errors import ConfigError

IGNORE_INDEX = -100
MASK_FRACTION, RANDOM_FRACTION = 0.8, 0.1  # of the selected positions; the remaining 10% are kept


def check_rate(rate: float, what: str = "masking rate") -> float:
    if not 0.0 <= float(rate) <= 1.0:
        raise ConfigError(f"{what} {rate} is outside [0, 1]", "give a fraction of positions between 0 and 1, e.g. 0.15")
    return float(rate)


def mask_tokens(
    tokens: torch.Tensor,
    rate: float,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt ``tokens`` (any shape, int64 ids below ``vocab_size``) for masked-LM training.

    Returns ``(inputs, labels)``: ``labels`` holds the original id at every selected position and
    ``IGNORE_INDEX`` elsewhere. Random replacements are drawn from ``[0, vocab_size)`` (never the
    mask token when ``mask_id >= vocab_size``). Draws happen on the CPU from ``generator`` so the
    result does not depend on the device.
    """
    check_rate(rate)
    cpu = tokens.detach().cpu()
    selected = torch.rand(cpu.shape, generator=generator) < rate
    kind = torch.rand(cpu.shape, generator=generator)
    replacements = torch.randint(vocab_size, cpu.shape, generator=generator)
    to_mask = selected & (kind < MASK_FRACTION)
    to_random = selected & (kind >= MASK_FRACTION) & (kind < MASK_FRACTION + RANDOM_FRACTION)
    inputs = torch.where(to_mask, torch.full_like(cpu, mask_id), cpu)
    inputs = torch.where(to_random, replacements, inputs)
    labels = torch.where(selected, cpu, torch.full_like(cpu, IGNORE_INDEX))
    return inputs.to(tokens.device), labels.to(tokens.device)


def fixed_masked_split(
    tokens: torch.Tensor, context: int, rate: float, *, mask_id: int, vocab_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every non-overlapping window of ``tokens``, corrupted once at ``rate`` from ``seed``:
    an evaluation set that is the same task for every recipe and every training seed."""
    n = len(tokens) // context
    if n < 1:
        raise ConfigError(f"{len(tokens)} tokens are too few for one window of {context}", "use a shorter context")
    generator = torch.Generator().manual_seed(seed)
    return mask_tokens(
        tokens[: n * context].view(n, context), rate, mask_id=mask_id, vocab_size=vocab_size, generator=generator
    )


class MaskedWindows(RandomWindows):
    """Random windows of ``context`` tokens, corrupted at ``mask_rate`` (settable between batches)."""

    def __init__(
        self,
        tokens: torch.Tensor,
        context: int,
        batch_size: int,
        *,
        mask_id: int,
        vocab_size: int,
        mask_rate: float = 0.15,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(tokens, context, batch_size, seed=seed, steps_per_epoch=steps_per_epoch, device=device)
        self.mask_id = mask_id
        self.vocab_size = vocab_size
        self.mask_rate = check_rate(mask_rate)

    def corruption_generator(self, epoch: int, index: int) -> torch.Generator:
        key = ((self.seed * 1_000_033 + epoch) * 1_000_037 + index + 7) % (2**63 - 1)
        return torch.Generator().manual_seed(key)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(start, len(self)):
            windows = self.tokens[
                self.offsets(epoch, index).to(self.tokens.device)[:, None] + self._span[:-1]
            ]  # no next-token shift
            yield mask_tokens(
                windows,
                self.mask_rate,
                mask_id=self.mask_id,
                vocab_size=self.vocab_size,
                generator=self.corruption_generator(epoch, index),
            )
