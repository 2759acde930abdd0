"""Baselines of the real workloads: 3 seeds each, quality and cost, with the machine.

For every workload (mnist, cifar10, shakespeare) this trains the baseline recipe for its
default duration with seeds 0, 1, 2 and reports, per workload:

- final quality, mean +- std (and min-max) over seeds,
- the target that quality supports: mean minus the seed spread (max - min), or plus it for a
  loss, which is how each workload's default ``target`` is set,
- training time (the ``train`` bucket only: no eval, no checkpoints), mean +- std,
- throughput (samples/s; tokens/s for text) and the data-wait fraction (share of training
  time spent waiting for the next batch: the data path must not be the bottleneck),
- time to the workload's current target (first evaluation at or past it), per seed,
- the machine (``hasten.store.environment``).

Before each workload's timed seeds, a short untimed run warms up lazy imports and kernels.
Timings taken on a shared machine are not results: run the full benchmark on an idle one.

    python benchmarks/baselines.py                   # full: 3 seeds x 3 workloads (~30-40 min on 2 cores)
    python benchmarks/baselines.py --quick           # smoke run: 2 seeds, a few steps each
    python benchmarks/baselines.py --workloads shakespeare --seeds 5 --data-dir /data

Long workloads can run one seed per process, then be merged into one report:

    python benchmarks/baselines.py --workloads cifar10 --seed-list 0 --threads 1 --out seed0   # x3, in parallel
    python benchmarks/baselines.py --merge results/baselines.json seed0/baselines.json ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hasten.store.environment import capture_environment
from hasten.trainer.trainer import resolve_device
from hasten.workloads import build_trainer, get_workload

WORKLOADS = ("mnist", "cifar10", "shakespeare")
QUICK_DURATIONS = {"mnist": "20ba", "cifar10": "6ba", "shakespeare": "40ba"}
OUT = Path(__file__).resolve().parent / "results"
CONCURRENT = 1  # how many benchmark processes shared the machine (--concurrent); recorded with every run


def time_to_target(points: list[tuple[float, float | None]], workload: Any) -> float | None:
    """The training time of the first (train_time_s, quality) point at or past the workload's target."""
    return next((t for t, value in points if value is not None and workload.reached(value)), None)


def run_seed(
    name: str, seed: int, duration: str | None, data_dir: str | None, device: str, store: Any, eval_interval: str | None
) -> dict[str, Any]:
    workload = get_workload(name)
    trainer = build_trainer(
        workload,
        duration=duration,
        seed=seed,
        data_dir=data_dir,
        device=device,
        store=store,
        eval_interval=eval_interval,
    )
    result = trainer.fit()
    timing = result.timing
    text = workload.modality == "text"
    processed = result.tokens if text else result.samples
    return {
        "seed": seed,
        "duration": duration,
        "status": result.status,
        "final": result.final.get(workload.metric),
        "steps": result.steps,
        "train_time_s": timing["train"],
        "eval_time_s": timing["eval"],
        "data_wait_s": timing["data_wait"],
        "data_wait_fraction": timing["data_wait"] / timing["train"] if timing["train"] else None,
        "throughput": processed / timing["train"] if timing["train"] else None,
        "throughput_unit": "tokens/s" if text else "samples/s",
        "time_to_target_s": time_to_target(
            [(p.train_time_s, p.metrics.get(workload.metric)) for p in result.evals], workload
        ),
        "evals": [{"step": p.step, "train_time_s": p.train_time_s, **p.metrics} for p in result.evals],
        "data_source": trainer.state.run_info.get("config", {}).get("data_source"),
        "threads": torch.get_num_threads(),
        "concurrent_processes": CONCURRENT,
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(name: str, runs: list[dict[str, Any]], duration: str) -> dict[str, Any]:
    workload = get_workload(name)
    finals = [r["final"] for r in runs if r["status"] == "completed" and r["final"] is not None]
    quality, spread = mean_std(finals), (max(finals) - min(finals)) if finals else float("nan")
    supported = quality[0] - spread if workload.higher_is_better else quality[0] + spread
    times = mean_std([r["train_time_s"] for r in runs])
    return {
        "workload": name,
        "metric": workload.metric,
        "higher_is_better": workload.higher_is_better,
        "duration": duration,
        "seeds": [r["seed"] for r in runs],
        "quality_mean": quality[0],
        "quality_std": quality[1],
        "quality_min": min(finals) if finals else None,
        "quality_max": max(finals) if finals else None,
        "supported_target": supported,
        "current_target": workload.target,
        "all_seeds_reach_current_target": all(workload.reached(v) for v in finals) and len(finals) == len(runs),
        "train_time_mean_s": times[0],
        "train_time_std_s": times[1],
        "throughput_mean": statistics.fmean(r["throughput"] for r in runs),
        "throughput_unit": runs[0]["throughput_unit"],
        "data_wait_fraction_mean": statistics.fmean(r["data_wait_fraction"] for r in runs),
        "eval_time_mean_s": statistics.fmean(r["eval_time_s"] for r in runs),
        "time_to_target_s": [r["time_to_target_s"] for r in runs],
        "data_source": runs[0]["data_source"],
        "threads": runs[0].get("threads"),
        "concurrent_processes": max(r.get("concurrent_processes", 1) for r in runs),
    }


def markdown(summaries: list[dict[str, Any]], env: dict[str, Any], quick: bool) -> str:
    lines = [
        "# Baselines" + (" (QUICK smoke run: not a result)" if quick else ""),
        "",
        f"Machine: {env['cpu']} ({env['cpu_count']} CPUs, {env['threads']} torch threads), device {env['device']}, "
        f"torch {env['torch']}, hasten {env['hasten']} at {env['commit']}.",
        "",
        "| workload | duration | quality (mean ± std, min-max) | supported target | current target | "
        "train time (s) | throughput | data wait | time to target (s, per seed) | threads x processes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        reached = ", ".join("-" if t is None else f"{t:.0f}" for t in s["time_to_target_s"])
        lines.append(
            f"| {s['workload']} | {s['duration']} | {s['metric']} {s['quality_mean']:.4f} ± {s['quality_std']:.4f} "
            f"({s['quality_min']:.4f}-{s['quality_max']:.4f}) | {s['supported_target']:.4f} | {s['current_target']} | "
            f"{s['train_time_mean_s']:.1f} ± {s['train_time_std_s']:.1f} | "
            f"{s['throughput_mean']:,.0f} {s['throughput_unit']} | {100 * s['data_wait_fraction_mean']:.2f}% | "
            f"{reached} | {s.get('threads')} x {s.get('concurrent_processes', 1)} |"
        )
    lines += [
        "",
        "Supported target = mean - (max - min) over seeds (mean + spread for a loss). Training time is the "
        "train bucket only; evaluation is timed separately. Threads x processes: torch threads per run and how "
        "many benchmark processes shared the machine; times with more than one process are contended.",
        "",
    ]
    lines += [f"- {s['workload']} data: `{s['data_source']}`" for s in summaries] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds of a few steps (contended numbers)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated workload names")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per workload (default 3; 2 with --quick)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $HASTEN_DATA, then the user cache)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--store", default=None, help="also record every run in this run store (SQLite)")
    parser.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds), e.g. 2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=1,
        help="how many benchmark processes run side by side (recorded; their times are contended)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="combine earlier baselines.json files into one report instead of training",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help=f"folder for baselines.json/.md (--quick: baselines-quick.*) (default {OUT})",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    global CONCURRENT
    CONCURRENT = args.concurrent
    if args.threads:
        torch.set_num_threads(args.threads)

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    seeds = (
        [int(s) for s in args.seed_list.split(",")]
        if args.seed_list
        else list(range(args.seeds or (2 if args.quick else 3)))
    )
    store = None
    if args.store:
        from hasten.store.store import RunStore

        store = RunStore(args.store)
    summaries, all_runs = [], {}
    for name in names:
        workload = get_workload(name)
        duration = QUICK_DURATIONS.get(name, "5ba") if args.quick else workload.default_duration
        run_seed(name, 99, "2ba", args.data_dir, args.device, None, "2ba")  # untimed warm-up: imports, kernels
        runs = []
        for seed in seeds:
            started = time.perf_counter()
            run = run_seed(name, seed, duration, args.data_dir, args.device, store, duration if args.quick else None)
            runs.append(run)
            print(
                f"{name} seed {seed}: {workload.metric} {run['final']:.4f}, train {run['train_time_s']:.1f}s, "
                f"data wait {100 * run['data_wait_fraction']:.2f}%, wall {time.perf_counter() - started:.0f}s",
                file=sys.stderr,
                flush=True,
            )
        all_runs[name] = runs
        summaries.append(summarize(name, runs, duration))
    env = capture_environment(resolve_device(args.device))
    stem = "baselines-quick" if args.quick else "baselines"  # a smoke run never overwrites the real result
    write_report(args.out, stem, {"quick": args.quick, "env": env, "summaries": summaries, "runs": all_runs})
    return 0


def write_report(out: Path, stem: str, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    text = markdown(report["summaries"], report["env"], report["quick"])
    (out / f"{stem}.md").write_text(text)
    print(text)


def merge(paths: list[Path], out: Path) -> int:
    """One report from several runs of this script (e.g. one seed per process); later files win per seed."""
    reports = [json.loads(p.read_text()) for p in paths]
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for report in reports:
        for name, seed_runs in report["runs"].items():
            for run in seed_runs:
                runs.setdefault(name, {})[run["seed"]] = run
    ordered = {name: [by_seed[s] for s in sorted(by_seed)] for name, by_seed in runs.items()}
    for name, seed_runs in ordered.items():  # read time-to-target again at the workload's current target
        workload = get_workload(name)
        for run in seed_runs:
            run["time_to_target_s"] = time_to_target(
                [(p["train_time_s"], p.get(workload.metric)) for p in run["evals"]], workload
            )
    summaries = [
        summarize(name, seed_runs, seed_runs[0].get("duration") or get_workload(name).default_duration)
        for name, seed_runs in ordered.items()
    ]
    write_report(
        out,
        "baselines",
        {"quick": any(r["quick"] for r in reports), "env": reports[0]["env"], "summaries": summaries, "runs": ordered},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
