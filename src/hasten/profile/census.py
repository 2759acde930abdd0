"""Count what one training step asks of the device: operations, FLOPs and bytes moved.

The census runs one step under a ``TorchDispatchMode``, so it sees every aten operation
after autograd, backward and optimizer included, with real shapes. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` (the ``2*M*N*K`` convention, matrix products,
convolutions and attention only); the census reads its running total around each call so
every FLOP lands on the operation that did it. Bytes are an analytic lower bound: each input
tensor read once and each output written once (caches can make real traffic smaller for
small tensors, re-reads can make it larger). Elementwise operations get an *estimated*
FLOP per output element, and attention kernels the counter has no formula for get an estimate
from their shapes; estimates are kept apart from counted FLOPs (MFU uses counted ones only) and
serve the roofline and the memory/compute split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from hasten.profile.opclasses import classify

_SCOPE_ENTER = "_record_function_enter"
_SCOPE_EXIT = "_record_function_exit"
# Attention kernels FlopCounterMode has no formula for (the CPU flash kernels, PyTorch issue
# #195460): their FLOPs are *estimated* from shapes with its own formulas, for the roofline only.
_ATTENTION_ESTIMATES = {
    "_scaled_dot_product_flash_attention_for_cpu": lambda a: sdpa_flop_count(a[0].shape, a[1].shape, a[2].shape),
    "_scaled_dot_product_flash_attention_for_cpu_backward": lambda a: sdpa_backward_flop_count(
        a[0].shape, a[1].shape, a[2].shape, a[3].shape
    ),
}


@dataclass
class OpCount:
    """One operation name in one class, summed over a step."""

    name: str
    op_class: str
    calls: int = 0
    flops: float = 0.0
    est_flops: float = 0.0
    bytes: float = 0.0
    view: bool = False
    dtypes: Counter = field(default_factory=Counter)

    @property
    def work_flops(self) -> float:
        """Counted FLOPs, or the elementwise estimate where nothing was counted (for the roofline)."""
        return self.flops if self.flops > 0 else self.est_flops

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte (0 for pure data movement)."""
        return self.work_flops / self.bytes if self.bytes > 0 else 0.0

    @property
    def dtype(self) -> str:
        return self.dtypes.most_common(1)[0][0] if self.dtypes else ""


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a kernel must touch for ``t``: its elements, but no more than its storage
    (a broadcast ``expand`` reads its small storage, not every repeated element)."""
    size = t.numel() * t.element_size()
    try:
        return min(size, t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):
        return size


class OpCensus(TorchDispatchMode):
    """A dispatch mode that tallies every aten operation run inside it.

    Use it inside a ``FlopCounterMode`` (pass that mode as ``flop_counter``) to get FLOPs per
    operation; :func:`count_step` does both.
    """

    def __init__(self, flop_counter: FlopCounterMode | None = None) -> None:
        super().__init__()
        self.flop_counter = flop_counter
        self.ops: dict[tuple[str, str], OpCount] = {}
        self._scopes: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        schema_name = func._schema.name
        if schema_name.startswith("profiler::"):
            return self._scope(func, args, kwargs)
        before = self.flop_counter.get_total_flops() if self.flop_counter is not None else 0
        out = func(*args, **kwargs)
        flops = self.flop_counter.get_total_flops() - before if self.flop_counter is not None else 0
        self._tally(func, schema_name, args, kwargs, out, flops)
        return out

    def _scope(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Follow ``record_function`` scopes (the optimizer's, hasten's) to classify ops inside them."""
        out = func(*args, **kwargs)
        packet = func.overloadpacket.__name__
        if packet.startswith(_SCOPE_ENTER) and args and isinstance(args[0], str):
            self._scopes.append(args[0])
        elif packet.startswith(_SCOPE_EXIT) and self._scopes:
            self._scopes.pop()
        return out

    def _tally(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any, flops: float) -> None:
        op_class = classify(name, self._scopes)
        key = (op_class, name)
        entry = self.ops.get(key)
        if entry is None:
            entry = self.ops[key] = OpCount(name=name, op_class=op_class, view=bool(func.is_view))
        entry.calls += 1
        entry.flops += flops
        if func.is_view:
            return
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        entry.bytes += sum(tensor_bytes(t) for t in inputs) + sum(tensor_bytes(t) for t in outputs)
        floating = [t for t in inputs if t.is_floating_point()]
        if floating:
            entry.dtypes[str(max(floating, key=lambda t: t.numel()).dtype).replace("torch.", "")] += 1
        if flops == 0 and torch.Tag.pointwise in func.tags:
            entry.est_flops += sum(t.numel() for t in outputs)
        elif flops == 0 and func.overloadpacket.__name__ in _ATTENTION_ESTIMATES:
            try:
                entry.est_flops += float(_ATTENTION_ESTIMATES[func.overloadpacket.__name__](args))
            except (IndexError, AttributeError, TypeError, ValueError):
                pass


@dataclass
class StepCensus:
    """What one step dispatched; ``error`` says why counting failed, if it did."""

    ops: dict[tuple[str, str], OpCount]
    total_flops: float
    error: str | None = None

    @property
    def calls(self) -> int:
        return sum(o.calls for o in self.ops.values())

    @property
    def bytes(self) -> float:
        return sum(o.bytes for o in self.ops.values())

    @property
    def names(self) -> set[str]:
        return {name for _, name in self.ops}

    def matmul_dtype(self) -> str:
        """The dtype most counted FLOPs ran in ('float32' when none were counted)."""
        by_dtype: dict[str, float] = {}
        for op in self.ops.values():
            if op.flops > 0 and op.dtype:
                by_dtype[op.dtype] = by_dtype.get(op.dtype, 0.0) + op.flops
        return max(by_dtype, key=by_dtype.__getitem__) if by_dtype else "float32"


class CensusRecorder:
    """Enter at the start of a step, exit at its end; ``result`` holds the census.

    Counting is best-effort: a model the dispatch mode cannot run under (some compiled or
    custom-kernel models) leaves ``result.error`` set and the profiler falls back to
    classifying operations by name.
    """

    def __init__(self) -> None:
        self.flop_counter = FlopCounterMode(display=False)
        self.census = OpCensus(self.flop_counter)
        self.result: StepCensus | None = None

    def __enter__(self) -> "CensusRecorder":
        self.flop_counter.__enter__()
        self.census.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.census.__exit__(*exc)
        finally:
            self.flop_counter.__exit__(*exc)
        error = f"{exc[0].__name__}: {exc[1]}" if exc and exc[0] is not None else None
        self.result = StepCensus(self.census.ops, float(self.flop_counter.get_total_flops()), error)
