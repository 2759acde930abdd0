"""The profiler's answer: verdict first, then the evidence, then what to do about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hasten.profile.opclasses import OP_CLASSES
from hasten.profile.recommend import ADVICE, LeftOut, Recommendation
from hasten.profile.verdict import PRIORITY, WATCH


@dataclass
class Report:
    """``verdict``: one of data, host, memory, compute, communication. ``evidence``: the
    measured numbers behind it. ``recommendations``: catalogue methods, best first."""

    verdict: str
    evidence: dict[str, Any]
    recommendations: list[Recommendation]
    explanation: str
    secondary: str | None = None
    rule: str = "V1"
    advice: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def watch(self) -> dict[str, str]:
        """The evidence number a fix for this verdict should lower (rule V4)."""
        return {WATCH[self.verdict]: "down"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "explanation": self.explanation,
            "secondary": self.secondary,
            "rule": self.rule,
            "watch": self.watch,
            "evidence": self.evidence,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "advice": self.advice,
            "left_out": [x.to_dict() for x in self.left_out],
        }

    def render(self, max_recommendations: int = 6) -> str:
        return "\n".join(_render(self, max_recommendations))

    def __str__(self) -> str:
        return self.render()


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def _fmt_rate(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def _render(report: Report, limit: int) -> list[str]:
    ev = report.evidence
    lines = [f"Verdict: {report.verdict.upper()}-bound. {report.explanation[0].upper()}{report.explanation[1:]}."]
    if report.secondary:
        lines.append(f"Also notable: {report.secondary} ({ev['shares'][report.secondary]:.0%} of step time).")
    threads = f", {ev['threads']} thread{'s' if ev['threads'] != 1 else ''}" if ev["device"] == "cpu" else ""
    lines += [
        "",
        f"Evidence ({ev['device']}: {ev['device_name']}{threads}; {ev['steps_timed']} timed steps, "
        f"{ev['steps_recorded']} recorded)",
    ]
    shares = "  ".join(f"{b} {ev['shares'][b]:.0%}" for b in PRIORITY)
    per_sample = f", {_fmt_time(ev['time_per_sample_s'])} per sample" if ev.get("time_per_sample_s") else ""
    lines += [
        f"  step time           {_fmt_time(ev['step_time_s'])} (median {_fmt_time(ev['step_time_median_s'])}){per_sample}",
        f"  where it goes       {shares}",
        f"  data wait           {_fmt_time(ev['data_wait_s'])} per step ({ev['data_wait_fraction']:.0%})",
        f"  operations          {ev['ops_per_step']:.0f} per step, {ev['overhead_bound_ops_per_step']:.0f} of them "
        f"overhead-bound; {_fmt_time(ev['mean_op_time_s'])} each on average "
        f"(one empty op costs {_fmt_time(ev['op_overhead_s'])})",
    ]
    if ev.get("device_idle_fraction") is not None:
        lines.append(f"  device idle         {ev['device_idle_fraction']:.0%} of the step body")
    lines += [
        f"  FLOPs               {_fmt_rate(ev['flops_per_step'], 'FLOP')} per step counted, achieved "
        f"{_fmt_rate(ev['achieved_flops_per_s'], 'FLOP/s')} = MFU {ev['mfu']:.1%} of measured "
        f"{ev['matmul_dtype']} peak {_fmt_rate(ev['peak_flops'], 'FLOP/s')}",
        f"  bytes moved         {_fmt_rate(ev['bytes_per_step'], 'B')} per step (measured bandwidth "
        f"{_fmt_rate(ev['peak_bandwidth'], 'B/s')}; ridge point {ev['ridge_point']:.1f} FLOP/byte)",
        "",
        f"  {'op class':<15}{'time/step':>11}{'share':>7}{'calls':>8}{'FLOP':>11}{'bytes':>10}{'FLOP/s':>12}{'B/s':>11}",
    ]
    for name in OP_CLASSES:
        row = ev["op_classes"].get(name)
        if not row or (row["time_s"] == 0 and row["calls"] == 0):
            continue
        share = row["time_s"] / ev["step_time_s"] if ev["step_time_s"] else 0.0
        lines.append(
            f"  {name:<15}{_fmt_time(row['time_s']):>11}{share:>7.0%}{row['calls']:>8.0f}"
            f"{_fmt_rate(row['flops'], ''):>11}{_fmt_rate(row['bytes'], ''):>10}"
            f"{_fmt_rate(row['flops_per_s'], ''):>12}{_fmt_rate(row['bytes_per_s'], ''):>11}"
        )
    top = [op for op in ev["top_ops"][:5] if op["time_s"] > 0]
    if top:
        lines.append(
            "  slowest operations  "
            + ", ".join(f"{op['name'].replace('aten::', '')} {_fmt_time(op['time_s'])} ({op['regime']})" for op in top)
        )
    for note in ev.get("notes", []):
        lines.append(f"  note: {note}")
    lines += ["", "Recommendations (best first)"]
    if not report.recommendations:
        lines.append(
            f"  no method in the catalogue that lists '{report.verdict}' as the bottleneck it relieves "
            "can act on this loop"
            if report.left_out
            else f"  no method in the catalogue lists '{report.verdict}' as the bottleneck it relieves"
        )
    for i, rec in enumerate(report.recommendations[:limit], 1):
        lines.append(f"  {i}. {rec.method}: {rec.summary}")
        lines.append(f"     expected effect: {rec.effect}")
        lines.append(f"     card: {rec.card}")
    if len(report.recommendations) > limit:
        rest = ", ".join(r.method for r in report.recommendations[limit:])
        lines.append(f"  more: {rest}")
    if report.left_out:
        lines.append(
            "  left out, as they cannot help this loop: " + "; ".join(f"{x.method} ({x.why})" for x in report.left_out)
        )
    if report.advice:
        lines += ["", "First things to try outside the catalogue"]
        lines += [f"  - {tip}" for tip in report.advice]
    key = WATCH[report.verdict]
    value = ev[key]
    shown = f"{value:.0%}" if key.endswith("fraction") else _fmt_time(value)
    lines += ["", f"After a fix, profile again: {key} (now {shown}) should go down."]
    return lines


def build_advice(verdict: str, secondary: str | None, peaks: Any = None) -> list[str]:
    """Plain tips for the verdict (and the first for a secondary bottleneck), checked against
    this device's measured peaks where a tip depends on them."""
    tips = list(ADVICE.get(verdict, [])) + ([ADVICE[secondary][0]] if secondary in ADVICE else [])
    if peaks is not None and "bfloat16" in peaks.matmul_flops:
        ratio = peaks.matmul_flops["bfloat16"] / peaks.matmul_flops["float32"]
        if ratio < 1.2:
            tips = [t for t in tips if "bf16" not in t]
            if verdict in ("compute", "memory"):
                tips.append(
                    f"skip bf16 for speed on this device: its measured bf16 matmul rate is {ratio:.2f}x the "
                    "fp32 rate (no fast bf16 units); it still halves bytes moved"
                )
    return tips
