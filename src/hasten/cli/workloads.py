"""``hasten workloads``: what can be trained, with its metric, target and baseline."""

from __future__ import annotations

import click

from hasten.cli.common import echo_json, print_table
from hasten.workloads.base import list_workloads


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the workloads as JSON.")
def workloads(as_json: bool) -> None:
    """List workloads: metric and direction, default target and duration, baseline recipe."""
    items = list_workloads()
    if as_json:
        echo_json(
            [
                {
                    "name": w.name,
                    "summary": w.summary,
                    "metric": w.metric,
                    "higher_is_better": w.higher_is_better,
                    "target": w.target,
                    "default_duration": w.default_duration,
                    "baseline": w.baseline,
                    "target_note": w.target_note,
                    "modality": w.modality,
                }
                for w in items
            ]
        )
        return
    rows = [
        (w.name, f"{w.metric} ({'max' if w.higher_is_better else 'min'})", w.target, w.default_duration, w.baseline)
        for w in items
    ]
    print_table(("workload", "metric", "target", "duration", "baseline"), rows)


COMMANDS = [workloads]
