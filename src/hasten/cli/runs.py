"""``hasten runs``: list, show, export and import recorded runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hasten.cli.common import echo_json, fmt_seconds, open_store, print_table, store_option
from hasten.errors import ConfigError
from hasten.store.store import RunStore


@click.group(invoke_without_command=True)
@click.option("--workload", "-w", default=None, help="Only runs of this workload.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@store_option
@click.pass_context
def runs(ctx: click.Context, workload: str | None, as_json: bool, store_path: str | None) -> None:
    """List recorded runs (or export/import/show them)."""
    ctx.ensure_object(dict)
    ctx.obj["store_path"] = store_path
    if ctx.invoked_subcommand is not None:
        return
    records = open_store(store_path).list_runs(workload)
    if as_json:
        echo_json([r.to_dict() for r in records])
        return
    rows = []
    for r in records:
        final = r.final.get(r.metric) if r.metric else None
        rows.append(
            (
                r.run_id,
                r.workload,
                r.recipe,
                r.seed,
                r.duration,
                r.schedule,
                r.status,
                r.steps,
                fmt_seconds(r.train_time_s),
                _value(final),
                r.created_at,
            )
        )
    print_table(
        ("run", "workload", "recipe", "seed", "duration", "schedule", "status", "steps", "train", "final", "created"),
        rows,
        whole=("run",),
    )


def _value(final: object) -> str:
    """A metric for the table; a non-number (written into a store before imports were checked) as it is."""
    if final is None:
        return "-"
    return f"{final:.4f}" if isinstance(final, (int, float)) else repr(final)


def _store(ctx: click.Context, store_path: str | None) -> RunStore:
    """``--store`` works before or after the subcommand (``runs --store S import F`` or ``runs import F --store S``)."""
    return open_store(store_path or ctx.obj["store_path"])


@runs.command("show")
@click.argument("run_id")
@store_option
@click.pass_context
def show(ctx: click.Context, run_id: str, store_path: str | None) -> None:
    """Print one run (or 'latest') as JSON, with its eval points."""
    echo_json(_store(ctx, store_path).get_run(run_id).to_dict())


@runs.command("export")
@click.option("--workload", "-w", default=None, help="Only runs of this workload.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-", help="File to write (default stdout).")
@store_option
@click.pass_context
def export(ctx: click.Context, workload: str | None, output: str, store_path: str | None) -> None:
    """Write runs as JSON lines, one run per line with its eval points."""
    store = _store(ctx, store_path)
    if output == "-":
        count = store.export_jsonl(sys.stdout, workload)
    else:
        tmp = Path(output + ".tmp")
        with tmp.open("w") as handle:
            count = store.export_jsonl(handle, workload)
        tmp.replace(output)
    click.echo(f"exported {count} runs", err=True)


@runs.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@store_option
@click.pass_context
def import_runs(ctx: click.Context, file: str, store_path: str | None) -> None:
    """Read runs written by 'hasten runs export' (runs already present are skipped).

    Every line is checked first: one bad line imports nothing."""
    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"no file {file}", "give the path of a .jsonl file written by 'hasten runs export'")
    with path.open("rb") as handle:  # bytes: invalid UTF-8 is reported by line, not as a traceback
        imported, skipped = _store(ctx, store_path).import_jsonl(handle, source=str(path))
    click.echo(f"imported {imported} runs, skipped {skipped} already present")


COMMANDS = [runs]
