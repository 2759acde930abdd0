"""Bytes per parameter, counted from the tensors' actual storage.

Sizes come from ``untyped_storage().nbytes()``, so padding, views and dtype choices are
all seen as they are; each storage is counted once (tied weights, views). Works for any
optimizer: torch's ``exp_avg`` / ``exp_avg_sq`` show up under their own names, FlashOptim's
8-bit codes under theirs, and its scales and weight corrections separately.

``bytes_per_param`` adds up what scales with the parameters (weights, corrections,
gradients, optimizer state): the accounting of FlashOptim's Table 1 (16 for AdamW with
fp32 weights, 7 for FlashAdamW, 5 with gradient release). Buffers (batch-norm statistics,
attention masks) are reported on their own. Gradients are counted if they exist when the
report is taken: take it after a backward pass to see the training footprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

from hasten.optim.flash.base import CORRECTION, SCALES


@dataclass
class MemoryReport:
    params: int
    bytes: dict[str, int]
    buffer_bytes: int
    checkpoint_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    @property
    def bytes_per_param(self) -> float:
        return self.total_bytes / max(self.params, 1)

    @property
    def per_param(self) -> dict[str, float]:
        return {name: size / max(self.params, 1) for name, size in self.bytes.items()}

    @property
    def checkpoint_bytes_per_param(self) -> float:
        return self.checkpoint_bytes / max(self.params, 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for run records."""
        return {
            "params": self.params,
            "bytes_per_param": round(self.bytes_per_param, 4),
            "by_category": {k: round(v, 4) for k, v in self.per_param.items()},
            "buffer_bytes": self.buffer_bytes,
            "checkpoint_bytes_per_param": round(self.checkpoint_bytes_per_param, 4),
            "notes": list(self.notes),
        }

    def format(self) -> str:
        """A short table: one line per category, then the totals."""
        width = max([len(k) for k in self.bytes] + [10])
        lines = [f"{name:<{width}}  {per:7.3f} B/param" for name, per in self.per_param.items()]
        lines.append(f"{'total':<{width}}  {self.bytes_per_param:7.3f} B/param  ({self.params:,} parameters)")
        lines.append(f"{'checkpoint':<{width}}  {self.checkpoint_bytes_per_param:7.3f} B/param")
        return "\n".join(lines)


class _StorageCounter:
    """Adds tensor storage sizes to categories, each storage once."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, int]] = set()
        self.bytes: dict[str, int] = {}

    def add(self, category: str, tensor: Any) -> None:
        if not isinstance(tensor, torch.Tensor):
            return
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        if storage.nbytes() == 0 or key in self.seen:
            return
        self.seen.add(key)
        self.bytes[category] = self.bytes.get(category, 0) + storage.nbytes()


def _state_category(name: str) -> str:
    if name == CORRECTION:
        return "corrections"
    if name.endswith(SCALES):
        return "scales"
    if name == "step":
        return "other"
    return f"state:{name}"


def _tensors_in(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)


def checkpoint_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    """Tensor bytes a checkpoint of ``model`` and ``optimizer`` state dicts holds (no pickle overhead)."""
    counter = _StorageCounter()
    for tensor in _tensors_in(model.state_dict()):
        counter.add("model", tensor)
    if optimizer is not None:
        for tensor in _tensors_in(optimizer.state_dict()):
            counter.add("optimizer", tensor)
    return sum(counter.bytes.values())


def memory_report(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> MemoryReport:
    """Bytes per parameter by category: weights, corrections, gradients, each state, scales."""
    counter = _StorageCounter()
    params: dict[int, torch.Tensor] = {id(p): p for p in model.parameters()}
    if optimizer is not None:
        for group in optimizer.param_groups:
            params.update({id(p): p for p in group["params"]})
    for param in params.values():
        counter.add("weights", param)
    for param in params.values():
        counter.add("gradients", param.grad)
    notes = []
    if optimizer is not None:
        for param, state in optimizer.state.items():
            for name, value in state.items():
                for tensor in _tensors_in(value):
                    counter.add(_state_category(name), tensor)
        if getattr(optimizer, "gradient_release_active", False):
            notes.append("gradient release: gradients are freed as soon as each parameter is stepped")
    if not any(p.grad is not None for p in params.values()):
        notes.append("no gradients allocated at report time")
    buffers = _StorageCounter()
    buffers.seen = set(counter.seen)
    for buffer in model.buffers():
        buffers.add("buffers", buffer)
    return MemoryReport(
        params=sum(p.numel() for p in params.values()),
        bytes=counter.bytes,
        buffer_bytes=buffers.bytes.get("buffers", 0),
        checkpoint_bytes=checkpoint_bytes(model, optimizer),
        notes=notes,
    )
