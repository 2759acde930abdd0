"""Dynamic masking on ``mlm``: ``linear-0.3-0.15`` against constant 15% (the baseline) and constant 30%,
and the paper's direction test (``linear-0.15-0.3``, expected to be worse), with hasten's own curves
and speedups; the results go onto the masking_schedule card (``src/hasten/methods/results.json``).

    python benchmarks/methods/masking_schedule.py                   # 4 recipes x 3 seeds, cyclic, 2 jobs
    python benchmarks/methods/masking_schedule.py --report-only     # re-read the store, rewrite the card

Each (recipe, seed) is one cyclic run whose cycle ends fall on the budgets; the speedup is read at
the workload's target when every baseline seed reaches it, else at the best loss every baseline seed
reaches (the entry says which), with a bootstrap interval over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screen import card_entry, choose_target  # noqa: E402

from hasten.curves.compare import compare_runs  # noqa: E402
from hasten.curves.sweep import SweepProgress, find_done, parse_budgets, plan_sweep, run_sweep  # noqa: E402
from hasten.store.store import RunStore  # noqa: E402
from hasten.workloads.base import get_workload  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "src" / "hasten" / "methods" / "results.json"
DEFAULT = "masking_schedule"
CONSTANT_30 = "masking_schedule:schedule=constant-0.3"
INCREASING = "masking_schedule:schedule=linear-0.15-0.3"
# (entry name, recipe, baseline recipe)
COMPARISONS = [
    ("linear-0.3-0.15 vs constant 15%", DEFAULT, "baseline"),
    ("linear-0.3-0.15 vs constant 30%", DEFAULT, CONSTANT_30),
    ("direction test: linear-0.15-0.3 vs constant 15%", INCREASING, "baseline"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", default="250ba,500ba,1000ba")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--store", default="hasten-runs/mlm-masking.db")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--load-note", default="", help="How loaded the machine was (recorded with the results).")
    args = parser.parse_args(argv)
    workload = get_workload("mlm")
    store = RunStore(args.store)
    budgets = parse_budgets(args.budgets)
    recipes = ["baseline", DEFAULT, CONSTANT_30, INCREASING]
    points = plan_sweep(workload.name, recipes, budgets, range(args.seeds), cyclic=True)
    if not args.report_only:
        run_sweep(points, store, jobs=args.jobs, device="cpu", data_dir=args.data_dir, progress=SweepProgress())
    runs = [r for r in (find_done(store, p) for p in points) if r is not None]
    target, how = choose_target(workload, [r for r in runs if r.recipe == "baseline"], "budgets")
    command = f"python benchmarks/methods/masking_schedule.py --seeds {args.seeds} --budgets {args.budgets}"
    entries = []
    for name, recipe, baseline in COMPARISONS:
        comparison = compare_runs(runs, target=target, baseline=baseline, readout="budgets", recipes=[recipe])
        s = comparison.speedups[recipe]
        finals = {
            rec: sorted(round(r.final.get("loss", float("nan")), 4) for r in runs if r.recipe == rec)
            for rec in (recipe, baseline)
        }
        entries.append(
            card_entry(
                workload,
                s,
                comparison,
                target,
                how,
                command,
                comparison=name,
                recipe=recipe,
                baseline=baseline,
                mode="cyclic",
                budgets=budgets,
                seeds=args.seeds,
                final_losses=finals,
                note="; ".join(filter(None, [name, s.note, args.load_note])),
            )
        )
        figure = "-" if s.speedup is None else f"{s.speedup:.2f}x"
        interval = "" if s.ci_low is None else f" [{s.ci_low:.2f}, {s.ci_high:.2f}]"
        print(f"{name}: {figure}{interval} {s.status} at loss {target:.4g}; final losses {finals}")
    data = json.loads(args.results.read_text()) if args.results.exists() else {}
    data[DEFAULT] = [e for e in data.get(DEFAULT, []) if e.get("workload") != workload.name] + entries
    temporary = args.results.with_name(args.results.name + ".tmp")
    temporary.write_text(json.dumps(dict(sorted(data.items())), indent=2, allow_nan=False) + "\n")
    os.replace(temporary, args.results)
    print(f"results: {args.results}; runs: {store.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
