"""Which FP8 values are lost: per layer, the fraction that underflow to zero or clip at the range.

Static scales only work if every tensor's values fit the format; this diagnostic says how well
they do. ``track_fp8_numerics(model)`` attaches counters to every ``FP8Linear``; any forward and
backward run inside it are counted (weights and activations against e4m3, output gradients
against e5m2). Counting costs a few reductions per matmul, so it is a diagnostic, not a default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from hasten.numerics.fp8 import FP8Linear, round_fp8


@dataclass
class TensorCounts:
    total: int = 0
    underflow: int = 0  # nonzero values that become zero in FP8
    clipped: int = 0  # values beyond the largest finite FP8 number

    @property
    def underflow_fraction(self) -> float:
        return self.underflow / self.total if self.total else 0.0

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.total if self.total else 0.0


@dataclass
class LayerFP8Stats:
    """Counts for one layer, keyed by ``input``, ``weight`` and ``grad_output``."""

    counts: dict[str, TensorCounts] = field(default_factory=dict)

    @torch.no_grad()
    def observe(self, role: str, x: torch.Tensor, dtype: torch.dtype) -> None:
        x = x.detach().float()
        rounded = round_fp8(x, dtype)
        entry = self.counts.setdefault(role, TensorCounts())
        entry.total += x.numel()
        entry.underflow += int(((x != 0) & (rounded == 0)).sum())
        entry.clipped += int((x.abs() > torch.finfo(dtype).max).sum())


@dataclass
class FP8Report:
    """Per-layer FP8 losses; ``rows()`` gives one plain dict per (layer, tensor)."""

    layers: dict[str, LayerFP8Stats]

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "layer": name,
                "tensor": role,
                "values": c.total,
                "underflow": c.underflow_fraction,
                "clipped": c.clipped_fraction,
            }
            for name, stats in self.layers.items()
            for role, c in stats.counts.items()
        ]

    def worst_underflow(self) -> float:
        return max((r["underflow"] for r in self.rows()), default=0.0)  # type: ignore[type-var, return-value]

    def table(self) -> str:
        lines = [f"{'layer':<28} {'tensor':<12} {'underflow':>10} {'clipped':>10}"]
        lines += [
            f"{r['layer']:<28} {r['tensor']:<12} {r['underflow']:>10.4%} {r['clipped']:>10.4%}" for r in self.rows()
        ]
        return "\n".join(lines)


@contextlib.contextmanager
def track_fp8_numerics(model: nn.Module) -> Iterator[FP8Report]:
    """Count FP8 underflow and clipping in every ``FP8Linear`` of ``model`` while the block runs.

    >>> with track_fp8_numerics(model) as report:
    ...     loss_fn(model(x), y).backward()
    >>> print(report.table())
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, FP8Linear) and m.backend is not None}
    if not layers:
        raise ValueError("the model has no FP8 linears to track; build it with fp8 or apply_fp8_linears first")
    report = FP8Report({name: LayerFP8Stats() for name in layers})
    for name, layer in layers.items():
        layer.stats = report.layers[name]
    try:
        yield report
    finally:
        for layer in layers.values():
            layer.stats = None
