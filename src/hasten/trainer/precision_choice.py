"""``precision: auto``: bf16 autocast only where this device's measured bf16 matmul is faster
than fp32. Some CPUs run bf16 at a fraction of fp32's rate (no bf16 units: every product is
converted), others at 2-3x; a fixed choice is wrong on one of them. The measurement is the
cached ``hasten microbench`` peaks (a quick one is taken when none is cached), and the run
records the choice and the figures it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MARGIN = 1.1  # bf16 must be this much faster: a tie is not worth the rounding


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str
    fp32_flops: float
    bf16_flops: float

    def to_config(self) -> dict:
        return {
            "precision": self.precision,
            "precision_requested": "auto",
            "precision_reason": self.reason,
            "matmul_gflops": {"float32": round(self.fp32_flops / 1e9, 1), "bfloat16": round(self.bf16_flops / 1e9, 1)},
        }


def choose_precision(
    device: torch.device | str = "cpu", matmul_flops: dict[str, float] | None = None, source: str | None = None
) -> PrecisionChoice:
    """bf16 if measured bf16 matmul FLOP/s >= MARGIN x fp32's on ``device``, else fp32.
    ``matmul_flops`` (dtype name -> FLOP/s) overrides the measurement (tests, imported figures)."""
    if matmul_flops is None:
        from hasten.profile.peaks import get_peaks, load_peaks

        cached = load_peaks(device)
        peaks = cached or get_peaks(device)
        matmul_flops = peaks.matmul_flops
        source = source or ("hasten microbench cache" if cached is not None else "quick microbench")
    fp32, bf16 = matmul_flops["float32"], matmul_flops.get("bfloat16", 0.0)
    ratio = bf16 / fp32 if fp32 > 0 else 0.0
    figures = (
        f"bf16 matmul {bf16 / 1e9:.0f} GFLOP/s vs fp32 {fp32 / 1e9:.0f} GFLOP/s ({ratio:.2f}x, {source or 'given'})"
    )
    if ratio >= MARGIN:
        return PrecisionChoice("bf16", f"{figures}: bf16 is faster here", fp32, bf16)
    return PrecisionChoice("fp32", f"{figures}: bf16 is not at least {MARGIN:.1f}x faster here", fp32, bf16)
