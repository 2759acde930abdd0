"""The speedrun race: a recipe against the workload's baseline at its full default duration.

For shakespeare the claim is nanoGPT-quality (whole-split validation loss <= 1.90) in at
most 1/5 of the training time of the baseline's full 2000-step run (nanoGPT's baby-GPT
config). Per seed this trains the baseline for its whole default duration and the recipe
(and, with ``--ablate``, the recipe with each of its components removed), interleaved:
seed 0 baseline, recipe, ablations, then seed 1, ... With ``--jobs N`` N runs train at once,
each in its own process with ``--threads`` threads, so the runs of a race share the
machine's load alike.

The race ratio is (mean baseline full-run training time) / (mean recipe time to the
target), with hasten's bootstrap interval over seeds (``hasten.curves.speedup``) and its
two factors (steps, time per step). Training time is the Trainer's ``train`` bucket:
evaluations, checkpoints and the first warm-up steps' one-time costs are not in it.
The result goes to ``benchmarks/results/speedrun-<workload>.json`` with the machine, the
load average before and after, and a PNG of every run's loss against training time.

    python benchmarks/speedrun.py --workload shakespeare                  # 3 seeds, one run at a time
    python benchmarks/speedrun.py --workload shakespeare --ablate --jobs 4 --threads 1
    python benchmarks/speedrun.py --workload shakespeare --quick          # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from hasten.curves.analysis import Crossing, Point, first_crossing
from hasten.curves.speedup import iso_quality_speedup
from hasten.recipes.recipe import load_recipe, recipe_names
from hasten.store.environment import capture_environment
from hasten.trainer.trainer import resolve_device
from hasten.workloads import get_workload

OUT = Path(__file__).resolve().parent / "results"
TARGETS = {"shakespeare": 1.90}  # nanoGPT's own model scores 1.898 on the whole validation split
RECIPES = {"shakespeare": "shakespeare-speedrun"}


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one run in this process; return its eval series and timing."""
    import torch

    from hasten.workloads.runner import build_trainer

    torch.set_num_threads(job["threads"])
    arguments = dict(job["arguments"])
    duration = job["duration"] or arguments.pop("duration", None)
    arguments.pop("duration", None)
    started = time.time()
    trainer = build_trainer(
        job["workload"],
        seed=job["seed"],
        duration=duration,
        device=job["device"],
        data_dir=job["data_dir"],
        eval_interval=job["eval_interval"],
        **arguments,
    )
    result = trainer.fit()
    metric = trainer.state.run_info["metric"]
    return {
        "label": job["label"],
        "seed": job["seed"],
        "status": result.status,
        "steps": result.steps,
        "train_time_s": result.timing["train"],
        "final": result.final.get(metric),
        "precision": trainer.state.run_info["config"].get("precision"),
        "precision_reason": trainer.state.run_info["config"].get("precision_reason"),
        "evals": [(e.step, e.train_time_s, e.metrics[metric]) for e in result.evals],
        "wall_s": time.time() - started,
        "load_after": os.getloadavg()[0],
    }


def plan(
    workload: str,
    recipe_name: str,
    seeds: list[int],
    ablate: bool,
    quick: bool,
    eval_every: str | None,
    threads: int,
    device: str,
    data_dir: str | None,
) -> list[dict[str, Any]]:
    recipe = load_recipe(recipe_name)
    if recipe.workload != workload:
        raise SystemExit(f"error: recipe {recipe.name!r} is for {recipe.workload!r}, not {workload!r}")
    from hasten.recipes.recipe import run_arguments

    variants = [("baseline", {}), (recipe.label, run_arguments(recipe, workload))]
    if ablate:
        variants += [(recipe.without(c).label, run_arguments(recipe.without(c), workload)) for c in recipe.components]
    spec = get_workload(workload)
    jobs = []
    for seed in seeds:
        for label, arguments in variants:
            baseline = label == "baseline"
            duration = ("40ba" if baseline else "20ba") if quick else (spec.default_duration if baseline else None)
            evals = (spec.eval_interval if baseline else (eval_every or "25ba")) if not quick else "10ba"
            jobs.append(
                {
                    "workload": workload,
                    "label": label,
                    "seed": seed,
                    "arguments": arguments,
                    "duration": duration,
                    "eval_interval": evals,
                    "threads": threads,
                    "device": device,
                    "data_dir": data_dir,
                }
            )
    return jobs


def crossing(run: dict[str, Any], target: float, higher_is_better: bool) -> Crossing | None:
    points = [Point(t, float(s), q) for s, t, q in run["evals"]]
    return first_crossing(points, target, higher_is_better)


def analyse(runs: list[dict[str, Any]], workload: str, target: float) -> dict[str, Any]:
    spec = get_workload(workload)
    base = [r for r in runs if r["label"] == "baseline"]
    full = [Crossing(r["train_time_s"], float(r["steps"]), False) for r in base]  # the whole run, not a crossing
    rows = []
    for label in dict.fromkeys(r["label"] for r in runs if r["label"] != "baseline"):
        mine = [r for r in runs if r["label"] == label]
        crossings = [crossing(r, target, spec.higher_is_better) for r in mine]
        speedup = iso_quality_speedup(label, "baseline (full run)", target, full, crossings)
        reached = [c for c in crossings if c is not None]
        rows.append(
            {
                "recipe": label,
                "seeds": len(mine),
                "reached": f"{len(reached)}/{len(mine)}",
                "time_to_target_s": statistics.mean(c.time_s for c in reached) if reached else None,
                "steps_to_target": statistics.mean(c.steps for c in reached) if reached else None,
                "step_time_ms": (1000 * statistics.mean(c.time_s / c.steps for c in reached)) if reached else None,
                "final_mean": statistics.mean(r["final"] for r in mine if r["final"] is not None),
                **{k: v for k, v in speedup.to_dict().items() if k not in ("recipe", "baseline", "target")},
            }
        )
    return {
        "target": target,
        "baseline_full_run_time_s": statistics.mean(r["train_time_s"] for r in base),
        "baseline_full_run_time_each_s": [r["train_time_s"] for r in base],
        "baseline_final_each": [r["final"] for r in base],
        "baseline_step_time_ms": 1000 * statistics.mean(r["train_time_s"] / r["steps"] for r in base),
        "rows": rows,
    }


def plot(runs: list[dict[str, Any]], target: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    colours: dict[str, Any] = {}
    for run in runs:
        label = run["label"]
        colour = colours.setdefault(label, f"C{len(colours)}")
        xs, ys = [t for _, t, _ in run["evals"]], [q for _, _, q in run["evals"]]
        axis.plot(xs, ys, marker=".", color=colour, alpha=0.8, label=label if run["seed"] == runs[0]["seed"] else None)
    axis.axhline(target, color="k", linestyle="--", linewidth=0.8, label=f"target {target}")
    axis.set_xscale("log")
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("validation loss (whole split)")
    axis.set_ylim(top=min(3.0, axis.get_ylim()[1]))
    axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("shakespeare", "cifar10"), required=True)
    parser.add_argument("--recipe", default=None, help=f"default: {RECIPES}; known: {', '.join(recipe_names())}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ablate", action="store_true", help="also run the recipe with each component removed")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: all / jobs)")
    parser.add_argument("--eval-every", default=None, help="recipe eval interval (default 25ba)")
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: a few steps, nothing claimed")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.workload not in RECIPES and args.recipe is None:
        print(
            f"error: no {args.workload} speedrun recipe ships yet (see docs/speedruns.md: the cifar10 race "
            "against airbench94 is not done); give --recipe FILE to race one",
            file=sys.stderr,
        )
        return 2
    import torch

    threads = args.threads or max(1, torch.get_num_threads() // args.jobs)
    target = args.target if args.target is not None else TARGETS.get(args.workload, get_workload(args.workload).target)
    jobs = plan(
        args.workload,
        args.recipe or RECIPES[args.workload],
        list(range(args.seeds)),
        args.ablate,
        args.quick,
        args.eval_every,
        threads,
        args.device,
        args.data_dir,
    )
    load_before, started = os.getloadavg(), time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"speedrun-{args.workload}{'-quick' if args.quick else ''}.partial.jsonl"
    partial.write_text("")
    runs = []

    def finished(run: dict[str, Any]) -> None:  # each run is kept as it ends: a long race stopped early keeps its runs
        runs.append(run)
        with partial.open("a") as stream:
            stream.write(json.dumps(run) + "\n")
        print(
            f"{run['label']} seed {run['seed']}: {run['train_time_s']:.1f}s, final {run['final']:.4f}", file=sys.stderr
        )

    if args.jobs == 1:
        for job in jobs:
            finished(run_one(job))
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            for future in as_completed([pool.submit(run_one, job) for job in jobs]):
                finished(future.result())
    order = {(j["label"], j["seed"]): i for i, j in enumerate(jobs)}
    runs.sort(key=lambda r: order[(r["label"], r["seed"])])
    load_after = os.getloadavg()
    report = {
        "workload": args.workload,
        "recipe": args.recipe or RECIPES[args.workload],
        "quick": args.quick,
        "env": capture_environment(resolve_device(args.device)),
        "jobs": args.jobs,
        "threads_per_run": threads,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "wall_s": time.time() - started,
        "race": analyse(runs, args.workload, target),
        "runs": runs,
    }
    stem = f"speedrun-{args.workload}" + ("-quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(runs, target, args.out / f"{stem}.png", f"{args.workload}: {report['recipe']} vs baseline")
    race = report["race"]
    print(f"baseline full run: {race['baseline_full_run_time_s']:.1f}s (final {race['baseline_final_each']})")
    for row in race["rows"]:
        ci = "-" if row["ci_low"] is None else f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
        ttt = "not reached" if row["time_to_target_s"] is None else f"{row['time_to_target_s']:.1f}s"
        speed = "-" if row["speedup"] is None else f"{row['speedup']:.2f}x"
        print(f"{row['recipe']}: to {target} in {ttt} ({row['reached']} seeds), {speed} {ci}, status {row['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
