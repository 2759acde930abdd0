"""What a pruned model is measured by: size, multiply-adds and the time a forward really takes.

- compression ratio = parameters / nonzero parameters (``masks.nonzero_count``).
- theoretical speedup = dense multiply-adds / multiply-adds of the nonzero weights, counted over
  ``nn.Linear`` and ``nn.Conv2d`` only (ShrinkBench's definition): a Linear applied at P positions
  costs ``P * nonzero(weight)``; a Conv2d producing an H x W map costs ``H * W * nonzero(weight)``
  (each kernel weight is used once per output position). Biases, norms, activations and attention
  products are not counted.
- measured inference time: masks do **not** make a forward faster (dense kernels multiply the
  zeros too), so this stays near the unpruned model's time; it is reported so nobody reads the
  theoretical speedup as a measured one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from hasten.prune.masks import PRUNABLE_TYPES


@dataclass(frozen=True)
class MultiplyAdds:
    dense: int
    nonzero: int

    @property
    def speedup(self) -> float:
        return self.dense / self.nonzero if self.nonzero else float("inf")


def multiply_adds(model: nn.Module, inputs: Any) -> MultiplyAdds:
    """Multiply-adds of one forward on ``inputs`` (per batch given), dense and with zero weights skipped."""
    counts = {"dense": 0, "nonzero": 0}

    def count(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        weight = cast(torch.Tensor, module.weight)  # the masked weight during a forward
        channels = output.shape[-1] if isinstance(module, nn.Linear) else output.shape[1]
        positions = output.numel() // channels  # samples x (sequence positions or output pixels)
        counts["dense"] += positions * weight.numel()
        counts["nonzero"] += positions * int(torch.count_nonzero(weight))

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return MultiplyAdds(counts["dense"], counts["nonzero"])


def inference_time(model: nn.Module, inputs: Any, repeats: int = 7) -> float:
    """Median seconds of one no-grad forward on ``inputs`` (after one warm-up forward)."""
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad():
            model(inputs)
            for _ in range(repeats):
                start = time.perf_counter()
                model(inputs)
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times)


def interleaved_inference_ratio(pruned: nn.Module, dense: nn.Module, inputs: Any, rounds: int = 5) -> float:
    """Median over rounds of (pruned forward time / dense forward time), the two timed alternately."""
    ratios = [inference_time(pruned, inputs, 3) / inference_time(dense, inputs, 3) for _ in range(rounds)]
    return statistics.median(ratios)
