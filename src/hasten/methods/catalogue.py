"""The method catalogue as data and text: filters, the component x action gap matrix, measured
results, card rows and the generated ``docs/methods-<component>.md`` pages. ``hasten methods``
prints these; ``docs/generate_method_docs.py`` writes the pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from hasten.errors import ConfigError
from hasten.methods.card import ACTIONS, BOTTLENECKS, COMPONENTS, MethodCard
from hasten.methods.registry import MethodEntry, all_methods

RESULTS_PATH = Path(__file__).parent / "results.json"
RESULT_FIELDS = ("workload", "speedup", "ci_low", "ci_high", "status", "machine", "date", "command")
DOCS_NOTE = (
    "<!-- Generated from the method cards by docs/generate_method_docs.py "
    "(or `hasten methods --markdown COMPONENT`). Edit the cards, not this file. -->"
)
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
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})", "rerun the benchmark that writes it"
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(r, dict) for r in v) for v in data.values()
    ):
        raise ConfigError(
            f"{path} must map method names to lists of result objects", f"each result has {', '.join(RESULT_FIELDS)}"
        )
    return data


def _check(value: str | None, accepted: Sequence[str], what: str) -> None:
    if value is not None and value not in accepted:
        raise ConfigError(f"unknown {what} {value!r}", f"accepted: {', '.join(accepted)}")


def select(component: str | None = None, action: str | None = None, bottleneck: str | None = None) -> list[MethodEntry]:
    """The registered methods matching every filter given (a bad value is one clear error)."""
    _check(component, COMPONENTS, "component")
    _check(action, ACTIONS, "action")
    _check(bottleneck, BOTTLENECKS, "bottleneck")
    return [
        e
        for e in all_methods()
        if (component is None or e.card.component == component)
        and (action is None or e.card.action == action)
        and (bottleneck is None or bottleneck in e.card.bottleneck)
    ]


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
    resume = (
        "exact: same final weights as an uninterrupted run"
        if card.resume
        else f"the Trainer refuses to resume it: {card.resume_note or 'no reason given'}"
    )
    data_parallel = (
        "yes: the same on every process under torchrun"
        if card.data_parallel
        else f"refused under torchrun: {card.data_parallel_note or 'support not declared'}"
    )
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
        ("data-parallel", data_parallel),
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
    lines = [
        f"# {component.capitalize()} methods",
        "",
        DOCS_NOTE,
        "",
        f"The {component} component: {COMPONENT_SCOPE[component]}. "
        f"{len(entries)} method{'s' if len(entries) != 1 else ''}. Actions: {', '.join(ACTIONS)}. Mechanisms: "
        "step-cost (cheaper steps), step-count (fewer steps), both, memory. "
        "Measured speedups: `hasten methods NAME`.",
        "",
    ]
    if entries:
        lines += ["| method | action | mechanism | bottleneck | summary |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| [{e.name}](#{e.name}) | {e.card.action} | {e.card.mechanism} | {', '.join(e.card.bottleneck)} "
            f"| {_cell(e.card.summary)} |"
            for e in entries
        ]
    for entry in entries:
        lines += ["", f"## {entry.name}", "", "| | |", "| --- | --- |"]
        fields = card_fields(entry.card, None)
        lines += [f"| {label} | {_cell(text)} |" for label, text in fields]
    return "\n".join(lines) + "\n"


def docs_pages(docs_dir: str | Path) -> dict[Path, str]:
    """Every generated page and its content: ``docs/methods-<component>.md``."""
    return {Path(docs_dir) / f"methods-{c}.md": component_markdown(c) for c in COMPONENTS}
