"""``hasten methods``: the speedup-method catalogue, one card in full, the taxonomy's research gaps,
and the per-component docs pages (``docs/methods-<component>.md`` are this module's output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import click

import hasten.methods as methods_package
from hasten.cli.common import echo_json, print_table
from hasten.errors import ConfigError
from hasten.methods.card import ACTIONS, BOTTLENECKS, COMPONENTS, MethodCard
from hasten.methods.registry import MethodEntry, all_methods, get_method

RESULTS_PATH = Path(methods_package.__file__).parent / "results.json"
RESULT_FIELDS = ("workload", "speedup", "ci_low", "ci_high", "status", "machine", "date", "command")
DOCS_NOTE = ("<!-- Generated from the method cards by docs/generate_method_docs.py "
             "(or `hasten methods --markdown COMPONENT`). Edit the cards, not this file. -->")
COMPONENT_SCOPE = {
    "data": "which samples, which inputs, their size, order, labels and augmentation",
    "model": "architecture, parameters, initialization, numerics and layout",
    "optimization": "loss, optimizer, schedule and weight averaging",
    "evaluation": "how the trained model is evaluated; its extra cost is reported as inference cost",
}


# ------------------------------------------------------------------ data
def load_results(path: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Measured results per method (written by the tradeoff benchmark); {} when none exist yet."""
    path = Path(path) if path is not None else RESULTS_PATH
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})",
                          "rerun the benchmark that writes it") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(r, dict) for r in v)
                                             for v in data.values()):
        raise ConfigError(f"{path} must map method names to lists of result objects",
                          f"each result has {', '.join(RESULT_FIELDS)}")
    return data


def _check(value: str | None, accepted: Sequence[str], what: str) -> None:
    if value is not None and value not in accepted:
        raise ConfigError(f"unknown {what} {value!r}", f"accepted: {', '.join(accepted)}")


def select(component: str | None = None, action: str | None = None,
           bottleneck: str | None = None) -> list[MethodEntry]:
    """The registered methods matching every filter given (a bad value is one clear error)."""
    _check(component, COMPONENTS, "component")
    _check(action, ACTIONS, "action")
    _check(bottleneck, BOTTLENECKS, "bottleneck")
    return [e for e in all_methods()
            if (component is None or e.card.component == component)
            and (action is None or e.card.action == action)
            and (bottleneck is None or bottleneck in e.card.bottleneck)]


def gap_matrix(entries: Iterable[MethodEntry]) -> dict[str, dict[str, list[str]]]:
    """component -> action -> method names; an empty list is a research gap."""
    matrix: dict[str, dict[str, list[str]]] = {c: {a: [] for a in ACTIONS} for c in COMPONENTS}
    for entry in entries:
        matrix[entry.card.component][entry.card.action].append(entry.name)
    return matrix


# ------------------------------------------------------------- rendering
def format_result(result: dict[str, Any]) -> str:
    speedup, low, high = result.get("speedup"), result.get("ci_low"), result.get("ci_high")
    figure = f"{speedup:.2f}x" if isinstance(speedup, (int, float)) else "no speedup claimed"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        figure += f" [95% CI {low:.2f}-{high:.2f}]"
    where = ", ".join(str(result[k]) for k in ("machine", "date") if result.get(k))
    command = f"; `{result['command']}`" if result.get("command") else ""
    where = f", {where}" if where else ""
    note = f"; {result['note']}" if result.get("note") else ""
    return f"{result.get('workload', '?')}: {figure} ({result.get('status', '?')}){where}{note}{command}"


def _defaults_text(card: MethodCard) -> str:
    if not card.defaults:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in card.defaults.items())


def conflicts_of(name: str) -> dict[str, str]:
    """Conflicts declared by the method or against it (the check is symmetric, so the card is too)."""
    found: dict[str, str] = {}
    for entry in all_methods():
        if entry.name == name:
            found.update(entry.card.conflicts)
        elif name in entry.card.conflicts:
            found.setdefault(entry.name, entry.card.conflicts[name])
    return dict(sorted(found.items()))


def card_fields(card: MethodCard, results: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """A card as (label, text) rows, shared by the terminal view and the docs pages; ``results``
    None leaves the measured row out."""
    if card.paper is not None:
        paper = str(card.paper) + (" (implementation-level switch)" if card.implementation_level else "")
    else:
        paper = "none: an implementation-level switch" if card.implementation_level else "none given"
    conflicts = "; ".join(f"{k}: {v}" for k, v in conflicts_of(card.name).items()) or "none declared"
    resume = ("exact: same final weights as an uninterrupted run" if card.resume
              else f"the Trainer refuses to resume it: {card.resume_note or 'no reason given'}")
    example = ",".join(f"{k}={v}" for k, v in card.defaults.items())
    rows = [
        ("summary", card.summary),
        ("paper", paper),
        ("taxonomy", f"component {card.component}, action {card.action}, mechanism {card.mechanism}"),
        ("when", card.when),
        ("bottleneck relieved", ", ".join(card.bottleneck)),
        ("touches", ", ".join(card.touches) or "nothing declared"),
        ("conflicts", conflicts),
        ("checkpoint/resume", resume),
        ("export", card.export),
        ("defaults", _defaults_text(card)),
        ("CLI", f"--method {card.name}" + (f":{example}" if example else "")),
        ("functional form", ", ".join(card.functional) or "none"),
        ("applies to", ", ".join(card.applies_to)),
        ("expected effect", card.effect or "not stated"),
        ("not worth it when", card.not_worth_it or "not stated"),
    ]
    if results is not None:
        rows.append(("measured", "; ".join(format_result(r) for r in results) if results else "not measured yet"))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def component_markdown(component: str) -> str:
    """The docs page for one component, from the registered cards alone (measured results change
    with every benchmark run and live in ``hasten methods NAME``, so the pages stay card-only)."""
    _check(component, COMPONENTS, "component")
    entries = select(component=component)
    lines = [f"# {component.capitalize()} methods", "", DOCS_NOTE, "",
             f"The {component} component: {COMPONENT_SCOPE[component]}. "
             f"{len(entries)} method{'s' if len(entries) != 1 else ''}. Actions: {', '.join(ACTIONS)}. Mechanisms: "
             "step-cost (cheaper steps), step-count (fewer steps), both, memory. "
             "Measured speedups: `hasten methods NAME`.", ""]
    if entries:
        lines += ["| method | action | mechanism | bottleneck | summary |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| [{e.name}](#{e.name}) | {e.card.action} | {e.card.mechanism} | {', '.join(e.card.bottleneck)} "
                  f"| {_cell(e.card.summary)} |" for e in entries]
    for entry in entries:
        lines += ["", f"## {entry.name}", "", "| | |", "| --- | --- |"]
        fields = card_fields(entry.card, None)
        lines += [f"| {label} | {_cell(text)} |" for label, text in fields]
    return "\n".join(lines) + "\n"


def docs_pages(docs_dir: str | Path) -> dict[Path, str]:
    """Every generated page and its content: ``docs/methods-<component>.md``."""
    return {Path(docs_dir) / f"methods-{c}.md": component_markdown(c) for c in COMPONENTS}


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
@click.option("--markdown", "markdown", default=None, metavar="COMPONENT",
              help="Print COMPONENT's docs page (what docs/methods-COMPONENT.md holds).")
def methods(name: str | None, component: str | None, action: str | None, bottleneck: str | None,
            as_json: bool, gaps: bool, markdown: str | None) -> None:
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
        results = load_results()
        echo_json([{**e.card.to_dict(), "measured": results.get(e.name, [])} for e in entries])
        return
    rows = [(e.name, e.card.component, e.card.action, e.card.mechanism, ",".join(e.card.bottleneck), e.card.summary)
            for e in entries]
    print_table(("name", "component", "action", "mechanism", "bottleneck", "summary"), rows)


COMMANDS = [methods]
