"""FlashOptim versus torch: quality, bytes per parameter, checkpoint size, peak memory, step time.

    python benchmarks/flashoptim.py                          # shakespeare and cifar10, 3 seeds, baseline budgets
    python benchmarks/flashoptim.py --quick                  # 1 seed, a few dozen steps: checks the script runs
    python benchmarks/flashoptim.py --workloads toy --quick  # seconds
    python benchmarks/flashoptim.py --device cuda            # the same on a GPU (torch.cuda.max_memory_allocated)

Variants per workload (same seed, same data order, same hyperparameters):

- ``adamw``: torch AdamW with fp32 weights (shakespeare's own baseline; on cifar10, whose baseline is
  SGD, AdamW with ``--adamw-lr``/``--adamw-wd``, the same for both sides and not tuned);
- ``flash_adamw``: the catalogue method, which inherits that AdamW's groups and hyperparameters;
- ``flash_adamw+release``: the same with gradient release (skipped where the workload clips
  gradients: release cannot clip by the global norm, and the run is reported as refused).

Every run is its own process, so ``ru_maxrss`` (CPU peak resident memory) belongs to that run
alone. Bytes per parameter come from ``memory_report`` (tensor storage after the last step,
gradients included), checkpoint bytes from ``torch.save`` of the model and optimizer state dicts.
Step time is the Trainer's ``train`` bucket over the steps taken; the ratio is flash / torch per
seed, median over seeds. Timings on a shared machine are not results: run it on an idle one.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

QUICK_DURATION = {"shakespeare": "40ba", "cifar10": "12ba", "toy": "2ep"}


def _workload(name: str, adamw_lr: float, adamw_wd: float):
    """The workload, with torch AdamW as its optimizer where its own baseline uses something else."""
    from hasten.workloads.base import get_workload

    base = get_workload(name)

    class AdamWBaseline(type(base)):  # same task, data, model and schedule; only the optimizer may differ
        def build(self, **kwargs: Any):
            parts = base.build(**kwargs)
            if not isinstance(parts.optimizer(parts.model), torch.optim.AdamW):
                parts.optimizer = lambda model: torch.optim.AdamW(
                    model.parameters(), lr=adamw_lr, weight_decay=adamw_wd
                )
            return parts

    wrapped = copy.copy(base)
    wrapped.__class__ = AdamWBaseline
    return wrapped


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One training run (called in a fresh process): the numbers for one variant and seed."""
    from hasten.errors import ConfigError
    from hasten.optim.flash import memory_report
    from hasten.workloads.runner import build_trainer

    device = torch.device(job["device"])
    workload = _workload(job["workload"], job["adamw_lr"], job["adamw_wd"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        trainer = build_trainer(
            workload,
            job["methods"],
            duration=job["duration"],
            seed=job["seed"],
            device=device,
            data_dir=job["data_dir"],
            config={"benchmark": "flashoptim", "variant": job["variant"]},
        )
    except ConfigError as exc:  # e.g. gradient release on a workload that clips gradients
        return {
            **{k: job[k] for k in ("workload", "variant", "seed", "duration")},
            "status": "refused",
            "error": str(exc),
        }
    started = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - started
    model, optimizer = trainer.state.model, trainer.state.optimizer
    report = memory_report(model, optimizer)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    peak = (
        torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        **{k: job[k] for k in ("workload", "variant", "seed", "duration")},
        "status": result.status,
        "metric": workload.metric,
        "quality": result.final.get(workload.metric),
        "steps": result.steps,
        "step_time_s": result.timing["train"] / max(result.steps, 1),
        "wall_s": wall,
        "optimizer": type(optimizer).__name__,
        "params": report.params,
        "bytes_per_param": report.bytes_per_param,
        "by_category": report.per_param,
        "checkpoint_bytes": buffer.tell(),
        "checkpoint_bytes_per_param": buffer.tell() / report.params,
        "peak_bytes": peak,
        "peak_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process max RSS",
    }


VARIANTS = [
    ("adamw", []),
    ("flash_adamw", ["flash_adamw"]),
    ("flash_adamw+release", ["flash_adamw:gradient_release=true"]),
]


def spawn(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    if done.returncode != 0:
        return {**job, "status": "failed", "error": done.stderr.strip().splitlines()[-1] if done.stderr else "?"}
    return json.loads(done.stdout.strip().splitlines()[-1])


GOALS = {"flash_adamw": 7.2, "flash_adamw+release": 5.2}  # bytes per parameter (issue 7)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per workload and variant: quality over seeds, bytes, checkpoint, peak, step-time ratio, verdicts."""
    table = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == workload and r["status"] == "completed"]
        torch_rows = {r["seed"]: r for r in mine if r["variant"] == "adamw"}
        reference = [r["quality"] for r in torch_rows.values()]
        for variant in dict.fromkeys(r["variant"] for r in mine):
            runs = [r for r in mine if r["variant"] == variant]
            qualities = [r["quality"] for r in runs]
            ratios = [r["step_time_s"] / torch_rows[r["seed"]]["step_time_s"] for r in runs if r["seed"] in torch_rows]
            row = {
                "workload": workload,
                "variant": variant,
                "seeds": len(runs),
                "metric": runs[0]["metric"],
                "quality_mean": statistics.mean(qualities),
                "quality_min": min(qualities),
                "quality_max": max(qualities),
                "bytes_per_param": statistics.mean(r["bytes_per_param"] for r in runs),
                "checkpoint_bytes_per_param": statistics.mean(r["checkpoint_bytes_per_param"] for r in runs),
                "peak_mib": statistics.mean(r["peak_bytes"] for r in runs) / 2**20,
                "peak_kind": runs[0]["peak_kind"],
                "step_time_ratio": statistics.median(ratios) if ratios else None,
            }
            if variant != "adamw" and reference:
                # "within the seed spread": the mean gap is no larger than the widest range of either side's seeds
                spread = max(max(reference) - min(reference), max(qualities) - min(qualities))
                row["quality_gap"] = row["quality_mean"] - statistics.mean(reference)
                row["within_seed_spread"] = len(runs) > 1 and abs(row["quality_gap"]) <= spread
                row["bytes_goal_met"] = row["bytes_per_param"] <= GOALS.get(variant, float("inf"))
            table.append(row)
    return table


def render(table: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | variant | seeds | quality: mean (min-max) | vs adamw | B/param | checkpoint B/param "
        "| peak MiB | step time vs adamw |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        ratio = f"{row['step_time_ratio']:.2f}x" if row["step_time_ratio"] is not None else "-"
        gap = "-"
        if "quality_gap" in row:
            gap = f"{row['quality_gap']:+.4f} ({'within' if row['within_seed_spread'] else 'outside'} seed spread)"
        lines.append(
            f"| {row['workload']} | {row['variant']} | {row['seeds']} | {row['metric']} {row['quality_mean']:.4f} "
            f"({row['quality_min']:.4f}-{row['quality_max']:.4f}) | {gap} | {row['bytes_per_param']:.2f} | "
            f"{row['checkpoint_bytes_per_param']:.2f} | {row['peak_mib']:.0f} ({row['peak_kind']}) | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="shakespeare,cifar10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--duration", default=None, help="override every workload's budget (default: its baseline's)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--adamw-lr", type=float, default=2e-3, help="AdamW lr where the workload's baseline is not AdamW"
    )
    parser.add_argument("--adamw-wd", type=float, default=5e-2, help="AdamW weight decay, likewise")
    parser.add_argument("--quick", action="store_true", help="1 seed, a few dozen steps: a smoke test, not a result")
    parser.add_argument("--out", default=None, help="write the runs and the summary as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_one(json.loads(args.worker))))
        return
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    seeds = 1 if args.quick else args.seeds
    rows = []
    for workload in args.workloads.split(","):
        duration = args.duration or (QUICK_DURATION.get(workload, "20ba") if args.quick else None)
        for seed in range(seeds):
            for variant, methods in VARIANTS:
                job = dict(
                    workload=workload,
                    variant=variant,
                    methods=methods,
                    seed=seed,
                    duration=duration,
                    device=device,
                    data_dir=args.data_dir,
                    adamw_lr=args.adamw_lr,
                    adamw_wd=args.adamw_wd,
                )
                row = spawn(job)
                rows.append(row)
                detail = row.get("error", "")
                if row["status"] == "completed":
                    detail = (
                        f"{row['metric']}={row['quality']:.4f} {row['bytes_per_param']:.2f} B/param "
                        f"{row['step_time_s'] * 1e3:.1f} ms/step"
                    )
                print(f"{workload} {variant} seed {seed}: {row['status']} {detail}", flush=True)
    table = summarize(rows)
    print(render(table))
    if args.out:
        from hasten.store.environment import capture_environment

        env = capture_environment(torch.device(device))
        Path(args.out).write_text(json.dumps({"device": device, "env": env, "runs": rows, "summary": table}, indent=1))


if __name__ == "__main__":
    main()
