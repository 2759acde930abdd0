"""The roofline plot: achieved FLOP/s against arithmetic intensity, with this device's roofs.

Roofs are the measured peaks (Williams, Waterman & Patterson 2009): attainable FLOP/s is
``min(peak, bandwidth * intensity)``; the ridge point ``peak / bandwidth`` separates memory-
bound operations (left) from compute-bound ones (right). Operations far below both roofs are
bound by per-call overhead. Microbenchmark points show what each op class reaches across
sizes; a profiled run's operations are placed on the same axes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from hasten.profile.microbench import SweepPoint
from hasten.profile.peaks import Peaks

_COLORS = {
    "matmul/conv": "tab:red",
    "elementwise": "tab:blue",
    "normalization": "tab:green",
    "reduction": "tab:purple",
    "optimizer": "tab:orange",
    "communication": "tab:brown",
}


def roofline_points(ops: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Profiled operations that can be placed: some work, some bytes, some time."""
    return [op for op in ops if op.get("work_flops", 0) > 0 and op.get("bytes", 0) > 0 and op.get("time_s", 0) > 0]


def plot_roofline(
    peaks: Peaks,
    out: str | os.PathLike,
    *,
    sweep: Sequence[SweepPoint] = (),
    ops: Sequence[dict[str, Any]] = (),
    title: str | None = None,
    label_top: int = 6,
) -> Path:
    """Draw the roofline to ``out`` (PNG) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    placed = roofline_points(ops)
    intensities = [p.intensity for p in sweep if p.intensity > 0] + [op["work_flops"] / op["bytes"] for op in placed]
    ridge = peaks.ridge("float32")
    low = min([ridge / 1e3] + [i / 2 for i in intensities])
    high = max([ridge * 1e2] + [i * 2 for i in intensities])
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    xs = [low * (high / low) ** (k / 200) for k in range(201)]
    roofs = [("float32", "black", "-")]
    if peaks.matmul_flops.get("bfloat16", 0) > peaks.matmul_flops["float32"]:
        roofs.append(("bfloat16", "gray", "--"))
    for dtype, color, style in roofs:
        peak = peaks.peak_flops(dtype)
        ax.plot(
            xs,
            [min(peak, peaks.bandwidth * x) for x in xs],
            color=color,
            linestyle=style,
            linewidth=2,
            label=f"roof {dtype}: {peak / 1e9:.1f} GFLOP/s, {peaks.bandwidth / 1e9:.1f} GB/s",
        )
    ax.axvline(ridge, color="black", linestyle=":", linewidth=1)
    ax.annotate(
        f"ridge {ridge:.1f} FLOP/B",
        (ridge, peaks.peak_flops("float32")),
        textcoords="offset points",
        xytext=(6, -14),
        fontsize=8,
    )
    for op_class, color in _COLORS.items():
        mine = [p for p in sweep if p.op_class == op_class and p.intensity > 0]
        if mine:
            ax.scatter(
                [p.intensity for p in mine],
                [p.flops_per_s for p in mine],
                s=14,
                color=color,
                alpha=0.45,
                label=f"microbench {op_class}",
            )
    total = sum(op["time_s"] for op in placed) or 1.0
    for i, op in enumerate(sorted(placed, key=lambda o: -o["time_s"])):
        x, y = op["work_flops"] / op["bytes"], op["work_flops"] / op["time_s"]
        ax.scatter(
            [x],
            [y],
            s=30 + 400 * op["time_s"] / total,
            marker="D",
            edgecolors="black",
            color=_COLORS.get(op["class"], "tab:gray"),
            zorder=3,
        )
        if i < label_top:
            ax.annotate(op["name"].replace("aten::", ""), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if placed:
        ax.scatter([], [], marker="D", color="white", edgecolors="black", label="profiled op (size: time share)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(title or f"Roofline: {peaks.device_name}")
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
