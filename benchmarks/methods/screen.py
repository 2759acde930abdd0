"""Method screening: every method that applies to a workload, run as ``baseline + method`` over
three or more budgets x two or more seeds, and its measured speedup written into the method
cards' results (``src/hasten/methods/results.json``, shown by ``hasten methods NAME``).

    python benchmarks/methods/screen.py                          # every workload but toy (hours on CPU)
    python benchmarks/methods/screen.py --workload shakespeare --methods muon,seq_length_warmup
    python benchmarks/methods/screen.py --quick                  # toy, two methods, seconds; scratch output

By default each (recipe, seed) is one run with the multiplicative cyclic schedule, its cycle
ends on the budgets (Portes et al. 2022): cheap, and good at ranking methods, but it can
misstate the absolute speedup of regularizers (label smoothing, mixup) and of methods laid out
over a fraction of the run (progressive resizing, sequence-length warm-up, selective backprop,
SWA). ``--scaled`` runs a separate, schedule-scaled run per budget instead: use it to confirm a
headline number. The speedup is read at the workload's target when the baseline reaches it on
every seed, otherwise at the best quality every baseline seed reaches (the entry says which).
Runs go into their own store (``--store``), so an interrupted screening continues.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

from hasten.curves.analysis import seed_points
from hasten.curves.compare import compare_runs
from hasten.curves.sweep import (
    SweepProgress,
    check_recipes,
    default_budgets,
    find_done,
    parse_budgets,
    plan_sweep,
    run_sweep,
)
from hasten.errors import HastenError
from hasten.methods.registry import all_methods
from hasten.store.records import RunRecord
from hasten.store.store import RunStore
from hasten.workloads.base import Workload, get_workload, list_workloads

RESULTS = Path(__file__).resolve().parents[2] / "src" / "hasten" / "methods" / "results.json"
QUICK = dict(workloads=["toy"], methods=["label_smoothing", "data_echoing"], budgets="8ba,16ba,32ba", seeds=2)


def applicable_methods(workload: Workload) -> list[str]:
    """Methods whose card applies to the workload's modality (or to any)."""
    return [e.name for e in all_methods() if "any" in e.card.applies_to or workload.modality in e.card.applies_to]


def choose_target(workload: Workload, baseline_runs: list[RunRecord], readout: str) -> tuple[float, str]:
    """The workload's target if every baseline seed reaches it, else the best quality every seed reaches."""
    bests = []
    for points in seed_points(baseline_runs, readout).values():
        qualities = [p.quality for p in points]
        bests.append(max(qualities) if workload.higher_is_better else min(qualities))
    if not bests:
        return workload.target, "workload target"
    reachable = min(bests) if workload.higher_is_better else max(bests)
    if workload.reached(reachable):
        return workload.target, "workload target"
    return reachable, "best quality every baseline seed reached (the workload target was not reached)"


def screen(workload: Workload, method: str, args: argparse.Namespace, store: RunStore, command: str) -> dict | None:
    """Sweep baseline and baseline + method; return the method's result entry (None if it cannot run)."""
    try:
        recipes = check_recipes(["baseline", method])
    except HastenError as exc:
        print(f"skip {method} on {workload.name}: {exc}", file=sys.stderr)
        return None
    budgets = parse_budgets(args.budgets) if args.budgets else default_budgets(workload.default_duration)
    points = plan_sweep(workload.name, recipes, budgets, range(args.seeds), cyclic=not args.scaled)
    try:
        run_sweep(points, store, jobs=args.jobs, device=args.device, data_dir=args.data_dir, progress=SweepProgress())
    except Exception as exc:  # noqa: BLE001 - one broken method must not stop the screening
        print(f"skip {method} on {workload.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return None
    runs = [r for r in (find_done(store, p) for p in points) if r is not None]
    readout = "budgets"
    target, how = choose_target(workload, [r for r in runs if r.recipe == "baseline"], readout)
    comparison = compare_runs(runs, target=target, readout=readout)
    s = comparison.speedups[recipes[1]]
    return card_entry(
        workload,
        s,
        comparison,
        target,
        how,
        command,
        mode="scaled" if args.scaled else "cyclic",
        budgets=budgets,
        seeds=args.seeds,
        note=s.note,
    )


def card_entry(workload: Workload, s, comparison, target: float, how: str, command: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    """One measured result as the method cards store it (``methods/results.json``)."""
    return {
        "workload": workload.name,
        "speedup": s.speedup,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "status": s.status,
        "machine": comparison.machines[0] if comparison.machines else "unknown",
        "date": _dt.date.today().isoformat(),
        "command": command,
        "metric": workload.metric,
        "target": target,
        "target_choice": how,
        "steps_factor": s.steps_factor,
        "time_per_step_factor": s.time_per_step_factor,
        **extra,
    }


def merge_results(path: Path, entries: dict[str, list[dict]]) -> None:
    """Replace each method's entry for the same workload; keep everything else. Atomic write."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for method, new in entries.items():
        kept = [e for e in data.get(method, []) if e.get("workload") not in {n["workload"] for n in new}]
        data[method] = kept + new
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(dict(sorted(data.items())), indent=2, allow_nan=False) + "\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workload", action="append", dest="workloads", help="Workload (repeatable). Default: all but toy."
    )
    parser.add_argument("--methods", default=None, help="Comma-separated methods. Default: every one that applies.")
    parser.add_argument(
        "--budgets", default=None, help="e.g. 500ba,1000ba,2000ba. Default: 1/4, 1/2, 1 of the workload's."
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--scaled", action="store_true", help="A separate schedule-scaled run per budget (not cyclic).")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--store", default="hasten-runs/methods-screening.db")
    parser.add_argument("--results", type=Path, default=None, help=f"Default: {RESULTS} (a scratch file with --quick).")
    parser.add_argument("--quick", action="store_true", help="toy, two methods, tiny budgets: checks the script works.")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.workloads, args.budgets = args.workloads or QUICK["workloads"], args.budgets or QUICK["budgets"]
        args.methods = args.methods or ",".join(QUICK["methods"])
        scratch = Path(tempfile.mkdtemp(prefix="hasten-screen-"))
        args.results = args.results or scratch / "results.json"
        args.store = str(scratch / "runs.db") if args.store == parser.get_default("store") else args.store
    if args.seeds < 2:
        parser.error("--seeds must be >= 2: a speedup needs a confidence interval over seeds")
    results = args.results or RESULTS
    workloads = (
        [get_workload(w) for w in args.workloads]
        if args.workloads
        else [w for w in list_workloads() if w.name != "toy"]
    )
    store = RunStore(args.store)
    found: dict[str, list[dict]] = {}
    for workload in workloads:
        methods = args.methods.split(",") if args.methods else applicable_methods(workload)
        for method in methods:
            command = " ".join(
                [
                    "python benchmarks/methods/screen.py",
                    "--workload",
                    workload.name,
                    "--methods",
                    method,
                    "--seeds",
                    str(args.seeds),
                ]
                + (["--budgets", args.budgets] if args.budgets else [])
                + (["--scaled"] if args.scaled else [])
            )
            entry = screen(workload, method.strip(), args, store, command)
            if entry is None:
                continue
            found.setdefault(method.strip(), []).append(entry)
            figure = "-" if entry["speedup"] is None else f"{entry['speedup']:.2f}x"
            interval = "" if entry["ci_low"] is None else f" [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]"
            print(
                f"{workload.name} {method}: {figure}{interval} {entry['status']} at {workload.metric} "
                f"{entry['target']:.4g}",
                flush=True,
            )
            merge_results(results, {method.strip(): [entry]})  # written as we go: a stopped screening keeps its results
    print(f"results: {results} ({sum(len(v) for v in found.values())} entries); runs: {store.path}")
    if not args.quick:
        print("command line: " + shlex.join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
