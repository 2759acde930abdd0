"""Microbenchmarks: what this device achieves for each kind of operation, across sizes.

The paper behind hasten profiled single PyTorch operations on an A100 to show which are
bound by compute, which by memory bandwidth and which by per-call overhead; these do the same
on the user's own device. Every timing is the best of several repeats (an *achievable* rate,
the right reference for a roofline), with the device synchronized before the clock is read.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from hasten.profile.opclasses import ELEMENTWISE, MATMUL, NORMALIZATION, REDUCTION


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, *, repeats: int = 5, block_s: float = 0.02) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeats`` blocks, each long enough
    (``block_s``) that clock resolution and launch jitter do not matter."""
    fn()
    synchronize(device)
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= block_s or calls >= 1 << 20:
            break
        calls *= max(2, min(64, math.ceil(block_s / max(elapsed, 1e-7))))
    best = elapsed / calls
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


@dataclass
class SweepPoint:
    """One operation at one size: work done, bytes moved (analytic), best time."""

    op: str
    op_class: str
    size: str
    dtype: str
    flops: float
    bytes: float
    seconds: float

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds if self.seconds > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes > 0 else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def gemm_rate(device: torch.device, n: int, dtype: torch.dtype, *, repeats: int = 3, block_s: float = 0.02) -> float:
    """Achieved FLOP/s of an ``n x n`` by ``n x n`` matrix product (2*n^3 FLOPs)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    seconds = best_time(lambda: torch.mm(a, b, out=out), device, repeats=repeats, block_s=block_s)
    return 2.0 * n**3 / seconds


def copy_rate(device: torch.device, nbytes: int, *, repeats: int = 3, block_s: float = 0.02) -> float:
    """Achieved bytes/s of a large copy (each byte read once and written once)."""
    n = nbytes // 4
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    seconds = best_time(lambda: dst.copy_(src), device, repeats=repeats, block_s=block_s)
    return 2.0 * n * 4 / seconds


def op_overhead(device: torch.device, *, repeats: int = 5) -> float:
    """Seconds per call of an operation that does almost no work: the fixed cost of one
    eager operation (Python, dispatcher, allocation; on a GPU also the kernel launch)."""
    a = torch.ones(1, device=device)
    b = torch.ones(1, device=device)
    return best_time(lambda: torch.add(a, b), device, repeats=repeats, block_s=0.01)


Case = tuple[str, str, Callable[[torch.Tensor, torch.Tensor], object], float, float]


def _cases(n: int) -> list[Case]:
    """(op, class, fn(x, y), FLOPs, tensor passes) for tensors of ``n`` elements, as rows of up
    to 1024. FLOPs of non-matmul ops are the usual per-element estimates, not counts."""
    rows = max(1, n // 1024)
    return [
        ("add", ELEMENTWISE, lambda x, y: x + y, n, 3),
        ("gelu", ELEMENTWISE, lambda x, y: F.gelu(x), 8 * n, 2),
        ("layer_norm", NORMALIZATION, lambda x, y: F.layer_norm(x.view(rows, -1), (n // rows,)), 8 * n, 2),
        ("softmax", REDUCTION, lambda x, y: torch.softmax(x.view(rows, -1), dim=-1), 5 * n, 2),
        ("sum", REDUCTION, lambda x, y: x.sum(), n, 1),
    ]


def sweep_ops(
    device: torch.device,
    *,
    matmul_sizes: tuple[int, ...] = (64, 128, 256, 512, 1024),
    elementwise_sizes: tuple[int, ...] = (2**10, 2**12, 2**14, 2**16, 2**18, 2**20, 2**22, 2**24),
    dtypes: tuple[torch.dtype, ...] = (torch.float32,),
    repeats: int = 3,
    block_s: float = 0.01,
) -> list[SweepPoint]:
    """Each operation class across sizes: small sizes show per-call overhead, large ones the roofs."""
    points: list[SweepPoint] = []
    for dtype in dtypes:
        name = str(dtype).replace("torch.", "")
        item = torch.tensor([], dtype=dtype).element_size()
        for n in matmul_sizes:
            a = torch.randn(n, n, device=device).to(dtype)
            seconds = best_time(lambda: a @ a, device, repeats=repeats, block_s=block_s)
            points.append(SweepPoint("matmul", MATMUL, f"{n}x{n}x{n}", name, 2.0 * n**3, 3.0 * n * n * item, seconds))
        for n in elementwise_sizes:
            x = torch.randn(n, device=device).to(dtype)
            y = torch.randn(n, device=device).to(dtype)
            for op, op_class, fn, flops, passes in _cases(n):
                seconds = best_time(lambda: fn(x, y), device, repeats=repeats, block_s=block_s)
                points.append(SweepPoint(op, op_class, str(n), name, float(flops), float(passes * n * item), seconds))
    return points
