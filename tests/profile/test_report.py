from __future__ import annotations

import json

import torch
from torch import nn

from hasten.profile import Profiler
from hasten.profile.report import Report, build_advice


def small_report(cpu_peaks) -> Report:
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    prof = Profiler("cpu", skip=1, steps=3, record=2, min_time=0, peaks=cpu_peaks)
    data = [(torch.randn(64, 256), torch.randint(0, 10, (64,)))] * prof.steps_needed
    for x, y in prof.wrap(data):
        with prof.step():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return prof.report()


def test_render_puts_the_verdict_first_then_evidence_then_what_to_do(cpu_peaks):
    report = small_report(cpu_peaks)
    text = report.render()
    lines = text.splitlines()
    assert lines[0].startswith(f"Verdict: {report.verdict.upper()}-bound.")
    order = [text.index(h) for h in ("Evidence (cpu", "where it goes", "op class", "Recommendations", "After a fix")]
    assert order == sorted(order)
    for rec in report.recommendations[:6]:
        assert f"card: hasten methods {rec.method}" in text
    assert str(report) == text


def test_to_dict_is_plain_json(cpu_peaks):
    report = small_report(cpu_peaks)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == report.verdict
    assert data["watch"] == report.watch
    assert {"shares", "op_classes", "top_ops", "mfu", "ridge_point"} <= set(data["evidence"])
    assert [r["method"] for r in data["recommendations"]] == [r.method for r in report.recommendations]


def test_advice_drops_bf16_tips_where_bf16_is_slow(cpu_peaks):
    from hasten.profile.peaks import Peaks

    slow = Peaks(**{**cpu_peaks.__dict__, "matmul_flops": {"float32": 100.0, "bfloat16": 5.0}})
    fast = Peaks(**{**cpu_peaks.__dict__, "matmul_flops": {"float32": 100.0, "bfloat16": 500.0}})
    assert any("bf16 autocast" in tip for tip in build_advice("compute", None, fast))
    tips = build_advice("compute", None, slow)
    assert not any("bf16 autocast" in tip for tip in tips)
    assert any("0.05x" in tip for tip in tips)
    assert build_advice("data", "host")[-1] == build_advice("host", None)[0]
