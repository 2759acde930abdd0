"""The report's figures, drawn with matplotlib's Agg canvas (no display, no global backend change)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hasten.curves.compare import Comparison
from hasten.curves.profiles import R_MAX, profile
from hasten.curves.speedup import Speedup

DPI = 110


def _figure(width: float = 7.0, height: float = 4.3) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def plot_tradeoff(comparison: Comparison, path: Path) -> Path:
    """Quality against training time (log axis) per recipe: seed means, 95% bands, the Pareto
    frontier over every point, and the target line. Points that use a run flagged for a busy
    machine are ringed in red."""
    figure = _figure()
    axes = figure.add_subplot()
    busy_labelled = False
    for recipe in comparison.recipes:
        points = comparison.curves[recipe].points
        if not points:
            continue
        times = np.array([p.time_s for p in points])
        line = axes.plot(times, [p.quality for p in points], marker="o", markersize=3.5, linewidth=1.6, label=recipe)[0]
        banded = [p for p in points if _finite(p.quality_low, p.quality_high)]
        if banded:
            axes.fill_between(
                [p.time_s for p in banded],
                [p.quality_low for p in banded],
                [p.quality_high for p in banded],
                color=line.get_color(),
                alpha=0.18,
                linewidth=0,
            )
        busy = [p for p in points if comparison.contended(recipe, p.label)]
        if busy:
            axes.scatter(
                [p.time_s for p in busy],
                [p.quality for p in busy],
                s=90,
                facecolors="none",
                edgecolors="#b3261e",
                linewidths=1.4,
                zorder=5,
                label="busy machine (provisional)" if not busy_labelled else None,
            )
            busy_labelled = True
    if comparison.frontier:
        front = comparison.frontier
        axes.step(
            [p.time_s for p in front],
            [p.quality for p in front],
            where="post",
            color="black",
            linestyle="--",
            linewidth=1.0,
            label="Pareto frontier",
        )
    axes.axhline(comparison.target, color="grey", linestyle=":", linewidth=1.0, label=f"target {comparison.target:g}")
    axes.set_xscale("log")
    axes.set_xlabel("training time (s, log scale; eval and checkpoint time excluded)")
    direction = "higher is better" if comparison.higher_is_better else "lower is better"
    axes.set_ylabel(f"{comparison.metric} ({direction})")
    what = "eval time series of each run" if comparison.readout == "evals" else "final quality at each budget"
    axes.set_title(f"{comparison.workload}: tradeoff curves ({what}; mean and 95% CI over seeds)", fontsize=9)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=7, loc="best")
    return _save(figure, path)


def _floats(values: Iterable[float | None]) -> list[float]:
    """Plot-ready numbers: a missing value becomes NaN, which matplotlib leaves out."""
    return [math.nan if v is None else float(v) for v in values]


def plot_speedup_vs_target(comparison: Comparison, by_target: Mapping[str, Sequence[Speedup]], path: Path) -> Path:
    """Speedup over the baseline at every target the baseline reaches, with bootstrap bands."""
    figure = _figure()
    axes = figure.add_subplot()
    for recipe, rows in by_target.items():
        measured = [s for s in rows if s.speedup is not None]
        if not measured:
            continue
        line = axes.plot(
            [s.target for s in measured], _floats(s.speedup for s in measured), marker="o", markersize=3.5, label=recipe
        )[0]
        banded = [s for s in measured if _finite(s.ci_low, s.ci_high)]
        if banded:
            x = [s.target for s in banded]
            axes.fill_between(
                x,
                _floats(s.ci_low for s in banded),
                _floats(s.ci_high for s in banded),
                color=line.get_color(),
                alpha=0.18,
                linewidth=0,
            )
            speedup, low, high = (
                np.array(_floats(getattr(s, k) for s in banded)) for k in ("speedup", "ci_low", "ci_high")
            )
            axes.errorbar(
                x,
                speedup,
                yerr=[speedup - low, high - speedup],
                fmt="none",
                ecolor=line.get_color(),
                capsize=3,
                linewidth=1,
            )
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.axvline(comparison.target, color="grey", linestyle=":", linewidth=1.0, label=f"target {comparison.target:g}")
    if not comparison.higher_is_better:
        axes.invert_xaxis()  # harder targets to the right, whichever way the metric runs
    axes.set_xlabel(f"target {comparison.metric} (harder to the right)")
    axes.set_ylabel(f"speedup over {comparison.baseline} (x)")
    axes.set_title("iso-quality speedup vs target (band: 95% bootstrap CI over seeds; gaps: not reached)", fontsize=9)
    axes.grid(True, alpha=0.25)
    axes.legend(fontsize=7, loc="best")
    return _save(figure, path)


def plot_factors(comparison: Comparison, path: Path) -> Path:
    """Speedup at the target and its two factors, steps-to-quality and time-per-step, per recipe."""
    rows = [s for r in comparison.recipes if r != comparison.baseline for s in [comparison.speedups[r]]]
    figure = _figure(8.0, 1.4 + 0.8 * max(len(rows), 1))
    axes = figure.add_subplot()
    kinds = [
        ("speedup", "speedup"),
        ("steps_factor", "steps-to-quality factor"),
        ("time_per_step_factor", "time-per-step factor"),
    ]
    height = 0.26
    for k, (field, label) in enumerate(kinds):
        values, lows, highs, ys = [], [], [], []
        for i, s in enumerate(rows):
            value = getattr(s, field)
            if value is None:
                continue
            if field == "speedup":
                interval = (s.ci_low, s.ci_high)
            else:
                interval = getattr(s, f"{field}_ci") or (None, None)
            lo, hi = interval
            values.append(value)
            lows.append(value - lo if _finite(lo) else 0.0)
            highs.append(hi - value if _finite(hi) else 0.0)
            ys.append(i + (1 - k) * height)
        if values:
            bars = axes.barh(
                ys,
                [v - 1.0 for v in values],
                left=1.0,
                height=height,
                xerr=[lows, highs],
                capsize=3,
                label=label,
                alpha=0.85,
            )
            for y, value, low, high in zip(ys, values, lows, highs):
                edge = value + high if value >= 1 else value - low  # beyond the error bar, away from 1.0
                axes.text(
                    edge,
                    y,
                    f" {value:.2f}x ",
                    va="center",
                    ha="left" if value >= 1 else "right",
                    fontsize=7,
                    color=bars.patches[0].get_facecolor(),
                )
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(rows)), [f"{s.recipe}\n({s.status})" for s in rows], fontsize=7)
    axes.set_xlabel(f"factor over {comparison.baseline} at target {comparison.target:g} (> 1 is faster)")
    axes.set_title("speedup = steps-to-quality factor x time-per-step factor (error bars: 95% CI)", fontsize=9)
    axes.grid(True, axis="x", alpha=0.25)
    if rows:
        axes.margins(x=0.12)
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        axes.text(0.5, 0.5, "no recipe besides the baseline", transform=axes.transAxes, ha="center")
    return _save(figure, path)


def plot_profiles(ratios: Mapping[str, Mapping[str, float]], path: Path, r_max: float = R_MAX) -> Path:
    """AlgoPerf performance profiles: fraction of workloads within a factor tau of the fastest."""
    figure = _figure()
    axes = figure.add_subplot()
    taus = np.linspace(1.0, r_max, 400)
    for recipe, per in ratios.items():
        axes.step(taus, profile(per, taus), where="post", label=recipe)
    axes.set_xlim(1.0, r_max)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("tau (time-to-target over the fastest recipe's)")
    axes.set_ylabel("fraction of workloads")
    axes.set_title("performance profiles", fontsize=9)
    axes.grid(True, alpha=0.25)
    axes.legend(fontsize=7, loc="best")
    return _save(figure, path)
