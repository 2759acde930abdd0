"""Pack many small tensors into one flat buffer so a step costs a few dozen ops, not a few per tensor.

An eager FlashOptim step is ~100 elementwise ops per tensor (reconstruct, dequantize,
update, split, quantize). For the many small tensors of a model (biases, norms) each op
costs far more in dispatch than in arithmetic, so small tensors are stepped together:
gathered into one buffer, updated once, scattered back. Each tensor starts at a multiple
of the quantization group size (zero padding between), so its groups, codes and scales
are exactly those it has on its own, and zeros stay zero through every update rule.
"""

from __future__ import annotations

from typing import Sequence

import torch

from hasten.optim.flash.quantize import padded_length


class Packing:
    """Layout of tensors of ``sizes`` values, each padded to whole quantization groups."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = list(sizes)
        self.padded = [padded_length(n) for n in self.sizes]
        self.offsets = [0]
        for length in self.padded[:-1]:
            self.offsets.append(self.offsets[-1] + length)
        self.total = sum(self.padded)

    def gather(self, tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """One flat ``dtype`` buffer holding every tensor's values, zero-padded per tensor."""
        out = torch.zeros(self.total, dtype=dtype, device=tensors[0].device)
        torch._foreach_copy_(self.views(out), [t.reshape(-1) for t in tensors])
        return out

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat`` with each tensor's own (unpadded) values."""
        return [flat[start : start + n] for start, n in zip(self.offsets, self.sizes)]

    def padded_views(self, flat: torch.Tensor, per_value: int = 1) -> list[torch.Tensor]:
        """Views including the padding; ``per_value=GROUP_SIZE`` slices a per-group buffer (scales)."""
        return [
            flat[start // per_value : (start + length) // per_value] for start, length in zip(self.offsets, self.padded)
        ]

    def scatter(self, flat: torch.Tensor, destinations: Sequence[torch.Tensor]) -> None:
        """Copy each tensor's values from ``flat`` back into ``destinations`` (any shapes, any dtypes)."""
        torch._foreach_copy_([d.view(-1) for d in destinations], self.views(flat))
