"""Reports: PNG figures, a Markdown summary and one self-contained HTML page (images embedded).

The page is built once as a list of blocks and rendered twice, so Markdown and HTML say the
same thing. Every piece of text that came from users (recipe names, notes) is escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from hasten.curves.compare import Comparison
from hasten.curves.plots import plot_factors, plot_profiles, plot_speedup_vs_target, plot_tradeoff
from hasten.curves.profiles import profile_score

Block = tuple[Any, ...]  # ("h1"|"h2"|"p"|"ul"|"table"|"img", ...)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .55rem;
text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
.speedup{color:#0a7d27;font-weight:600}.slower{color:#b3261e;font-weight:600}.none{color:#6b6b6b}
"""


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    markdown: Path
    html: Path
    images: dict[str, Path]


def fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "not reached"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.2f} min"


def fmt_x(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}x"


def fmt_ci(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"[{low:.2f}, {high:.2f}]"


def fmt_q(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def verdict_line(comparison: Comparison, recipe: str) -> str:
    """One sentence a newcomer can read: the speedup, its interval and its two factors."""
    s = comparison.speedups[recipe]
    if s.status == "not reached":
        return f"{recipe}: target not reached ({s.note})."
    factors = f"steps-to-quality {fmt_x(s.steps_factor)} x time-per-step {fmt_x(s.time_per_step_factor)}"
    if s.ci_low is None:
        return f"{recipe}: {fmt_x(s.speedup)} ({factors}); no measurable speedup ({s.note})."
    verdict = {
        "speedup": "a measurable speedup",
        "slower": "measurably slower",
        "no measurable speedup": "no measurable speedup (the interval holds 1.0)",
    }[s.status]
    caveat = f" ({s.note})" if s.note else ""
    return (
        f"{recipe}: speedup {fmt_x(s.speedup)} to {comparison.metric} {comparison.target:g}, 95% CI "
        f"{fmt_ci(s.ci_low, s.ci_high)}: {verdict}; {factors}{caveat}."
    )


def _busy_cell(comparison: Comparison, recipe: str, label: str) -> str:
    flagged = comparison.contended(recipe, label)
    return f"{len(flagged)} run{'s' if len(flagged) != 1 else ''} flagged" if flagged else "-"


def _reach_word(comparison: Comparison) -> str:
    return "at least" if comparison.higher_is_better else "at most"


def build_blocks(
    comparison: Comparison,
    images: Mapping[str, str],
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    profiles: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Block]:
    c = comparison
    readout = (
        "each run's evaluation time series (first crossing of the target, linear in log-time)"
        if c.readout == "evals"
        else "the final quality of runs at each budget (or each cycle end of a cyclic run)"
    )
    blocks: list[Block] = [
        ("h1", title or f"hasten report: {c.workload}"),
        (
            "p",
            f"Target: {c.metric} {_reach_word(c)} {c.target:g}. Baseline: {c.baseline}. "
            f"{c.runs} runs ({c.schedule} schedule); time-to-target read from {readout}.",
        ),
        ("p", "Measured on: " + "; ".join(c.machines) + f". Written {_dt.date.today().isoformat()}."),
        ("h2", "Verdict"),
        ("ul", [verdict_line(c, r) for r in c.recipes if r != c.baseline] or ["only the baseline was run"]),
    ]
    rows = []
    for recipe in c.recipes:
        mean, per_seed = c.time_to_target(recipe)
        seeds = ", ".join(fmt_time(t) for t in per_seed) or "-"
        if recipe == c.baseline:
            rows.append((recipe, fmt_time(mean), seeds, "1.00x (baseline)", "-", "-", "-", "baseline"))
            continue
        s = c.speedups[recipe]
        rows.append(
            (
                recipe,
                fmt_time(mean),
                seeds,
                fmt_x(s.speedup),
                fmt_ci(s.ci_low, s.ci_high),
                fmt_x(s.steps_factor),
                fmt_x(s.time_per_step_factor),
                s.status,
            )
        )
    blocks += [
        (
            "table",
            (
                "recipe",
                "time to target (mean)",
                "per seed",
                "speedup",
                "95% CI",
                "steps-to-quality",
                "time-per-step",
                "status",
            ),
            rows,
        ),
        ("h2", "How to read this"),
        (
            "ul",
            [
                "Time is training wall-clock only: evaluation, checkpointing and compile warm-up are timed apart.",
                "Time-to-target is the least training time at which a run reaches the target, interpolated linearly "
                "in log-time between measured points and never extrapolated; a target missed on any seed is "
                "'not reached' and no speedup is claimed.",
                "Speedup = baseline time / recipe time (means over seeds) = steps-to-quality factor (fewer steps) "
                "x time-per-step factor (cheaper steps). Its 95% interval resamples seeds (bootstrap); an interval "
                "that holds 1.0 is 'no measurable speedup'.",
                "With two seeds an interval is coarse; times measured on a busy machine are provisional.",
            ],
        ),
        ("h2", "Tradeoff curves"),
        ("img", images["tradeoff"], "quality against training time for every recipe, with the Pareto frontier"),
    ]
    curve_rows = [
        (
            recipe,
            p.label,
            p.n,
            fmt_time(p.time_s),
            fmt_q(p.quality),
            fmt_ci(p.quality_low, p.quality_high) if math.isfinite(p.quality_low) else "-",
            _busy_cell(c, recipe, p.label),
        )
        for recipe in c.recipes
        for p in c.curves[recipe].points
    ]
    if c.readout == "budgets":
        blocks.append(
            ("table", ("recipe", "budget", "seeds", "train time", c.metric, "95% CI", "busy machine"), curve_rows)
        )
    if c.contention:
        blocks += [
            ("h2", "Measurement warnings: signs of a busy machine"),
            (
                "p",
                "These runs' training times look disturbed by other load on the machine; the points and "
                "speedups that use them are provisional. Rerun them on an idle machine.",
            ),
            (
                "table",
                ("recipe", "budget", "seed", "run", "why"),
                [(f.recipe, f.duration, f.seed, f.run_id, "; ".join(f.reasons)) for f in c.contention],
            ),
        ]
    blocks += [
        ("h2", "Pareto frontier"),
        ("p", "Points no other point beats on both training time and quality (mean over seeds):"),
        ("ul", [f"{p.label}: {fmt_q(p.quality)} in {fmt_time(p.time_s)}" for p in c.frontier] or ["none"]),
        ("h2", "Speedup versus target"),
        ("img", images["speedup"], "speedup over the baseline at each target quality"),
        ("h2", "Where the speedup comes from"),
        ("img", images["factors"], "speedup split into steps-to-quality and time-per-step factors"),
        ("h2", "Quality gain at equal training time"),
    ]
    gain_rows = [
        (recipe, fmt_time(g.time_s), "-" if g.gain is None else f"{g.gain:+.4g}", fmt_ci(g.ci_low, g.ci_high))
        for recipe, gains in c.gains.items()
        for g in gains
    ]
    blocks.append(
        ("table", ("recipe", "at train time", f"{c.metric} gain (positive is better)", "95% CI"), gain_rows)
        if gain_rows
        else ("p", "No other recipe to compare.")
    )
    if profiles:
        blocks += [
            ("h2", "Performance profiles across workloads"),
            ("img", images["profiles"], "AlgoPerf performance profiles"),
            (
                "table",
                ("recipe", "score (area, r_max = 4)"),
                [(r, f"{profile_score(per):.3f}") for r, per in profiles.items()],
            ),
        ]
    if c.notes or notes:
        blocks += [("h2", "Notes"), ("ul", [*c.notes, *notes])]
    return blocks


_MD_LINK_CHARS = re.compile(r"([\\\[\]|])")


def _md_text(text: Any) -> str:
    """User text as inert Markdown: HTML escaped (no raw tags, no ``<javascript:...>`` autolinks)
    and ``[``, ``]``, ``\\`` and ``|`` backslash-escaped, so ``[x](javascript:...)``, an image or
    a link reference definition in a recipe name or note stays text."""
    escaped = _MD_LINK_CHARS.sub(r"\\\1", str(text)).replace("\n", " ")
    return html.escape(escaped, quote=False)


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + _md_text(block[1]))
        elif kind == "p":
            out.append(_md_text(block[1]))
        elif kind == "ul":
            out.append("\n".join(f"- {_md_text(item)}" for item in block[1]))
        elif kind == "table":
            columns, rows = block[1], block[2]
            lines = ["| " + " | ".join(_md_text(c) for c in columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_md_text(v) for v in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{_md_text(block[2])}]({block[1]})")
    return "\n\n".join(out) + "\n"


def _status_class(value: Any) -> str:
    return {"speedup": "speedup", "slower": "slower"}.get(str(value), "none")


def render_html(blocks: Sequence[Block], directory: Path) -> str:
    """One page, no outside references: images are inlined as base64 data."""
    esc = html.escape
    title = next((b[1] for b in blocks if b[0] == "h1"), "hasten report")
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{esc(str(block[1]))}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{esc(str(block[1]))}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{esc(str(item))}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            columns, rows = block[1], block[2]
            head = "".join(f"<th>{esc(str(c))}</th>" for c in columns)
            body_rows = []
            for row in rows:
                cells = []
                for column, value in zip(columns, row):
                    cls = f' class="{_status_class(value)}"' if column == "status" else ""
                    cells.append(f"<td{cls}>{esc(str(value))}</td>")
                body_rows.append("<tr>" + "".join(cells) + "</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body_rows)}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((directory / block[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{esc(str(block[2]))}" src="data:image/png;base64,{data}"></figure>')
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(str(title))}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_report(
    comparison: Comparison,
    out_dir: str | os.PathLike,
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    profiles: Mapping[str, Mapping[str, float]] | None = None,
) -> ReportFiles:
    """Write ``tradeoff.png``, ``speedup.png``, ``factors.png``, ``report.md`` and ``report.html``."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    images = {
        "tradeoff": plot_tradeoff(comparison, directory / "tradeoff.png"),
        "speedup": plot_speedup_vs_target(
            comparison,
            comparison.speedups_over_targets(sorted({*comparison.target_range(), comparison.target})),
            directory / "speedup.png",
        ),
        "factors": plot_factors(comparison, directory / "factors.png"),
    }
    if profiles:
        images["profiles"] = plot_profiles(profiles, directory / "profiles.png")
    blocks = build_blocks(
        comparison, {k: p.name for k, p in images.items()}, title=title, notes=notes, profiles=profiles
    )
    markdown, page = directory / "report.md", directory / "report.html"
    _write(markdown, render_markdown(blocks))
    _write(page, render_html(blocks, directory))
    return ReportFiles(directory, markdown, page, images)
