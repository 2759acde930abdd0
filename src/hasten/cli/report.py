"""``hasten report``: figures, a Markdown summary and a self-contained HTML page for one workload."""

from __future__ import annotations

import re
from pathlib import Path

import click

from hasten.cli.common import open_store
from hasten.cli.compare import comparison_options, load_comparison
from hasten.curves.compare import compare_runs, default_target
from hasten.curves.profiles import performance_ratios
from hasten.curves.report import write_report
from hasten.errors import ConfigError, HastenError
from hasten.store.store import RunStore

DEFAULT_OUT = Path("hasten-report")


def default_out(workload: str) -> Path:
    """``./hasten-report/NAME`` with NAME made of the workload's letters, digits, ``.``, ``_`` and
    ``-`` only: a workload called ``../x`` or ``file.py:name`` stays inside ``./hasten-report``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", workload).strip(".-") or "workload"
    return DEFAULT_OUT / name


def _profiles(store: RunStore, baseline: str) -> dict[str, dict[str, float]]:
    """Time-to-target of every recipe on every workload in the store (each at its registered target)."""
    times: dict[str, dict[str, float | None]] = {}
    for name in sorted({r.workload for r in store.list_runs()}):
        try:
            result = compare_runs(
                store.list_runs(name, with_evals=True), target=default_target(name, None), baseline=baseline
            )
        except HastenError:
            continue  # a workload without baseline runs or a known target takes no part
        times[name] = {recipe: result.time_to_target(recipe)[0] for recipe in result.recipes}
    if len(times) < 2:
        raise ConfigError(
            f"performance profiles need runs of 2 or more workloads with a baseline; found {len(times)}",
            "run 'hasten curve' on another workload, or leave out --profiles",
        )
    return performance_ratios(times)


@click.command()
@click.argument("workload")
@comparison_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Folder to write. Default: ./{DEFAULT_OUT}/WORKLOAD",
)
@click.option("--profiles", is_flag=True, help="Add AlgoPerf performance profiles over every workload in the store.")
def report(
    workload: str,
    baseline: str,
    target: float | None,
    schedule: str,
    readout: str,
    store_path: str | None,
    out_dir: str | None,
    profiles: bool,
) -> None:
    """Write WORKLOAD's report: tradeoff curves with 95% bands and the Pareto frontier, speedup
    versus target, the speedup's two factors, report.md and a self-contained report.html."""
    store = open_store(store_path)
    result = load_comparison(workload, baseline, target, schedule, readout, store)
    ratios = _profiles(store, baseline) if profiles else None
    files = write_report(result, Path(out_dir) if out_dir else default_out(result.workload), profiles=ratios)
    click.echo(
        f"wrote {files.html} (open it in a browser), {files.markdown} and "
        f"{len(files.images)} figures in {files.directory}"
    )


COMMANDS = [report]
