"""The pruning report: per strategy and compression, quality before and after fine-tuning over seeds,
the achieved compression and theoretical speedup, and the measured inference-time ratio; plots of
quality against compression and against theoretical speedup, with the unpruned control and the
random baseline drawn from the same code (Blalock et al.'s reporting checklist).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hasten.errors import ConfigError
from hasten.prune.experiment import CONTROL
from hasten.store.store import RunStore


@dataclass(frozen=True)
class Row:
    strategy: str
    compression_target: float
    seeds: int
    compression: float
    theoretical_speedup: float
    before: tuple[float, float]  # mean, std over seeds
    after: tuple[float, float]
    inference_time_ratio: float


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def pruning_results(store: RunStore, workload: str) -> list[dict[str, Any]]:
    """``config["pruning"]`` of every completed pruning run of ``workload``."""
    found: dict[tuple, dict[str, Any]] = {}
    for record in store.list_runs(workload, status="completed"):
        pruning = record.config.get("pruning")
        if isinstance(pruning, dict) and "after" in pruning:
            key = (
                pruning["strategy"],
                float(pruning["compression_target"]),
                pruning["seed"],
                pruning["pretrain"],
                pruning["finetune"],
                pruning["lr_scale"],
                pruning["include_classifier"],
            )
            found.setdefault(key, pruning)  # a point run twice counts once (the first run)
    if not found:
        raise ConfigError(f"no pruning runs of {workload!r} in {store.path}", f"run 'hasten prune {workload}' first")
    return list(found.values())


def summarize(results: list[dict[str, Any]]) -> tuple[str, list[Row]]:
    """Rows per (strategy, compression target), sorted; and the metric's name."""
    metric = results[0]["metric"]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["strategy"], float(r["compression_target"]))].append(r)
    rows = []
    for (strategy, target), group in sorted(groups.items(), key=lambda kv: (kv[0][0] != CONTROL, kv[0])):
        rows.append(
            Row(
                strategy,
                target,
                len({g["seed"] for g in group}),
                statistics.fmean(g["compression"] for g in group),
                statistics.fmean(g["theoretical_speedup"] for g in group),
                _mean_std([g["before"].get(metric) for g in group]),
                _mean_std([g["after"].get(metric) for g in group]),
                statistics.median(g["inference_time_ratio"] for g in group),
            )
        )
    return metric, rows


def _cell(value: tuple[float, float], seeds: int) -> str:
    """Mean ± std over seeds; a single seed has no spread to show."""
    return f"{value[0]:.4f} ± {value[1]:.4f}" if seeds > 1 else f"{value[0]:.4f} (1 seed)"


def markdown_table(metric: str, rows: list[Row]) -> str:
    lines = [
        (
            f"| strategy | target | seeds | compression | theoretical speedup | {metric} before fine-tuning | "
            f"{metric} after fine-tuning | inference time vs dense |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {'unpruned control' if r.strategy == CONTROL else r.strategy} | {r.compression_target:g}x | "
            f"{r.seeds} | {r.compression:.2f} | {r.theoretical_speedup:.2f} | "
            f"{_cell(r.before, r.seeds)} | {_cell(r.after, r.seeds)} | "
            f"{r.inference_time_ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def plot(metric: str, rows: list[Row], x: str, path: Path) -> Path:
    """``metric`` after fine-tuning against ``x`` ("compression" or "theoretical_speedup"), log2 axis,
    mean ± std over seeds per strategy; the unpruned control as a horizontal band."""
    figure = Figure(figsize=(7.0, 4.3), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for strategy in sorted({r.strategy for r in rows} - {CONTROL}):
        points = sorted((getattr(r, x), r.after) for r in rows if r.strategy == strategy)
        style: dict[str, Any] = {"linestyle": "--", "color": "grey"} if strategy == "random" else {}
        axes.errorbar(
            [p[0] for p in points],
            [p[1][0] for p in points],
            yerr=[p[1][1] for p in points],
            marker="o",
            markersize=3.5,
            capsize=2,
            label=strategy,
            **style,
        )
    for r in rows:
        if r.strategy == CONTROL:
            axes.axhline(r.after[0], color="black", linewidth=1.0, label="unpruned control")
            axes.axhspan(r.after[0] - r.after[1], r.after[0] + r.after[1], color="black", alpha=0.08)
    axes.set_xscale("log", base=2)
    axes.set_xlabel(
        "compression ratio (parameters / nonzero)"
        if x == "compression"
        else "theoretical speedup (dense / nonzero multiply-adds)"
    )
    axes.set_ylabel(f"{metric} after fine-tuning")
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_pruning_report(store: RunStore, workload: str, out: Path) -> Path:
    """``out/pruning.md`` with the table and two figures; returns the Markdown path."""
    metric, rows = summarize(pruning_results(store, workload))
    plot(metric, rows, "compression", out / "accuracy-vs-compression.png")
    plot(metric, rows, "theoretical_speedup", out / "accuracy-vs-speedup.png")
    text = (
        f"# Pruning: {workload}\n\n{markdown_table(metric, rows)}\n"
        "Inference time is measured on the masked model, which runs dense kernels: masks do not make it "
        "faster.\n\n![accuracy vs compression](accuracy-vs-compression.png)\n\n"
        "![accuracy vs theoretical speedup](accuracy-vs-speedup.png)\n"
    )
    path = out / "pruning.md"
    path.write_text(text)
    return path
