"""``hasten methods``: the speedup-method catalogue, one card in full, the taxonomy's research gaps,
and the per-component docs pages (built by ``hasten.methods.catalogue``)."""

from __future__ import annotations

import click

from hasten.cli.common import echo_json, print_table
from hasten.errors import ConfigError
from hasten.methods.card import ACTIONS, BOTTLENECKS, COMPONENTS
from hasten.methods.catalogue import card_fields, component_markdown, gap_matrix, load_results, select
from hasten.methods.registry import MethodEntry, get_method


def _echo_gaps(entries: list[MethodEntry], as_json: bool) -> None:
    matrix = gap_matrix(entries)
    gaps = [(c, a) for c in COMPONENTS for a in ACTIONS if not matrix[c][a]]
    if as_json:
        echo_json({"matrix": matrix, "gaps": [list(g) for g in gaps]})
        return
    rows = [(c, *(str(len(matrix[c][a])) if matrix[c][a] else "-- gap" for a in ACTIONS)) for c in COMPONENTS]
    print_table(("component", *ACTIONS), rows, title="methods per component x action (-- gap: no method yet)")
    click.echo(f"research gaps ({len(gaps)}): " + (", ".join(f"{c} x {a}" for c, a in gaps) or "none"))


# ------------------------------------------------------------------ CLI
@click.command()
@click.argument("name", required=False)
@click.option("--component", default=None, help=f"Only this component: {', '.join(COMPONENTS)}.")
@click.option("--action", default=None, help=f"Only this action: {', '.join(ACTIONS)}.")
@click.option("--bottleneck", default=None, help=f"Only methods relieving it: {', '.join(BOTTLENECKS)}.")
@click.option("--json", "as_json", is_flag=True, help="Print the cards (or the gap matrix) as JSON.")
@click.option("--gaps", is_flag=True, help="Component x action matrix with method counts; empty cells are gaps.")
@click.option(
    "--markdown",
    "markdown",
    default=None,
    metavar="COMPONENT",
    help="Print COMPONENT's docs page (what docs/methods-COMPONENT.md holds).",
)
def methods(
    name: str | None,
    component: str | None,
    action: str | None,
    bottleneck: str | None,
    as_json: bool,
    gaps: bool,
    markdown: str | None,
) -> None:
    """List the speedup methods, or show method NAME's card in full.

    \b
    hasten methods                          the catalogue
    hasten methods --component data        filter (also --action, --bottleneck)
    hasten methods --gaps                   research gaps of the taxonomy
    hasten methods mixup                    one card, with measured results
    """
    if markdown is not None:
        if name or gaps or as_json:
            raise ConfigError("--markdown prints one docs page", "use it alone: hasten methods --markdown data")
        click.echo(component_markdown(markdown), nl=False)
        return
    if name is not None:
        if component or action or bottleneck or gaps:
            raise ConfigError("a method NAME cannot be combined with filters or --gaps", f"run: hasten methods {name}")
        entry = get_method(name)
        results = load_results().get(entry.name, [])
        if as_json:
            echo_json({**entry.card.to_dict(), "measured": results})
            return
        click.echo(f"{entry.name}")
        for label, text in card_fields(entry.card, results):
            click.echo(f"  {label + ':':<21}{text}")
        return
    entries = select(component, action, bottleneck)
    if gaps:
        _echo_gaps(entries, as_json)
        return
    if as_json:
        measured = load_results()
        echo_json([{**e.card.to_dict(), "measured": measured.get(e.name, [])} for e in entries])
        return
    rows = [
        (e.name, e.card.component, e.card.action, e.card.mechanism, ",".join(e.card.bottleneck), e.card.summary)
        for e in entries
    ]
    print_table(("name", "component", "action", "mechanism", "bottleneck", "summary"), rows)


COMMANDS = [methods]
