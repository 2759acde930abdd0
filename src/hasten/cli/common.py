"""Options and output helpers shared by CLI commands."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Callable, Sequence

import click

from hasten.store.store import RunStore


def store_option(fn: Callable) -> Callable:
    return click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Run store (SQLite). Default: $HASTEN_STORE or ./hasten-runs/hasten.db.",
    )(fn)


def open_store(path: str | None) -> RunStore:
    return RunStore(path)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(_finite(data), indent=2, sort_keys=False))


def _finite(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def rich_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None, whole: Sequence[str] = ()
) -> Any:
    """A rich Table; the ``whole`` columns (identifiers a user copies) are never cut or wrapped."""
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        if column in whole:
            width = max([len(column), *(len(str(row[index])) for row in rows)])
            table.add_column(column, no_wrap=True, min_width=width, overflow="fold")
        else:
            table.add_column(column)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    return table


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None, whole: Sequence[str] = ()
) -> None:
    """A rich table on a terminal, tab-separated plain text elsewhere (easy to grep and parse)."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_table(columns, rows, title, whole))
        return
    if title:
        click.echo(f"# {title}")
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(str(c) for c in row))


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"
